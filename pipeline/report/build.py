"""``linkbert report DIR``: an HTML page with plots that shows at a glance whether a pipeline output is right.

Writes ``DIR/report/index.html`` and its PNG plots: the realised relation mix against 1/3, segment
and instance lengths, the in-degree distribution of the edges against how often each document is
the B side of a linked instance (LinkBERT's diversity sampling), the fraction of links resolved, the
dead-letter records by reason, the manifest summary, consistency checks between the manifest and the
files, and a dozen instances decoded back to text with A and B marked.

Tables are read with ``pyarrow.dataset``, one or two columns at a time: counts are streamed
aggregations (Acero group-bys hold one row per document, never one per edge or instance), and the
sample instances come from the first rows of the first shards, which the pipeline already shuffled
with a seeded permutation. Paths may be local or any URI ``pyarrow.fs`` understands (``gs://``).
"""

from __future__ import annotations

import argparse
import html
import io
import json
import math
import os
import re
import sys
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.acero as acero
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pyarrow.parquet as pq

import schemas
from pipeline.pairing import CONTIGUOUS, LINKED, RANDOM, RELATION_NAMES

RELATION_COLOURS = {CONTIGUOUS: "#4C72B0", RANDOM: "#DD8452", LINKED: "#55A868"}
LINK_OUTCOMES = ("resolved_direct", "resolved_via_redirect", "self_links", "dangling")
LINK_OUTCOME_COLOURS = ("#55A868", "#8FBF7F", "#BBBBBB", "#C44E52")
REDIRECT_COUNTERS = ("redirects_resolved", "redirects_dangling", "redirect_cycles", "redirect_chains_too_long")
MIX_TOLERANCE = 0.05
MAX_SCATTER_POINTS = 20000
MAX_LISTED_BAD_LINES = 20
SAMPLE_SCAN_ROWS = 20000  # rows read from the head of the shards when looking for sample instances
OK, WARN, FAIL = "ok", "warn", "fail"


class ReportError(RuntimeError):
    """The directory cannot be reported on (no manifest, unreadable manifest)."""


@dataclass
class Check:
    name: str
    status: str  # ok | warn | fail
    detail: str


@dataclass
class Sample:
    split: str
    relation: int
    link_type: str | None
    doc_a: str
    seg_a: int
    doc_b: str
    seg_b: int
    round: int
    num_tokens: int
    text_a: str
    text_b: str
    title_a: str | None = None
    title_b: str | None = None
    problems: list[str] = field(default_factory=list)


@dataclass
class Report:
    index_html: str
    plots: dict[str, str]
    checks: list[Check]
    samples: list[Sample]
    relation_counts: dict[str, dict[int, int]]
    dead_letters: dict[tuple[str, str], int]
    link_resolution: dict[str, dict[str, int]]
    link_resolution_source: str


# ---------------------------------------------------------------------------------------------- I/O


class _Store:
    """The pipeline output directory, through one ``pyarrow.fs`` filesystem (local, gs://, s3://)."""

    def __init__(self, directory: str):
        if "://" in directory:
            self.fs, self.root = pafs.FileSystem.from_uri(directory)
        else:
            self.fs, self.root = pafs.LocalFileSystem(), os.path.abspath(directory)
        self.display_root = directory
        self.root = self.root.rstrip("/")
        self.unreadable: set[str] = set()  # Parquet files whose footer failed; left out of every read

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


def _split_of(path: str) -> str:
    return path.rsplit("/", 1)[-1].split("-", 1)[0]


def _group_count(dataset: ds.Dataset, key: str, name: str, filter_expression=None) -> pa.Table:
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


def _streamed_bincount(dataset: ds.Dataset | None, column: str) -> np.ndarray:
    counts = np.zeros(0, dtype=np.int64)
    if dataset is None:
        return counts
    for batch in dataset.to_batches(columns=[column], batch_size=65536):
        values = batch.column(0).to_numpy(zero_copy_only=False)
        if values.size == 0:
            continue
        batch_counts = np.bincount(np.clip(values, 0, None).astype(np.int64))
        if batch_counts.size > counts.size:
            counts = np.pad(counts, (0, batch_counts.size - counts.size))
        counts[: batch_counts.size] += batch_counts
    return counts


# ------------------------------------------------------------------------------------------ plots


def _figure(width: float = 9.0, height: float = 3.6, columns: int = 1):
    from matplotlib.figure import Figure  # a bare Figure renders with Agg; no pyplot global state

    figure = Figure(figsize=(width, height), dpi=110, layout="constrained")
    axes = figure.subplots(1, columns)
    return figure, (list(axes) if columns > 1 else [axes])


