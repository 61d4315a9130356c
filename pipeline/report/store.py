"""Reading a pipeline output directory with ``pyarrow.dataset`` (local or any URI ``pyarrow.fs`` understands),
one or two columns at a time: counts are streamed aggregations, never one Python object per row."""

from __future__ import annotations

import json
import os
from collections import Counter

import numpy as np
import pyarrow as pa
import pyarrow.acero as acero
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pyarrow.parquet as pq


class ReportError(RuntimeError):
    """The directory cannot be reported on (no manifest, unreadable manifest)."""


class Store:
    """The pipeline output directory, through one ``pyarrow.fs`` filesystem (local, gs://, s3://)."""

    def __init__(self, directory: str):
        if "://" in directory:
            self.fs, self.root = pafs.FileSystem.from_uri(directory)
        else:
            self.fs, self.root = pafs.LocalFileSystem(), os.path.abspath(directory)
        self.display_root = directory
        self.root = self.root.rstrip("/")
        self.unreadable: set[str] = set()  # Parquet files whose footer failed; left out of every read
        self.file_rows: dict[str, int] = {}  # rows per Parquet file, from its footer
        self.rows_read: Counter = Counter()  # table -> rows read from its files (what the report costs)

    def path(self, *parts: str) -> str:
        return "/".join([self.root, *parts])

    def exists(self, *parts: str) -> bool:
        return self.fs.get_file_info(self.path(*parts)).type != pafs.FileType.NotFound

    def read_bytes(self, *parts: str) -> bytes:
        with self.fs.open_input_stream(self.path(*parts)) as handle:
            return handle.read()

    def write_bytes(self, data: bytes, *parts: str) -> str:
        path = self.path(*parts)
        self.fs.create_dir(path.rsplit("/", 1)[0], recursive=True)
        with self.fs.open_output_stream(path) as handle:
            handle.write(data)
        return path

    def list_files(self, folder: str, suffix: str) -> list[str]:
        """Files ``folder/*suffix`` sorted by name, leaving out hidden and temporary files."""
        if not self.exists(folder):
            return []
        infos = self.fs.get_file_info(pafs.FileSelector(self.path(folder), recursive=False))
        return sorted(
            info.path for info in infos
            if info.type == pafs.FileType.File and info.base_name.endswith(suffix)
            and not info.base_name.startswith((".", "_"))
        )

    def table_files(self, table: str, prefix: str | None = None) -> list[str]:
        files = [path for path in self.list_files(table, ".parquet") if path not in self.unreadable]
        if prefix is not None:
            files = [path for path in files if path.rsplit("/", 1)[-1].startswith(prefix + "-")]
        return files

    def dataset(self, files: list[str]) -> ds.Dataset | None:
        return ds.dataset(files, filesystem=self.fs, format="parquet") if files else None

    def head_rows(self, files: list[str], columns: list[str], max_rows: int) -> pa.Table | None:
        """Up to ``max_rows`` rows of ``columns``, an equal share from the head of each file (the pipeline
        orders every shard by a seeded hash, so a head is a random sample of it); None without files."""
        if not files:
            return None
        share = max(1, -(-max_rows // len(files)))
        tables = []
        for path in files:
            with self.fs.open_input_file(path) as handle:
                taken = 0
                for batch in pq.ParquetFile(handle).iter_batches(batch_size=min(share, 65536), columns=columns):
                    batch = batch.slice(0, share - taken)
                    tables.append(pa.Table.from_batches([batch]))
                    taken += batch.num_rows
                    if taken >= share:
                        break
            self.rows_read[_table_of(path)] += taken
        return pa.concat_tables(tables) if tables else None


def _table_of(path: str) -> str:
    return path.rsplit("/", 2)[-2]


def split_of(path: str) -> str:
    return path.rsplit("/", 1)[-1].split("-", 1)[0]


def group_count(dataset: ds.Dataset, key: str, name: str, filter_expression=None) -> pa.Table:
    """``SELECT key, count(*) AS name GROUP BY key`` streamed over ``dataset`` (memory: one row per key)."""
    scan_options = acero.ScanNodeOptions(dataset, columns=[key], filter=filter_expression)
    steps = [acero.Declaration("scan", scan_options)]
    if filter_expression is not None:
        steps.append(acero.Declaration("filter", acero.FilterNodeOptions(filter_expression)))
    steps += [
        acero.Declaration("project", acero.ProjectNodeOptions([pc.field(key)], [key])),
        acero.Declaration("aggregate", acero.AggregateNodeOptions(
            [(key, "hash_count", pc.CountOptions(mode="all"), name)], keys=[key])),
    ]
    return acero.Declaration.from_sequence(steps).to_table(use_threads=True)


def streamed_bincount(dataset: ds.Dataset | None, column: str, store: Store | None = None, table: str = "") -> np.ndarray:
    counts = np.zeros(0, dtype=np.int64)
    if dataset is None:
        return counts
    for batch in dataset.to_batches(columns=[column], batch_size=65536):
        if store is not None:
            store.rows_read[table] += batch.num_rows
        values = batch.column(0).to_numpy(zero_copy_only=False)
        if values.size == 0:
            continue
        batch_counts = np.bincount(np.clip(values, 0, None).astype(np.int64))
        if batch_counts.size > counts.size:
            counts = np.pad(counts, (0, batch_counts.size - counts.size))
        counts[: batch_counts.size] += batch_counts
    return counts


def load_manifest(store: Store) -> dict:
    where = store.path("manifest.json")
    if not store.exists("manifest.json"):
        raise ReportError(f"{where}: no manifest; is {store.display_root} the --output of 'linkbert pipeline'?")
    try:
        manifest = json.loads(store.read_bytes("manifest.json").decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ReportError(f"{where}: not valid JSON: {exc}") from exc
    if not isinstance(manifest, dict):
        raise ReportError(f"{where}: expected a JSON object, found {type(manifest).__name__}")
    return manifest
