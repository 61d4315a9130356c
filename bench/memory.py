"""Peak memory of one shard writer call and one TF-IDF run, in a fresh process each (ru_maxrss).

``writer``: ``_WriteShard.write`` on ``--rows`` 512-token instance rows that stream in from a
generator (as a runner's grouped values do), so the figure is what the writer itself holds.
``--writer-module`` loads another version of ``pipeline/shards/writer.py`` (e.g. the previous
commit's, ``git show HEAD~1:pipeline/shards/writer.py > /tmp/old_writer.py``) to compare.

    .venv/bin/python bench/memory.py writer --rows 20000 [--writer-module /tmp/old_writer.py]

Prints ``writer: rows=<n> peak_rss_mb=<peak> baseline_mb=<before the call> held_mb=<peak - baseline>``.

``tokenizer-sample``: what one ``Top.Smallest(sample_docs)`` accumulator of the tokenizer sample holds
after ``--docs`` documents of ``--max-chars`` characters, with the elements the stage feeds it before
(``(hash, text[:max_chars])``) and now (``(hash, doc_id, length)``), in a fresh process each
(``--which old|new``; a runner keeps one per bundle in flight and shuffles it pickled):

    .venv/bin/python bench/memory.py tokenizer-sample --docs 6000 --sample-docs 5000 --max-chars 20000 --which old

Prints ``tokenizer-sample: which=<old|new> docs=<n> sample_docs=<n> max_chars=<n> accumulator_mb=<pickled>
peak_rss_mb=<peak> held_mb=<peak - baseline>``.
"""

from __future__ import annotations

import argparse
import importlib.util
import resource
import sys
import tempfile
import time
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
    args = parser.parse_args()
    {"writer": writer, "tokenizer-sample": tokenizer_sample}[args.what](args)


if __name__ == "__main__":
    main()
