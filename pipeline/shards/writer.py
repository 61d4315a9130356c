"""Globally shuffled Parquet shards balanced to ±1 row, validated against the table's schema.

Rows are ordered by a stable hash of their key (a seeded random permutation). Shards are balanced the
way NVIDIA LDDL does it: rows first go to a provisional shard by hash; each over-full shard keeps its
target number of rows and sends the rest to the under-full shards, ranked through prefix sums over
the per-shard counts (a side input of one number per shard). No stage holds more than one shard.
Files are written under a temporary name and renamed, so a retried bundle never leaves half a file.
"""

from __future__ import annotations

import bisect
import itertools
import math
import uuid
from collections import Counter

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems

from linkbert import schemas
from linkbert.pipeline.records import counter
from linkbert.pipeline.stablehash import stable_hash


def shard_targets(total: int, num_shards: int) -> list[int]:
    """Rows per shard: as equal as possible (sizes differ by at most one)."""
    base, extra = divmod(total, num_shards)
    return [base + (1 if shard < extra else 0) for shard in range(num_shards)]


def _key_ranks(keys: list[int]) -> np.ndarray:
    """Position of each key in ascending key order (equal keys keep their input order)."""
    order = np.argsort(np.array(keys, dtype=np.uint64), kind="stable")
    ranks = np.empty(len(keys), dtype=np.int64)
    ranks[order] = np.arange(len(keys))
    return ranks


def _add_stats(total: dict, part: dict) -> dict:
    """Sum two stats dicts of counts (numbers, or dicts of numbers, nested)."""
    for key, value in part.items():
        if isinstance(value, dict):
            total[key] = _add_stats(dict(total.get(key, {})), value)
        else:
            total[key] = total.get(key, 0) + value
    return total


class _Rebalance(beam.DoFn):
    """Provisional shard -> (final shard, row): keep up to the target, route the surplus to deficits.

    Two passes over the grouped rows (a re-iterable on every runner): the keys alone are ranked
    first (8 bytes a row), then each row is routed as it streams past; no row is held.
    """

    def process(self, element, counts, num_shards):
        shard, keyed_rows = element
        total = sum(counts.values())
        targets = shard_targets(total, num_shards)
        surplus_before = 0
        deficit_ends = []
        running_deficit = 0
        for index in range(num_shards):
            have = counts.get(index, 0)
            if index < shard:
                surplus_before += max(0, have - targets[index])
            running_deficit += max(0, targets[index] - have)
            deficit_ends.append(running_deficit)
        ranks = _key_ranks([key for key, _ in keyed_rows]).tolist()
        keep = targets[shard]
        for position, keyed in zip(ranks, keyed_rows):
            if position < keep:
                yield shard, keyed
            else:
                overflow_rank = surplus_before + position - keep
                yield bisect.bisect_right(deficit_ends, overflow_rank), keyed


class _WriteShard(beam.DoFn):
    """(shard, keyed rows) -> one Parquet file, rows in key order, streamed row group by row group.

    Rows are converted to Arrow ``row_group_size`` at a time as they stream in (about 2 KB for a
    512-token instance instead of ~21 KB as Python objects); the file is written through
    ``pyarrow.parquet.ParquetWriter`` straight into ``FileSystems.create``, one row group at a time,
    so no serialised copy of the file is ever held.
    """

    def __init__(self, directory: str, table: str, prefix: str, row_group_size: int, stats_fn):
        self._directory = directory
        self._table = table
        self._prefix = prefix
        self._row_group_size = row_group_size
        self._stats_fn = stats_fn

    def setup(self):
        self._rows_written = counter(f"write.{self._table}.rows")
        self._files_written = counter(f"write.{self._table}.files")

    def process(self, element, num_shards, tokenizer=None):
        shard, keyed_rows = element
        stats = self.write(shard, num_shards, keyed_rows, tokenizer)
        self._rows_written.inc(stats["rows"])
        self._files_written.inc()
        yield stats

    def write(self, shard: int, num_shards: int, keyed_rows, tokenizer: dict | None) -> dict:
        """Write ``(key, row)`` pairs (any iterable, in any order) as one shard file; returns its stats."""
        name = f"{self._prefix}-{shard:05d}-of-{num_shards:05d}.parquet"
        path = FileSystems.join(self._directory, name)
        fingerprint = tokenizer["fingerprint"] if tokenizer else None
        keys, chunks, stats = [], [], {}
        for start, chunk in _chunks(keyed_rows, self._row_group_size):
            rows = [row for _, row in chunk]
            keys.extend(key for key, _ in chunk)
            chunks.append(schemas.to_table(rows, self._table, fingerprint, where=f"{path}, rows {start}-{start + len(rows) - 1}"))
            if self._stats_fn:
                stats = _add_stats(stats, self._stats_fn(rows))
            del rows, chunk
        schema = schemas.arrow_schema(self._table, fingerprint)
        order = np.argsort(np.array(keys, dtype=np.uint64), kind="stable")
        del keys
        temporary = FileSystems.join(self._directory, f".tmp-{name}-{uuid.uuid4().hex}")
        with FileSystems.create(temporary) as handle:
            with pq.ParquetWriter(handle, schema, compression="zstd") as writer:
                if len(order) == 0:
                    writer.write_table(schema.empty_table())
                for first in range(0, len(order), self._row_group_size):
                    group = _gather(chunks, order[first:first + self._row_group_size], self._row_group_size)
                    writer.write_table(group, row_group_size=self._row_group_size)
        if FileSystems.exists(path):
            FileSystems.delete([path])
        FileSystems.rename([temporary], [path])
        result = {"table": self._table, "split": self._prefix, "file": name, "rows": len(order)}
        result.update((self._stats_fn([]) if self._stats_fn else {}) if not stats else stats)
        return result