def _png(figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def _no_data(axis, message: str) -> None:
    axis.text(0.5, 0.5, message, ha="center", va="center", transform=axis.transAxes, color="#888888")
    axis.set_xticks([])
    axis.set_yticks([])


def plot_relation_mix(relation_counts: dict[str, dict[int, int]]) -> bytes:
    figure, (axis,) = _figure(7.5, 3.6)
    splits = [split for split in sorted(relation_counts, key=lambda s: (s != "train", s)) if sum(relation_counts[split].values())]
    if not splits:
        _no_data(axis, "no instances")
        return _png(figure)
    width = 0.26
    for offset, relation in enumerate(RELATION_NAMES):
        shares = [relation_counts[s].get(relation, 0) / sum(relation_counts[s].values()) for s in splits]
        positions = [index + (offset - 1) * width for index in range(len(splits))]
        bars = axis.bar(positions, shares, width, color=RELATION_COLOURS[relation], label=RELATION_NAMES[relation])
        labels = [f"{share:.3f}\n({relation_counts[s].get(relation, 0):,})" for share, s in zip(shares, splits)]
        axis.bar_label(bars, labels=labels, fontsize=8, label_type="center", color="white")
    axis.axhline(1 / 3, color="#333333", linestyle="--", linewidth=1, label="1/3")
    axis.set_xticks(range(len(splits)), [f"{s}\n{sum(relation_counts[s].values()):,} instances" for s in splits])
    axis.set_ylim(0, max(0.5, max(c / sum(relation_counts[s].values()) for s in splits for c in relation_counts[s].values()) + 0.1))
    axis.set_ylabel("share of instances")
    axis.set_title("Relation mix per split (target: 1/3 each)")
    axis.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), fontsize=8, ncols=4, frameon=False)
    return _png(figure)


def _histogram(axis, counts: np.ndarray, limit: int | None, what: str, colour: str) -> None:
    total = int(counts.sum())
    if total == 0:
        _no_data(axis, f"no {what}")
        return
    lengths = np.arange(counts.size)
    bins = np.linspace(0, max(counts.size, (limit or 0) + 1), 51)
    axis.hist(lengths, bins=bins, weights=counts, color=colour)
    mean = float((lengths * counts).sum() / total)
    median = int(np.searchsorted(np.cumsum(counts), total / 2))
    if limit:
        at_limit = int(counts[limit:].sum()) if counts.size > limit else 0
        axis.axvline(limit, color="#C44E52", linestyle="--", linewidth=1, label=f"limit {limit} ({at_limit / total:.1%} at it)")
        axis.legend(fontsize=8, loc="upper left")
    axis.set_title(f"{what}: {total:,}, mean {mean:.1f}, median {median} tokens", fontsize=10)
    axis.set_xlabel("tokens")
    axis.set_ylabel(what)


def plot_lengths(segment_counts: np.ndarray, instance_counts: np.ndarray, segment_limit, instance_limit) -> bytes:
    figure, (left, right) = _figure(10, 3.6, columns=2)
    _histogram(left, segment_counts, segment_limit, "segments", "#4C72B0")
    _histogram(right, instance_counts, instance_limit, "instances", "#8172B3")
    return _png(figure)


def plot_in_degree(in_degree: np.ndarray, picks_by_in_degree: np.ndarray, linked_picks: np.ndarray,
                   diversity: bool | None) -> bytes:
    """Left: documents per in-degree (edges) and per times chosen as a linked B; right: picks vs in-degree.

    ``in_degree`` and ``picks_by_in_degree`` are aligned per document (every edge target);
    ``linked_picks`` holds the positive pick counts of every document chosen as a linked B.
    """
    figure, (left, right) = _figure(10, 3.8, columns=2)
    if in_degree.size == 0:
        _no_data(left, "no edges")
        _no_data(right, "no edges")
        return _png(figure)
    for values, colour, label in (
        (in_degree, "#4C72B0", f"before: in-degree in edges ({in_degree.size:,} docs)"),
        (linked_picks, "#55A868", f"after: times chosen as linked B ({linked_picks.size:,} docs)"),
    ):
        if values.size:
            degrees, documents = np.unique(values, return_counts=True)
            left.scatter(degrees, documents, s=12, color=colour, label=label, alpha=0.85)
    left.set_xscale("log")
    left.set_yscale("log")
    left.set_xlabel("in-degree  /  times chosen as B")
    left.set_ylabel("documents")
    left.set_title("In-degree distribution before and after sampling", fontsize=10)
    left.legend(fontsize=7)

    total_picks = int(picks_by_in_degree.sum())
    if total_picks == 0:
        _no_data(right, "no linked instances")
        return _png(figure)
    chosen = picks_by_in_degree > 0
    points = np.stack([in_degree[chosen], picks_by_in_degree[chosen]])
    points = points[:, np.lexsort(points[::-1])]  # group-by output order is not stable; sort before thinning
    if points.shape[1] > MAX_SCATTER_POINTS:
        points = points[:, np.linspace(0, points.shape[1] - 1, MAX_SCATTER_POINTS).astype(np.int64)]
    right.scatter(points[0], points[1], s=6, color="#55A868", alpha=0.25, label="a document")
    edges = np.unique(np.floor(np.logspace(0, math.log10(in_degree.max() + 1), 16)).astype(np.int64))
    bucket = np.searchsorted(edges, in_degree, side="right") - 1
    centres, means = [], []
    for index in np.unique(bucket):
        members = bucket == index
        centres.append(float(np.exp(np.log(in_degree[members]).mean())))
        means.append(float(picks_by_in_degree[members].mean()))
    right.plot(centres, means, "o-", color="#2D6A3E", label="mean over documents (0 picks included)")
    degrees = np.array([in_degree.min(), in_degree.max()], dtype=float)
    uniform_rate = total_picks / in_degree.sum()
    right.plot(degrees, uniform_rate * degrees, "--", color="#C44E52", label="≈ expected if drawn uniformly (∝ in-degree)")
    right.set_xscale("log")
    right.set_yscale("log")
    right.set_xlabel("in-degree in edges")
    right.set_ylabel("times chosen as linked B")
    mode = {True: "diversity on: ∝ 1/in-degree", False: "diversity off: uniform"}.get(diversity, "")
    right.set_title(f"Linked B choices vs in-degree ({mode})" if mode else "Linked B choices vs in-degree", fontsize=10)
    right.legend(fontsize=7)
    return _png(figure)


