"""TfidfEdges against scikit-learn's exact TF-IDF cosines."""

from __future__ import annotations

import json
import random
import uuid

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pytest
from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer
from sklearn.neighbors import NearestNeighbors

from linkbert import schemas
from linkbert.pipeline.edges.tfidf import DEFAULT_VECTORIZER, TfidfEdges, document_text, num_shards, vectorizer_kwargs
from linkbert.pipeline.records import collect_counters

ENWIKI = "wikipedia/enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2"
# Every document indexes all its terms, nothing is pruned and every pair sharing a term is rescored:
# the candidate stage then misses nothing, so the result must be the exact top k.
EXHAUSTIVE = {"index_terms": 4096, "max_postings": 1_000_000, "candidates": 1_000_000}
# scikit-learn's own defaults, where a test is about the index rather than the vectorizer.
SKLEARN = {"stop_words": None, "max_df": 1.0, "min_df": 1, "sublinear_tf": False}


def topic_documents(num_docs: int, seed: int) -> list[dict]:
    """Documents mixing common words with one or two of a dozen topics' words."""
    rng = random.Random(seed)
    common = [f"common{i}" for i in range(60)]
    topics = [[f"topic{t}word{i}" for i in range(25)] for t in range(12)]
    documents = []
    for index in range(num_docs):
        mixed = rng.sample(topics, rng.choice((1, 2)))
        words = [rng.choice(common) if rng.random() < 0.5 else rng.choice(rng.choice(mixed))
                 for _ in range(rng.randint(40, 120))]
        documents.append({"doc_id": f"d{index:03d}", "title": f"Document {index}", "text": " ".join(words),
                          "source_file": "memory"})
    return documents


def run_edges(documents: list, tmp_path, source=None, **options) -> tuple[list[dict], dict[str, int]]:
    prefix = tmp_path / f"edges-{uuid.uuid4().hex}"
    pipeline = beam.Pipeline()
    docs = source(pipeline) if source else pipeline | "Documents" >> beam.Create(documents)
    _ = docs | TfidfEdges(**options) | beam.Map(json.dumps) | beam.io.WriteToText(str(prefix))
    result = pipeline.run()
    result.wait_until_finish()
    edges = [json.loads(line) for path in sorted(tmp_path.glob(prefix.name + "*")) for line in path.open()]
    return edges, collect_counters(result)


def exact_similarities(documents: list[dict], **vectorizer_options) -> tuple[dict[str, int], np.ndarray]:
    matrix = TfidfVectorizer(**{**DEFAULT_VECTORIZER, **vectorizer_options}).fit_transform(
        [document_text(d) for d in documents])
    similarities = (matrix @ matrix.T).toarray()
    np.fill_diagonal(similarities, -1.0)
    return {d["doc_id"]: i for i, d in enumerate(documents)}, similarities


def assert_exact_top_k(edges: list[dict], documents: list[dict], k: int, excluded=(), **vectorizer_options) -> None:
    """Each document's edges are a top k of its exact cosines (any of them where several tie), with
    the idf of all ``documents``; ``excluded`` doc_ids have no edges and are nobody's neighbour."""
    row, similarities = exact_similarities(documents, **vectorizer_options)
    similarities[:, [i for i, d in enumerate(documents) if d["doc_id"] in excluded]] = -1.0
    by_src: dict[str, list[dict]] = {doc_id: [] for doc_id in row}
    for edge in edges:
        by_src[edge["src"]].append(edge)
    for doc_id, own in by_src.items():
        if doc_id in excluded:
            assert not own, doc_id
            continue
        exact = similarities[row[doc_id]]
        positive = np.sort(exact[exact > 1e-12])[::-1]
        assert len(own) == min(k, len(positive)), doc_id
        assert len({edge["dst"] for edge in own}) == len(own)
        for edge in own:
            assert edge["score"] == pytest.approx(exact[row[edge["dst"]]], abs=1e-12)
            assert edge["score"] >= positive[len(own) - 1] - 1e-12


