"""The paper's two QA settings.

* Distractors (Table 3): each question's context gets 1-2 contexts of *other* questions of the same split,
  each prepended or appended, joined with a space; answer character offsets move by what was prepended.
* Few-shot (Table 4): a seeded sample of a fraction of the training *questions* (records, before they are cut
  into features, so a long context's windows are kept or dropped together).

Every choice comes from a stable hash of (seed, split, question id), so it does not depend on record order
or on which other questions are present."""

from __future__ import annotations

import hashlib
import random


def _rng(*keys) -> random.Random:
    digest = hashlib.sha256("\x1f".join(str(k) for k in keys).encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def sample_questions(records: list[dict], fraction: float, seed: int) -> list[dict]:
    """``round(fraction * n)`` records (at least one), the ones with the smallest seeded hash of their id, in
    their original order."""
    if not 0 < fraction <= 1:
        raise ValueError(f"--train-fraction must be in (0, 1], got {fraction}")
    if fraction == 1:
        return list(records)
    keep = max(1, round(fraction * len(records)))
    ranked = sorted(range(len(records)), key=lambda i: (_rng(seed, "few-shot", records[i]["id"], i).random(), i))
    chosen = set(ranked[:keep])
    return [record for i, record in enumerate(records) if i in chosen]


def add_distractors(records: list[dict], seed: int, split: str, max_distractors: int = 2) -> list[dict]:
    """New records whose contexts carry 1..max_distractors distracting contexts of other questions."""
    pool = sorted({r["context"] for r in records})  # canonical order: the draw must not depend on record order
    if len(pool) < 2:
        raise ValueError(f"{split}: distractors need at least two distinct contexts in the split")
    out = []
    for record in records:
        rng = _rng(seed, "distractors", split, record["id"])
        count = min(rng.randint(1, max_distractors), len(pool) - 1)
        # One spare draw so that the question's own context can be skipped; no per-question copy of the pool.
        candidates = [pool[i] for i in rng.sample(range(len(pool)), min(count + 1, len(pool)))]
        picked = [c for c in candidates if c != record["context"]][:count]
        before = [c for c in picked if rng.random() < 0.5]
        after = [c for c in picked if c not in before]
        prefix = "".join(c + " " for c in before)
        context = prefix + record["context"] + "".join(" " + c for c in after)
        answers = {"text": list(record["answers"]["text"]),
                   "answer_start": [s + len(prefix) for s in record["answers"]["answer_start"]]}
        out.append({**record, "context": context, "answers": answers, "distractors": len(picked)})
    return out