def plot_links_resolved(resolution: dict[str, dict[str, int]], source: str) -> bytes:
    names = sorted(resolution)
    figure, (axis,) = _figure(9, 1.6 + 0.5 * max(1, len(names)))
    if not resolution:
        _no_data(axis, "no link counters and no out-links")
        return _png(figure)
    for row, link_type in enumerate(names):
        outcomes = resolution[link_type]
        total = sum(outcomes.values())
        start = 0.0
        for outcome, colour in zip(outcomes, _outcome_colours(outcomes)):
            share = outcomes[outcome] / total if total else 0.0
            label = outcome.replace("_", " ")
            if len(names) == 1:
                label += f": {outcomes[outcome]:,} ({share:.1%})"
            axis.barh(row, share, left=start, height=0.6, color=colour, label=label if row == 0 else None)
            if share >= 0.08:
                axis.text(start + share / 2, row, f"{share:.1%}", ha="center", va="center", fontsize=8, color="white")
            start += share
    axis.set_yticks(range(len(names)), [f"{name}\n{sum(resolution[name].values()):,} links" for name in names])
    axis.set_xlim(0, 1)
    axis.set_xlabel("fraction of raw out-links")
    axis.set_title(f"Links resolved (from {source})", fontsize=10)
    axis.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    return _png(figure)


def _outcome_colours(outcomes: dict[str, int]) -> list[str]:
    palette = dict(zip(LINK_OUTCOMES, LINK_OUTCOME_COLOURS))
    palette.update({"edges": "#55A868", "not an edge": "#C44E52"})
    return [palette.get(outcome, "#999999") for outcome in outcomes]


# -------------------------------------------------------------------------------------- gathering


def load_manifest(store: _Store) -> dict:
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


def count_relations(store: _Store) -> dict[str, dict[int, int]]:
    """split -> relation -> instances, from the instance files themselves."""
    splits = sorted({_split_of(path) for path in store.table_files("instances")})
    result = {}
    for split in splits:
        counts = _group_count(store.dataset(store.table_files("instances", split)), "relation", "instances")
        result[split] = {int(r): int(n) for r, n in zip(counts["relation"].to_pylist(), counts["instances"].to_pylist())}
    return result


def link_resolution_from_counters(counters: dict[str, int]) -> dict[str, dict[str, int]]:
    resolution: dict[str, dict[str, int]] = {}
    for name, value in counters.items():
        parts = name.split(".")
        if len(parts) == 3 and parts[0] == "links" and parts[2] in LINK_OUTCOMES:
            resolution.setdefault(parts[1], dict.fromkeys(LINK_OUTCOMES, 0))[parts[2]] += int(value)
    return resolution


def link_resolution_from_tables(store: _Store) -> dict[str, dict[str, int]]:
    """Without counters: raw out-links of the documents vs edge rows per link type (excluding tfidf/random)."""
    documents = store.dataset(store.table_files("documents"))
    edges = store.dataset(store.table_files("edges"))
    if documents is None:
        return {}
    outlinks = 0
    for batch in documents.to_batches(columns=["outlinks"], batch_size=65536):
        outlinks += int(pc.sum(pc.list_value_length(batch.column(0))).as_py() or 0)
    if outlinks == 0:
        return {}
    per_type = _group_count(edges, "link_type", "edges") if edges is not None else pa.table({"link_type": [], "edges": []})
    resolution = {}
    for link_type, count in zip(per_type["link_type"].to_pylist(), per_type["edges"].to_pylist()):
        if link_type in ("hyperlink", "citation"):
            resolution[link_type] = {"edges": int(count), "not an edge": max(0, outlinks - int(count))}
    return resolution or {"(no edges)": {"edges": 0, "not an edge": outlinks}}


