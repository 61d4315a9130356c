"""Versioned Arrow schemas of the tables the pipeline writes, loaded from the JSON files beside this module.

Versioning: ``MAJOR.MINOR``. An additive change (a new nullable column) bumps MINOR; anything else
(a removed, renamed or retyped column) bumps MAJOR. Readers accept any MINOR of a MAJOR they know and
refuse an unknown MAJOR (see ``check_compatible``).
"""

from __future__ import annotations

import functools
import json
from importlib import resources

import pyarrow as pa

TABLES = ("documents", "edges", "segments", "instances")

# Parquet key-value metadata keys written into every file.
META_TABLE = b"linkbert.table"
META_SCHEMA_VERSION = b"linkbert.schema_version"
META_TOKENIZER_FINGERPRINT = b"linkbert.tokenizer_fingerprint"

_SCALAR_TYPES = {
    "string": pa.string(),
    "int8": pa.int8(),
    "int32": pa.int32(),
    "int64": pa.int64(),
    "float32": pa.float32(),
    "float64": pa.float64(),
    "bool": pa.bool_(),
}


class SchemaError(ValueError):
    """A table, file or row does not match the declared schema."""


def _arrow_type(type_name: str) -> pa.DataType:
    if type_name.startswith("list<") and type_name.endswith(">"):
        return pa.list_(_arrow_type(type_name[5:-1]))
    if type_name.startswith("struct<") and type_name.endswith(">"):  # struct<name:type,...> of scalars
        members = [member.split(":", 1) for member in type_name[7:-1].split(",")]
        return pa.struct([pa.field(member.strip(), _arrow_type(kind.strip())) for member, kind in members])
    try:
        return _SCALAR_TYPES[type_name]
    except KeyError:
        raise SchemaError(f"unknown column type {type_name!r} in schema definition") from None


@functools.cache
def definition(table: str) -> dict:
    """The JSON definition of ``table`` (name, version, description, fields)."""
    if table not in TABLES:
        raise SchemaError(f"unknown table {table!r}; known: {', '.join(TABLES)}")
    text = resources.files(__name__).joinpath(f"{table}.json").read_text(encoding="utf-8")
    return json.loads(text)


def version(table: str) -> str:
    return definition(table)["version"]


def arrow_schema(table: str, tokenizer_fingerprint: str | None = None) -> pa.Schema:
    """The Arrow schema of ``table``, with the linkbert key-value metadata attached."""
    spec = definition(table)
    fields = [pa.field(f["name"], _arrow_type(f["type"]), nullable=f["nullable"]) for f in spec["fields"]]
    metadata = {META_TABLE: table.encode(), META_SCHEMA_VERSION: spec["version"].encode()}
    if tokenizer_fingerprint is not None:
        metadata[META_TOKENIZER_FINGERPRINT] = tokenizer_fingerprint.encode()
    return pa.schema(fields, metadata=metadata)


def validate_table(table: pa.Table, name: str, where: str = "") -> None:
    """Raise ``SchemaError`` unless ``table`` has exactly the columns, types and nullability of ``name``."""
    expected = arrow_schema(name)
    origin = f" ({where})" if where else ""
    actual_names = table.schema.names
    if actual_names != expected.names:
        missing = [n for n in expected.names if n not in actual_names]
        extra = [n for n in actual_names if n not in expected.names]
        raise SchemaError(
            f"{name}{origin}: columns {actual_names} do not match schema {expected.names}"
            f" (missing {missing}, unexpected {extra})"
        )
    for field in expected:
        column = table.column(field.name)
        if not column.type.equals(field.type):
            raise SchemaError(
                f"{name}{origin}: column {field.name!r} has type {column.type}, schema {version(name)} says {field.type}"
            )
        if not field.nullable and column.null_count:
            raise SchemaError(f"{name}{origin}: column {field.name!r} has {column.null_count} nulls but is not nullable")


def to_table(rows: list[dict], name: str, tokenizer_fingerprint: str | None = None, where: str = "") -> pa.Table:
    """Build a validated Arrow table of ``name`` from row dicts; a row that does not fit raises ``SchemaError``."""
    schema = arrow_schema(name, tokenizer_fingerprint)
    try:
        table = pa.Table.from_pylist(rows, schema=schema)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, KeyError) as exc:
        raise SchemaError(f"{name}{' (' + where + ')' if where else ''}: rows do not fit schema {version(name)}: {exc}") from exc
    validate_table(table, name, where)
    return table


def check_compatible(file_metadata: dict[bytes, bytes] | None, name: str, where: str) -> None:
    """Refuse a Parquet file whose key-value metadata names another table or an unknown major version."""
    metadata = file_metadata or {}
    found_table = metadata.get(META_TABLE, b"").decode()
    found_version = metadata.get(META_SCHEMA_VERSION, b"").decode()
    if found_table != name:
        raise SchemaError(f"{where}: not a linkbert {name} file (table metadata {found_table!r})")
    if not found_version:
        raise SchemaError(f"{where}: no {META_SCHEMA_VERSION.decode()} in the file metadata")
    if found_version.split(".")[0] != version(name).split(".")[0]:
        raise SchemaError(
            f"{where}: {name} schema version {found_version} has a major version this reader does not know"
            f" (reader knows {version(name)})"
        )


def tokenizer_fingerprint(vocab: dict[str, int]) -> str:
    """A hash of a WordPiece vocabulary (token -> id): equal vocabularies give equal fingerprints.

    Written into every segments/instances file so that a trainer refuses shards tokenized with a
    vocabulary other than its own.
    """
    import hashlib

    digest = hashlib.sha256()
    for token, token_id in sorted(vocab.items(), key=lambda item: item[1]):
        digest.update(f"{token_id}\t{token}\n".encode("utf-8"))
    return "sha256:" + digest.hexdigest()[:32]
