import json
import subprocess
import sys

import pytest
import torch
from train_fixtures import REPO, build_instance_dir


@pytest.mark.slow
def test_two_cpu_ranks_under_a_launcher(tmp_path):
    """Two gloo ranks x two loader workers: data-parallel steps, reduced metrics, per-stream positions."""
    data = build_instance_dir(tmp_path / "data", num_docs=24, rows_per_group=8)
    run_dir = tmp_path / "run"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               "-m", "train", "--data", str(data.root), "--output", str(run_dir), "--max-steps", "4",
               "--global-batch-size", "8", "--micro-batch-size", "2", "--num-workers", "2", "--log-every", "2",
               "--save-every", "4", "--threads", "1", "--no-progress", "--no-tensorboard", "--zero-stage", "1"]
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    assert "2 accumulation x 2 device(s)" in result.stdout
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [2, 4]
    # Samples are summed over both ranks: 2 steps x 8 sequences (an epoch end may shorten one micro-batch).
    assert 12 < records[-1]["samples"] <= 16
    state = torch.load(run_dir / "checkpoints" / "step00000004" / "mp_rank_00_model_states.pt",
                       map_location="cpu", weights_only=False)
    assert state["world_size"] == 2 and state["streams_per_rank"] == 2
    assert [sorted(rank["positions"]) for rank in state["loader"]] == [[0, 1], [2, 3]]
    assert (run_dir / "hf" / "model.safetensors").exists()


@pytest.mark.slow
def test_bf16_zero_stage_1_without_drp_and_with_span_masking(tmp_path):
    from safetensors.torch import load_file
    from train_fixtures import run_train

    data = build_instance_dir(tmp_path / "data", num_docs=12)
    run_dir = tmp_path / "run"
    run_train("--data", str(data.root), "--output", str(run_dir), "--precision", "bf16", "--zero-stage", "1",
              "--max-steps", "3", "--global-batch-size", "4", "--micro-batch-size", "2", "--num-workers", "0",
              "--no-tensorboard", "--log-every", "1", "--no-drp", "--masking", "span")
    assert list((run_dir / "checkpoints" / "step00000003").glob("bf16_zero_pp_rank_0_*optim_states.pt"))
    weights = load_file(run_dir / "hf" / "model.safetensors")
    assert all(t.dtype == torch.float32 for t in weights.values()), "the export is not consolidated fp32"
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert len(records) == 3 and all(r["loss"] == r["mlm_loss"] for r in records), "DRP counted without --no-drp"
    assert all(r["drp_acc"] is None and r["drp_loss"] is None for r in records)
    assert json.loads((run_dir / "run.json").read_text())["masking"] == "span"
