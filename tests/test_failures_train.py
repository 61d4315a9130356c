"""Trainer and eval input checks, rerun refusal and offline loading (issue 14): each bad input is one
line naming the file and what is wrong, before any training starts."""

import json
import time

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from train_fixtures import build_instance_dir, table_of, write_shards

from linkbert.cli import main as linkbert
from linkbert.train.checkpoint import prepare_run_dir
from linkbert.train.cli import main
from linkbert.train.metrics import MetricsWriter


def test_max_steps_zero_is_refused(tmp_path, capsys):
    with pytest.raises(SystemExit) as raised:
        main(["--data", str(tmp_path), "--output", str(tmp_path / "run"), "--max-steps", "0"])
    assert raised.value.code == 2 and "--max-steps: must be an integer >= 1, got 0" in capsys.readouterr().err


def test_rerun_over_checkpoints_is_refused_and_overwrite_clears(tmp_path):
    data = build_instance_dir(tmp_path / "data", num_docs=12)
    run = tmp_path / "run"
    (run / "checkpoints" / "step00000010").mkdir(parents=True)
    (run / "metrics.jsonl").write_text('{"step": 10}\n')
    with pytest.raises(SystemExit, match=r"holds an earlier run: 1 checkpoint\(s\) \(latest step00000010\); give --resume"):
        main(["--data", str(data.root), "--output", str(run)])
    assert (run / "checkpoints" / "step00000010").is_dir()
    with pytest.raises(SystemExit, match="--resume and --overwrite contradict"):
        main(["--data", str(data.root), "--output", str(run), "--resume", "--overwrite"])
    prepare_run_dir(str(run), resume=False, overwrite=True)
    assert not (run / "checkpoints").exists() and not (run / "metrics.jsonl").exists()
    prepare_run_dir(str(run), resume=False, overwrite=False)  # nothing left to refuse


def test_resume_keeps_each_step_of_metrics_once(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text("".join(json.dumps({"step": step, "loss": 1.0}) + "\n" for step in range(10, 60, 10)) + '{"step": 6')
    writer = MetricsWriter(str(tmp_path), True, 100, 30, tensorboard=False, progress=False)
    writer.jsonl.write(json.dumps({"step": 40}) + "\n")
    writer.jsonl.close()
    steps = [json.loads(line)["step"] for line in path.read_text().splitlines()]
    assert steps == [10, 20, 30, 40]


@pytest.mark.parametrize("option", ["--data", "--init"])
def test_missing_local_paths_are_one_line_without_the_network(tmp_path, option):
    data = build_instance_dir(tmp_path / "data", num_docs=12)
    args = {"--data": str(data.root), "--output": str(tmp_path / "run")}
    args[option] = "no-such-user/no-such-model"
    started = time.monotonic()
    with pytest.raises(SystemExit, match=f"{option} no-such-user/no-such-model: no such directory"):
        main([item for pair in args.items() for item in pair])
    assert time.monotonic() - started < 10  # no Hub retries


def test_eval_on_a_missing_or_foreign_model_dir_names_it(tmp_path):
    data = build_instance_dir(tmp_path / "data", num_docs=12)
    with pytest.raises(SystemExit, match="^linkbert eval intrinsic: --model no-such/model: no such directory"):
        linkbert(["eval", "intrinsic", "--model", "no-such/model", "--data", str(data.root)])
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "config.json").write_text(json.dumps({"model_type": "t5", "d_model": 8}))
    with pytest.raises(SystemExit, match=f"--model {foreign}: cannot load its tokenizer"):
        linkbert(["eval", "intrinsic", "--model", str(foreign), "--data", str(data.root)])


def test_empty_corpus_is_named(tmp_path):
    data = build_instance_dir(tmp_path / "data", num_docs=12, num_train_shards=1)
    data.train_files[0].unlink()
    write_shards([], data.root / "instances", "train", 1, 16, data.fingerprint)
    with pytest.raises(SystemExit, match=r"instances: the 1 shard\(s\) hold no rows"):
        main(["--data", str(data.root), "--output", str(tmp_path / "run")])


@pytest.mark.parametrize("column, kind, message", [
    ("b_start", pa.string(), "column b_start is string, not an integer"),
    ("relation", pa.float64(), "column relation is double, not an integer"),
])
def test_wrongly_typed_columns_are_named(tmp_path, column, kind, message):
    data = build_instance_dir(tmp_path / "data", num_docs=12)
    path = data.train_files[1]
    table = table_of(path)
    index = table.schema.get_field_index(column)
    values = table.column(column).cast(pa.float64()) if kind == pa.float64() else pa.array(
        [str(v) for v in table.column(column).to_pylist()])
    if kind == pa.float64():
        values = pa.array([v + 0.9 for v in values.to_pylist()])
    table = table.set_column(index, pa.field(column, kind), values).replace_schema_metadata(table.schema.metadata)
    pq.write_table(table, path)
    with pytest.raises(SystemExit, match=f"{path.name}: {message}"):
        main(["--data", str(data.root), "--output", str(tmp_path / "run")])


def test_manifest_of_a_future_major_version_is_refused(tmp_path):
    data = build_instance_dir(tmp_path / "data", num_docs=12)
    manifest = data.root / "manifest.json"
    content = json.loads(manifest.read_text())
    content.setdefault("schema_version", {})["instances"] = "99.0"
    manifest.write_text(json.dumps(content))
    with pytest.raises(SystemExit, match="manifest.json: instances schema version 99.0 has a major version"):
        main(["--data", str(data.root), "--output", str(tmp_path / "run")])
