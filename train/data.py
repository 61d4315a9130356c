"""Streaming reader of instance shards: row groups to (rank, worker) streams, shuffling, masking, padding.

The shard set is cut into *work units* (Parquet row groups, or slices of them when there are fewer row
groups than streams). Each epoch permutes the units with a seed and deals them round-robin to the
``world_size * num_workers`` streams, so the streams cover every row exactly once per epoch with no
overlap. A stream reads its units in windows of at least ``shuffle_buffer`` rows, shuffles each window,
optionally buckets it by length, and cuts it into micro-batches padded to a multiple of 8.

Every random choice is seeded from (seed, epoch, stream, window, batch), so a stream is a pure
function of its position ``(epoch, unit, batch)``: resuming needs only the position of the last batch
the trainer consumed from each stream, never a buffer or an RNG state.
"""

from __future__ import annotations

import glob
import logging
import os
import re
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch

from linkbert import schemas
from linkbert.train.masking import Masker

log = logging.getLogger(__name__)

COLUMNS = ("input_ids", "b_start", "relation")
_SHARD_NAME = re.compile(r"^(?P<split>[a-z]+)-(?P<index>\d{5})-of-(?P<count>\d{5})\.parquet$")
_SHUFFLE, _MASK = 1, 2  # domain tags that keep the shuffle and masking random streams apart


class ShardError(ValueError):
    """A shard is missing, unreadable, or incompatible with the model."""


@dataclass(frozen=True)
class Shard:
    path: str
    row_group_rows: tuple[int, ...]

    @property
    def num_rows(self) -> int:
        return sum(self.row_group_rows)


@dataclass(frozen=True)
class WorkUnit:
    shard: int
    row_group: int
    start: int  # row slice [start, stop) within the row group
    stop: int
    first_row: int  # global index of the row group's first row over the whole shard set


@dataclass(frozen=True)
class StreamPosition:
    """Where a stream resumes: ``batch`` batches of the window starting at unit ``unit`` of ``epoch`` are done."""

    epoch: int = 0
    unit: int = 0
    batch: int = 0


def shard_paths(data_dir: str, split: str) -> list[str]:
    """The ``split`` shards of ``data_dir/instances``, checked complete against their ``-of-NNNNN`` count."""
    check_manifest(data_dir)
    directory = os.path.join(data_dir, "instances")
    if not os.path.isdir(directory):
        raise ShardError(f"{directory}: no instances directory (expected the pipeline's output layout)")
    paths = sorted(glob.glob(os.path.join(directory, f"{split}-*-of-*.parquet")))
    if not paths:
        raise ShardError(f"{directory}: no {split}-SSSSS-of-NNNNN.parquet shards")
    counts = set()
    for path in paths:
        match = _SHARD_NAME.match(os.path.basename(path))
        if not match:
            raise ShardError(f"{path}: shard name does not follow {split}-SSSSS-of-NNNNN.parquet")
        counts.add(int(match["count"]))
    if len(counts) != 1:
        raise ShardError(f"{directory}: {split} shards disagree on the shard count: {sorted(counts)}")
    count = counts.pop()
    expected = [os.path.join(directory, f"{split}-{i:05d}-of-{count:05d}.parquet") for i in range(count)]
    missing = sorted(set(expected) - set(paths))
    if missing:
        raise ShardError(f"missing shard {missing[0]} ({len(missing)} of {count} {split} shards missing)")
    return expected


def _check_column_types(schema: pa.Schema, path: str) -> None:
    """Integer columns must be integers: a float relation (2.9) would be read as 2, a string b_start fails late."""
    expected = {"input_ids": "a list of integers", "b_start": "an integer", "relation": "an integer"}
    for name, wanted in expected.items():
        kind = schema.field(name).type
        ok = pa.types.is_integer(kind.value_type) if name == "input_ids" and pa.types.is_list(kind) else (
            name != "input_ids" and pa.types.is_integer(kind))
        if not ok:
            raise ShardError(f"{path}: column {name} is {kind}, not {wanted}")


