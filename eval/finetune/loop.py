"""A plain PyTorch fine-tuning loop: AdamW with linear warm-up and decay, gradient clipping at 1.0 and HF's
defaults otherwise; fp16 autocast with loss scaling on GPU, fp32 on CPU; a tqdm progress bar; seeded."""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


def device_and_precision() -> tuple[torch.device, bool]:
    """(device, fp16): fp16 on GPU, fp32 on CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda"), True
    return torch.device("cpu"), False


def make_collate(pad_token_id: int) -> Callable[[list[dict]], dict]:
    def pad(rows: list, value) -> torch.Tensor:
        # rows: lists of ints, or (multiple choice) lists of lists of ints; pad the last dimension.
        if rows and isinstance(rows[0][0], list):
            width = max(len(seq) for row in rows for seq in row)
            return torch.tensor([[seq + [value] * (width - len(seq)) for seq in row] for row in rows])
        width = max(len(row) for row in rows)
        return torch.tensor([row + [value] * (width - len(row)) for row in rows])

    def collate(features: list[dict]) -> dict:
        kind = features[0].get("_kind")
        batch = {}
        for key in features[0]:
            if key.startswith("_"):
                continue
            values = [f[key] for f in features]
            if key in ("input_ids", "attention_mask", "token_type_ids"):
                batch[key] = pad(values, pad_token_id if key == "input_ids" else 0)
            elif key == "labels" and kind == "tags":
                batch[key] = pad(values, -100)
            elif key == "labels" and kind in ("regression", "multilabel"):
                batch[key] = torch.tensor(values, dtype=torch.float32)
            else:
                batch[key] = torch.tensor(values)
        return batch

    return collate


def train(model: torch.nn.Module, features: Sequence[dict], collate, *, lr: float, epochs: float, max_steps: int | None,
          batch_size: int, grad_accum: int, warmup: float, seed: int, device: torch.device, fp16: bool,
          desc: str = "train") -> dict:
    from transformers import get_linear_schedule_with_warmup

    generator = torch.Generator().manual_seed(seed)
    loader = torch.utils.data.DataLoader(list(features), batch_size=batch_size, shuffle=True, generator=generator,
                                         collate_fn=collate)
    updates_per_epoch = max(1, math.ceil(len(loader) / grad_accum))
    total = max_steps if max_steps else max(1, math.ceil(epochs * updates_per_epoch))
    warmup_steps = int(warmup) if warmup >= 1 else math.ceil(warmup * total)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)
    scheduler = get_linear_schedule_with_warmup(optimizer, warmup_steps, total)
    scaler = torch.amp.GradScaler("cuda", enabled=fp16)
    model.to(device).train()
    step, micro, losses = 0, 0, []
    bar = tqdm(total=total, desc=desc, unit="step", leave=False)
    while step < total:
        for batch in loader:
            batch = {k: v.to(device) for k, v in batch.items()}
            with torch.autocast(device_type=device.type, dtype=torch.float16, enabled=fp16):
                loss = model(**batch).loss / grad_accum
            scaler.scale(loss).backward()
            losses.append(float(loss.detach()) * grad_accum)
            micro += 1
            if micro % grad_accum:
                continue
            scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            scaler.step(optimizer)
            scaler.update()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            bar.update(1)
            bar.set_postfix(loss=f"{np.mean(losses[-20:]):.4f}")
            if step >= total:
                break
    bar.close()
    return {"steps": step, "warmup_steps": warmup_steps, "final_loss": float(np.mean(losses[-20:])) if losses else None}


@torch.no_grad()
def predict(model: torch.nn.Module, features: Sequence[dict], collate, *, batch_size: int, device: torch.device,
            fp16: bool, outputs: Sequence[str] = ("logits",), desc: str = "predict") -> dict[str, list[np.ndarray]]:
    """Per-feature output arrays (sequence outputs trimmed to each feature's own length)."""
    model.to(device).eval()
    results: dict[str, list[np.ndarray]] = {name: [] for name in outputs}
    for start in tqdm(range(0, len(features), batch_size), desc=desc, leave=False):
        chunk = list(features[start:start + batch_size])
        batch = {k: v.to(device) for k, v in collate(chunk).items() if k not in ("labels", "start_positions",
                                                                                 "end_positions")}
        with torch.autocast(device_type=device.type, dtype=torch.float16, enabled=fp16):
            out = model(**batch)
        for name in outputs:
            values = out[name].float().cpu().numpy()
            for i, feature in enumerate(chunk):
                length = len(feature["input_ids"])
                row = values[i]
                # Token-level outputs ([len, ...] or [len]) are cut back to the feature's own tokens.
                if name in ("start_logits", "end_logits") or feature.get("_kind") == "tags":
                    row = row[:length]
                results[name].append(row)
    model.train()
    return results
