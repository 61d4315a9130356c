import subprocess

import pytest
from train_fixtures import REPO, build_instance_dir, rewrite_metadata, train_command

from linkbert.train.cli import main


def test_refuses_shards_of_another_tokenizer_before_starting(tmp_path):
    data = build_instance_dir(tmp_path / "data", num_docs=12)
    rewrite_metadata(data.train_files[1], tokenizer_fingerprint="sha256:" + "f" * 32)
    with pytest.raises(SystemExit, match="train-00001-of-00002.parquet: tokenized with vocabulary sha256:f+"):
        main(["--data", str(data.root), "--output", str(tmp_path / "run")])


def test_missing_shard_is_named(tmp_path):
    data = build_instance_dir(tmp_path / "data", num_docs=12, num_train_shards=3)
    data.train_files[2].unlink()
    with pytest.raises(SystemExit, match="missing shard .*train-00002-of-00003.parquet"):
        main(["--data", str(data.root), "--output", str(tmp_path / "run")])


@pytest.mark.slow
def test_aborts_after_consecutive_non_finite_losses(tmp_path):
    data = build_instance_dir(tmp_path / "data", num_docs=12)
    command = train_command("--data", str(data.root), "--output", str(tmp_path / "run"), "--max-steps", "40",
                            "--global-batch-size", "4", "--micro-batch-size", "4", "--lr", "1e30",
                            "--warmup-steps", "1", "--max-nonfinite", "3", "--num-workers", "0", "--no-tensorboard")
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode != 0
    assert "the loss was not finite for 3 consecutive steps" in result.stderr
    assert not (tmp_path / "run" / "hf").exists()
