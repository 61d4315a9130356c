"""Memory bounds that do not grow with the corpus: the shard writer and TF-IDF, measured in a fresh process."""

from __future__ import annotations

import hashlib
import random
import re
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq

from linkbert.pipeline.shards.writer import _WriteShard, instance_stats

REPO = Path(__file__).resolve().parents[1]


def _bench(*args: str) -> dict:
    result = subprocess.run([sys.executable, str(REPO / "bench" / "memory.py"), *args], capture_output=True, text=True,
                            check=True, timeout=600)
    line = result.stdout.strip().splitlines()[-1]
    return {key: float(value) for key, value in re.findall(r"(\w+)=([\d.]+)", line)}


def test_shard_writer_holds_arrow_columns_not_python_rows():
    # 12,000 rows of 512 tokens: the previous writer (rows sorted as Python objects, the file built in a
    # BytesIO) held ~24 KB a row here (~290 MB more); the bound allows 4 KB a row over a fixed 120 MB.
    rows = 12000
    measured = _bench("writer", "--rows", str(rows))
    assert measured["held_mb"] < 120 + rows * 4 / 1024, measured


def _rows(n):
    return [(key, {"src": f"s{key}", "dst": f"d{key}", "link_type": "hyperlink", "score": None})
            for key in random.Random(0).sample(range(10**12), n)]


def test_shard_writer_is_order_independent_and_key_sorted(tmp_path):
    rows = _rows(2345)
    digests = []
    for attempt, order in enumerate((rows, rows[::-1], sorted(rows, key=lambda kv: kv[1]["src"]))):
        directory = tmp_path / str(attempt)
        directory.mkdir()
        writer = _WriteShard(str(directory), "edges", "part", 500, None)
        writer.setup()
        [stats] = writer.process((3, iter(order)), 7)
        assert stats == {"table": "edges", "split": "part", "file": "part-00003-of-00007.parquet", "rows": 2345}
        path = directory / stats["file"]
        digests.append(hashlib.sha256(path.read_bytes()).hexdigest())
    parquet = pq.ParquetFile(path)
    assert [parquet.metadata.row_group(i).num_rows for i in range(parquet.num_row_groups)] == [500] * 4 + [345]
    assert parquet.read().column("src").to_pylist() == [f"s{key}" for key, _ in sorted(rows)]
    assert len(set(digests)) == 1


def test_instance_stats_summed_over_row_groups(tmp_path):
    rows = [(i, {"input_ids": [1, 2, 3], "b_start": 1, "relation": i % 3, "link_type": "tfidf" if i % 3 == 2 else None,
                 "doc_a": "a", "seg_a": i, "doc_b": "b", "seg_b": 0, "round": 0, "num_tokens": 3}) for i in range(25)]
    writer = _WriteShard(str(tmp_path), "instances", "train", 4, instance_stats)
    writer.setup()
    [stats] = writer.process((0, rows), 1)
    assert stats["relations"] == {"0": 9, "1": 8, "2": 8} and stats["link_types"] == {"tfidf": 8} and stats["tokens"] == 75


def _largest_calls(num_docs: int, **options) -> tuple[dict[str, int], dict[str, float]]:
    """(records of the largest call, its peak of traced MB) per stage of TfidfEdges on the topic corpus."""
    import apache_beam as beam
    from apache_beam.metrics.metric import MetricsFilter
    sys.path.insert(0, str(REPO / "bench"))
    from corpora import topic_corpus  # topics and vocabulary grow with the corpus, as in real collections
    from memory import call_peaks

    from linkbert.pipeline.edges import tfidf, tfidf_weights

    with call_peaks([tfidf, tfidf_weights]) as peaks:
        pipeline = beam.Pipeline()
        # max_postings=50: posting lists reach their cap at this size, as they do at the default (1,000) on
        # large corpora; below it a call's pairs grow with the lists.
        _ = pipeline | beam.Create(topic_corpus(num_docs, seed=7)) | tfidf.TfidfEdges(
            k=3, docs_per_shard=100, max_postings=50, **options)
        result = pipeline.run()
        result.wait_until_finish()
    largest = {}
    for metric in result.metrics().query(MetricsFilter().with_namespace("linkbert"))["distributions"]:
        name = metric.key.metric.name
        if name.startswith("tfidf.call_records."):
            value = metric.committed or metric.attempted
            largest[name.rsplit(".", 1)[1]] = max(largest.get(name.rsplit(".", 1)[1], 0), value.max)
    return largest, {name: peak / 2**20 for name, (calls, peak) in peaks.items() if calls}


def test_tfidf_calls_do_not_grow_with_the_corpus():
    # 4x the documents: with the shard count uncapped the largest call of each stage holds about as many
    # records, and as many bytes, as before; capped (as max_shards=1000 is past 500k documents) they grow ~4x.
    (small, small_mb), (large, large_mb) = _largest_calls(300), _largest_calls(1200)
    (capped_small, capped_small_mb), (capped_large, capped_large_mb) = (
        _largest_calls(300, max_shards=1), _largest_calls(1200, max_shards=1))
    print("largest call, records:", {"uncapped": (small, large), "capped": (capped_small, capped_large)})
    print("largest call, MB:", {"uncapped": (small_mb, large_mb), "capped": (capped_small_mb, capped_large_mb)})
    for stage in ("answer_frequencies", "build_vectors", "score_posting_lists"):
        assert large[stage] < 1.6 * small[stage], (stage, small, large)
    assert capped_large["build_vectors"] > 3 * capped_small["build_vectors"]
    assert capped_large["build_vectors"] > 2.5 * large["build_vectors"]
    # Memory: the largest call of any stage (tracemalloc peak, outputs held) stays under a bound set from
    # the small corpus; capped, the same stages exceed it.
    bound = 1.5 * max(small_mb.values())
    assert max(large_mb.values()) < bound, (small_mb, large_mb)
    assert max(capped_large_mb.values()) > 2 * bound, (capped_small_mb, capped_large_mb)
