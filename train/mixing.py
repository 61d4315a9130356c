"""Training on several pipeline outputs at once: ``--data DIR1[:WEIGHT],DIR2[:WEIGHT],...``.

LinkBERT "combine[s] the training instances from Wikipedia and BookCorpus"; BioLinkBERT users add
in-house text to PubMed the same way. Here each output keeps its own streams (``linkbert.train.data``:
seeded epochs, shuffled windows, exact positions) and a *mixed* stream interleaves their rows:

* **Shares.** Without weights, each source's share is its share of the rows (the paper's combine: one
  mix epoch reads every row of every source once). With weights (all sources or none), shares are the
  normalised weights. A source whose share asks for more rows than it has is read again, a new seeded
  epoch of it, once exhausted: its rows repeat (sampling with replacement, epoch by epoch), while a
  source with a smaller share than its rows is not read to the end within one mix epoch (= the summed
  rows of all sources).
* **Stratified.** The next row comes from the source furthest behind its share (the largest
  ``share * rows_so_far - taken``), so every micro-batch holds each share to within one row and the
  realised mix never drifts; which rows come is the sources' own seeded order.
* **Exact resume.** A mixed stream's position is its batch count, the rows taken per source, and per
  source the stream position of the chunk being read plus the rows already taken from it; all of
  it goes into the checkpoint (``MixLoaderState``), so SIGKILL + ``--resume`` logs the same losses.
* **Refusals.** Outputs whose instance schema major versions or tokenizer fingerprints differ are
  refused before anything starts, naming both.

Per-source metrics (``SourceMetrics``): MLM loss/accuracy and DRP loss/accuracy of each source's rows,
and its realised share of the samples, as ``<metric>.<source>`` keys beside the overall ones.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pyarrow.parquet as pq
import torch
import torch.nn.functional as F

from linkbert import schemas
from linkbert.train.data import (
    Batch,
    InstanceDataset,
    InstanceStream,
    LoaderState,
    ShardError,
    StreamPosition,
    epoch_units,
    open_shards,
    shard_paths,
)

_MIX_MASK = 3  # domain tag of the mixed batches' masking streams (data.py uses 1 and 2)
MIX_FILE = "mix.json"


@dataclass(frozen=True)
class MixSource:
    name: str
    path: str
    weight: float | None = None


def _weight(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def parse_data(value: str) -> list[MixSource]:
    """``DIR1[:W1],DIR2[:W2],...`` -> sources named by their folder (made unique); weights all or none."""
    items = [item.strip() for item in value.split(",") if item.strip()]
    if not items:
        raise SystemExit(f"--data {value!r}: no directory given")
    parsed = []
    for item in items:
        head, _, tail = item.rpartition(":")
        weight = _weight(tail) if head else None
        parsed.append((head, weight) if weight is not None else (item, None))
    weighted = [weight is not None for _, weight in parsed]
    if any(weighted) and not all(weighted):
        raise SystemExit(f"--data {value!r}: give a weight to every directory or to none")
    sources, names = [], set()
    for path, weight in parsed:
        if weight is not None and not (weight > 0 and np.isfinite(weight)):
            raise SystemExit(f"--data {path}:{weight:g}: a weight must be a positive number")
        base = re.sub(r"[^A-Za-z0-9_-]+", "_", os.path.basename(os.path.normpath(path))) or "data"
        name, suffix = base, 2
        while name in names:
            name, suffix = f"{base}_{suffix}", suffix + 1
        names.add(name)
        sources.append(MixSource(name, path, weight))
    return sources


def _footer(data_dir: str) -> tuple[str, str, str]:
    """(first train shard, instances schema version, tokenizer fingerprint) of a pipeline output."""
    path = shard_paths(data_dir, "train")[0]
    try:
        metadata = pq.ParquetFile(path).schema_arrow.metadata or {}
    except (OSError, ValueError) as exc:
        raise ShardError(f"{path}: not a readable Parquet file ({exc})") from exc
    return (path, metadata.get(schemas.META_SCHEMA_VERSION, b"").decode() or "(none)",
            metadata.get(schemas.META_TOKENIZER_FINGERPRINT, b"").decode() or "(none recorded)")


class Mixture:
    """The sources of a mixed run, their shards and their shares of the mix."""

    def __init__(self, sources: list[MixSource], shards: list[list]):
        self.sources, self.shards = sources, shards
        self.rows = [sum(shard.num_rows for shard in source_shards) for source_shards in shards]
        raw = [s.weight for s in sources] if sources[0].weight is not None else [float(r) for r in self.rows]
        self.shares = [w / sum(raw) for w in raw]
        self.offsets = [int(x) for x in np.cumsum([0, *self.rows[:-1]])]  # row ids unique over the mix

    @property
    def names(self) -> list[str]:
        return [source.name for source in self.sources]

    @classmethod
    def open(cls, sources: list[MixSource], fingerprint: str) -> "Mixture":
        """Check that the outputs agree on schema major and vocabulary, then open every shard."""
        footers = [_footer(source.path) for source in sources]
        first, (first_path, first_version, first_print) = sources[0], footers[0]
        for source, (path, version, fingerprint_found) in zip(sources[1:], footers[1:]):
            if version.split(".")[0] != first_version.split(".")[0]:
                raise ShardError(
                    f"--data: {first.path} has instances schema {first_version} ({first_path}) but {source.path} has "
                    f"{version} ({path}); mixed outputs must share a schema major version: rebuild one of them")
            if fingerprint_found != first_print:
                raise ShardError(
                    f"--data: {first.path} was tokenized with vocabulary {first_print} but {source.path} with "
                    f"{fingerprint_found}; mixed outputs must share one vocabulary: rebuild {source.path} with "
                    f"--tokenizer {os.path.join(first.path, 'tokenizer')}")
        return cls(sources, [open_shards(shard_paths(source.path, "train"), fingerprint) for source in sources])

    def signature(self) -> list:
        return [[source.name, round(share, 12), rows] for source, share, rows in zip(self.sources, self.shares, self.rows)]

    def describe(self) -> dict:
        total = sum(self.rows)
        return {
            "rows_per_mix_epoch": total,
            "sources": [
                {"name": s.name, "path": os.path.abspath(s.path), "weight": s.weight, "rows": rows, "share": share,
                 "passes_per_mix_epoch": share * total / rows}
                for s, rows, share in zip(self.sources, self.rows, self.shares)
            ],
        }

    def write(self, run_dir: str) -> None:
        with open(os.path.join(run_dir, MIX_FILE), "w", encoding="utf-8") as handle:
            json.dump(self.describe(), handle, indent=2)

    def summary(self) -> str:
        return "mixing " + ", ".join(
            f"{s.name} {share:.3f} ({rows} rows, {share * sum(self.rows) / rows:.2f} passes per mix epoch)"
            for s, rows, share in zip(self.sources, self.rows, self.shares))

    def dataset(self, loader_state: "MixLoaderState", masker, config, vocab_size: int, pad_id: int, rank: int = 0,
                world_size: int = 1, num_workers: int = 0) -> "MixedDataset":
        if loader_state.mix is not None and loader_state.mix != self.signature():
            raise SystemExit(f"--resume: the checkpoint mixed {loader_state.mix}, this run mixes {self.signature()}; "
                             "resume with the same --data")
        loader_state.mix = self.signature()
        return MixedDataset(self, masker, config, vocab_size, pad_id, rank, world_size, num_workers,
                            loader_state.positions, loader_state.rotation)


@dataclass(frozen=True)
class MixPosition:
    """After ``batch`` mixed batches: rows taken per source, and per source (chunk position, rows taken from it)."""

    batch: int
    taken: tuple[int, ...]
    cursors: tuple[tuple[StreamPosition, int], ...]

    @classmethod
    def start(cls, num_sources: int, epoch: int = 0) -> "MixPosition":
        return cls(0, (0,) * num_sources, ((StreamPosition(epoch), 0),) * num_sources)

    def encode(self) -> dict:
        return {"batch": self.batch, "taken": list(self.taken),
                "cursors": [[p.epoch, p.unit, p.batch, offset] for p, offset in self.cursors]}

    @classmethod
    def decode(cls, state: dict) -> "MixPosition":
        cursors = tuple((StreamPosition(*c[:3]), c[3]) for c in state["cursors"])
        return cls(state["batch"], tuple(state["taken"]), cursors)


@dataclass
class MixedBatch(Batch):
    source: torch.Tensor | None = None  # [B] int64: the index of each row's source

    TENSORS = Batch.TENSORS + ("source",)

    def to(self, device, non_blocking: bool = False) -> "MixedBatch":
        return self._with({name: getattr(self, name).to(device, non_blocking=non_blocking) for name in self.TENSORS})

    def pin_memory(self) -> "MixedBatch":
        return self._with({name: getattr(self, name).pin_memory() for name in self.TENSORS})

    def _with(self, tensors: dict) -> "MixedBatch":
        return MixedBatch(**tensors, num_tokens=self.num_tokens, stream=self.stream, position=self.position)


class _SourceStream(InstanceStream):
    """A source's stream read as rows: ``rows(cursor)`` yields (row, cursor after it), looping over epochs."""

    def rows(self, cursor: tuple[StreamPosition, int]) -> Iterator[tuple[tuple, tuple[StreamPosition, int]]]:
        position, offset = cursor
        epoch = position.epoch
        while True:
            units = epoch_units(self.units, epoch, self.config.seed, self.stream, self.num_streams, self.config.shuffle)
            start, skip = (position.unit, position.batch) if position.epoch == epoch else (0, 0)
            while start < len(units):
                stop = self._window_end(units, start)
                chunks = self._window_batches(units[start:stop], epoch, start)
                for index in range(skip, len(chunks)):
                    chunk = chunks[index][0]
                    here = StreamPosition(epoch, start, index)
                    for row_index in range(offset, len(chunk)):
                        yield chunk[row_index], (here, row_index + 1)
                    offset = 0
                start, skip = stop, 0
            epoch += 1


