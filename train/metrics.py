"""Training metrics: accumulated on the device between log steps, reduced over ranks, then written to
the console (a progress bar), ``RUNDIR/metrics.jsonl`` and TensorBoard."""

from __future__ import annotations

import json
import math
import os
import time

import torch

from linkbert.train.model import RELATIONS, PretrainingOutput

# Peak dense fp16/bf16 tensor throughput (TFLOP/s) for the MFU estimate; --peak-tflops overrides.
PEAK_TFLOPS = {"H200": 989.0, "H100": 989.0, "A100": 312.0, "L40S": 362.0, "A10G": 125.0, "L4": 121.0,
               "V100": 125.0, "T4": 65.0, "A6000": 155.0}


def peak_tflops(device: torch.device) -> float | None:
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    for key, value in PEAK_TFLOPS.items():
        if key in name:
            return value
    return None


class StepAccumulator:
    """Sums over the micro-batches since the last log; one tensor so a single all-reduce covers it."""

    # mlm correct, mlm count, loss, mlm loss, drp loss, micro-batches, drp correct x3, drp count x3, sbo loss,
    # FLOPs performed, samples, tokens
    SBO = 6 + 2 * len(RELATIONS)
    FLOPS = SBO + 1
    SIZE = SBO + 4

    def __init__(self, device: torch.device, drp: bool = True):
        self.sums = torch.zeros(self.SIZE, dtype=torch.float64, device=device)
        self.drp = drp  # False for --no-drp: the relation head is not trained, so its numbers are not reported

    @torch.no_grad()
    def add(self, output: PretrainingOutput, mlm_labels: torch.Tensor, relation: torch.Tensor, num_tokens: int) -> None:
        s = self.sums
        s[0] += (output.mlm_logits.argmax(-1) == mlm_labels).sum()
        s[1] += mlm_labels.numel()
        s[2] += output.loss.detach().double()
        s[3] += output.mlm_loss.detach().double()
        if output.drp_loss is not None:
            s[4] += output.drp_loss.detach().double()
        s[5] += 1
        predicted = output.drp_logits.argmax(-1)
        for index in range(len(RELATIONS)):
            of_relation = relation == index
            s[6 + index] += (of_relation & (predicted == relation)).sum()
            s[6 + len(RELATIONS) + index] += of_relation.sum()
        if output.sbo_loss is not None:
            s[self.SBO] += output.sbo_loss.detach().double()
        s[self.FLOPS] += output.flops
        s[-2] += relation.numel()
        s[-1] += num_tokens

    def reduce(self) -> dict:
        sums = self.sums.clone()
        if torch.distributed.is_initialized() and torch.distributed.get_world_size() > 1:
            torch.distributed.all_reduce(sums)
            sums[2:6] /= torch.distributed.get_world_size()
            sums[self.SBO] /= torch.distributed.get_world_size()
        values = sums.tolist()
        micro = max(values[5], 1.0)
        n = len(RELATIONS)
        drp_correct, drp_count = values[6:6 + n], values[6 + n:6 + 2 * n]
        record = {
            "loss": values[2] / micro,
            "mlm_loss": values[3] / micro,
            "mlm_acc": values[0] / max(values[1], 1.0),
            "drp_loss": values[4] / micro,
            "drp_acc": sum(drp_correct) / max(sum(drp_count), 1.0),
        }
        for name, correct, count in zip(RELATIONS, drp_correct, drp_count):
            record[f"drp_acc_{name}"] = correct / count if count else None
        if not self.drp:
            record.update({key: None for key in record if key.startswith("drp_")})
        record["sbo_loss"] = values[self.SBO] / micro if values[self.SBO] else None
        record["flops"] = values[self.FLOPS]  # over all ranks
        record["samples"] = int(values[-2])
        record["tokens"] = int(values[-1])
        self.sums.zero_()
        return record


class MetricsWriter:
    """Rank 0 writes; other ranks only take part in the reductions."""

    def __init__(self, run_dir: str, enabled: bool, total_steps: int, start_step: int, tensorboard: bool = True,
                 progress: bool = True, dense_flops_per_token: float | None = None, peak_tflops: float | None = None,
                 world_size: int = 1):
        self.enabled = enabled
        self.dense_flops_per_token, self.peak_tflops, self.world_size = dense_flops_per_token, peak_tflops, world_size
        self.last_time = time.perf_counter()
        self.jsonl = self.board = self.bar = None
        if not enabled:
            return
        from linkbert.train.checkpoint import trim_metrics

        trim_metrics(os.path.join(run_dir, "metrics.jsonl"), start_step)  # a resume re-logs the later steps
        self.jsonl = open(os.path.join(run_dir, "metrics.jsonl"), "a", encoding="utf-8")
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self.board = SummaryWriter(os.path.join(run_dir, "tensorboard"), purge_step=start_step + 1)
        if progress:
            from tqdm import tqdm

            self.bar = tqdm(total=total_steps, initial=start_step, unit="step", dynamic_ncols=True)

    def log(self, step: int, record: dict, steps_since_last: int) -> dict:
        now = time.perf_counter()
        elapsed = max(now - self.last_time, 1e-9)
        self.last_time = now
        record = {"step": step, **record}
        record["samples_per_s"] = record["samples"] / elapsed
        record["tokens_per_s"] = record["tokens"] / elapsed
        # MFU from the FLOPs the steps performed (the model counts them per micro-batch); the dense
        # equivalent credits every token with 6N + 12LHT, as if the MLM head and last layer ran everywhere.
        record["tflops_per_s"] = record.pop("flops") / elapsed / self.world_size / 1e12  # per device
        if self.peak_tflops:
            record["mfu"] = record["tflops_per_s"] / self.peak_tflops
            if self.dense_flops_per_token:
                dense = record["tokens_per_s"] * self.dense_flops_per_token / self.world_size
                record["mfu_dense_equivalent"] = dense / (self.peak_tflops * 1e12)
        if self.enabled:
            self.jsonl.write(json.dumps(record) + "\n")
            self.jsonl.flush()
            if self.board is not None:
                for key, value in record.items():
                    if key != "step" and isinstance(value, (int, float)) and math.isfinite(value):
                        self.board.add_scalar(f"train/{key}", value, step)
            if self.bar is not None:
                self.bar.update(steps_since_last)
                shown = {"loss": f"{record['loss']:.3f}", "mlm": f"{record['mlm_acc']:.3f}"}
                if record["drp_acc"] is not None:
                    shown["drp"] = f"{record['drp_acc']:.3f}"
                self.bar.set_postfix(**shown, lr=f"{record['lr']:.2e}", tok_s=f"{record['tokens_per_s']:.0f}",
                                     refresh=False)
        return record

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        if self.board is not None:
            self.board.close()
        if self.jsonl is not None:
            self.jsonl.close()