def check_manifest(data_dir: str) -> None:
    """Refuse a ``manifest.json`` whose instances schema has a major version this reader does not know."""
    import json

    path = os.path.join(data_dir, "manifest.json")
    if not os.path.isfile(path):
        return
    try:
        with open(path, encoding="utf-8") as handle:
            manifest = json.load(handle)
    except ValueError as exc:
        raise ShardError(f"{path}: not valid JSON ({exc})") from exc
    found = str((manifest.get("schema_version") or {}).get("instances", ""))
    known = schemas.version("instances")
    if found and found.split(".")[0] != known.split(".")[0]:
        raise ShardError(f"{path}: instances schema version {found} has a major version this reader does not "
                         f"know (reader knows {known})")


def open_shards(paths: list[str], tokenizer_fingerprint: str) -> list[Shard]:
    """Read each shard's footer; refuse a corrupt file, an unknown schema major or another tokenizer."""
    shards = []
    for path in paths:
        try:
            parquet = pq.ParquetFile(path)
        except FileNotFoundError:
            raise ShardError(f"{path}: shard not found") from None
        except (pa.ArrowException, OSError) as exc:
            raise ShardError(f"{path}: not a readable Parquet file ({exc})") from exc
        metadata = parquet.schema_arrow.metadata
        try:
            schemas.check_compatible(metadata, "instances", path)
        except schemas.SchemaError as exc:
            raise ShardError(str(exc)) from exc
        found = (metadata or {}).get(schemas.META_TOKENIZER_FINGERPRINT, b"").decode()
        if found != tokenizer_fingerprint:
            raise ShardError(
                f"{path}: tokenized with vocabulary {found or '(none recorded)'}, but the model's tokenizer is "
                f"{tokenizer_fingerprint}; rebuild the shards with this tokenizer or train with the one they used"
            )
        missing = [c for c in COLUMNS if c not in parquet.schema_arrow.names]
        if missing:
            raise ShardError(f"{path}: missing column(s) {missing}")
        _check_column_types(parquet.schema_arrow, path)
        rows = tuple(parquet.metadata.row_group(i).num_rows for i in range(parquet.metadata.num_row_groups))
        shards.append(Shard(path, rows))
    if shards and not any(sum(shard.row_group_rows) for shard in shards):
        raise ShardError(f"{os.path.dirname(shards[0].path)}: the {len(shards)} shard(s) hold no rows: the pipeline "
                         "wrote no instances (an empty corpus?); see its manifest.json")
    return shards


