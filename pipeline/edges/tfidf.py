"""TF-IDF top-k document edges (``--links tfidf``) without an all-pairs product over the corpus.

1. Analyze: scikit-learn's analyzer (``TfidfVectorizer(**options).build_analyzer()``) turns each
   document's title and text into term counts. The options default to ``DEFAULT_VECTORIZER``.
2. Weigh (``tfidf_weights``): postings go to their document's shard; each document shard asks the
   term shards for the document frequencies of its distinct terms, and weighs its postings with
   TfidfVectorizer's formulas (tf raw, binary or 1 + ln tf; idf ln((1 + n) / (1 + df)) + 1 when
   smooth, else ln(n / df) + 1; ``min_df``/``max_df``), then l2-normalises its rows. The
   vocabulary is unbounded, so it is joined by term, never broadcast as a side input.
3. Candidates: every document sends its ``query_terms`` heaviest terms in at most ``max_postings``
   documents to an inverted index, its ``index_terms`` heaviest marked. Each pair of documents in a
   posting list of which at least one marked the term gets the product of the two weights, so a
   term heavy in only one of the two documents still counts; a posting list holds at most
   ``max_postings`` documents and the work is at most n * index_terms * max_postings partial
   scores, linear in n. Partial scores are summed per pair and each document keeps its
   ``candidates`` best partners (ties broken by key, see below).
4. Rescore: each unordered candidate pair gets its exact cosine from the two full vectors, once;
   each document keeps its k nearest, ties broken by doc_id.

Every call is bounded independently of n: the shard count is n / docs_per_shard (no cap), a
document shard holds ``docs_per_shard`` documents' postings (and, rescoring, up to ``candidates``
partner vectors a document), a term shard its terms' index entries (at most ``max_postings`` a
term) and one document-frequency request per document shard for each term (see
``tfidf_weights``). ``bench/tfidf.py`` measures recall on long, short and template-prose corpora.

Records travel between stages as column batches keyed by a shard instead of one element per
posting or pair: a grouping costs the Python SDK about the same per element whatever its size, and
there are hundreds of postings per document. Terms and documents are known by 63 bits of a stable
hash of their text (``linkbert.pipeline.stablehash``), so a batch is a few numpy buffers that Beam's coder
copies whole and the stages work on arrays; doc_id strings travel only where edges are made.

Hashes could collide: two doc_ids sharing a hash are reported like a duplicated doc_id (no edges
for either); two terms sharing one would be counted as one term. Over a vocabulary of 10 million
terms the chance that any two collide is about 5e-6.
"""

from __future__ import annotations

import logging
from collections import Counter
from numbers import Integral

import apache_beam as beam
import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer

from linkbert.pipeline.edges.tfidf_arrays import (
    ShardBuffer,
    Vectors,
    call_records,
    merged,
    pack,
    run_starts,
    shard_of,
    sorted_distinct,
    sorted_pairs,
    sum_by_pair,
    take,
    top_per_group,
    unpack,
)
from linkbert.pipeline.edges.tfidf_weights import (
    AnswerFrequencies,
    BuildShardVectors,
    RequestFrequencies,
    RoutePostings,
    doc_count_bounds,  # noqa: F401  (re-exported)
)
from linkbert.pipeline.records import counter

LINK_TYPE = "tfidf"
MAX_INDEX_TERMS = 4096
# Partial scores are rounded to multiples of 2**-40: they are non-negative and a pair's sum is at
# most its cosine (<= 1), so every sum is exact in float64 and no runner's order of addition can change it.
_SCORE_GRID = float(1 << 40)
_PAIRS_PER_CHUNK = 2_000_000

# The vectorizer a TF-IDF edge is computed with unless the caller says otherwise (and the one the
# manifest records): English stop words and terms in more than half of the documents carry no topic
# and would make every pair look alike; a term in one document links nothing (min_df=2); sublinear
# tf (1 + ln tf) keeps a word repeated 50 times in a long article from outweighing all its others.
DEFAULT_VECTORIZER = {"stop_words": "english", "max_df": 0.5, "min_df": 2, "sublinear_tf": True}

