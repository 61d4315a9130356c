"""What the report shows, gathered from the output's tables, manifest and dead letters."""

from __future__ import annotations

import io
import json
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from linkbert import schemas
from linkbert.pipeline.instances.pairing import (
    CONTIGUOUS,
    LINKED,
    RELATION_NAMES,
)
from linkbert.pipeline.report.plots import LINK_OUTCOMES
from linkbert.pipeline.report.store import Store, group_count, split_of

REDIRECT_COUNTERS = ("redirects_resolved", "redirects_dangling", "redirect_cycles", "redirect_chains_too_long")


SAMPLE_SCAN_ROWS = 20000  # rows read from the head of the shards when looking for sample instances
REPORT_SAMPLE_ROWS = 100_000  # instance rows read for the length and linked-B plots, whatever the instance count


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


def count_relations(store: Store, manifest: dict | None = None) -> dict[str, dict[int, int]]:
    """split -> relation -> instances: the manifest's per-shard counts for every instance file on disk whose
    footer holds the rows its entry lists (``footer_facts`` reads the footers first); any other file, or one
    the manifest does not list, is counted from its own relation column."""
    listed = (manifest or {}).get("tables", {}).get("instances", {}).get("files", [])
    entries = {entry.get("file"): entry for entry in listed if isinstance(entry, dict)}
    result: dict[str, dict[int, int]] = {}
    for path in store.table_files("instances"):
        counts = result.setdefault(split_of(path), {})
        entry = entries.get(path.rsplit("/", 1)[-1], {})
        relations = entry.get("relations")
        if isinstance(relations, dict) and entry.get("rows") == store.file_rows.get(path) == sum(relations.values()):
            pairs = [(int(relation), int(count)) for relation, count in relations.items()]
        else:
            scanned = group_count(store.dataset([path]), "relation", "instances")
            store.rows_read["instances"] += store.file_rows.get(path, 0)
            pairs = zip(scanned["relation"].to_pylist(), scanned["instances"].to_pylist())
        for relation, count in pairs:
            counts[int(relation)] = counts.get(int(relation), 0) + int(count)
    return result


def instance_sample(store: Store, max_rows: int | None = None) -> pa.Table | None:
    """A bounded sample of the instances (relation, doc_b, num_tokens), for the length and linked-B plots."""
    return store.head_rows(store.table_files("instances"), ["relation", "doc_b", "num_tokens"], max_rows or REPORT_SAMPLE_ROWS)


def instance_lengths(sample: pa.Table | None, total_rows: int) -> np.ndarray:
    """Instances per token count, estimated from ``sample`` and scaled to ``total_rows`` (exact when the
    sample holds every row)."""
    if sample is None or sample.num_rows == 0:
        return np.zeros(0)
    counts = np.bincount(np.clip(sample["num_tokens"].to_numpy(zero_copy_only=False), 0, None).astype(np.int64))
    return counts * (total_rows / sample.num_rows) if total_rows else counts.astype(float)


def link_resolution_from_counters(counters: dict[str, int]) -> dict[str, dict[str, int]]:
    resolution: dict[str, dict[str, int]] = {}
    for name, value in counters.items():
        parts = name.split(".")
        if len(parts) == 3 and parts[0] == "links" and parts[2] in LINK_OUTCOMES:
            resolution.setdefault(parts[1], dict.fromkeys(LINK_OUTCOMES, 0))[parts[2]] += int(value)
    return resolution


def link_resolution_from_tables(store: Store) -> dict[str, dict[str, int]]:
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
    per_type = group_count(edges, "link_type", "edges") if edges is not None else pa.table({"link_type": [], "edges": []})
    resolution = {}
    for link_type, count in zip(per_type["link_type"].to_pylist(), per_type["edges"].to_pylist()):
        if link_type in ("hyperlink", "citation"):
            resolution[link_type] = {"edges": int(count), "not an edge": max(0, outlinks - int(count))}
    return resolution or {"(no edges)": {"edges": 0, "not an edge": outlinks}}


def read_dead_letters(store: Store) -> tuple[dict[tuple[str, str], int], dict[tuple[str, str], dict], list[str]]:
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


