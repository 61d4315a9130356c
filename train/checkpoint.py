"""DeepSpeed checkpoints with a crash-safe ``latest`` pointer, and the RNG state that exact resume needs.

DeepSpeed writes ``latest`` before it is sure the tag is complete; here ``save_checkpoint`` runs with
``save_latest=False`` and ``latest`` is replaced atomically (write, fsync, rename) only after every
rank's files are written and flushed. A save killed half-way leaves ``latest`` on the previous tag.
"""

from __future__ import annotations

import glob
import logging
import os
import random
import shutil

import numpy as np
import torch

from linkbert.train import distributed

LATEST = "latest"
TAG_PREFIX = "step"

log = logging.getLogger(__name__)


def tag_for(step: int) -> str:
    return f"{TAG_PREFIX}{step:08d}"


def _fsync_tree(directory: str) -> None:
    for root, _, files in os.walk(directory):
        for name in files:
            with open(os.path.join(root, name), "rb") as handle:
                os.fsync(handle.fileno())
    _fsync_dir(directory)


def _fsync_dir(directory: str) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_latest(directory: str, tag: str) -> None:
    temporary = os.path.join(directory, f".{LATEST}.{os.getpid()}.tmp")
    with open(temporary, "w", encoding="utf-8") as handle:
        handle.write(tag)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, os.path.join(directory, LATEST))
    _fsync_dir(directory)


def latest_tag(directory: str) -> str | None:
    """The tag ``latest`` names, or None when there is no complete checkpoint."""
    path = os.path.join(directory, LATEST)
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as handle:
        tag = handle.read().strip()
    if not os.path.isdir(os.path.join(directory, tag)):
        raise FileNotFoundError(f"{path} names checkpoint {tag!r}, which is not in {directory}")
    return tag


def save(engine, directory: str, step: int, client_state: dict, keep: int = 2) -> str:
    """Save a checkpoint of ``engine`` at ``step`` on every rank, then point ``latest`` at it."""
    tag = tag_for(step)
    engine.save_checkpoint(directory, tag=tag, client_state=client_state, save_latest=False)
    _fsync_tree(os.path.join(directory, tag))
    distributed.barrier()
    if engine.global_rank == 0:
        write_latest(directory, tag)
        if keep > 0:
            for old in sorted(glob.glob(os.path.join(directory, TAG_PREFIX + "*")))[:-keep]:
                if os.path.basename(old) != tag:
                    shutil.rmtree(old, ignore_errors=True)
    distributed.barrier()
    return tag


def saved_data_parallel_size(directory: str, tag: str) -> int | None:
    """How many data-parallel ranks wrote ``tag``'s ZeRO optimizer partitions (None: no ZeRO partitions)."""
    return len(glob.glob(os.path.join(directory, tag, "*zero_pp_rank_*_mp_rank_00_optim_states.pt"))) or None


def resharded_resume(config: dict, directory: str, world_size: int) -> bool:
    """Prepare the DeepSpeed ``config`` of a resumed run; True when the latest checkpoint's ZeRO optimizer
    partitions were written by another number of ranks than ``world_size``.

    DeepSpeed cannot repartition ZeRO optimizer states, and restores a rank's fp32 master weights from
    that rank's own partition; over another number of ranks the partitions do not line up, so the
    master weights are rebuilt from the model weights instead (``load_from_fp32_weights`` off), which
    hold the same values in fp32 and bf16 runs (fp16 master weights lose their extra precision)."""
    tag = latest_tag(directory) if os.path.isdir(directory) else None
    saved = saved_data_parallel_size(directory, tag) if tag else None
    if saved is None or saved == world_size:
        return False
    config.setdefault("zero_optimization", {})["load_from_fp32_weights"] = False
    return True