class MixedStream:
    """One (rank, worker) stream of the mix: stream ``s`` of every source, interleaved by share."""

    def __init__(self, mixture: Mixture, streams: list[_SourceStream], micro_batch_size: int, seed: int):
        self.mixture, self.streams = mixture, streams
        self.micro_batch_size, self.seed = micro_batch_size, seed
        self.stream = streams[0].stream
        self.shares = np.asarray(mixture.shares, dtype=np.float64)

    def batches(self, position: MixPosition | None = None) -> Iterator[MixedBatch]:
        position = position or MixPosition.start(len(self.streams))
        readers = [stream.rows(cursor) for stream, cursor in zip(self.streams, position.cursors)]
        taken, cursors, batch = np.asarray(position.taken, dtype=np.int64), list(position.cursors), position.batch
        offsets = self.mixture.offsets
        while True:
            rows, sources = [], []
            for _ in range(self.micro_batch_size):
                source = int(np.argmax(self.shares * (taken.sum() + 1) - taken))
                (ids, b_start, relation, row_id), cursors[source] = next(readers[source])
                rows.append((ids, b_start, relation, row_id + offsets[source]))
                sources.append(source)
                taken[source] += 1
            rng = np.random.default_rng([_MIX_MASK, self.seed, self.stream, batch])
            batch += 1
            after = MixPosition(batch, tuple(int(t) for t in taken), tuple(cursors))
            collated = self.streams[0]._collate(rows, rng, StreamPosition())
            fields = {f.name: getattr(collated, f.name) for f in dataclasses.fields(Batch)}
            fields.update(position=after, source=torch.tensor(sources, dtype=torch.int64))
            yield MixedBatch(**fields)


