"""Learning-rate schedule: linear warm-up to the peak, then linear decay to zero at the last step.

DeepSpeed's ``WarmupDecayLR`` runs it (so its state lives in DeepSpeed checkpoints); ``lr_at`` states
the same curve as a formula, for logs and tests.
"""

from __future__ import annotations

from linkbert.train.presets import Schedule


def deepspeed_scheduler(schedule: Schedule) -> dict:
    return {
        "type": "WarmupDecayLR",
        "params": {
            "warmup_min_lr": 0.0,
            "warmup_max_lr": schedule.lr,
            # DeepSpeed wants a positive warm-up; it uses at least 2 steps.
            "warmup_num_steps": max(1, schedule.warmup_steps),
            "total_num_steps": schedule.max_steps,
            "warmup_type": "linear",
        },
    }


def lr_at(step: int, schedule: Schedule) -> float:
    """The learning rate optimizer step ``step`` (1-based) uses under WarmupDecayLR.

    DeepSpeed's scheduler starts at its minimum (0) and is stepped after each optimizer step, so steps 1
    and 2 run at 0 and the warm-up lasts at least 2 steps.
    """
    iteration = step - 2
    if iteration < 0:
        return 0.0
    warmup = max(2, schedule.warmup_steps)
    if iteration < warmup:
        return schedule.lr * iteration / warmup
    return schedule.lr * max(0.0, (schedule.max_steps - iteration) / max(1.0, schedule.max_steps - warmup))
