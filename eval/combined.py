"""``linkbert eval intrinsic --data DIR1,DIR2,...``: each held-out set on its own, and all together.

The combined figures are exact, not averages of averages: MLM loss and accuracy are weighted by each
set's masked tokens, DRP loss and accuracy by its instances, per-relation accuracy by its counts.
"""

from __future__ import annotations

from linkbert.train.model import RELATIONS


def combine(results: list[dict]) -> dict:
    """One result over several ``linkbert.eval.intrinsic.evaluate`` results (same model)."""
    tokens = sum(r["mlm_tokens"] for r in results)
    instances = sum(r["instances"] for r in results)
    has_drp = all(r["drp_acc"] is not None for r in results)
    counts = {name: sum(r["drp_count_per_relation"][name] for r in results) for name in RELATIONS}

    def per_relation(name):
        if not has_drp or not counts[name]:
            return None
        correct = sum((r["drp_acc_per_relation"][name] or 0.0) * r["drp_count_per_relation"][name] for r in results)
        return correct / counts[name]

    first = results[0]
    return {
        "mlm_loss": sum(r["mlm_loss"] * r["mlm_tokens"] for r in results) / max(tokens, 1),
        "mlm_acc": sum(r["mlm_acc"] * r["mlm_tokens"] for r in results) / max(tokens, 1),
        "mlm_tokens": tokens,
        "drp_loss": sum(r["drp_loss"] * r["instances"] for r in results) / instances if has_drp else None,
        "drp_acc": sum(r["drp_acc"] * r["instances"] for r in results) / instances if has_drp else None,
        "drp_acc_per_relation": {name: per_relation(name) for name in RELATIONS},
        "drp_count_per_relation": counts,
        "instances": instances,
        "skipped_rows": sum(r["skipped_rows"] for r in results),
        **{key: first[key] for key in ("split", "masking", "max_seq_len", "seed", "model")},
        "data": ",".join(r["data"] for r in results),
    }
