"""Shards the ecosystem reads (issue 14): no 0-row shard, and a dataset card whose YAML ``configs:``
make ``datasets.load_dataset(DIR)`` give the instances with train and validation splits and the
other tables as further configs; pandas, DuckDB and pyarrow keep reading the same files."""

from pathlib import Path

import pyarrow.dataset as ds
import pyarrow.parquet as pq
from pipeline_fixtures import linked_documents, memory_source

from linkbert.pipeline import run as pipeline_run


def _run(tmp_path, name, num_docs, *extra):
    documents, redirects = linked_documents(num_docs)
    config, _ = pipeline_run.parse_config(["--source", "wikipedia", "--input", "memory", "--output",
                                           str(tmp_path / name), "--vocab-size", "300", *extra])
    return Path(config.output), pipeline_run.run(config, [], memory_source(documents, redirects))


def test_load_dataset_gives_train_validation_and_the_other_tables(tmp_path):
    import datasets
    import duckdb
    import pandas as pd

    output, manifest = _run(tmp_path, "card", 30, "--heldout-fraction", "0.2", "--num-shards", "3")
    splits = manifest["splits"]
    assert splits["heldout"]["rows"] > 0
    loaded = datasets.load_dataset(str(output), cache_dir=str(tmp_path / "hf-cache"))
    assert sorted(loaded) == ["train", "validation"]
    assert len(loaded["train"]) == splits["train"]["rows"] and len(loaded["validation"]) == splits["heldout"]["rows"]
    assert set(loaded["train"].column_names) >= {"input_ids", "b_start", "relation"}
    for table in ("documents", "edges", "segments"):
        assert len(datasets.load_dataset(str(output), table, cache_dir=str(tmp_path / "hf-cache"))["train"]) == manifest["tables"][table]["rows"]
    every = sum(info["rows"] for info in splits.values())
    assert ds.dataset(str(output / "instances"), format="parquet").count_rows() == every
    assert len(pd.read_parquet(output / "instances")) == every
    assert duckdb.sql(f"select count(*) from read_parquet('{output}/instances/*.parquet')").fetchall()[0][0] == every


def test_no_empty_shards_when_nothing_is_held_out_or_shards_outnumber_rows(tmp_path):
    import datasets

    output, manifest = _run(tmp_path, "small", 3, "--heldout-fraction", "0", "--num-shards", "100000")
    files = sorted((output / "instances").glob("*.parquet"))
    rows = manifest["splits"]["train"]["rows"]
    assert files and all(pq.ParquetFile(f).metadata.num_rows > 0 for f in files)
    assert not [f for f in files if f.name.startswith("heldout")] and len(files) == rows
    assert "heldout" not in manifest["splits"]
    loaded = datasets.load_dataset(str(output), cache_dir=str(tmp_path / "hf-cache"))
    assert list(loaded) == ["train"] and len(loaded["train"]) == rows


def test_every_config_of_the_card_loads_when_a_table_has_no_rows(tmp_path):
    import datasets

    output, manifest = _run(tmp_path, "nolinks", 12, "--links", "none", "--heldout-fraction", "0.2")
    assert manifest["tables"]["edges"]["rows"] == 0  # --links none: no edges, one 0-row file for pyarrow readers
    assert ds.dataset(str(output / "edges"), format="parquet").count_rows() == 0
    configs = datasets.get_dataset_config_names(str(output))
    assert sorted(configs) == ["documents", "instances", "segments"]
    for config in configs:  # a 0-row file in a config fails: ArrowInvalid: BatchSize must be greater than 0
        loaded = datasets.load_dataset(str(output), config, cache_dir=str(tmp_path / "hf-cache"))
        assert all(len(split) > 0 for split in loaded.values())
    assert "No rows, so no `datasets` config: edges." in (output / "README.md").read_text()