# TfidfVectorizer parameters this transform cannot reproduce; everything else is honoured.
_UNSUPPORTED = {
    "input": ("content",),
    "max_features": (None,),
    "vocabulary": (None,),
    "norm": ("l2",),
}


def document_text(document: dict) -> str:
    """The string a document is vectorised from: its title, a blank line, its text."""
    return f"{document['title']}\n\n{document['text']}"


def validate_vectorizer_options(options: dict) -> dict:
    """TfidfVectorizer keyword arguments -> all its parameters; raises for unknown or unsupported ones."""
    try:
        params = TfidfVectorizer(**options).get_params()
    except TypeError as exc:
        raise TypeError(f"TfidfEdges: not a TfidfVectorizer option: {exc}") from None
    for name, allowed in _UNSUPPORTED.items():
        if params[name] not in allowed:
            raise ValueError(f"TfidfEdges: TfidfVectorizer option {name}={params[name]!r} is not supported (only {allowed[0]!r})")
    if np.dtype(params["dtype"]) != np.float64:
        raise ValueError(f"TfidfEdges: weights are computed in float64; dtype={params['dtype']!r} is not supported")
    for name in ("min_df", "max_df"):
        value = params[name]
        if isinstance(value, float) and not 0.0 <= value <= 1.0:
            raise ValueError(f"TfidfEdges: {name}={value} must be an int or a float in [0, 1]")
    min_df, max_df = params["min_df"], params["max_df"]
    if isinstance(min_df, Integral) == isinstance(max_df, Integral) and max_df < min_df:
        raise ValueError(f"TfidfEdges: max_df={max_df} keeps fewer documents than min_df={min_df}")
    return params


