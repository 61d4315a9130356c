"""The BLURB and MRQA suites: run every task folder found under ``DIR`` (``DIR/<task>_hf/`` as the LinkBERT
preprocess scripts name them, directly or under ``seqcls/``, ``tokcls/``, ``qa/``, ``mc/``), name the missing
ones, and write ``results.json`` and ``results.md``.

BLURB score (Gu et al. 2021): the macro average over the six task types of each type's average test score."""

from __future__ import annotations

import json
import os
import statistics

from linkbert.eval.finetune import presets
from linkbert.eval.finetune.readers import read_splits

BLURB_TYPES = {"ner": "NER", "pico": "PICO", "relation": "relation extraction", "similarity": "sentence similarity",
               "document": "document classification", "qa": "question answering"}


def blurb_score(scores: dict[str, float]) -> dict:
    """``scores``: preset name -> test score (any scale). Returns the score when every type has at least one
    task, else ``None`` with the partial macro average over the types that do."""
    by_type: dict[str, list[float]] = {}
    for name, value in scores.items():
        by_type.setdefault(presets.get(name).blurb_type, []).append(value)
    type_means = {t: statistics.fmean(v) for t, v in by_type.items()}
    complete = all(t in type_means for t in BLURB_TYPES)
    macro = statistics.fmean(type_means.values()) if type_means else None
    return {"blurb_score": macro if complete else None, "partial_score": macro, "type_averages": type_means,
            "missing_types": [t for t in BLURB_TYPES if t not in type_means]}


def find_task_dir(data_dir: str, task_dir: str) -> str | None:
    for parent in ("", "seqcls", "tokcls", "qa", "mc"):
        path = os.path.join(data_dir, parent, task_dir)
        if os.path.isdir(path):
            return path
    return None


def run_suite(name: str, model: str, data_dir: str, output: str, *, overrides: dict, baseline: str | None = None,
              seeds: int = 1, distractors: bool = False, train_fraction: float | None = None, log=print) -> dict:
    from linkbert.eval.finetune.run import check_model_dir, finetune

    check_model_dir(model)
    if baseline:
        check_model_dir(baseline)
    if not os.path.isdir(data_dir):
        raise FileNotFoundError(f"{data_dir}: no such data directory")
    found, missing = [], []
    for preset in presets.suite(name):
        path = find_task_dir(data_dir, preset.task_dir)
        (found if path else missing).append((preset, path))
    log(f"{name}: {len(found)} of {len(found) + len(missing)} tasks found under {data_dir}")
    if missing:
        log(f"  missing: {', '.join(p.task_dir for p, _ in missing)}")
    if not found:
        raise FileNotFoundError(f"{data_dir}: none of the {name} task folders "
                                f"({', '.join(p.task_dir for p, _ in missing)})")
    tasks = {}
    for preset, path in found:
        log(f"[{preset.name}] {path}")
        result = finetune(preset.family, model, read_splits(path, preset.family),
                          hyper=preset.hyper.override(**overrides), metric=preset.metric, seeds=seeds,
                          train_fraction=train_fraction, distractors=distractors, baseline=baseline,
                          output=os.path.join(output, preset.name), log=log)
        tasks[preset.name] = result
    summary = {"suite": name, "model": model, "baseline": baseline, "data": data_dir, "tasks": tasks,
               "found": [p.name for p, _ in found], "missing": [p.name for p, _ in missing]}
    primary = {n: 100 * r["test"][r["metric"]] for n, r in tasks.items()}
    if name == "blurb":
        summary.update(blurb_score(primary))
        if baseline:
            summary["baseline_score"] = blurb_score({n: 100 * r["baseline"]["test"][r["metric"]]
                                                     for n, r in tasks.items()})
    else:
        summary["average_f1"] = statistics.fmean(primary.values())
        if baseline:
            summary["baseline_average_f1"] = statistics.fmean(100 * r["baseline"]["test"][r["metric"]]
                                                              for r in tasks.values())
    os.makedirs(output, exist_ok=True)
    with open(os.path.join(output, "results.json"), "w", encoding="utf-8") as handle:
        json.dump(summary, handle, indent=2, default=float)
    table = markdown(summary)
    with open(os.path.join(output, "results.md"), "w", encoding="utf-8") as handle:
        handle.write(table + "\n")
    summary["table"] = table
    return summary


def markdown(summary: dict) -> str:
    baseline = summary.get("baseline")
    head = "| task | metric | dev | test |" + (" baseline test | difference |" if baseline else "")
    rule = "|---|---|---|---|" + ("---|---|" if baseline else "")
    rows = [head, rule]
    for name, r in summary["tasks"].items():
        m = r["metric"]
        row = f"| {name} | {m} | {100 * r['dev'][m]:.2f} | {100 * r['test'][m]:.2f} |"
        if baseline:
            row += f" {100 * r['baseline']['test'][m]:.2f} | {100 * r['difference']['test'][m]:+.2f} |"
        rows.append(row)
    for name in summary["missing"]:
        rows.append(f"| {name} | missing | | |" + (" | |" if baseline else ""))
    if summary["suite"] == "blurb":
        score = summary["blurb_score"]
        shown = f"{score:.2f}" if score is not None else f"incomplete ({summary['partial_score']:.2f} over present types)"
        line = f"| **BLURB score** | macro over types | | {shown} |"
        if baseline:
            other = summary["baseline_score"]
            other_shown = f"{other['blurb_score']:.2f}" if other["blurb_score"] is not None else \
                f"incomplete ({other['partial_score']:.2f})"
            line += f" {other_shown} | |"
        rows.append(line)
    else:
        line = f"| **average** | f1 | | {summary['average_f1']:.2f} |"
        if baseline:
            line += f" {summary['baseline_average_f1']:.2f} | {summary['average_f1'] - summary['baseline_average_f1']:+.2f} |"
        rows.append(line)
    return "\n".join(rows)