def degree_arrays(store: Store, sample: pa.Table | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """(in-degree per edge target, linked-B picks per edge target, picks per chosen document, picks of
    non-targets); picks are counted over ``sample`` (``instance_sample``), all instances when it is None."""
    edges = store.dataset(store.table_files("edges"))
    in_degree = group_count(edges, "dst", "in_degree") if edges is not None else pa.table(
        {"dst": pa.array([], pa.string()), "in_degree": pa.array([], pa.int64())})
    empty_picks = pa.table({"doc_b": pa.array([], pa.string()), "picks": pa.array([], pa.int64())})
    if sample is not None:
        linked = sample.filter(pc.equal(sample["relation"], LINKED))
        picks = linked.group_by("doc_b").aggregate([("doc_b", "count")]).rename_columns(["doc_b", "picks"]) \
            if linked.num_rows else empty_picks
    else:
        instances = store.dataset(store.table_files("instances"))
        picks = group_count(instances, "doc_b", "picks", pc.field("relation") == LINKED) if instances is not None else empty_picks
    joined = in_degree.join(picks, keys="dst", right_keys="doc_b", join_type="left outer")
    picks_aligned = pc.fill_null(joined["picks"], 0).to_numpy()
    orphan_picks = int(pc.sum(picks["picks"]).as_py() or 0) - int(picks_aligned.sum())
    return joined["in_degree"].to_numpy(), picks_aligned, picks["picks"].to_numpy(), orphan_picks


def footer_facts(store: Store, table: str) -> tuple[int, list[str], list[str], set[str], list[int]]:
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
        store.file_rows[path] = metadata.num_rows
        fingerprint = (metadata.metadata or {}).get(schemas.META_TOKENIZER_FINGERPRINT)
        if fingerprint is not None:
            fingerprints.add(fingerprint.decode())
        if table == "instances" and name.startswith("train-"):
            train_rows.append(metadata.num_rows)
    return rows, names, problems, fingerprints, train_rows


def load_tokenizer(store: Store):
    """The ``tokenizers.Tokenizer`` in DIR/tokenizer, or None when there is none."""
    from tokenizers import Tokenizer

    if store.exists("tokenizer", "tokenizer.json"):
        return Tokenizer.from_str(store.read_bytes("tokenizer", "tokenizer.json").decode("utf-8"))
    if store.exists("tokenizer", "vocab.txt"):
        from tokenizers import BertWordPieceTokenizer

        vocab_lines = store.read_bytes("tokenizer", "vocab.txt").decode("utf-8").splitlines()
        return BertWordPieceTokenizer({token: index for index, token in enumerate(vocab_lines)})._tokenizer
    return None


def pick_sample_rows(store: Store, count: int) -> list[dict]:
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
                store.rows_read["instances"] += batch.num_rows
                for row in batch.to_pylist():
                    row["split"] = split_of(path)
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


def _lookup(store: Store, table: str, doc_ids: set[str], columns: list[str]) -> list[dict]:
    dataset = store.dataset(store.table_files(table))
    if dataset is None or not doc_ids:
        return []
    return dataset.to_table(columns=columns, filter=pc.field("doc_id").isin(sorted(doc_ids))).to_pylist()


def decode_samples(store: Store, rows: list[dict], tokenizer, cls_id: int | None, sep_id: int | None) -> list[Sample]:
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


MAX_LISTED_BAD_LINES = 20


def normalisation_changes(store: Store, tokenizer, max_documents: int = 200) -> dict | None:
    """Over the words of up to ``max_documents`` documents' text: how many the tokenizer's normaliser
    changes (lower-casing, accent stripping), how many of those lose diacritics, and how many distinct
    words collide with another one after normalisation."""
    import unicodedata

    dataset = store.dataset(store.table_files("documents"))
    if dataset is None or tokenizer is None or tokenizer.normalizer is None:
        return None
    texts = dataset.head(max_documents, columns=["text"]).column("text").to_pylist()
    normalise = tokenizer.normalizer.normalize_str
    words = changed = accent_changed = 0
    images: dict[str, set[str]] = {}
    for text in texts:
        for word in text.split():
            normalised = normalise(word)
            words += 1
            if normalised != word:
                changed += 1
                if normalised != word.lower() and unicodedata.normalize("NFD", word.lower()) != normalised:
                    accent_changed += 1
            images.setdefault(normalised, set()).add(word.lower())
    collisions = sum(len(originals) for originals in images.values() if len(originals) > 1)
    return {"words": words, "changed": changed, "accent_changed": accent_changed, "collisions": collisions}