def _gather(chunks: list[pa.Table], positions: np.ndarray, chunk_size: int) -> pa.Table:
    """The rows at ``positions`` (offsets into the concatenation of ``chunks``, each ``chunk_size``
    rows but the last), in that order; copies only those rows (a take over all chunks at once would
    first concatenate them all)."""
    which = positions // chunk_size
    grouped = np.argsort(which, kind="stable")
    parts = [chunks[chunk].take(positions[grouped][which[grouped] == chunk] % chunk_size)
             for chunk in np.unique(which).tolist()]
    return pa.concat_tables(parts).combine_chunks().take(np.argsort(grouped, kind="stable"))


def _chunks(keyed_rows, size: int):
    """(offset, list of up to ``size`` items) over an iterable, holding one chunk at a time."""
    iterator = iter(keyed_rows)
    start = 0
    while True:
        chunk = list(itertools.islice(iterator, size))
        if not chunk:
            return
        yield start, chunk
        start += len(chunk)


def instance_stats(rows: list[dict]) -> dict:
    relations = Counter(str(row["relation"]) for row in rows)
    link_types = Counter(row["link_type"] for row in rows if row["link_type"] is not None)
    return {
        "relations": dict(sorted(relations.items())),
        "link_types": dict(sorted(link_types.items())),
        "tokens": sum(row["num_tokens"] for row in rows),
    }


class WriteParquetShards(beam.PTransform):
    """rows -> balanced, shuffled ``{directory}/{prefix}-SSSSS-of-NNNNN.parquet``; returns one stats dict per file.

    ``num_shards`` fixes the shard count; otherwise it is ceil(rows / rows_per_shard). An empty input
    writes one empty file, so readers always find the table.
    """

    def __init__(self, directory: str, table: str, prefix: str, key_fn, seed: int, rows_per_shard: int = 50000,
                 num_shards: int | None = None, tokenizer=None, row_group_size: int = 1000, stats_fn=None,
                 write_empty: bool = True):
        super().__init__()
        self._write_empty = write_empty  # False: an empty input writes no file (0-row files break HF datasets)
        self._directory = directory
        self._table = table
        self._prefix = prefix
        self._key_fn = key_fn
        self._seed = seed
        self._rows_per_shard = rows_per_shard
        self._num_shards = num_shards
        self._tokenizer = tokenizer
        self._row_group_size = row_group_size
        self._stats_fn = stats_fn

    def expand(self, rows):
        seed, table, key_fn = self._seed, self._table, self._key_fn
        fixed, per_shard = self._num_shards, self._rows_per_shard
        keyed = rows | "HashKey" >> beam.Map(lambda row: (stable_hash(seed, table, key_fn(row)), row))
        total = keyed | "CountRows" >> beam.combiners.Count.Globally()
        # never more shards than rows: a shard without rows would be missing (or empty) on disk
        num_shards = total | "NumShards" >> beam.Map(lambda n: min(fixed, max(1, n)) if fixed else max(1, math.ceil(n / per_shard)))
        shards_side = beam.pvalue.AsSingleton(num_shards)
        provisional = keyed | "ProvisionalShard" >> beam.Map(lambda kv, n: (kv[0] % n, kv), shards_side)
        counts = (
            provisional
            | "OneEach" >> beam.MapTuple(lambda shard, _: (shard, 1))
            | "CountPerShard" >> beam.CombinePerKey(sum)
        )
        writer = _WriteShard(self._directory, table, self._prefix, self._row_group_size, self._stats_fn)
        extra_side = [beam.pvalue.AsSingleton(self._tokenizer)] if self._tokenizer is not None else []
        written = (
            provisional
            | "GroupProvisional" >> beam.GroupByKey()
            | "Rebalance" >> beam.ParDo(_Rebalance(), beam.pvalue.AsDict(counts), shards_side)
            | "GroupFinal" >> beam.GroupByKey()
            | "WriteShards" >> beam.ParDo(writer, shards_side, *extra_side)
        )
        write_empty = self._write_empty
        empty = total | "WriteEmptyTable" >> beam.FlatMap(
            lambda n, *side: [writer.write(0, 1, [], side[0] if side else None)] if n == 0 and write_empty else [],
            *extra_side,
        )
        return (written, empty) | "AllStats" >> beam.Flatten()
