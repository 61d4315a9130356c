"""Peak memory of one shard writer call, of the tokenizer sample's accumulator, and of the largest call of each TF-IDF stage, in a fresh process each.

``writer``: ``_WriteShard.write`` on ``--rows`` 512-token instance rows that stream in from a
generator (as a runner's grouped values do), so the figure is what the writer itself holds
(ru_maxrss). ``--writer-module`` loads another version of ``pipeline/shards/writer.py`` (e.g. the
previous commit's, ``git show HEAD~1:pipeline/shards/writer.py > /tmp/old_writer.py``) to compare.

    .venv/bin/python bench/memory.py writer --rows 20000 [--writer-module /tmp/old_writer.py]

Prints ``writer: rows=<n> peak_rss_mb=<peak> baseline_mb=<before the call> held_mb=<peak - baseline>``.

``tokenizer-sample``: what one ``Top.Smallest(sample_docs)`` accumulator of the tokenizer sample holds
after ``--docs`` documents of ``--max-chars`` characters, with the elements the stage feeds it before
(``(hash, text[:max_chars])``) and now (``(hash, doc_id, length)``), in a fresh process each
(``--which old|new``; a runner keeps one per bundle in flight and shuffles it pickled):

    .venv/bin/python bench/memory.py tokenizer-sample --docs 6000 --sample-docs 5000 --max-chars 20000 --which old

Prints ``tokenizer-sample: which=<old|new> docs=<n> sample_docs=<n> max_chars=<n> accumulator_mb=<pickled>
peak_rss_mb=<peak> held_mb=<peak - baseline>``.
``tfidf``: ``TfidfEdges`` on the topic corpus of ``bench/tfidf.py`` at each ``--docs`` size, with
every DoFn of the TF-IDF modules wrapped so that each call's peak of traced memory (``tracemalloc``,
which numpy reports its buffers to) is measured from the call's start until its last output, the
outputs held (an upper bound of what a streaming runner holds; the grouped input the runner hands
the call is not counted, but every stage first concatenates it, which is). Process RSS would say
little here: the DirectRunner hands a stage's whole partition to one bundle. With ``--baseline REV``
the same measurement runs on the code of git revision REV. The bounds are shrunk so that a few thousand
documents are in the regime millions are in at the defaults: ``--docs-per-shard`` 100 (default 500)
makes many shards, ``--max-postings`` 50 (default 1,000) lets posting lists reach their cap (below
it a call's pairs grow with the lists). ``--max-shards`` caps the shard count (the code before
issue 13 capped it at 1,000, reached at 500k documents of 500: ``--max-shards 4`` at 100 documents
a shard reaches it at 400).

    .venv/bin/python bench/memory.py tfidf --docs 1000 4000 [--baseline db34541^ --baseline-max-shards 4]

Prints one line per stage and size, then ``tfidf_memory: docs=<n1>,<n2> largest_call_mb=<at n1>,<at n2>
ratio=<n2 / n1>`` (and ``baseline_...`` the same for REV).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import importlib.util
import inspect
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def instance_rows(n: int, tokens: int = 512, seed: int = 0):
    """(key, instance row) pairs, made one at a time."""
    import random

    from linkbert.pipeline.stablehash import stable_hash

    rng = random.Random(seed)
    for index in range(n):
        row = {"input_ids": [rng.randrange(30000) for _ in range(tokens)], "b_start": tokens // 2,
               "relation": index % 3, "link_type": "hyperlink" if index % 3 == 2 else None,
               "doc_a": f"d{index}", "seg_a": 0, "doc_b": f"d{index + 1}", "seg_b": 1, "round": 0,
               "num_tokens": tokens}
        yield stable_hash(0, "instances", index), row


def writer(args) -> None:
    if args.writer_module:
        spec = importlib.util.spec_from_file_location("writer_under_test", args.writer_module)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    else:
        from linkbert.pipeline.shards import writer as module
    shard_writer = module._WriteShard(tempfile.mkdtemp(prefix="bench-memory-"), "instances", "train", 1000,
                                      module.instance_stats)
    shard_writer.setup()
    baseline = _rss_mb()
    started = time.perf_counter()
    stats = list(shard_writer.process((0, instance_rows(args.rows)), 1, None))
    seconds = time.perf_counter() - started
    peak = _rss_mb()
    assert stats[0]["rows"] == args.rows, stats
    print(f"writer: rows={args.rows} seconds={seconds:.1f} peak_rss_mb={peak:.0f} baseline_mb={baseline:.0f} "
          f"held_mb={peak - baseline:.0f}")


def tokenizer_sample(args) -> None:
    import pickle

    from apache_beam.transforms.combiners import TopCombineFn

    from linkbert.pipeline.instances.tokenizer import _SampleKey
    from linkbert.pipeline.stablehash import stable_hash

    words = "alpha beta gamma delta river city mountain lake forest stone bridge tower castle field garden".split()

    def documents():
        for index in range(args.docs):
            text = " ".join(words[(index + k) % len(words)] for k in range(args.max_chars // 5))
            yield {"doc_id": f"d{index}", "text": text}

    if args.which == "old":  # the stage before: the text rode along with its hash
        elements = ((stable_hash(0, "tokenizer-sample", d["doc_id"]), d["text"][: args.max_chars]) for d in documents())
    else:
        key = _SampleKey(0, args.max_chars)
        elements = (element for document in documents() for element in key.process(document))
    combine = TopCombineFn(args.sample_docs, reverse=True)  # what Top.Smallest uses
    baseline = _rss_mb()
    accumulator = combine.create_accumulator()
    for element in elements:
        accumulator = combine.add_input(accumulator, element)
    accumulator_mb = len(pickle.dumps(accumulator)) / 2**20
    peak = _rss_mb()
    print(f"tokenizer-sample: which={args.which} docs={args.docs} sample_docs={args.sample_docs} max_chars={args.max_chars} "
          f"accumulator_mb={accumulator_mb:.2f} peak_rss_mb={peak:.0f} held_mb={peak - baseline:.0f}")
@contextlib.contextmanager
def call_peaks(modules):
    """Within the block, each call of a DoFn defined in ``modules`` records its peak of traced memory
    (bytes above the call's start, outputs held) -> yields {DoFn class name: [calls, largest peak]}."""
    import apache_beam as beam

    classes = {cls for module in modules for _, cls in inspect.getmembers(module, inspect.isclass)
               if issubclass(cls, beam.DoFn) and cls.__module__ == module.__name__ and "process" in vars(cls)}
    peaks = {cls.__name__: [0, 0] for cls in classes}

    def wrap(cls):
        original = cls.process

        @functools.wraps(original)
        def process(self, *args, **kwargs):
            start = tracemalloc.get_traced_memory()[0]
            tracemalloc.reset_peak()
            outputs = list(original(self, *args, **kwargs) or ())
            entry = peaks[cls.__name__]
            entry[0] += 1
            entry[1] = max(entry[1], tracemalloc.get_traced_memory()[1] - start)
            return outputs

        return original, process

    patched = {cls: wrap(cls) for cls in classes}
    tracemalloc.start()
    for cls, (_, process) in patched.items():
        cls.process = process
    try:
        yield peaks
    finally:
        for cls, (original, _) in patched.items():
            cls.process = original
        tracemalloc.stop()


def tfidf_calls(num_docs: int, docs_per_shard: int, max_shards: int | None, max_postings: int = 1000,
                seed: int = 7) -> dict:
    """Largest call of each TF-IDF DoFn on the topic corpus: {name: {"calls", "peak_mb"}}."""
    import apache_beam as beam

    if os.environ.get("PYTHONPATH"):  # another revision's code: it must come before this checkout's
        sys.path.remove(str(REPO))
    sys.path.insert(0, str(REPO / "bench"))
    from corpora import topic_corpus

    from linkbert.pipeline.edges import tfidf

    modules = [tfidf]
    with contextlib.suppress(ImportError):
        from linkbert.pipeline.edges import tfidf_weights

        modules.append(tfidf_weights)
    documents = topic_corpus(num_docs, seed)
    options = {"docs_per_shard": docs_per_shard, "max_postings": max_postings}
    if max_shards:
        options["max_shards"] = max_shards
    with call_peaks(modules) as peaks:
        pipeline = beam.Pipeline()
        _ = pipeline | beam.Create(documents) | tfidf.TfidfEdges(k=5, **options) | beam.Map(lambda edge: None)
        pipeline.run().wait_until_finish()
    return {name: {"calls": calls, "peak_mb": peak / 2**20} for name, (calls, peak) in peaks.items() if calls}


def _tfidf_in_child(num_docs: int, args, python_path: str | None, max_shards: int | None) -> dict:
    env = dict(os.environ)
    if python_path:
        env["PYTHONPATH"] = python_path
    command = [sys.executable, __file__, "tfidf", "--measure", str(num_docs), "--docs-per-shard", str(args.docs_per_shard),
               "--max-postings", str(args.max_postings)]
    if max_shards:
        command += ["--max-shards", str(max_shards)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, cwd=tempfile.gettempdir())
    if done.returncode:
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def tfidf_memory(args) -> None:
    if args.measure:
        print(json.dumps(tfidf_calls(args.measure, args.docs_per_shard, args.max_shards, args.max_postings)))
        return
    runs = {"now": (None, args.max_shards)}
    if args.baseline:
        sys.path.insert(0, str(REPO / "bench"))
        from shuffle import baseline_tree

        tree = tempfile.mkdtemp(prefix="bench-memory-baseline-")
        runs[args.baseline] = (baseline_tree(args.baseline, tree), args.baseline_max_shards)
    summary = []
    for name, (python_path, max_shards) in runs.items():
        largest = []
        for num_docs in args.docs:
            stages = _tfidf_in_child(num_docs, args, python_path, max_shards)
            for stage, entry in sorted(stages.items()):
                print(f"{name} docs={num_docs} max_shards={max_shards}: {stage:<22} {entry['calls']:>5} calls, "
                      f"largest {entry['peak_mb']:8.1f} MB", flush=True)
            largest.append(max(entry["peak_mb"] for entry in stages.values()))
        prefix = "" if name == "now" else "baseline_"
        summary.append(f"{prefix}largest_call_mb={','.join(f'{mb:.1f}' for mb in largest)} "
                       f"{prefix}ratio={largest[-1] / largest[0]:.2f}")
    print(f"tfidf_memory: docs={','.join(map(str, args.docs))} " + " ".join(summary))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="what", required=True)
    w = sub.add_parser("writer")
    w.add_argument("--rows", type=int, default=20000)
    w.add_argument("--writer-module", default=None)
    t = sub.add_parser("tokenizer-sample")
    t.add_argument("--docs", type=int, default=6000)
    t.add_argument("--sample-docs", type=int, default=5000)
    t.add_argument("--max-chars", type=int, default=20000)
    t.add_argument("--which", choices=("old", "new"), default="new")
    t = sub.add_parser("tfidf")
    t.add_argument("--docs", type=int, nargs="+", default=[1000, 4000])
    t.add_argument("--docs-per-shard", type=int, default=100)
    t.add_argument("--max-shards", type=int, default=None)
    t.add_argument("--max-postings", type=int, default=50)
    t.add_argument("--baseline", help="git revision to measure the same way (e.g. db34541^, before issue 13)")
    t.add_argument("--baseline-max-shards", type=int, default=None)
    t.add_argument("--measure", type=int, help=argparse.SUPPRESS)  # child mode: one size
    args = parser.parse_args()
    {"writer": writer, "tokenizer-sample": tokenizer_sample, "tfidf": tfidf_memory}[args.what](args)


if __name__ == "__main__":
    main()
