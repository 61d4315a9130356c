import json
import os
import shutil
import subprocess
import sys

import pytest
import torch
from train_fixtures import REPO, build_instance_dir


PROBE = str(REPO / "tests" / "distributed_probe.py")


def _torchrun(nproc: int, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(nproc), *args]
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=timeout,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    return result


def _train_args(data, run_dir, *extra: str) -> list[str]:
    return ["-m", "linkbert.train", "--data", str(data), "--output", str(run_dir), "--max-steps", "4",
            "--global-batch-size", "8", "--micro-batch-size", "2", "--num-workers", "2", "--log-every", "1",
            "--save-every", "2", "--keep-checkpoints", "0", "--threads", "1", "--no-progress", "--no-tensorboard",
            "--zero-stage", "1", "--hidden-dropout", "0", "--attention-dropout", "0", *extra]


@pytest.mark.slow
def test_two_cpu_ranks_under_a_launcher_and_a_two_rank_checkpoint_resumed(tmp_path):
    """Two gloo ranks x two loader workers: data-parallel steps, reduced metrics, per-stream positions;
    the step-2 checkpoint resumed by two ranks gives the uninterrupted run's weights at step 4, and
    one rank can resume it too (a new data epoch, with a warning)."""
    from linkbert.train.checkpoint import module_state_dict, write_latest

    data = build_instance_dir(tmp_path / "data", num_docs=24, rows_per_group=8)
    run_dir = tmp_path / "run"
    result = _torchrun(2, *_train_args(data.root, run_dir))
    assert "2 accumulation x 2 device(s)" in result.stdout
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [1, 2, 3, 4]
    # Samples are summed over both ranks: 8 sequences a step (an epoch end may shorten one micro-batch).
    assert 6 < records[-1]["samples"] <= 8
    state = torch.load(run_dir / "checkpoints" / "step00000004" / "mp_rank_00_model_states.pt",
                       map_location="cpu", weights_only=False)
    assert state["world_size"] == 2 and state["streams_per_rank"] == 2
    assert [sorted(rank["positions"]) for rank in state["loader"]] == [[0, 1], [2, 3]]
    assert (run_dir / "hf" / "model.safetensors").exists()
    uninterrupted = module_state_dict(str(run_dir / "checkpoints"), "step00000004")

    # Two ranks resume the step-2 checkpoint written by two ranks.
    resumed_dir = tmp_path / "resumed"
    shutil.copytree(run_dir, resumed_dir)
    shutil.rmtree(resumed_dir / "checkpoints" / "step00000004")
    shutil.rmtree(resumed_dir / "hf")
    write_latest(str(resumed_dir / "checkpoints"), "step00000002")
    result = _torchrun(2, *_train_args(data.root, resumed_dir, "--resume"))
    assert "resumed from" in result.stdout and "step00000002 at step 2" in result.stdout
    resumed = module_state_dict(str(resumed_dir / "checkpoints"), "step00000004")
    assert resumed.keys() == uninterrupted.keys()
    assert all(torch.equal(resumed[name], uninterrupted[name]) for name in resumed), "2-rank resume is not exact"
    resumed_records = [json.loads(line) for line in (resumed_dir / "metrics.jsonl").read_text().splitlines()]
    timing = ("samples_per_s", "tokens_per_s", "tflops_per_s", "mfu", "mfu_dense_equivalent")
    assert [{k: v for k, v in r.items() if k not in timing} for r in resumed_records] == [
        {k: v for k, v in r.items() if k not in timing} for r in records]

    # One rank resumes the same checkpoint: the ZeRO-1 optimizer partitions of two ranks do not fit one, so
    # the weights and schedule are restored and Adam's moments restart (DeepSpeed refused it outright before).
    single_dir = tmp_path / "single"
    shutil.copytree(resumed_dir, single_dir)
    shutil.rmtree(single_dir / "checkpoints" / "step00000004")
    shutil.rmtree(single_dir / "hf")
    write_latest(str(single_dir / "checkpoints"), "step00000002")
    result = _torchrun(1, *_train_args(data.root, single_dir, "--resume", "--max-steps", "3"))
    assert "step00000002 at step 2" in result.stdout
    assert "with 1 rank(s) x 2 worker(s) instead of 2 x 2" in result.stderr
    assert "partitioned over 2 ranks, not 1" in result.stderr
    single = module_state_dict(str(single_dir / "checkpoints"), "step00000003")
    step2 = module_state_dict(str(run_dir / "checkpoints"), "step00000002")
    moved = max(float((single[name] - step2[name]).abs().max()) for name in single)
    # One Adam step from fresh moments moves a weight by at most the learning rate (0.005, the tiny preset's
    # peak): the step-2 weights were restored whole, then trained on.
    assert 0 < moved <= 0.0051, moved


@pytest.mark.slow
def test_two_ranks_read_disjoint_rows_covering_the_epoch(tmp_path):
    data = build_instance_dir(tmp_path / "data", num_docs=24, rows_per_group=8)
    out = tmp_path / "coverage.json"
    _torchrun(2, PROBE, "coverage", str(data.root), str(out))
    report = json.loads(out.read_text())
    first, second = report["seen"]
    assert report["world_size"] == 2 and report["rows"] == data.num_train_rows
    assert len(first) == len(set(first)) and len(second) == len(set(second)), "a rank read a row twice"
    assert not set(first) & set(second), "the ranks' rows overlap"
    assert sorted(first + second) == list(range(data.num_train_rows))
    assert abs(len(first) - len(second)) <= 8  # row groups of 8 dealt round-robin


@pytest.mark.slow
def test_two_ranks_average_gradients_like_one_process_with_double_the_micro_batch(tmp_path):
    data = build_instance_dir(tmp_path / "data", num_docs=24, rows_per_group=8)
    runs = {}
    for name, nproc, extra in (("one", 1, ()), ("two", 2, ()), ("two_unreduced", 2, ("--no-allreduce",))):
        out = tmp_path / f"{name}.pt"
        _torchrun(nproc, PROBE, "steps", str(data.root), str(out), "--global-batch", "8", "--steps", "3", *extra)
        runs[name] = torch.load(out, map_location="cpu", weights_only=False)
    one, two, control = runs["one"], runs["two"], runs["two_unreduced"]
    assert one["world_size"] == 1 and two["world_size"] == 2

    def largest_difference(first: dict, second: dict) -> float:
        assert first.keys() == second.keys()
        return max(float((first[name] - second[name]).abs().max()) for name in first)

    scale = max(float(g.abs().max()) for g in one["gradients"].values())
    # Rank 0's gradient after the all-reduce is the mean over both ranks' rows: the one-process gradient.
    assert largest_difference(two["gradients"], one["gradients"]) < 1e-4 * scale
    assert largest_difference(two["parameters"], one["parameters"]) < 1e-5
    assert two["losses"] == pytest.approx(one["losses"], rel=1e-5)
    # Without the all-reduce, rank 0 follows its own half of the batch: the comparison catches it.
    assert largest_difference(control["gradients"], one["gradients"]) > 1e-2 * scale
    assert largest_difference(control["parameters"], one["parameters"]) > 1e-4


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