class MixedDataset(torch.utils.data.IterableDataset):
    """The rank's mixed streams as a DataLoader dataset; worker/rotation rules as ``InstanceDataset``."""

    def __init__(self, mixture: Mixture, masker, config, vocab_size: int, pad_id: int, rank: int = 0,
                 world_size: int = 1, num_workers: int = 0, positions: dict | None = None, rotation: int = 0):
        self.mixture, self.config = mixture, config
        self.per_source = [InstanceDataset(shards, masker, config, vocab_size, pad_id, rank, world_size, num_workers)
                           for shards in mixture.shards]
        self.rank, self.streams_per_rank = rank, max(1, num_workers)
        self.positions, self.rotation = positions or {}, rotation

    def stream(self, local_index: int) -> MixedStream:
        streams = []
        for source in self.per_source:
            one = source.stream(local_index)
            streams.append(_SourceStream(one.shards, one.units, one.masker, one.config, one.stream, one.num_streams,
                                         one.vocab_size, one.pad_id))
        return MixedStream(self.mixture, streams, self.config.micro_batch_size, self.config.seed)

    def __iter__(self) -> Iterator[MixedBatch]:
        info = torch.utils.data.get_worker_info()
        worker = info.id if info is not None else 0
        stream = self.stream((worker + self.rotation) % self.streams_per_rank)
        return stream.batches(self.positions.get(stream.stream))