def num_shards(num_docs: int, docs_per_shard: int, max_shards: int | None = None) -> int:
    shards = max(1, -(-num_docs // docs_per_shard))
    return min(max_shards, shards) if max_shards else shards


def vectorizer_kwargs(options: dict | None = None) -> dict:
    """The TfidfVectorizer keyword arguments TfidfEdges uses for ``options``, as JSON (manifest.json)."""
    merged_options = {**DEFAULT_VECTORIZER, **(options or {})}
    return {key: list(value) if isinstance(value, tuple) else value for key, value in sorted(merged_options.items())}


# --- stages -------------------------------------------------------------------------------------

class _AnalyzeDocument(beam.DoFn):
    """document -> (doc_id, {term: tf}); invalid documents are counted and reported, not raised."""

    def __init__(self, vectorizer_options: dict):
        self._vectorizer_options = vectorizer_options

    def setup(self):
        vectorizer = TfidfVectorizer(**self._vectorizer_options)
        self._analyzer = vectorizer.build_analyzer()
        self._binary = vectorizer.binary
        self._documents = counter("tfidf.documents")
        self._invalid = counter("tfidf.documents_invalid")

    def process(self, document):
        is_dict = isinstance(document, dict)
        doc_id = document.get("doc_id") if is_dict else None
        source_file = document.get("source_file") if is_dict else None
        if not (isinstance(doc_id, str) and doc_id and all(isinstance(document.get(f), str) for f in ("title", "text"))):
            self._invalid.inc()
            logging.warning("tfidf: skipped document %r from %s: doc_id must be a non-empty string, title and text strings",
                            doc_id, source_file)
            return
        try:
            counts = Counter(self._analyzer(document_text(document)))
        except Exception as exc:  # a user-supplied preprocessor or tokenizer may fail on one document
            self._invalid.inc()
            logging.warning("tfidf: skipped document %r from %s: analyzer failed: %s: %s",
                            doc_id, source_file, type(exc).__name__, exc)
            return
        self._documents.inc()
        yield doc_id, (dict.fromkeys(counts, 1) if self._binary else counts)


class _ScorePostingLists(beam.DoFn):
    """(term shard, index entries) -> (doc shard, {doc, other, score}): for every pair of documents
    in a posting list (at most ``max_postings`` long) of which at least one holds the term among its
    ``index_terms`` heaviest, the product of their weights, summed over the shard's terms, once per
    direction. Pairs are made ``_PAIRS_PER_CHUNK`` at a time."""

    def setup(self):
        self._partial_scores = counter("tfidf.partial_scores")
        self._call = call_records("score_posting_lists")

    def process(self, element, shards):
        _, batches = element
        entries = merged(batches)
        self._call.update(len(entries["term"]))
        order = np.lexsort((entries["doc"], entries["term"]))
        terms, docs = entries["term"][order], entries["doc"][order]
        weights, top = entries["weight"][order], entries["top"][order]
        starts = run_starts(terms)
        lengths = np.diff(np.r_[starts, len(terms)])
        group_start = np.repeat(starts, lengths)
        group_length = np.repeat(lengths, lengths)
        rows = np.flatnonzero(top & (group_length > 1))
        partials = ShardBuffer()
        first_row = 0
        cumulative = np.cumsum(group_length[rows])
        while first_row < len(rows):
            base = cumulative[first_row - 1] if first_row else 0
            last_row = max(first_row + 1, int(np.searchsorted(cumulative, base + _PAIRS_PER_CHUNK, side="right")))
            chunk = rows[first_row:last_row]
            first_row = last_row
            counts = group_length[chunk]
            first = np.repeat(chunk, counts)
            offsets = np.arange(len(first)) - np.repeat(np.cumsum(counts) - counts, counts)
            second = np.repeat(group_start[chunk], counts) + offsets
            keep = (second != first) & (~top[second] | (docs[first] < docs[second]))
            first, second = first[keep], second[keep]
            self._partial_scores.inc(len(first))
            partial = np.round(weights[first] * weights[second] * _SCORE_GRID) / _SCORE_GRID
            low, high = np.minimum(docs[first], docs[second]), np.maximum(docs[first], docs[second])
            low, high, totals = sum_by_pair(low, high, partial)
            doc, other = np.r_[low, high], np.r_[high, low]
            yield from partials.add(shard_of(doc, shards), {"doc": doc, "other": other, "score": np.r_[totals, totals]})
        yield from partials.flush()


class _SelectCandidates(beam.DoFn):
    """(doc shard, partial scores) -> (shard of the lower hash, {low, high}) for each document's
    ``candidates`` best partners (ties broken by hash)."""

    def __init__(self, candidates: int):
        self._candidates = candidates

    def setup(self):
        self._selected = counter("tfidf.candidates")
        self._call = call_records("select_candidates")

    def process(self, element, shards):
        _, batches = element
        partials = merged(batches)
        self._call.update(len(partials["doc"]))
        docs, others, totals = sum_by_pair(partials["doc"], partials["other"], partials["score"])
        best = top_per_group(docs, others, totals, self._candidates)
        self._selected.inc(len(best))
        low, high = np.minimum(docs[best], others[best]), np.maximum(docs[best], others[best])
        pairs = ShardBuffer()
        yield from pairs.add(shard_of(low, shards), {"low": low, "high": high})
        yield from pairs.flush()


class _ShipVectors(beam.DoFn):
    """(doc shard, {vectors, pairs}) -> (shard of the higher hash, {vectors, high, low_row}): the
    lower document's vector once per destination shard, with the pairs that need it."""

    def process(self, element, shards):
        _, grouped = element
        vectors = Vectors.from_batches(grouped["vectors"])
        pairs = merged(grouped["pairs"])
        if pairs is None:
            return
        order, starts = sorted_pairs(pairs["low"], pairs["high"])
        low, high = pairs["low"][order][starts], pairs["high"][order][starts]
        rows = vectors.row_of(low)
        keep = rows >= 0
        low, high, rows = low[keep], high[keep], rows[keep]
        destinations = shard_of(high, shards)
        order = np.lexsort((rows, destinations))
        destinations, high, rows = destinations[order], high[order], rows[order]
        starts = run_starts(destinations)
        for start, end in zip(starts.tolist(), np.r_[starts[1:], len(order)].tolist()):
            shipped_rows, low_row = np.unique(rows[start:end], return_inverse=True)
            yield int(destinations[start]), {
                "vectors": vectors.rows(shipped_rows).batch(),
                "high": pack(high[start:end]),
                "low_row": pack(low_row.ravel().astype(np.int64)),
            }


class _ExactCosines(beam.DoFn):
    """(doc shard, {vectors, incoming}) -> (doc shard, {name, other, score}) in both directions."""

    def setup(self):
        self._rescored = counter("tfidf.pairs_rescored")

    def process(self, element, shards):
        doc_shard, grouped = element
        shipments = list(grouped["incoming"])
        if not shipments:
            return
        local = Vectors.from_batches(grouped["vectors"])
        lows = Vectors.from_batches([shipment["vectors"] for shipment in shipments], sort=False)
        first_rows = np.cumsum([0] + [len(unpack(shipment["vectors"]["doc"])) for shipment in shipments[:-1]])
        high = np.concatenate([unpack(shipment["high"]) for shipment in shipments])
        low_row = np.concatenate([unpack(shipment["low_row"]) + first for shipment, first in zip(shipments, first_rows)])
        high_row = local.row_of(high)
        keep = high_row >= 0
        high_row, low_row = high_row[keep], low_row[keep]
        vocabulary = sorted_distinct(local.terms)
        scores = np.asarray(local.matrix(vocabulary)[high_row].multiply(lows.matrix(vocabulary)[low_row]).sum(axis=1)).ravel()
        self._rescored.inc(len(scores))
        high_names, low_names = take(local.names, high_row), take(lows.names, low_row)
        scored = ShardBuffer()
        yield from scored.add(np.full(len(scores), doc_shard), {"name": high_names, "other": low_names, "score": scores})
        yield from scored.add(shard_of(lows.docs[low_row], shards), {"name": low_names, "other": high_names, "score": scores})
        yield from scored.flush()


class _EmitEdges(beam.DoFn):
    """(doc shard, {documents, scored}) -> edge rows: each document's k nearest, ties broken by doc_id."""

    def __init__(self, k: int):
        self._k = k

    def setup(self):
        self._edges = counter("tfidf.edges")
        self._fewer = counter("tfidf.documents_fewer_than_k")

    def process(self, element):
        _, grouped = element
        documents = [name for batch in grouped["documents"] for name in batch["name"]]
        emitted = Counter()
        scored = merged(grouped["scored"])
        if scored is not None:
            names = sorted(set(scored["name"]) | set(scored["other"]))
            code_of = {name: code for code, name in enumerate(names)}
            docs = np.fromiter((code_of[name] for name in scored["name"]), dtype=np.int64, count=len(scored["name"]))
            others = np.fromiter((code_of[name] for name in scored["other"]), dtype=np.int64, count=len(docs))
            nearest = top_per_group(docs, others, scored["score"], self._k)
            for doc, other, score in zip(docs[nearest].tolist(), others[nearest].tolist(), scored["score"][nearest].tolist()):
                emitted[names[doc]] += 1
                yield {"src": names[doc], "dst": names[other], "link_type": LINK_TYPE, "score": score}
        self._edges.inc(sum(emitted.values()))
        self._fewer.inc(sum(1 for name in documents if emitted[name] < self._k))


class TfidfEdges(beam.PTransform):
    """documents -> edge rows ``{"src", "dst", "link_type": "tfidf", "score": cosine}``, k per document.

    ``vectorizer_options`` are TfidfVectorizer keyword arguments over ``DEFAULT_VECTORIZER``
    (``vectorizer_kwargs`` gives the result): the analyzer options (lowercase, token_pattern,
    stop_words, ngram_range, ...), ``min_df``, ``max_df``, ``binary``, ``use_idf``, ``smooth_idf``
    and ``sublinear_tf`` are honoured; ``max_features``, ``vocabulary`` and norms other than l2 are
    refused.

    ``index_terms``, ``query_terms``, ``max_postings`` and ``candidates`` trade recall against work
    (``bench/tfidf.py`` measures recall@5 on the enwiki fragment, a short-article wiki and the
    project's synthetic wiki). ``candidates`` is the cheap one: rescoring a pair exactly costs far less
    than the partial scores that rank it, so 60 candidates instead of 30 cost about 3% more CPU on
    the synthetic wiki and lifted its recall@5 from 0.947 to 0.98, where 160 index terms instead of
    100 did as well for 43% more (the issue-13 note). ``docs_per_shard`` sizes the calls (see the module docstring);
    ``max_shards`` caps the shard count (None: no cap, which keeps every call bounded). ``seed`` is
    accepted so that every edge source takes the same arguments: TF-IDF edges are a pure function
    of the documents and involve no random choice.
    """

    def __init__(self, k: int = 5, seed: int = 0, *, index_terms: int = 100, query_terms: int = 1000,
                 max_postings: int = 1000, candidates: int = 60, docs_per_shard: int = 500,
                 max_shards: int | None = None, **vectorizer_options):
        super().__init__()
        sizes = {"k": k, "index_terms": index_terms, "query_terms": query_terms, "max_postings": max_postings,
                 "candidates": candidates, "docs_per_shard": docs_per_shard}
        if max_shards is not None:
            sizes["max_shards"] = max_shards
        for name, value in sizes.items():
            if not isinstance(value, Integral) or isinstance(value, bool) or value < 1:
                raise ValueError(f"TfidfEdges: {name} must be a positive int, got {value!r}")
        if index_terms > MAX_INDEX_TERMS:
            raise ValueError(f"TfidfEdges: index_terms must be at most {MAX_INDEX_TERMS}, got {index_terms}")
        if candidates < k:
            raise ValueError(f"TfidfEdges: candidates ({candidates}) must be at least k ({k})")
        self._k = k
        self._seed = seed
        self._index_terms = index_terms
        self._query_terms = query_terms
        self._max_postings = max_postings
        self._candidates = candidates
        self._docs_per_shard = docs_per_shard
        self._max_shards = max_shards
        self._vectorizer_options = {**DEFAULT_VECTORIZER, **vectorizer_options}
        self._params = validate_vectorizer_options(self._vectorizer_options)

    def expand(self, documents):
        analyzed = documents | "Analyze" >> beam.ParDo(_AnalyzeDocument(self._vectorizer_options))
        num_docs = analyzed | "CountDocuments" >> beam.combiners.Count.Globally()
        shards = beam.pvalue.AsSingleton(
            num_docs | "ShardCount" >> beam.Map(num_shards, self._docs_per_shard, self._max_shards)
        )
        routed = (
            analyzed
            | "BatchDocuments" >> beam.BatchElements(min_batch_size=self._docs_per_shard,
                                                     max_batch_size=self._docs_per_shard)
            | "RoutePostings" >> beam.ParDo(RoutePostings(), shards).with_outputs("terms", "names", main="postings")
        )
        frequencies = (
            routed.terms
            | "GroupTermsByDocument" >> beam.GroupByKey()
            | "RequestFrequencies" >> beam.ParDo(RequestFrequencies(), shards)
            | "GroupRequestsByTerm" >> beam.GroupByKey()
            | "AnswerFrequencies" >> beam.ParDo(AnswerFrequencies(self._params, self._max_postings),
                                                beam.pvalue.AsSingleton(num_docs))
        )
        built = (
            {"postings": routed.postings, "names": routed.names, "idf": frequencies}
            | "GroupByDocument" >> beam.CoGroupByKey()
            | "BuildVectors" >> beam.ParDo(
                BuildShardVectors(self._params, self._index_terms, self._query_terms), shards
            ).with_outputs("index", "documents", main="vectors")
        )
        candidate_pairs = (
            built.index
            | "GroupPostingLists" >> beam.GroupByKey()
            | "ScorePostingLists" >> beam.ParDo(_ScorePostingLists(), shards)
            | "GroupPartialScores" >> beam.GroupByKey()
            | "SelectCandidates" >> beam.ParDo(_SelectCandidates(self._candidates), shards)
        )
        shipped = (
            {"vectors": built.vectors, "pairs": candidate_pairs}
            | "JoinLowerDocument" >> beam.CoGroupByKey()
            | "ShipVectors" >> beam.ParDo(_ShipVectors(), shards)
        )
        scored = (
            {"vectors": built.vectors, "incoming": shipped}
            | "JoinHigherDocument" >> beam.CoGroupByKey()
            | "ExactCosines" >> beam.ParDo(_ExactCosines(), shards)
        )
        return (
            {"documents": built.documents, "scored": scored}
            | "JoinDocuments" >> beam.CoGroupByKey()
            | "EmitEdges" >> beam.ParDo(_EmitEdges(self._k))
        )
