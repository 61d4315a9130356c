"""TF-IDF top-k edges (``pipeline.edges.tfidf.TfidfEdges``, defaults) against exact brute force.

Exact baseline: ``TfidfVectorizer(**vectorizer_kwargs())`` (the defaults TfidfEdges uses and
manifest.json records under ``tfidf.vectorizer``; printed first) on the same document strings (``pipeline.edges.tfidf.document_text``)
and ``NearestNeighbors(metric="cosine", algorithm="brute")``. recall@5 counts an edge a -> b as a
hit when b's exact cosine to a is at least a's 5th-best exact cosine (ties at the 5th place are
all hits), over min(5, documents with a positive cosine) relevant neighbours per document.

Corpora:
* the shared enwiki fragment, read by ``pipeline.sources.wikipedia.ReadWikipedia`` (98 long articles);
* a short-article wiki (--short-docs): a ``pipeline.synth.wiki`` corpus of another seed cut to each
  article's lead paragraph (one to three sentences, like a stub wiki);
* a synthetic topic-mixture corpus (``topic_corpus``): each document mixes a Zipf background
  vocabulary (the "function words") with 1-3 topics, each a Zipf law over its own 300 words. Topics
  (num_docs / 25) and vocabulary (30,000 + 3 num_docs words) grow with the corpus, as subjects and
  words do in real collections; N and 4N documents are generated separately.
* the project's synthetic corpus, a ``pipeline.synth.wiki`` dump (--synthwiki-docs): template
  prose, where a near pair's cosine is spread over many moderately frequent words.

Scale: wall and CPU time of the DirectRunner pipeline read JSONL -> TfidfEdges -> write edges on
N and 4N synthetic documents, runs interleaved, medians of --runs; the peer is the exact brute
force on the same documents, timed the same way. Last line:
``tfidf: recall5=<lowest recall of enwiki, short wiki, synth wiki and 4N topics> scale4x=<median time(4N) / median time(N)>``.

    .venv/bin/python bench/tfidf.py [--docs 5000] [--runs 3] [--short-docs 3000] [--synthwiki-docs 3000]
        [--set NAME=INT] [--versus candidates=30]
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import apache_beam as beam  # noqa: E402
from sklearn.feature_extraction.text import TfidfVectorizer  # noqa: E402
from sklearn.neighbors import NearestNeighbors  # noqa: E402

from linkbert.pipeline.edges.tfidf import TfidfEdges, document_text, vectorizer_kwargs  # noqa: E402

sys.path.insert(0, str(REPO / "bench"))
from corpora import topic_corpus  # noqa: E402,F401  (the tests import it from here too)

# the shared real data, where the tests find it (LINKBERT_REAL_DATA, else ../shared/data)
ENWIKI = (Path(os.environ.get("LINKBERT_REAL_DATA") or REPO.parent / "shared" / "data")
          / "wikipedia" / "enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2")
K = 5
def write_jsonl(documents, path: str) -> str:
    with open(path, "w", encoding="utf-8") as handle:
        for document in documents:
            handle.write(json.dumps({key: document[key] for key in ("doc_id", "title", "text")}) + "\n")
    return path


def read_jsonl(path: str) -> list[dict]:
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


def wikipedia_jsonl(dump: str, path: str) -> str:
    """Documents of a MediaWiki dump, as ReadWikipedia cleans them, into a JSONL file."""
    from linkbert.pipeline.sources.wikipedia import ReadWikipedia

    with beam.Pipeline() as pipeline:
        read = pipeline | "ReadWikipedia" >> ReadWikipedia(dump)
        _ = (
            read["documents"]
            | "Documents" >> beam.Map(lambda d: json.dumps({key: d[key] for key in ("doc_id", "title", "text")}))
            | "Write" >> beam.io.WriteToText(path, shard_name_template="", num_shards=1)
        )
    return path


SETTINGS: dict = {}  # TfidfEdges keyword arguments over its defaults (--set)


def tfidf_edges(jsonl: str, out_dir: str) -> tuple[list[dict], float, float]:
    """Run the pipeline on a JSONL corpus -> (edges, wall seconds, CPU seconds of this process)."""
    for old in glob.glob(os.path.join(out_dir, "edges*")):
        os.remove(old)
    wall, cpu = time.perf_counter(), time.process_time()
    with beam.Pipeline() as pipeline:
        _ = (
            pipeline
            | "Read" >> beam.io.ReadFromText(jsonl)
            | "Parse" >> beam.Map(json.loads)
            | "TfidfEdges" >> TfidfEdges(k=K, **SETTINGS)
            | "ToJson" >> beam.Map(json.dumps)
            | "Write" >> beam.io.WriteToText(os.path.join(out_dir, "edges"))
        )
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    edges = [json.loads(line) for name in sorted(glob.glob(os.path.join(out_dir, "edges*"))) for line in open(name)]
    return edges, wall, cpu


def brute_force(documents: list[dict]):
    """Exact top-(K + 1) by cosine -> (tf-idf matrix, neighbour indices, similarities, wall, CPU)."""
    wall, cpu = time.perf_counter(), time.process_time()
    matrix = TfidfVectorizer(**vectorizer_kwargs()).fit_transform([document_text(d) for d in documents])
    search = NearestNeighbors(n_neighbors=min(K + 1, len(documents)), metric="cosine", algorithm="brute").fit(matrix)
    distances, indices = search.kneighbors(matrix)
    return matrix, indices, 1.0 - distances, time.perf_counter() - wall, time.process_time() - cpu


def recall_at_k(documents: list[dict], edges: list[dict], exact) -> tuple[float, float]:
    """(recall@K, largest |edge score - exact cosine|)."""
    matrix, indices, similarities = exact[:3]
    row = {document["doc_id"]: i for i, document in enumerate(documents)}
    by_src: dict[str, list[dict]] = {}
    for edge in edges:
        by_src.setdefault(edge["src"], []).append(edge)
    hits = relevant = 0
    worst_error = 0.0
    for i, document in enumerate(documents):
        neighbours = [(j, s) for j, s in zip(indices[i], similarities[i]) if j != i][:K]
        relevant += sum(1 for _, s in neighbours if s > 1e-12)
        threshold = neighbours[-1][1] if neighbours else 1.0
        for edge in by_src.get(document["doc_id"], [])[:K]:
            exact_score = float(matrix[i].multiply(matrix[row[edge["dst"]]]).sum())
            worst_error = max(worst_error, abs(exact_score - edge["score"]))
            hits += exact_score > 1e-12 and exact_score >= threshold - 1e-9
    return hits / max(relevant, 1), worst_error


def measure_recall(name: str, jsonl: str, out_dir: str) -> float:
    documents = read_jsonl(jsonl)
    edges, wall, _ = tfidf_edges(jsonl, out_dir)
    exact = brute_force(documents)
    recall, error = recall_at_k(documents, edges, exact)
    print(f"{name}: {len(documents)} docs, {len(edges)} edges, recall@{K}={recall:.4f}, "
          f"max |score - exact cosine|={error:.1e}, pipeline {wall:.1f}s, brute force {exact[3]:.1f}s")
    return recall


def compare_settings(jsonl: str, out_dir: str, own: dict, other: dict, runs: int) -> None:
    """Recall of ``other`` on ``jsonl``, and its CPU against ``own``'s, runs interleaved."""
    cpu = {"own": [], "other": []}
    for attempt in range(max(1, runs)):
        for name, settings in (("own", own), ("other", other)):
            SETTINGS.clear()
            SETTINGS.update(settings)
            if attempt == 0 and name == "other":
                measure_recall(f"synth wiki, sizes {settings}", jsonl, out_dir)
            cpu[name].append(tfidf_edges(jsonl, out_dir)[2])
    SETTINGS.clear()
    SETTINGS.update(own)
    own_cpu, other_cpu = statistics.median(cpu["own"]), statistics.median(cpu["other"])
    print(f"versus {other}: CPU {other_cpu:.1f}s against {own_cpu:.1f}s with {own or 'the defaults'}, "
          f"ratio {other_cpu / own_cpu:.2f} (medians of {max(1, runs)}, interleaved)")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=5000, help="N: documents of the smaller synthetic corpus (default 5000)")
    parser.add_argument("--runs", type=int, default=3, help="timed runs per size (default 3)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--synthwiki-docs", type=int, default=3000, help="documents of the pipeline.synth wiki corpus")
    parser.add_argument("--short-docs", type=int, default=3000, help="documents of the short-article wiki")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=INT",
                        help="a TfidfEdges size other than its default (e.g. candidates=30) for the whole run")
    parser.add_argument("--versus", action="append", default=[], metavar="NAME=INT",
                        help="also measure these sizes on the synth wiki: recall, and CPU against the run's own, "
                             "interleaved (e.g. --versus candidates=30)")
    args = parser.parse_args(argv)

    def sizes(items):
        return {name: int(value) for name, value in (item.split("=", 1) for item in items)}

    SETTINGS.update(sizes(args.set))
    versus = {**SETTINGS, **sizes(args.versus)}
    if not ENWIKI.exists():
        parser.error(f"missing shared data file {ENWIKI}")

    with tempfile.TemporaryDirectory(prefix="bench-tfidf-") as tmp:
        out_dir = os.path.join(tmp, "out")
        os.makedirs(out_dir)
        enwiki = wikipedia_jsonl(str(ENWIKI), os.path.join(tmp, "enwiki.jsonl"))
        small = write_jsonl(topic_corpus(args.docs, args.seed), os.path.join(tmp, "topics-n.jsonl"))
        large = write_jsonl(topic_corpus(4 * args.docs, args.seed), os.path.join(tmp, "topics-4n.jsonl"))

        from linkbert.pipeline.synth.wiki import write_wiki_dump

        print(f"vectorizer: TfidfVectorizer(**{json.dumps(vectorizer_kwargs(), sort_keys=True)}); "
              f"TfidfEdges sizes other than the defaults: {SETTINGS or 'none'}")
        short_dump = write_wiki_dump(os.path.join(tmp, "shortwiki"), args.short_docs, args.seed + 1)["dump"]
        short = os.path.join(tmp, "shortwiki.jsonl")
        write_jsonl([dict(d, text=d["text"].split("\n\n")[0]) for d in
                     read_jsonl(wikipedia_jsonl(short_dump, os.path.join(tmp, "shortwiki-full.jsonl")))], short)
        dump = write_wiki_dump(os.path.join(tmp, "synthwiki"), args.synthwiki_docs, args.seed)["dump"]
        synthwiki = wikipedia_jsonl(dump, os.path.join(tmp, "synthwiki.jsonl"))
        recalls = [measure_recall("enwiki fragment", enwiki, out_dir),
                   measure_recall(f"short-article wiki {args.short_docs}", short, out_dir),
                   measure_recall(f"synth wiki {args.synthwiki_docs}", synthwiki, out_dir),
                   measure_recall(f"topic corpus {4 * args.docs}", large, out_dir)]
        if args.versus:
            compare_settings(synthwiki, out_dir, dict(SETTINGS), versus, args.runs)

        times = {size: {"wall": [], "cpu": [], "brute_wall": [], "brute_cpu": []} for size in ("n", "4n")}
        corpora = {"n": (small, read_jsonl(small)), "4n": (large, read_jsonl(large))}
        for _ in range(args.runs):
            for size, (jsonl, documents) in corpora.items():
                _, wall, cpu = tfidf_edges(jsonl, out_dir)
                brute = brute_force(documents)
                times[size]["wall"].append(wall)
                times[size]["cpu"].append(cpu)
                times[size]["brute_wall"].append(brute[3])
                times[size]["brute_cpu"].append(brute[4])
        median = {size: {key: statistics.median(values) for key, values in entry.items()} for size, entry in times.items()}
        for key, label in (("wall", "TfidfEdges wall"), ("cpu", "TfidfEdges CPU"),
                           ("brute_wall", "brute force wall"), ("brute_cpu", "brute force CPU")):
            print(f"{label}: N={args.docs} {median['n'][key]:.1f}s, 4N={4 * args.docs} {median['4n'][key]:.1f}s, "
                  f"ratio {median['4n'][key] / median['n'][key]:.2f} (medians of {args.runs})")
        scale = median["4n"]["wall"] / median["n"]["wall"]
        print(f"tfidf: recall5={min(recalls):.4f} scale4x={scale:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
