import pyarrow as pa
import pytest

from linkbert import schemas


def _instance_row(**overrides):
    row = {"input_ids": [2, 10, 3, 11, 3], "b_start": 3, "relation": 2, "link_type": "hyperlink", "doc_a": "1",
           "seg_a": 0, "doc_b": "2", "seg_b": 1, "round": 0, "num_tokens": 5}
    row.update(overrides)
    return row


@pytest.mark.parametrize("table", schemas.TABLES)
def test_every_column_is_documented(table):
    readme = (schemas.resources.files("linkbert.schemas") / "README.md").read_text()
    for field in schemas.definition(table)["fields"]:
        assert f"`{field['name']}`" in readme, f"{table}.{field['name']} missing from schemas/README.md"
        assert field["description"]


def test_valid_rows_round_trip_with_metadata():
    table = schemas.to_table([_instance_row()], "instances", tokenizer_fingerprint="sha256:abc")
    assert table.schema.metadata[schemas.META_TOKENIZER_FINGERPRINT] == b"sha256:abc"
    assert table.schema.metadata[schemas.META_SCHEMA_VERSION] == schemas.version("instances").encode()
    assert table.column("relation").type == pa.int8()


def test_wrong_column_type_is_refused_with_a_clear_error():
    with pytest.raises(schemas.SchemaError, match="instances.*schema"):
        schemas.to_table([_instance_row(seg_a="zero")], "instances")
    bad = pa.table({name: [0] for name in schemas.arrow_schema("edges").names})
    with pytest.raises(schemas.SchemaError, match="column 'src' has type int64"):
        schemas.validate_table(bad, "edges", "edges/part-0.parquet")


def test_missing_column_and_nulls_are_refused():
    table = schemas.to_table([_instance_row()], "instances").drop_columns(["b_start"])
    with pytest.raises(schemas.SchemaError, match="missing \\['b_start'\\]"):
        schemas.validate_table(table, "instances")
    with pytest.raises(schemas.SchemaError):
        schemas.to_table([_instance_row(doc_a=None)], "instances")


def test_reader_refuses_unknown_major_version_and_other_tables():
    ok = {schemas.META_TABLE: b"instances", schemas.META_SCHEMA_VERSION: (schemas.version("instances").split(".")[0] + ".99").encode()}
    schemas.check_compatible(ok, "instances", "f.parquet")  # a newer minor version is fine
    with pytest.raises(schemas.SchemaError, match="major version"):
        schemas.check_compatible({**ok, schemas.META_SCHEMA_VERSION: b"99.0"}, "instances", "f.parquet")
    with pytest.raises(schemas.SchemaError, match="not a linkbert instances file"):
        schemas.check_compatible({**ok, schemas.META_TABLE: b"edges"}, "instances", "f.parquet")


def test_tokenizer_fingerprint_depends_on_tokens_and_ids():
    base = schemas.tokenizer_fingerprint({"[PAD]": 0, "a": 1})
    assert base == schemas.tokenizer_fingerprint({"a": 1, "[PAD]": 0})
    assert base != schemas.tokenizer_fingerprint({"[PAD]": 1, "a": 0})