def load(engine, directory: str, tag: str | None = None, resharded: bool = False) -> tuple[str, dict] | None:
    """Load ``tag`` (default: ``latest``) into ``engine``; returns (tag, client state), or None if there is none.

    ``resharded`` (see ``resharded_resume``): the weights and the learning-rate schedule are restored,
    the optimizer's moments start again from zero."""
    tag = tag or latest_tag(directory)
    if tag is None:
        return None
    if resharded:
        log.warning("%s: its ZeRO optimizer states were partitioned over %s ranks, not %d: the weights and the "
                    "learning-rate schedule are restored, the optimizer's moments start again", os.path.join(directory, tag),
                    saved_data_parallel_size(directory, tag), engine.dp_world_size)
    path, client_state = engine.load_checkpoint(directory, tag=tag, load_optimizer_states=not resharded,
                                                load_lr_scheduler_states=True)
    if path is None:
        raise RuntimeError(f"DeepSpeed could not load checkpoint {tag!r} from {directory}")
    scheduler = getattr(engine, "lr_scheduler", None)
    if resharded and scheduler is not None:
        # The learning rate lives in the optimizer's state, which was not loaded: set the schedule's
        # (the next step would otherwise run at the fresh optimizer's warm-up minimum, 0).
        for group, lr in zip(engine.optimizer.param_groups, scheduler.get_lr()):
            group["lr"] = lr
    return tag, client_state


def rng_state() -> dict:
    state = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"])


def module_state_dict(directory: str, tag: str) -> dict[str, torch.Tensor]:
    """The model weights of a checkpoint in fp32: ZeRO partitions consolidated, otherwise rank 0's module."""
    checkpoint_dir = os.path.join(directory, tag)
    if not os.path.isdir(checkpoint_dir):
        raise FileNotFoundError(f"no checkpoint {tag!r} in {directory}")
    model_file = os.path.join(checkpoint_dir, "mp_rank_00_model_states.pt")
    if not os.path.isfile(model_file):
        raise FileNotFoundError(f"{checkpoint_dir}: no mp_rank_00_model_states.pt")
    state = torch.load(model_file, map_location="cpu", weights_only=False)["module"]
    if glob.glob(os.path.join(checkpoint_dir, "*zero_pp_rank_*_optim_states.pt")):
        from deepspeed.utils.zero_to_fp32 import (
            get_fp32_state_dict_from_zero_checkpoint,
        )

        # The fp32 master weights of the trained parameters; frozen ones keep their module copy.
        state.update(get_fp32_state_dict_from_zero_checkpoint(directory, tag=tag))
    return {name: tensor.float() if tensor.is_floating_point() else tensor for name, tensor in state.items()}


class RunDirError(ValueError):
    """A run directory that a fresh run would clobber."""


EARLIER_RUN_FILES = ("checkpoints", "metrics.jsonl", "tensorboard", "hf")


def prepare_run_dir(run_dir: str, resume: bool, overwrite: bool) -> None:
    """A fresh run (no ``--resume``) refuses a run directory holding checkpoints or metrics of an earlier
    run unless ``overwrite``, which removes them; ``--resume`` and ``--overwrite`` together are refused."""
    if resume and overwrite:
        raise RunDirError("--resume and --overwrite contradict each other: give one")
    if resume or not os.path.isdir(run_dir):
        return
    checkpoints = os.path.join(run_dir, "checkpoints")
    earlier = sorted(glob.glob(os.path.join(checkpoints, TAG_PREFIX + "*")))
    metrics = os.path.join(run_dir, "metrics.jsonl")
    if not earlier and not os.path.isfile(metrics):
        return
    if not overwrite:
        what = f"{len(earlier)} checkpoint(s) (latest {os.path.basename(earlier[-1])})" if earlier else "metrics.jsonl"
        raise RunDirError(f"--output {run_dir} holds an earlier run: {what}; give --resume to continue it "
                          "or --overwrite to start afresh")
    for name in EARLIER_RUN_FILES:
        path = os.path.join(run_dir, name)
        if os.path.isdir(path):
            shutil.rmtree(path)
        elif os.path.exists(path):
            os.remove(path)


def trim_metrics(path: str, start_step: int) -> None:
    """Drop the records of steps after ``start_step`` (logged after the checkpoint a resume starts from),
    so that metrics.jsonl holds each step once; the file is replaced atomically."""
    if not os.path.isfile(path):
        return
    import json

    kept = []
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            try:
                step = json.loads(line).get("step")
            except ValueError:
                continue  # a line cut by a crash
            if isinstance(step, int) and step <= start_step:
                kept.append(line if line.endswith("\n") else line + "\n")
    temporary = f"{path}.{os.getpid()}.tmp"
    with open(temporary, "w", encoding="utf-8") as handle:
        handle.writelines(kept)
    os.replace(temporary, path)
