import json
import os
import signal
import subprocess
import time

import pytest
from train_fixtures import REPO, build_instance_dir, run_train, train_command

from linkbert.train import checkpoint

STEPS = 30
ARGS = ("--max-steps", str(STEPS), "--save-every", "4", "--log-every", "1", "--global-batch-size", "8",
        "--micro-batch-size", "4", "--num-workers", "2", "--seed", "3", "--lr", "3e-3", "--shuffle-buffer", "40",
        "--no-tensorboard")


def losses(run_dir):
    """Last logged loss per step (a resumed run appends to the killed run's metrics.jsonl)."""
    by_step = {}
    with open(run_dir / "metrics.jsonl") as handle:
        for line in handle:
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            by_step[record["step"]] = (record["loss"], record["mlm_loss"], record["drp_loss"])
    return by_step


@pytest.mark.slow
def test_sigkill_mid_run_then_resume_gives_the_same_losses(tmp_path):
    data = build_instance_dir(tmp_path / "data", num_docs=30, rows_per_group=10)
    reference_dir, killed_dir = tmp_path / "reference", tmp_path / "killed"
    common = ("--data", str(data.root), *ARGS)
    # The reference runs while the other is killed, to keep the test short.
    reference = subprocess.Popen(train_command(*common, "--output", str(reference_dir)), cwd=REPO,
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    victim = subprocess.Popen(train_command(*common, "--output", str(killed_dir)), cwd=REPO,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        if (killed_dir / "metrics.jsonl").exists() and max(losses(killed_dir), default=0) >= 6:
            break
        assert victim.poll() is None, "the run to be killed ended on its own"
        time.sleep(0.01)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    assert not (killed_dir / "hf").exists(), "the run finished before it was killed"
    resumed_from = int(checkpoint.latest_tag(str(killed_dir / "checkpoints")).removeprefix("step"))
    assert resumed_from % 4 == 0 and 4 <= resumed_from < STEPS

    output = run_train(*common, "--output", str(killed_dir), "--resume").stdout
    assert f"at step {resumed_from}" in output
    reference_output, _ = reference.communicate(timeout=240)
    assert reference.returncode == 0, reference_output

    expected, got = losses(reference_dir), losses(killed_dir)
    assert sorted(expected) == list(range(1, STEPS + 1))
    logged = [json.loads(line)["step"] for line in (killed_dir / "metrics.jsonl").read_text().splitlines()]
    assert logged == list(range(1, STEPS + 1))  # each step once: the killed run's later steps were dropped
    for step in range(resumed_from + 1, STEPS + 1):
        assert got[step] == pytest.approx(expected[step], rel=1e-6, abs=1e-7), f"step {step} differs after resume"
    # The losses are not trivially equal everywhere: the model learns and dropout is on.
    assert expected[STEPS][0] != expected[resumed_from + 1][0]


class _FakeEngine:
    """Stands in for a DeepSpeed engine whose save dies half-way (the process is killed mid-write)."""

    global_rank = 0

    def __init__(self, fail: bool):
        self.fail = fail

    def save_checkpoint(self, directory, tag, client_state, save_latest):
        assert save_latest is False, "DeepSpeed must not write 'latest' itself"
        os.makedirs(os.path.join(directory, tag), exist_ok=True)
        with open(os.path.join(directory, tag, "mp_rank_00_model_states.pt"), "wb") as handle:
            handle.write(b"partial")
            if self.fail:
                raise KeyboardInterrupt("killed during save")


def test_interrupted_save_keeps_latest_on_the_previous_checkpoint(tmp_path):
    directory = str(tmp_path / "checkpoints")
    checkpoint.save(_FakeEngine(fail=False), directory, 4, {})
    assert checkpoint.latest_tag(directory) == "step00000004"
    with pytest.raises(KeyboardInterrupt):
        checkpoint.save(_FakeEngine(fail=True), directory, 8, {})
    assert checkpoint.latest_tag(directory) == "step00000004"
    assert not [name for name in os.listdir(directory) if name.endswith(".tmp")]
    checkpoint.save(_FakeEngine(fail=False), directory, 12, {}, keep=2)
    assert checkpoint.latest_tag(directory) == "step00000012"
    assert sorted(os.listdir(directory)) == ["latest", "step00000008", "step00000012"]
