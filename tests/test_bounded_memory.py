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