def work_units(shards: list[Shard], min_units: int = 1) -> list[WorkUnit]:
    """All row groups in shard order; each split into equal slices when fewer than ``min_units`` exist."""
    groups = []
    first_row = 0
    for shard_index, shard in enumerate(shards):
        for group_index, rows in enumerate(shard.row_group_rows):
            if rows:
                groups.append((shard_index, group_index, rows, first_row))
            first_row += rows
    if not groups:
        raise ShardError(f"the shard set ({len(shards)} files) holds no rows")
    pieces = max(1, -(-min_units // len(groups)))
    units = []
    for shard_index, group_index, rows, first in groups:
        bounds = np.linspace(0, rows, min(pieces, rows) + 1).astype(int)
        units += [WorkUnit(shard_index, group_index, int(a), int(b), first) for a, b in zip(bounds[:-1], bounds[1:])]
    if len(units) < min_units:
        raise ShardError(f"the shard set has {sum(g[2] for g in groups)} rows, fewer than the {min_units} loader streams")
    return units


def epoch_units(units: list[WorkUnit], epoch: int, seed: int, stream: int, num_streams: int, shuffle: bool = True) -> list[WorkUnit]:
    """The units ``stream`` reads in ``epoch``: a seeded permutation dealt round-robin over the streams."""
    order = np.random.default_rng([seed, epoch]).permutation(len(units)) if shuffle else np.arange(len(units))
    return [units[i] for i in order[stream::num_streams]]


@dataclass
class Batch:
    """A padded, masked micro-batch, and the position its stream reaches once the batch is consumed."""

    input_ids: torch.Tensor  # [B, T] int64, masked
    token_type_ids: torch.Tensor  # [B, T]
    attention_mask: torch.Tensor  # [B, T]
    mlm_positions: torch.Tensor  # [M] flat indices into the [B*T] positions
    mlm_labels: torch.Tensor  # [M] original token ids
    relation: torch.Tensor  # [B] int64
    row_ids: torch.Tensor  # [B] global row index over the shard set
    num_tokens: int  # tokens before padding
    stream: int = 0
    position: StreamPosition = field(default_factory=StreamPosition)

    TENSORS = ("input_ids", "token_type_ids", "attention_mask", "mlm_positions", "mlm_labels", "relation", "row_ids")

    def to(self, device, non_blocking: bool = False) -> "Batch":
        moved = {name: getattr(self, name).to(device, non_blocking=non_blocking) for name in self.TENSORS}
        return Batch(**moved, num_tokens=self.num_tokens, stream=self.stream, position=self.position)

    def pin_memory(self) -> "Batch":
        pinned = {name: getattr(self, name).pin_memory() for name in self.TENSORS}
        return Batch(**pinned, num_tokens=self.num_tokens, stream=self.stream, position=self.position)

    @property
    def size(self) -> int:
        return int(self.input_ids.shape[0])


@dataclass(frozen=True)
class StreamConfig:
    micro_batch_size: int
    seed: int = 0
    shuffle: bool = True
    shuffle_buffer: int = 10_000  # rows per shuffled window
    bucket_batches: int = 16  # batches per length-bucketing pool; 0 disables bucketing
    max_seq_len: int = 512  # longer pairs are truncated to it (the longer of A and B first)
    pad_multiple: int = 8

    def __post_init__(self):
        if self.max_seq_len < 8:
            raise ValueError(f"max_seq_len must be at least 8, got {self.max_seq_len}")


def truncate_pair(ids: np.ndarray, b_start: int, max_len: int) -> tuple[np.ndarray, int]:
    """Cut ``[CLS] A [SEP] B [SEP]`` to ``max_len`` tokens, taking from the end of the longer side first."""
    a, b = b_start - 2, ids.size - b_start - 1
    excess = a + b + 3 - max_len
    if excess <= 0:
        return ids, b_start
    from_longer = min(excess, abs(a - b))
    a, b = (a - from_longer, b) if a > b else (a, b - from_longer)
    rest = excess - from_longer
    a, b = a - (rest + 1) // 2, b - rest // 2
    truncated = np.concatenate([ids[:1 + a], ids[b_start - 1:b_start], ids[b_start:b_start + b], ids[-1:]])
    return truncated, a + 2


class InstanceStream:
    """One (rank, worker) stream over the shard set; ``batches(position)`` resumes exactly at ``position``."""

    def __init__(self, shards: list[Shard], units: list[WorkUnit], masker: Masker, config: StreamConfig,
                 stream: int, num_streams: int, vocab_size: int, pad_id: int):
        self.shards, self.units, self.masker, self.config = shards, units, masker, config
        self.stream, self.num_streams = stream, num_streams
        self.vocab_size, self.pad_id = vocab_size, pad_id
        self.skipped_rows = 0
        self._files: OrderedDict[int, pq.ParquetFile] = OrderedDict()  # the most recently read shards, open

    def batches(self, position: StreamPosition = StreamPosition(), loop: bool = True) -> Iterator[Batch]:
        """Batches from ``position`` on: forever when ``loop``, else to the end of that epoch."""
        epoch = position.epoch
        while True:
            yield from self.epoch_batches(epoch, position if position.epoch == epoch else StreamPosition(epoch))
            if not loop:
                return
            epoch += 1

    def epoch_batches(self, epoch: int, position: StreamPosition | None = None) -> Iterator[Batch]:
        position = position or StreamPosition(epoch)
        units = epoch_units(self.units, epoch, self.config.seed, self.stream, self.num_streams, self.config.shuffle)
        start = position.unit
        skip = position.batch
        while start < len(units):
            stop = self._window_end(units, start)
            batches = self._window_batches(units[start:stop], epoch, start)
            for index in range(skip, len(batches)):
                rows, rng_key = batches[index]
                if index + 1 < len(batches):
                    after = StreamPosition(epoch, start, index + 1)
                elif stop < len(units):
                    after = StreamPosition(epoch, stop, 0)
                else:
                    after = StreamPosition(epoch + 1, 0, 0)
                yield self._collate(rows, np.random.default_rng(rng_key), after)
            start, skip = stop, 0

    def _window_end(self, units: list[WorkUnit], start: int) -> int:
        rows, stop = 0, start
        while stop < len(units) and (rows < self.config.shuffle_buffer or stop == start):
            rows += units[stop].stop - units[stop].start
            stop += 1
        return stop

    def _window_batches(self, units: list[WorkUnit], epoch: int, window: int) -> list[tuple[list, list[int]]]:
        rows = [row for unit in units for row in self._read(unit)]
        key = [self.config.seed, epoch, self.stream, window]
        rng = np.random.default_rng([_SHUFFLE, *key])
        if self.config.shuffle:
            rows = [rows[i] for i in rng.permutation(len(rows))]
        size = self.config.micro_batch_size
        if self.config.bucket_batches > 0:
            pool = size * self.config.bucket_batches
            batches = []
            for begin in range(0, len(rows), pool):
                chunk = sorted(rows[begin:begin + pool], key=lambda row: row[0].size)
                batches += [chunk[i:i + size] for i in range(0, len(chunk), size)]
            if self.config.shuffle:
                batches = [batches[i] for i in rng.permutation(len(batches))]
        else:
            batches = [rows[i:i + size] for i in range(0, len(rows), size)]
        return [(batch, [_MASK, *key, index]) for index, batch in enumerate(batches)]

    def _read(self, unit: WorkUnit) -> list[tuple[np.ndarray, int, int, int]]:
        """Rows (input_ids, b_start, relation, row_id) of ``unit``; invalid rows are logged and skipped."""
        path = self.shards[unit.shard].path
        try:
            parquet = self._open(unit.shard)
            table = parquet.read_row_group(unit.row_group, columns=list(COLUMNS))
            ids_column = table.column("input_ids").combine_chunks()
            offsets = ids_column.offsets.to_numpy()
            values = ids_column.values.to_numpy(zero_copy_only=False).astype(np.int64)
            b_start = table.column("b_start").to_numpy()
            relation = table.column("relation").to_numpy()
        except (pa.ArrowException, OSError, ValueError) as exc:
            raise ShardError(f"{path}: row group {unit.row_group} is unreadable ({exc})") from exc
        rows, bad = [], []
        for i in range(unit.start, unit.stop):
            ids, start = values[offsets[i]:offsets[i + 1]], int(b_start[i])
            reason = self._invalid(ids, start, int(relation[i]))
            if reason:
                bad.append((i, reason))
                continue
            if ids.size > self.config.max_seq_len:
                ids, start = truncate_pair(ids, start, self.config.max_seq_len)
            rows.append((ids, start, int(relation[i]), unit.first_row + i))
        if bad:
            self.skipped_rows += len(bad)
            row, reason = bad[0]
            log.warning("%s: row group %d: skipped %d invalid row(s); first: row %d: %s",
                        path, unit.row_group, len(bad), row, reason)
        return rows

    # A stream may cross thousands of shards; keeping each open would run out of file descriptors.
    MAX_OPEN_FILES = 8

    def _open(self, shard: int) -> pq.ParquetFile:
        """The shard's file, kept open among the ``MAX_OPEN_FILES`` most recently used; the oldest is closed."""
        parquet = self._files.pop(shard, None)
        if parquet is None:
            parquet = pq.ParquetFile(self.shards[shard].path)
        self._files[shard] = parquet
        while len(self._files) > self.MAX_OPEN_FILES:
            self._files.popitem(last=False)[1].close()
        return parquet

    def _invalid(self, ids: np.ndarray, b_start: int, relation: int) -> str | None:
        if not 1 < b_start < ids.size - 1:
            return f"b_start {b_start} leaves no room for A and B in {ids.size} tokens"
        if relation not in (0, 1, 2):
            return f"relation {relation} is not 0, 1 or 2"
        if ids.min() < 0 or ids.max() >= self.vocab_size:
            return f"token id outside the vocabulary [0, {self.vocab_size})"
        return None

    def _collate(self, rows: list, rng: np.random.Generator, after: StreamPosition) -> Batch:
        multiple = self.config.pad_multiple
        longest = max(row[0].size for row in rows)
        width = min(-(-longest // multiple) * multiple, max(self.config.max_seq_len, longest))
        count = len(rows)
        input_ids = np.full((count, width), self.pad_id, dtype=np.int64)
        token_type_ids = np.zeros((count, width), dtype=np.int64)
        attention_mask = np.zeros((count, width), dtype=np.int64)
        positions, labels = [], []
        for i, (ids, b_start, _, _) in enumerate(rows):
            masked, chosen, original = self.masker.apply(ids, rng)
            input_ids[i, :ids.size] = masked
            token_type_ids[i, b_start:ids.size] = 1
            attention_mask[i, :ids.size] = 1
            positions.append(chosen + i * width)
            labels.append(original)
        return Batch(
            input_ids=torch.from_numpy(input_ids),
            token_type_ids=torch.from_numpy(token_type_ids),
            attention_mask=torch.from_numpy(attention_mask),
            mlm_positions=torch.from_numpy(np.concatenate(positions).astype(np.int64)),
            mlm_labels=torch.from_numpy(np.concatenate(labels).astype(np.int64)),
            relation=torch.tensor([row[2] for row in rows], dtype=torch.int64),
            row_ids=torch.tensor([row[3] for row in rows], dtype=torch.int64),
            num_tokens=int(sum(row[0].size for row in rows)),
            stream=self.stream,
            position=after,
        )


class InstanceDataset(torch.utils.data.IterableDataset):
    """The rank's streams as a DataLoader dataset: worker ``w`` serves stream ``rank * W + (w + rotation) % W``.

    ``rotation`` makes a resumed DataLoader (which always starts at worker 0) continue with the stream
    that was next when the checkpoint was taken.
    """

    def __init__(self, shards: list[Shard], masker: Masker, config: StreamConfig, vocab_size: int, pad_id: int,
                 rank: int = 0, world_size: int = 1, num_workers: int = 0,
                 positions: dict[int, StreamPosition] | None = None, rotation: int = 0):
        self.shards, self.masker, self.config = shards, masker, config
        self.vocab_size, self.pad_id = vocab_size, pad_id
        self.rank, self.world_size = rank, world_size
        self.streams_per_rank = max(1, num_workers)
        self.num_streams = world_size * self.streams_per_rank
        self.units = work_units(shards, self.num_streams)
        self.positions = positions or {}
        self.rotation = rotation

    def stream(self, local_index: int) -> InstanceStream:
        stream = self.rank * self.streams_per_rank + local_index
        return InstanceStream(self.shards, self.units, self.masker, self.config, stream, self.num_streams,
                              self.vocab_size, self.pad_id)

    def __iter__(self) -> Iterator[Batch]:
        info = torch.utils.data.get_worker_info()
        worker = info.id if info is not None else 0
        local_index = (worker + self.rotation) % self.streams_per_rank
        stream = self.stream(local_index)
        return stream.batches(self.positions.get(stream.stream, StreamPosition()))


class LoaderState:
    """What the trainer consumed: per stream, the position after its last consumed batch."""

    def __init__(self, streams_per_rank: int, positions: dict[int, StreamPosition] | None = None, rotation: int = 0):
        self.streams_per_rank = streams_per_rank
        self.positions = dict(positions or {})
        self.rotation = rotation
        self.consumed = 0

    def advance(self, batch: Batch) -> None:
        self.positions[batch.stream] = batch.position
        self.consumed += 1

    @property
    def next_rotation(self) -> int:
        return (self.rotation + self.consumed) % self.streams_per_rank

    def state_dict(self) -> dict:
        return {
            "streams_per_rank": self.streams_per_rank,
            "rotation": self.next_rotation,
            "positions": {stream: (p.epoch, p.unit, p.batch) for stream, p in self.positions.items()},
        }

    @classmethod
    def from_state_dict(cls, state: dict) -> "LoaderState":
        positions = {int(stream): StreamPosition(*p) for stream, p in state["positions"].items()}
        return cls(state["streams_per_rank"], positions, state["rotation"])


def build_loader(dataset: InstanceDataset, num_workers: int, pin_memory: bool = False, prefetch_factor: int = 4):
    kwargs = {"prefetch_factor": prefetch_factor, "persistent_workers": False} if num_workers > 0 else {}
    # A private generator: creating the iterator must not draw from the global RNG (exact resume).
    return torch.utils.data.DataLoader(dataset, batch_size=None, num_workers=num_workers, pin_memory=pin_memory,
                                       generator=torch.Generator().manual_seed(0), **kwargs)