class MixLoaderState(LoaderState):
    """``LoaderState`` whose positions are ``MixPosition``s, and which remembers the mix it belongs to."""

    def __init__(self, streams_per_rank: int, positions: dict | None = None, rotation: int = 0, mix=None):
        super().__init__(streams_per_rank, positions, rotation)
        self.mix = mix

    def state_dict(self) -> dict:
        return {"streams_per_rank": self.streams_per_rank, "rotation": self.next_rotation, "mix": self.mix,
                "positions": {stream: p.encode() for stream, p in self.positions.items()}}

    @classmethod
    def from_state_dict(cls, state: dict) -> "MixLoaderState":
        if "mix" not in state:
            raise SystemExit("--resume: the checkpoint was trained on one output, not a mix; resume with the same --data")
        positions = {int(stream): MixPosition.decode(p) for stream, p in state["positions"].items()}
        return cls(state["streams_per_rank"], positions, state["rotation"], state["mix"])

    @classmethod
    def restart(cls, states: list[dict], rank: int, streams_per_rank: int) -> "MixLoaderState":
        """Another topology: every source restarts at the epoch after the furthest any stream reached."""
        decoded = [MixPosition.decode(p) for state in states for p in state["positions"].values()]
        mix = states[0].get("mix")
        if not decoded:
            return cls(streams_per_rank, mix=mix)
        epochs = [1 + max(p.cursors[i][0].epoch for p in decoded) for i in range(len(decoded[0].cursors))]
        start = MixPosition(0, (0,) * len(epochs), tuple((StreamPosition(e), 0) for e in epochs))
        return cls(streams_per_rank, {rank * streams_per_rank + i: start for i in range(streams_per_rank)}, mix=mix)


class SourceMetrics:
    """Per-source sums between log steps, one [sources, 7] tensor so a single all-reduce covers them."""

    def __init__(self, names: list[str], device: torch.device, drp: bool = True):
        self.names, self.drp = names, drp
        # mlm correct, mlm tokens, mlm loss sum, drp correct, drp loss sum, samples, tokens
        self.sums = torch.zeros(len(names), 7, dtype=torch.float64, device=device)

    @torch.no_grad()
    def add(self, output, batch: MixedBatch) -> None:
        width = batch.input_ids.shape[1]
        token_source = batch.source[torch.div(batch.mlm_positions, width, rounding_mode="floor")]
        token_loss = F.cross_entropy(output.mlm_logits.float(), batch.mlm_labels, reduction="none").double()
        token_correct = (output.mlm_logits.argmax(-1) == batch.mlm_labels).double()
        row_loss = F.cross_entropy(output.drp_logits.float(), batch.relation, reduction="none").double()
        row_correct = (output.drp_logits.argmax(-1) == batch.relation).double()
        s = self.sums
        s[:, 0].index_add_(0, token_source, token_correct)
        s[:, 1].index_add_(0, token_source, torch.ones_like(token_correct))
        s[:, 2].index_add_(0, token_source, token_loss)
        s[:, 3].index_add_(0, batch.source, row_correct)
        s[:, 4].index_add_(0, batch.source, row_loss)
        s[:, 5].index_add_(0, batch.source, torch.ones_like(row_correct))
        s[:, 6].index_add_(0, batch.source, batch.attention_mask.sum(1).double())

    def reduce(self) -> dict:
        sums = self.sums.clone()
        if torch.distributed.is_initialized() and torch.distributed.get_world_size() > 1:
            torch.distributed.all_reduce(sums)
        self.sums.zero_()
        total = max(float(sums[:, 5].sum()), 1.0)
        record = {}
        for name, (mlm_correct, tokens, mlm_loss, drp_correct, drp_loss, samples, seq_tokens) in zip(
                self.names, sums.tolist()):
            record[f"mlm_loss.{name}"] = mlm_loss / tokens if tokens else None
            record[f"mlm_acc.{name}"] = mlm_correct / tokens if tokens else None
            record[f"drp_loss.{name}"] = drp_loss / samples if samples and self.drp else None
            record[f"drp_acc.{name}"] = drp_correct / samples if samples and self.drp else None
            record[f"samples.{name}"] = int(samples)
            record[f"tokens.{name}"] = int(seq_tokens)
            record[f"share.{name}"] = samples / total
        return record

    def console_line(self, step: int, record: dict) -> str:
        def shown(value):
            return "n/a" if value is None else f"{value:.3f}"

        return f"step {step}: " + "; ".join(
            f"{name} share {record[f'share.{name}']:.3f} mlm_loss {shown(record[f'mlm_loss.{name}'])} "
            f"mlm_acc {shown(record[f'mlm_acc.{name}'])} drp_acc {shown(record[f'drp_acc.{name}'])}"
            for name in self.names)