def read_dead_letters(store: _Store) -> tuple[dict[tuple[str, str], int], dict[tuple[str, str], dict], list[str]]:
    """(stage, reason) -> count, an example record of each, and the lines that are not error records."""
    counts: Counter = Counter()
    examples: dict[tuple[str, str], dict] = {}
    unreadable: list[str] = []
    bad_lines = 0
    for path in store.list_files("errors", ".jsonl"):
        name = path.rsplit("/", 1)[-1]
        with store.fs.open_input_stream(path) as stream, io.TextIOWrapper(stream, encoding="utf-8", errors="replace") as lines:
            for line_number, line in enumerate(lines, 1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                    key = (str(record["stage"]), str(record["reason"]))
                except (json.JSONDecodeError, KeyError, TypeError) as exc:
                    bad_lines += 1
                    if len(unreadable) < MAX_LISTED_BAD_LINES:
                        unreadable.append(f"errors/{name}:{line_number}: {type(exc).__name__}: {exc}")
                    continue
                counts[key] += 1
                examples.setdefault(key, record)
    if bad_lines > len(unreadable):
        unreadable.append(f"... {bad_lines - len(unreadable):,} more")
    return dict(sorted(counts.items())), examples, unreadable


def degree_arrays(store: _Store) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """(in-degree per edge target, linked-B picks per edge target, picks per chosen document, picks of non-targets)."""
    edges = store.dataset(store.table_files("edges"))
    instances = store.dataset(store.table_files("instances"))
    in_degree = _group_count(edges, "dst", "in_degree") if edges is not None else pa.table(
        {"dst": pa.array([], pa.string()), "in_degree": pa.array([], pa.int64())})
    picks = _group_count(instances, "doc_b", "picks", pc.field("relation") == LINKED) if instances is not None else pa.table(
        {"doc_b": pa.array([], pa.string()), "picks": pa.array([], pa.int64())})
    joined = in_degree.join(picks, keys="dst", right_keys="doc_b", join_type="left outer")
    picks_aligned = pc.fill_null(joined["picks"], 0).to_numpy()
    orphan_picks = int(pc.sum(picks["picks"]).as_py() or 0) - int(picks_aligned.sum())
    return joined["in_degree"].to_numpy(), picks_aligned, picks["picks"].to_numpy(), orphan_picks


def footer_facts(store: _Store, table: str) -> tuple[int, list[str], list[str], set[str], list[int]]:
    """From Parquet footers only: (rows, file names, problems, tokenizer fingerprints, rows per train shard)."""
    rows, names, problems, fingerprints, train_rows = 0, [], [], set(), []
    for path in store.table_files(table):
        name = path.rsplit("/", 1)[-1]
        names.append(name)
        try:
            with store.fs.open_input_file(path) as handle:
                metadata = pq.read_metadata(handle)
            schemas.check_compatible(metadata.metadata, table, f"{table}/{name}")
        except (schemas.SchemaError, pa.ArrowException, OSError) as exc:
            problems.append(f"{table}/{name}: {exc}")
            store.unreadable.add(path)
            continue
        rows += metadata.num_rows
        fingerprint = (metadata.metadata or {}).get(schemas.META_TOKENIZER_FINGERPRINT)
        if fingerprint is not None:
            fingerprints.add(fingerprint.decode())
        if table == "instances" and name.startswith("train-"):
            train_rows.append(metadata.num_rows)
    return rows, names, problems, fingerprints, train_rows


def load_tokenizer(store: _Store):
    """The ``tokenizers.Tokenizer`` in DIR/tokenizer, or None when there is none."""
    from tokenizers import Tokenizer

    if store.exists("tokenizer", "tokenizer.json"):
        return Tokenizer.from_str(store.read_bytes("tokenizer", "tokenizer.json").decode("utf-8"))
    if store.exists("tokenizer", "vocab.txt"):
        from tokenizers import BertWordPieceTokenizer

        vocab_lines = store.read_bytes("tokenizer", "vocab.txt").decode("utf-8").splitlines()
        return BertWordPieceTokenizer({token: index for index, token in enumerate(vocab_lines)})._tokenizer
    return None


def pick_sample_rows(store: _Store, count: int) -> list[dict]:
    """Up to ``count`` instances, an equal share per relation, from the head of the train then held-out shards.

    Shards are ordered by a seeded hash, so their first rows are already a deterministic random sample.
    """
    quota = {relation: count // len(RELATION_NAMES) + (1 if relation < count % len(RELATION_NAMES) else 0)
             for relation in RELATION_NAMES}
    chosen: dict[int, list[dict]] = {relation: [] for relation in RELATION_NAMES}
    spare: list[dict] = []
    scanned = 0
    files = store.table_files("instances", "train") + store.table_files("instances", "heldout")
    for path in files:
        with store.fs.open_input_file(path) as handle:
            for batch in pq.ParquetFile(handle).iter_batches(batch_size=1024):
                for row in batch.to_pylist():
                    row["split"] = _split_of(path)
                    bucket = chosen.setdefault(row["relation"], [])
                    if len(bucket) < quota.get(row["relation"], 0):
                        bucket.append(row)
                    elif len(spare) < count:
                        spare.append(row)
                scanned += batch.num_rows
                if all(len(chosen[r]) >= quota[r] for r in quota) or scanned >= SAMPLE_SCAN_ROWS:
                    break
        if all(len(chosen[r]) >= quota[r] for r in quota) or scanned >= SAMPLE_SCAN_ROWS:
            break
    rows = [row for relation in sorted(chosen) for row in chosen[relation]]
    rows += spare[: max(0, count - len(rows))]  # a relation too rare in the head: fill with others
    return sorted(rows, key=lambda row: (row["relation"], row["split"] != "train"))


def _lookup(store: _Store, table: str, doc_ids: set[str], columns: list[str]) -> list[dict]:
    dataset = store.dataset(store.table_files(table))
    if dataset is None or not doc_ids:
        return []
    return dataset.to_table(columns=columns, filter=pc.field("doc_id").isin(sorted(doc_ids))).to_pylist()


def decode_samples(store: _Store, rows: list[dict], tokenizer, cls_id: int | None, sep_id: int | None) -> list[Sample]:
    """Decode A and B of each row and check them against the segments they claim to come from."""
    doc_ids = {row["doc_a"] for row in rows} | {row["doc_b"] for row in rows}
    titles = {r["doc_id"]: r["title"] for r in _lookup(store, "documents", doc_ids, ["doc_id", "title"])}
    segments = {(r["doc_id"], r["seg_idx"]): r["input_ids"]
                for r in _lookup(store, "segments", doc_ids, ["doc_id", "seg_idx", "input_ids"])}
    samples = []
    for row in rows:
        ids, b_start = row["input_ids"], row["b_start"]
        a_ids, b_ids = ids[1: b_start - 1], ids[b_start:-1]
        problems = []
        if not 2 <= b_start < len(ids):
            problems.append(f"b_start {b_start} is outside the {len(ids)} input ids")
        elif cls_id is not None and (ids[0] != cls_id or ids[b_start - 1] != sep_id or ids[-1] != sep_id):
            problems.append("[CLS] A [SEP] B [SEP] framing is wrong")
        for side, doc, seg, side_ids in (("A", row["doc_a"], row["seg_a"], a_ids), ("B", row["doc_b"], row["seg_b"], b_ids)):
            segment = segments.get((doc, seg))
            if segment is None:
                problems.append(f"{side}: segment ({doc}, {seg}) not in the segments table")
            elif segment[: len(side_ids)] != side_ids or not side_ids:
                problems.append(f"{side}: tokens differ from segment ({doc}, {seg})")
        if row["relation"] == CONTIGUOUS and (row["doc_b"], row["seg_b"]) != (row["doc_a"], row["seg_a"] + 1):
            problems.append("contiguous B is not the next segment of A's document")
        if row["relation"] != CONTIGUOUS and row["doc_b"] == row["doc_a"]:
            problems.append(f"{RELATION_NAMES.get(row['relation'], row['relation'])} B comes from A's own document")
        decode = (lambda token_ids: tokenizer.decode(token_ids, skip_special_tokens=False)) if tokenizer else (
            lambda token_ids: " ".join(map(str, token_ids)))
        samples.append(Sample(
            split=row["split"], relation=row["relation"], link_type=row["link_type"], doc_a=row["doc_a"],
            seg_a=row["seg_a"], doc_b=row["doc_b"], seg_b=row["seg_b"], round=row["round"],
            num_tokens=row["num_tokens"], text_a=decode(a_ids), text_b=decode(b_ids),
            title_a=titles.get(row["doc_a"]), title_b=titles.get(row["doc_b"]), problems=problems,
        ))
    return samples


# ------------------------------------------------------------------------------------------- HTML

_STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 24px auto; max-width: 1120px;
       color: #222; line-height: 1.4; padding: 0 16px; }
h1 { font-size: 22px; margin-bottom: 2px; } h2 { font-size: 18px; margin-top: 28px; border-bottom: 1px solid #ddd; }
.sub { color: #666; font-size: 13px; }
table { border-collapse: collapse; font-size: 13px; margin: 8px 0; }
th, td { border: 1px solid #ddd; padding: 3px 8px; text-align: left; vertical-align: top; }
th { background: #f4f4f4; } td.n { text-align: right; font-variant-numeric: tabular-nums; }
.status { font-weight: 600; border-radius: 3px; padding: 0 6px; color: #fff; }
.ok { background: #3a8a4f; } .warn { background: #c98a14; } .fail { background: #c0392b; }
img { max-width: 100%; border: 1px solid #eee; }
code { font-size: 12px; background: #f4f4f4; padding: 0 3px; }
.sample { border: 1px solid #ddd; border-radius: 6px; margin: 10px 0; padding: 8px 10px; font-size: 13px; }
.sample .head { margin-bottom: 6px; }
.rel { color: #fff; border-radius: 3px; padding: 1px 7px; font-weight: 600; }
.rel-0 { background: #4C72B0; } .rel-1 { background: #DD8452; } .rel-2 { background: #55A868; }
.tok { font-family: ui-monospace, monospace; font-size: 11px; background: #555; color: #fff; border-radius: 2px; padding: 0 3px; }
.seg-a { background: #dbe7fb; border-bottom: 2px solid #4C72B0; }
.seg-b { background: #fde4cf; border-bottom: 2px solid #DD8452; }
.side { font-weight: 700; } .side-a { color: #2b4f8a; } .side-b { color: #a4511a; }
.problem { color: #c0392b; font-weight: 600; }
mark { background: #b7e4c0; padding: 0 1px; }
details summary { cursor: pointer; color: #2b4f8a; }
"""


def _cells(values, numeric=()) -> str:
    return "".join(f'<td class="n">{value}</td>' if index in numeric else f"<td>{value}</td>" for index, value in enumerate(values))


def _table(header: list[str], rows: list[list], numeric=()) -> str:
    head = "".join(f"<th>{html.escape(str(name))}</th>" for name in header)
    body = "".join(f"<tr>{_cells(row, numeric)}</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _n(value) -> str:
    return f"{value:,}" if isinstance(value, int) else html.escape(str(value))


def _marked(text: str, phrase: str | None) -> str:
    """``text`` escaped, with whole-word mentions of ``phrase`` (any case) in <mark>."""
    if not phrase:
        return html.escape(text)
    pattern = re.compile(r"(?<!\w)" + re.escape(phrase) + r"(?!\w)", re.IGNORECASE)
    pieces, position = [], 0
    for match in pattern.finditer(text):
        pieces += [html.escape(text[position: match.start()]), f"<mark>{html.escape(match.group())}</mark>"]
        position = match.end()
    return "".join(pieces) + html.escape(text[position:])


def _sample_html(index: int, sample: Sample) -> str:
    name = RELATION_NAMES.get(sample.relation, str(sample.relation))
    link = f" via {html.escape(sample.link_type)}" if sample.link_type else ""
    title_a = html.escape(sample.title_a or "?")
    title_b = html.escape(sample.title_b or "?")
    problems = "".join(f'<div class="problem">✗ {html.escape(p)}</div>' for p in sample.problems)
    verdict = "" if sample.problems else ' <span class="status ok">matches segments</span>'
    return (
        f'<div class="sample" id="sample-{index}"><div class="head">'
        f'<span class="rel rel-{sample.relation}">{html.escape(name)}</span>{link} · {html.escape(sample.split)}'
        f" · round {sample.round} · {sample.num_tokens} tokens{verdict}<br>"
        f'<span class="side side-a">A</span> {title_a} <code>{html.escape(sample.doc_a)}#{sample.seg_a}</code> → '
        f'<span class="side side-b">B</span> {title_b} <code>{html.escape(sample.doc_b)}#{sample.seg_b}</code></div>'
        f'<span class="tok">[CLS]</span> <span class="seg-a" data-doc="{html.escape(sample.doc_a)}" data-seg="{sample.seg_a}">'
        f'{_marked(sample.text_a, sample.title_b if sample.relation == LINKED else None)}</span> <span class="tok">[SEP]</span> '
        f'<span class="seg-b" data-doc="{html.escape(sample.doc_b)}" data-seg="{sample.seg_b}">{html.escape(sample.text_b)}</span>'
        f' <span class="tok">[SEP]</span>{problems}</div>'
    )


def render_html(store: _Store, manifest: dict, report: Report, tables_on_disk: dict, dead_examples: dict,
                unreadable_errors: list[str], zero_in_degree: int | None) -> str:
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>linkbert data report</title>"
             f"<style>{_STYLE}</style></head><body>"]
    options = manifest.get("options", {})
    parts.append(f"<h1>linkbert data report</h1><div class='sub'><code>{html.escape(store.display_root)}</code> · "
                 f"source {html.escape(str(options.get('source', '?')))} · links {html.escape(str(options.get('links', '?')))}"
                 f" · seed {html.escape(str(options.get('seed', '?')))}</div>")

    parts.append("<h2>At a glance</h2>")
    parts.append(_table(["", "check", "detail"], [
        [f'<span class="status {c.status}">{c.status.upper()}</span>', html.escape(c.name), html.escape(c.detail)]
        for c in report.checks]))

    parts.append("<h2>Tables</h2>")
    versions = manifest.get("schema_version", {})
    rows = []
    for table in schemas.TABLES:
        listed = manifest.get("tables", {}).get(table, {})
        on_disk_rows, names = tables_on_disk[table]
        rows.append([table, html.escape(str(versions.get(table, "?"))), _n(listed.get("rows", "—")), _n(on_disk_rows),
                     _n(len(listed.get("files", []))), _n(len(names))])
    parts.append(_table(["table", "schema", "rows (manifest)", "rows (files)", "files (manifest)", "files (on disk)"],
                        rows, numeric=(2, 3, 4, 5)))
    split_rows = []
    for split, info in sorted(manifest.get("splits", {}).items(), key=lambda kv: (kv[0] != "train", kv[0])):
        relations = info.get("relations", {})
        mix = info.get("relation_mix", {})
        split_rows.append([html.escape(split), _n(info.get("rows", 0)), _n(info.get("tokens", 0))] + [
            f"{_n(relations.get(name, 0))} ({mix.get(name, 0):.3f})" for name in RELATION_NAMES.values()
        ] + [html.escape(", ".join(f"{k} {v:,}" for k, v in sorted(info.get("link_types", {}).items())) or "—")])
    parts.append("<h3>Instances per split (manifest)</h3>")
    parts.append(_table(["split", "instances", "tokens", *RELATION_NAMES.values(), "link types"], split_rows,
                        numeric=(1, 2, 3, 4, 5)))
    tokenizer = manifest.get("tokenizer", {})
    parts.append("<h3>Tokenizer</h3>")
    parts.append(_table(["fingerprint", "vocabulary", "lower-case", "path"], [[
        f"<code>{html.escape(str(tokenizer.get('fingerprint', '?')))}</code>", _n(tokenizer.get("vocab_size", "?")),
        html.escape(str(tokenizer.get("lowercase", "?"))), html.escape(str(tokenizer.get("path", "?")))]], numeric=(1,)))
    probabilities = manifest.get("relation_probabilities", {})
    if probabilities:
        parts.append("<h3>Relation draw per availability class</h3><div class='sub'>R = random only, C = has a next "
                     "segment, L = has out-links; probabilities of (contiguous, random, linked).</div>")
        parts.append(_table(["class", *RELATION_NAMES.values()],
                            [[html.escape(k)] + [f"{p:.3f}" for p in v] for k, v in sorted(probabilities.items())],
                            numeric=(1, 2, 3)))
    parts.append("<details><summary>Options</summary>" + _table(
        ["option", "value"], [[html.escape(k), html.escape(json.dumps(v))] for k, v in sorted(options.items())]) + "</details>")
    counters = manifest.get("counters", {})
    if counters:
        parts.append("<details><summary>Counters</summary>" + _table(
            ["counter", "value"], [[html.escape(k), _n(v)] for k, v in sorted(counters.items())], numeric=(1,)) + "</details>")
    if "wall_seconds" in manifest:
        parts.append(f"<div class='sub'>pipeline wall time {manifest['wall_seconds']} s</div>")

    parts.append("<h2>Relation mix</h2><img src='relation_mix.png' alt='relation mix'>")
    parts.append("<h2>Lengths</h2><img src='lengths.png' alt='segment and instance lengths'>")
    parts.append("<h2>In-degree before and after diversity sampling</h2>")
    if zero_in_degree is not None:
        parts.append(f"<div class='sub'>{zero_in_degree:,} documents have no in-links and cannot appear on a log axis. "
                     "With diversity sampling the right-hand curve is flatter than the dashed line: "
                     "hubs are chosen less, rarely linked documents more.</div>")
    parts.append("<img src='in_degree.png' alt='in-degree distribution'>")

    parts.append("<h2>Links resolved</h2><img src='links_resolved.png' alt='links resolved'>")
    if report.link_resolution_source != "counters":
        parts.append("<div class='sub'>No link counters in the manifest: edges are compared with the documents' raw "
                     "out-links; duplicates that resolve to the same document count as not an edge.</div>")
    redirects = [[html.escape(name.replace("_", " ")), _n(counters[f"links.{name}"])]
                 for name in REDIRECT_COUNTERS if f"links.{name}" in counters]
    if redirects:
        parts.append("<h3>Redirect chains</h3>" + _table(["outcome", "redirects"], redirects, numeric=(1,)))

    total_dead = sum(report.dead_letters.values())
    parts.append(f"<h2>Dead letters: {total_dead:,}</h2>")
    if report.dead_letters:
        dead_rows = []
        for (stage, reason), count in report.dead_letters.items():
            example = dead_examples[(stage, reason)]
            where = f"{example.get('source_file', '')} · {example.get('record_id', '')}"
            dead_rows.append([html.escape(stage), html.escape(reason), _n(count),
                              html.escape(where), html.escape(str(example.get("detail", ""))[:300])])
        parts.append(_table(["stage", "reason", "records", "first record", "detail"], dead_rows, numeric=(2,)))
    else:
        parts.append("<div class='sub'>No record was refused.</div>" if store.exists("errors")
                     else "<div class='sub'>No <code>errors/</code> folder.</div>")
    if unreadable_errors:
        parts.append("<div class='problem'>Lines of errors/ that are not error records:</div><ul>"
                     + "".join(f"<li><code>{html.escape(line)}</code></li>" for line in unreadable_errors) + "</ul>")

    parts.append(f"<h2>Sample instances ({len(report.samples)})</h2><div class='sub'>The first instances of the "
                 "(seeded, shuffled) shards, an equal number per relation; "
                 "<span class='seg-a'>A is blue</span>, <span class='seg-b'>B is orange</span>; in linked pairs, "
                 "<mark>mentions of B's title</mark> in A are marked.</div>")
    parts.extend(_sample_html(index, sample) for index, sample in enumerate(report.samples))
    parts.append("</body></html>")
    return "\n".join(parts)


# ------------------------------------------------------------------------------------------ checks


def _status(ok: bool, otherwise: str = FAIL) -> str:
    return OK if ok else otherwise


def build_checks(manifest: dict, footers: dict, tokenizer_fingerprint: str | None, relation_counts: dict,
                 samples: list[Sample], dead_letters: dict, unreadable_errors: list[str], resolution: dict,
                 orphan_picks: int) -> list[Check]:
    checks = []
    mismatched, problems = [], []
    for table in schemas.TABLES:
        rows, names, table_problems, _, _ = footers[table]
        listed = manifest.get("tables", {}).get(table)
        problems += table_problems
        if listed is None:
            mismatched.append(f"{table} missing from the manifest")
            continue
        listed_names = sorted(entry["file"] for entry in listed.get("files", []))
        if not names:
            mismatched.append(f"{table}: no files")
        elif listed.get("rows") != rows or listed_names != names:
            mismatched.append(f"{table}: manifest {listed.get('rows')} rows in {len(listed_names)} files, "
                              f"found {rows} in {len(names)}")
    checks.append(Check("manifest matches the files", _status(not mismatched),
                        "; ".join(mismatched) or "rows and files of every table as listed"))
    checks.append(Check("schema versions readable", _status(not problems),
                        "; ".join(problems[:5]) or "every file names its table and a known major version"))

    expected = manifest.get("tokenizer", {}).get("fingerprint")
    in_files = footers["segments"][3] | footers["instances"][3]
    troubles = []
    if tokenizer_fingerprint is None:
        troubles.append("no tokenizer in DIR/tokenizer")
    elif tokenizer_fingerprint != expected:
        troubles.append(f"DIR/tokenizer is {tokenizer_fingerprint}, manifest says {expected}")
    if in_files - {expected}:
        troubles.append(f"files carry {', '.join(sorted(in_files - {expected}))}")
    checks.append(Check("tokenizer fingerprint", _status(not troubles), "; ".join(troubles) or f"{expected} everywhere"))

    disagreements = []
    for split in sorted(set(relation_counts) | set(manifest.get("splits", {}))):
        listed = manifest.get("splits", {}).get(split, {}).get("relations", {})
        found = {RELATION_NAMES.get(r, str(r)): n for r, n in relation_counts.get(split, {}).items()}
        if {k: v for k, v in listed.items() if v} != {k: v for k, v in found.items() if v}:
            disagreements.append(f"{split}: manifest {listed}, files {found}")
    checks.append(Check("relation counts match the manifest", _status(not disagreements),
                        "; ".join(disagreements) or "per split and relation"))

    train = relation_counts.get("train", {})
    total = sum(train.values())
    if total:
        shares = {RELATION_NAMES.get(r, str(r)): n / total for r, n in sorted(train.items())}
        worst = max(abs(shares.get(name, 0.0) - 1 / 3) for name in RELATION_NAMES.values())
        checks.append(Check("train relation mix near 1/3", _status(worst <= MIX_TOLERANCE, WARN),
                            " ".join(f"{k}={v:.3f}" for k, v in shares.items()) + f" (largest gap {worst:.3f})"))
    else:
        checks.append(Check("train relation mix near 1/3", FAIL, "no train instances"))

    train_rows = footers["instances"][4]
    if train_rows:
        spread = max(train_rows) - min(train_rows)
        checks.append(Check("train shards balanced (±1 row)", _status(spread <= 1),
                            f"{len(train_rows)} shards of {min(train_rows):,}–{max(train_rows):,} rows"))

    bad = [f"#{i} {s.doc_a}#{s.seg_a}: {'; '.join(s.problems)}" for i, s in enumerate(samples) if s.problems]
    checks.append(Check("sample instances match their segments", _status(bool(samples) and not bad),
                        "; ".join(bad[:3]) or (f"{len(samples)} decoded" if samples else "no instances to sample")))
    if orphan_picks:
        checks.append(Check("linked B documents are edge targets", FAIL,
                            f"{orphan_picks:,} linked instances point to documents that no edge points to"))

    dead = sum(dead_letters.values())
    documents = manifest.get("tables", {}).get("documents", {}).get("rows", 0)
    detail = f"{dead:,} refused records" + (f" ({dead / (dead + documents):.2%} of documents + refused)" if dead else "")
    if unreadable_errors:
        detail += f"; errors/ has lines that are not error records ({unreadable_errors[0]})"
    checks.append(Check("dead letters", _status(dead == 0 and not unreadable_errors, WARN), detail))
    for link_type, outcomes in sorted(resolution.items()):
        total_links = sum(outcomes.values())
        resolved = outcomes.get("resolved_direct", 0) + outcomes.get("resolved_via_redirect", 0) + outcomes.get("edges", 0)
        share = resolved / total_links if total_links else 0.0
        checks.append(Check(f"{link_type} links resolved", _status(share >= 0.5, WARN),
                            f"{share:.1%} of {total_links:,} raw links"))
    return checks


# ------------------------------------------------------------------------------------------ driver


def build_report(directory: str, output: str | None = None, num_samples: int = 12) -> Report:
    """Write the report of the pipeline output ``directory`` into ``output`` (default ``directory/report``)."""
    store = _Store(directory)
    manifest = load_manifest(store)
    out = _Store(output) if output else _Store(directory.rstrip("/") + "/report")
    options = manifest.get("options", {})

    footers = {table: footer_facts(store, table) for table in schemas.TABLES}
    relation_counts = count_relations(store)
    counters = manifest.get("counters", {})
    resolution = link_resolution_from_counters(counters)
    resolution_source = "counters"
    if not resolution:
        resolution, resolution_source = link_resolution_from_tables(store), "documents' out-links vs edges"
    dead_letters, dead_examples, unreadable_errors = read_dead_letters(store)
    in_degree, picks_aligned, linked_picks, orphan_picks = degree_arrays(store)
    documents_rows = footers["documents"][0]
    zero_in_degree = documents_rows - in_degree.size if footers["documents"][1] else None

    tokenizer = load_tokenizer(store)
    tokenizer_fingerprint = schemas.tokenizer_fingerprint(tokenizer.get_vocab()) if tokenizer else None
    vocab = tokenizer.get_vocab() if tokenizer else {}
    samples = decode_samples(store, pick_sample_rows(store, num_samples), tokenizer, vocab.get("[CLS]"), vocab.get("[SEP]"))

    plots = {
        "relation_mix.png": plot_relation_mix(relation_counts),
        "lengths.png": plot_lengths(
            _streamed_bincount(store.dataset(store.table_files("segments")), "num_tokens"),
            _streamed_bincount(store.dataset(store.table_files("instances")), "num_tokens"),
            options.get("segment_tokens"), options.get("max_seq_len")),
        "in_degree.png": plot_in_degree(in_degree, picks_aligned, linked_picks, options.get("diversity")),
        "links_resolved.png": plot_links_resolved(resolution, resolution_source),
    }
    plot_paths = {name: out.write_bytes(data, name) for name, data in plots.items()}
    checks = build_checks(manifest, footers, tokenizer_fingerprint, relation_counts, samples, dead_letters,
                          unreadable_errors, resolution, orphan_picks)
    report = Report(index_html=out.path("index.html"), plots=plot_paths, checks=checks, samples=samples,
                    relation_counts=relation_counts, dead_letters=dead_letters, link_resolution=resolution,
                    link_resolution_source=resolution_source)
    tables_on_disk = {table: (footers[table][0], footers[table][1]) for table in schemas.TABLES}
    page = render_html(store, manifest, report, tables_on_disk, dead_examples, unreadable_errors, zero_in_degree)
    out.write_bytes(page.encode("utf-8"), "index.html")
    return report


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("report", help="write DIR/report/index.html: plots, checks and sample instances",
                                   description=__doc__.splitlines()[0])
    parser.add_argument("directory", metavar="DIR", help="output directory of 'linkbert pipeline' (gs:// works)")
    parser.add_argument("--output", help="where to write index.html and the plots (default DIR/report)")
    parser.add_argument("--samples", type=int, default=12, help="instances decoded in the report (default 12)")
    parser.set_defaults(func=run_from_args)


def run_from_args(args: argparse.Namespace) -> int:
    try:
        report = build_report(args.directory, args.output, args.samples)
    except ReportError as exc:
        print(f"linkbert report: {exc}", file=sys.stderr)
        return 2
    for check in report.checks:
        print(f"  [{check.status.upper():4}] {check.name}: {check.detail}")
    print(f"report: {report.index_html}")
    return 0
