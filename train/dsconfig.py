"""DeepSpeed JSON configs: a base file per precision under ``train/configs/`` (or the user's own),
with the batch, optimizer, schedule and ZeRO stage of the run written over it."""

from __future__ import annotations

import copy
import json
from importlib import resources

from linkbert.train.presets import Preset, Schedule
from linkbert.train.schedule import deepspeed_scheduler

PRECISIONS = ("fp32", "bf16", "fp16")


def load_base(precision: str, path: str | None = None) -> dict:
    if path:
        try:
            with open(path, encoding="utf-8") as handle:
                return json.load(handle)
        except (OSError, json.JSONDecodeError) as exc:
            raise ValueError(f"--deepspeed-config {path}: {exc}") from exc
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
    text = resources.files("linkbert.train").joinpath("configs", f"{precision}.json").read_text(encoding="utf-8")
    return json.loads(text)


def build(base: dict, precision: str, preset: Preset, schedule: Schedule, world_size: int, on_cuda: bool,
          zero_stage: int | None = None, gradient_clipping: float | None = None) -> dict:
    """The config ``deepspeed.initialize`` gets: ``base`` with this run's settings written over it."""
    if precision == "fp16" and not on_cuda:
        raise ValueError("fp16 needs a GPU (DeepSpeed's CPU accelerator refuses it): use --precision bf16 or fp32")
    config = copy.deepcopy(base)
    for key in ("fp16", "bf16"):
        config.pop(key, None)
    if precision != "fp32":
        config[precision] = base.get(precision) or {"enabled": True}
        config[precision]["enabled"] = True
    config["train_batch_size"] = schedule.global_batch_size
    config["train_micro_batch_size_per_gpu"] = schedule.micro_batch_size
    config["gradient_accumulation_steps"] = schedule.gradient_accumulation_steps
    config["gradient_clipping"] = preset.gradient_clipping if gradient_clipping is None else gradient_clipping
    optimizer = config.setdefault("optimizer", {"type": "AdamW", "params": {}})
    optimizer["type"] = optimizer.get("type", "AdamW")
    params = optimizer.setdefault("params", {})
    params.update(lr=schedule.lr, betas=list(preset.betas), eps=preset.eps, weight_decay=preset.weight_decay)
    if not on_cuda:
        # DeepSpeed's FusedAdam is a CUDA op; torch's own fused CPU AdamW needs no compiled extension.
        params.update(torch_adam=True, fused=True)
    config["scheduler"] = deepspeed_scheduler(schedule)
    zero = config.setdefault("zero_optimization", {"stage": 0})
    if zero_stage is not None:
        if zero_stage not in (0, 1, 2):
            raise ValueError(f"--zero-stage must be 0, 1 or 2, got {zero_stage}")
        zero["stage"] = zero_stage
    if not on_cuda:
        zero.pop("overlap_comm", None)
    config.setdefault("steps_per_print", 10**9)
    return config
