"""``DIR/README.md``: the dataset card, whose YAML ``configs:`` tell Hugging Face ``datasets`` which
Parquet files form which table and split, so that ``datasets.load_dataset(DIR)`` gives the instances
(``train``, and ``validation`` = the held-out documents' instances) and ``load_dataset(DIR, "documents")``
(``"edges"``, ``"segments"``) the other tables. Without it ``datasets`` guesses splits from file names
and silently drops ``heldout``, which is not a split name it knows."""

from __future__ import annotations

from apache_beam.io.filesystems import FileSystems

# (config, split as datasets names it, files under DIR)
LAYOUT = (
    ("instances", "train", "instances/train-*.parquet"),
    ("instances", "validation", "instances/heldout-*.parquet"),
    ("documents", "train", "documents/part-*.parquet"),
    ("edges", "train", "edges/part-*.parquet"),
    ("segments", "train", "segments/part-*.parquet"),
)
_SPLIT_OF = {"train": "train", "validation": "heldout"}


def empty_parts(manifest: dict) -> list[str]:
    """The configs and splits of ``LAYOUT`` without rows (``edges`` with ``--links none``)."""
    tables, splits = manifest.get("tables", {}), manifest.get("splits", {})
    return [f"{config}[{split}]" if config == "instances" else config for config, split, _ in LAYOUT
            if not (splits.get(_SPLIT_OF[split], {}) if config == "instances" else tables.get(config, {})).get("rows", 0)]


def card_yaml(manifest: dict) -> str:
    """The YAML header; a split or table without rows is left out: ``datasets`` refuses an empty pattern
    and fails on a 0-row Parquet file (``ArrowInvalid: BatchSize must be greater than 0``), which the
    writer keeps for an empty table so that pyarrow, pandas and DuckDB find the table."""
    empty = set(empty_parts(manifest))
    lines = ["configs:"]
    current = None
    for config, split, pattern in LAYOUT:
        if (f"{config}[{split}]" if config == "instances" else config) in empty:
            continue
        if config != current:
            lines.append(f"- config_name: {config}")
            if config == "instances":
                lines.append("  default: true")
            lines.append("  data_files:")
            current = config
        lines.append(f"  - split: {split}")
        lines.append(f"    path: \"{pattern}\"")
    return "\n".join(lines) + "\n"


def card_text(manifest: dict) -> str:
    rows = {name: info.get("rows", 0) for name, info in manifest.get("tables", {}).items()}
    splits = {name: info.get("rows", 0) for name, info in manifest.get("splits", {}).items()}
    options = manifest.get("options", {})
    return (
        "---\n" + card_yaml(manifest) + "---\n\n"
        "# LinkBERT pretraining data\n\n"
        f"Built by `linkbert pipeline --source {options.get('source', '?')} --links {options.get('links', '?')}`.\n"
        "Each instance pairs an anchor segment A with a segment B: `relation` 0 = contiguous (the next segment "
        "of the same document), 1 = random (another document), 2 = linked (a document A's document links to).\n"
        "`input_ids` is `[CLS] A [SEP] B [SEP]`; `b_start` is the index of B's first token. The `validation` "
        "split holds the instances of the held-out documents. Column meanings: `schemas/README.md` of linkbert; "
        "counts and options: `manifest.json`.\n\n"
        "| table | rows |\n|---|---|\n"
        + "".join(f"| {name} | {count} |\n" for name, count in sorted(rows.items()))
        + "".join(f"| instances[{'validation' if name == 'heldout' else name}] | {count} |\n"
                  for name, count in sorted(splits.items()))
        + (f"\nNo rows, so no `datasets` config: {', '.join(empty_parts(manifest))}.\n" if empty_parts(manifest) else "")
        + "\n```python\nimport datasets\ninstances = datasets.load_dataset(DIR)  # train + validation\n"
        "documents = datasets.load_dataset(DIR, \"documents\")\n```\n"
    )


def write_dataset_card(output: str, manifest: dict) -> str:
    path = FileSystems.join(output, "README.md")
    with FileSystems.create(path) as handle:
        handle.write(card_text(manifest).encode("utf-8"))
    return path