def test_exhaustive_settings_give_the_exact_top_k_as_edge_rows(tmp_path):
    documents = topic_documents(80, seed=1)
    edges, counters = run_edges(documents, tmp_path, k=5, docs_per_shard=10, **EXHAUSTIVE)
    assert_exact_top_k(edges, documents, 5)
    assert counters["tfidf.documents"] == 80 and counters["tfidf.edges"] == len(edges) == 400
    assert all(edge["link_type"] == "tfidf" and edge["src"] != edge["dst"] for edge in edges)
    schemas.validate_table(pa.Table.from_pylist(edges, schema=schemas.arrow_schema("edges")), "edges")


@pytest.mark.parametrize("options", [
    {"sublinear_tf": True, "stop_words": "english", "min_df": 2},
    {"ngram_range": (1, 2), "binary": True, "smooth_idf": False, "max_df": 0.5},
])
def test_vectorizer_options_are_honoured(tmp_path, options):
    documents = topic_documents(50, seed=2)
    documents[0]["text"] += " the and of it"  # stop words, gone with stop_words="english"
    edges, _ = run_edges(documents, tmp_path, k=3, **EXHAUSTIVE, **options)
    assert_exact_top_k(edges, documents, 3, **options)


def test_pruned_index_keeps_recall_and_counts_its_work(tmp_path):
    documents = topic_documents(300, seed=3)
    edges, counters = run_edges(documents, tmp_path, k=5, max_postings=60, index_terms=20, candidates=10, **SKLEARN)
    present = CountVectorizer().fit_transform([document_text(d) for d in documents]) > 0
    doc_freq = np.asarray(present.sum(axis=0)).ravel()
    indexable_per_doc = np.asarray(present[:, doc_freq <= 60].sum(axis=1)).ravel()
    row, similarities = exact_similarities(documents, **SKLEARN)
    kth = np.sort(similarities, axis=1)[:, -5]
    hits = sum(similarities[row[e["src"]], row[e["dst"]]] >= kth[row[e["src"]]] - 1e-12 for e in edges)
    assert hits / (5 * len(documents)) >= 0.9
    assert counters["tfidf.terms_pruned_frequent"] == int((doc_freq > 60).sum()) > 0
    assert counters["tfidf.index_entries"] == np.minimum(indexable_per_doc, 20).sum()
    assert 0 < counters["tfidf.candidates"] <= 10 * len(documents)  # the default candidates
    assert counters["tfidf.partial_scores"] <= counters["tfidf.index_entries"] * (60 - 1)  # posting lists <= 60
    assert counters["tfidf.pairs_rescored"] < len(documents) * (len(documents) - 1) // 4


def test_ties_are_broken_by_the_smaller_doc_id(tmp_path):
    documents = [{"doc_id": doc_id, "title": "river", "text": "stone bridge over the river"} for doc_id in ("d", "b", "c", "a")]
    documents.append({"doc_id": "e", "title": "river", "text": "a river and a mill"})
    edges, _ = run_edges(documents, tmp_path, k=2, **SKLEARN)
    assert sorted((e["src"], e["dst"]) for e in edges if e["src"] in "ae") == [("a", "b"), ("a", "c"), ("e", "a"), ("e", "b")]


def test_edges_do_not_depend_on_sharding_or_input_order(tmp_path):
    documents = topic_documents(120, seed=4)
    shuffled = random.Random(0).sample(documents, len(documents))
    many_shards, _ = run_edges(shuffled, tmp_path, k=5, docs_per_shard=7, max_postings=40)
    one_shard, _ = run_edges(documents, tmp_path, k=5, max_postings=40)
    key = lambda edge: (edge["src"], edge["dst"])  # noqa: E731
    assert sorted(many_shards, key=key) == sorted(one_shard, key=key)


def test_bad_and_degenerate_documents_are_counted_not_fatal(tmp_path):
    documents = topic_documents(30, seed=5)
    documents += [
        {"doc_id": "no-text", "title": "No text", "text": None, "source_file": "memory"},
        {"doc_id": "", "title": "No id", "text": "common1 common2", "source_file": "memory"},
        {"doc_id": "empty", "title": "", "text": "", "source_file": "memory"},
        {"doc_id": "loner", "title": "Qqzx", "text": "zyxw vutsr qponm", "source_file": "memory"},
        {"doc_id": "twice", "title": "Twice", "text": documents[0]["text"], "source_file": "memory"},
        {"doc_id": "twice", "title": "Twice again", "text": documents[1]["text"], "source_file": "memory"},
    ]
    edges, counters = run_edges(documents, tmp_path, k=5, **EXHAUSTIVE, **SKLEARN)
    assert counters["tfidf.documents_invalid"] == 2
    assert counters["tfidf.documents"] == 34
    assert counters["tfidf.documents_without_terms"] == 1
    assert counters["tfidf.duplicate_doc_ids"] == 1
    assert counters["tfidf.documents_fewer_than_k"] == 3  # empty, loner, twice
    valid = [d for d in documents if d["doc_id"] and d["text"] is not None]
    # The idf counts both "twice" documents (they are documents, only their key is ambiguous).
    assert_exact_top_k(edges, valid, 5, excluded=("twice",), **SKLEARN)


