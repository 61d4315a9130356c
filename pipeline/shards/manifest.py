"""manifest.json: schema versions, tokenizer, options, per-table and per-shard counts, realised relation mix."""

from __future__ import annotations

import json

from apache_beam.io.filesystems import FileSystems

from linkbert import schemas
from linkbert.pipeline.instances.pairing import RELATION_NAMES


def write_manifest(stats: list[dict], output: str, options: dict, tokenizer: dict, probabilities: dict,
                   a_only: dict | None = None) -> str:
    """manifest.json: versions, tokenizer, options, per-table and per-shard counts, realised relation mix."""
    tables: dict[str, dict] = {}
    for entry in sorted(stats, key=lambda item: (item["table"], item["file"])):
        table = tables.setdefault(entry["table"], {"rows": 0, "files": []})
        table["rows"] += entry["rows"]
        table["files"].append({key: value for key, value in entry.items() if key != "table"})
    splits = {}
    for entry in tables.get("instances", {}).get("files", []):
        split = splits.setdefault(entry["split"], {"rows": 0, "tokens": 0, "relations": {}, "link_types": {}})
        split["rows"] += entry["rows"]
        split["tokens"] += entry.get("tokens", 0)
        for relation, count in entry.get("relations", {}).items():
            name = RELATION_NAMES[int(relation)]
            split["relations"][name] = split["relations"].get(name, 0) + count
        for link_type, count in entry.get("link_types", {}).items():
            split["link_types"][link_type] = split["link_types"].get(link_type, 0) + count
    for split in splits.values():
        split["relation_mix"] = {name: round(count / split["rows"], 4) for name, count in split["relations"].items()} if split["rows"] else {}
    manifest = {
        "schema_version": {name: schemas.version(name) for name in schemas.TABLES},
        "tokenizer": {"fingerprint": tokenizer["fingerprint"], "vocab_size": tokenizer["vocab_size"],
                      "lowercase": tokenizer["lowercase"], "strip_accents": tokenizer.get("strip_accents"),
                      "path": "tokenizer"},
        "a_only_classifier": a_only,
        "options": options,
        "relation_ids": {name: relation for relation, name in RELATION_NAMES.items()},
        "relation_probabilities": {klass: [round(p, 6) for p in values] for klass, values in sorted(probabilities.items())},
        "splits": splits,
        "tables": tables,
    }
    path = FileSystems.join(output, "manifest.json")
    with FileSystems.create(path) as handle:
        handle.write(json.dumps(manifest, indent=2, sort_keys=True).encode("utf-8"))
    return path