@pytest.mark.parametrize("options, error", [
    ({"max_features": 100}, ValueError),
    ({"norm": "l1"}, ValueError),
    ({"vocabulary": {"a": 0}}, ValueError),
    ({"min_df": 5, "max_df": 2}, ValueError),
    ({"k": 5, "candidates": 3}, ValueError),
    ({"index_terms": 0}, ValueError),
    ({"not_an_option": 1}, TypeError),
])
def test_refuses_what_it_cannot_do(options, error):
    with pytest.raises(error):
        TfidfEdges(**options)


@pytest.mark.slow
def test_enwiki_fragment_recall_against_brute_force(tmp_path, real_data):
    from linkbert.pipeline.sources.wikipedia import ReadWikipedia

    dump = str(real_data(ENWIKI))
    with beam.Pipeline() as pipeline:
        read = pipeline | ReadWikipedia(dump)
        _ = (
            read["documents"]
            | beam.Map(lambda d: json.dumps({key: d[key] for key in ("doc_id", "title", "text")}))
            | beam.io.WriteToText(str(tmp_path / "documents"), shard_name_template="", num_shards=1)
        )
    documents = [json.loads(line) for line in (tmp_path / "documents").open()]
    edges, counters = run_edges(documents, tmp_path, k=5)
    matrix = TfidfVectorizer(**DEFAULT_VECTORIZER).fit_transform([document_text(d) for d in documents])
    distances, indices = NearestNeighbors(n_neighbors=6, metric="cosine", algorithm="brute").fit(matrix).kneighbors(matrix)
    row = {d["doc_id"]: i for i, d in enumerate(documents)}
    kth = {documents[i]["doc_id"]: 1.0 - max([d for j, d in zip(indices[i], distances[i]) if j != i][:5])
           for i in range(len(documents))}
    hits = sum(float(matrix[row[e["src"]]].multiply(matrix[row[e["dst"]]]).sum()) >= kth[e["src"]] - 1e-9 for e in edges)
    assert len(documents) > 90 and counters["tfidf.documents"] == len(documents)
    assert hits / (5 * len(documents)) >= 0.95


def test_shard_count_grows_with_the_corpus_so_calls_stay_bounded():
    # Capped at 1,000 shards, a call past 500k documents grew with n; uncapped it holds ~500 documents.
    assert num_shards(37_000_000, 500) == 74_000
    assert num_shards(1, 500) == 1 and num_shards(37_000_000, 500, max_shards=1000) == 1000


def test_default_vectorizer_is_recorded_as_keyword_arguments_that_reproduce_it():
    kwargs = vectorizer_kwargs()
    assert kwargs == {"max_df": 0.5, "min_df": 2, "stop_words": "english", "sublinear_tf": True}
    assert TfidfVectorizer(**kwargs).get_params() == TfidfEdges()._params
    assert vectorizer_kwargs({"max_df": 0.9})["max_df"] == 0.9


def test_a_term_in_every_document_is_weighed_without_its_postings_in_one_call(tmp_path):
    # "shared" is in all 60 documents: its document frequency is summed from one request per
    # document shard (12 here), and the edges match the exact top k all the same.
    documents = topic_documents(60, seed=6)
    for document in documents:
        document["text"] += " shared"
    options = {**SKLEARN, "max_df": 1.0}
    edges, counters = run_edges(documents, tmp_path, k=4, docs_per_shard=5, **EXHAUSTIVE, **options)
    assert_exact_top_k(edges, documents, 4, **options)
    assert counters["tfidf.vectors"] == 60
