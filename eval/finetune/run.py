"""One fine-tuning evaluation: read the splits, optionally sample/distract them, then for each model (the
model and an optional baseline, on the same splits, seeds and hyperparameters) and each seed: load, train,
and score dev and test."""

from __future__ import annotations

import json
import os
import statistics
import time

from linkbert.eval.finetune.presets import DEFAULTS, Hyper
from linkbert.eval.finetune.readers import DataError


def make_task(family: str, splits: dict, metric: str | None, hyper: Hyper):
    from linkbert.eval.finetune.qa import QaTask
    from linkbert.eval.finetune.tasks import FAMILIES

    if family == "qa":
        return QaTask(splits, metric, doc_stride=hyper.doc_stride)
    if family not in FAMILIES:
        raise ValueError(f"--task {family}: expected seqcls, qa, mc or ner")
    return FAMILIES[family](splits, metric)


def check_model_dir(model_dir: str) -> None:
    if not os.path.isdir(model_dir):
        raise DataError(f"{model_dir}: no such model directory")
    if not os.path.isfile(os.path.join(model_dir, "config.json")):
        raise DataError(f"{model_dir}: not a Hugging Face model directory (no config.json)")


def prepare_splits(splits: dict, family: str, train_fraction: float | None, distractors: bool, seed: int) -> dict:
    from linkbert.eval.finetune.settings import add_distractors, sample_questions

    splits = dict(splits)
    if distractors:
        if family != "qa":
            raise ValueError("--distractors applies to extractive QA (--task qa)")
        splits = {name: add_distractors(records, seed, name) for name, records in splits.items()}
    if train_fraction is not None and train_fraction < 1:
        splits["train"] = sample_questions(splits["train"], train_fraction, seed)
    return splits


def _max_len(tokenizer, model_dir: str, wanted: int) -> int:
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(model_dir, local_files_only=True)
    limits = [wanted, getattr(config, "max_position_embeddings", wanted)]
    if tokenizer.model_max_length and tokenizer.model_max_length < 1_000_000:
        limits.append(tokenizer.model_max_length)
    return min(limits)


def run_model(model_dir: str, task, splits: dict, hyper: Hyper, seeds: list[int], output: str | None,
              label: str, log=print) -> dict:
    from transformers import AutoTokenizer

    from linkbert.eval.finetune import loop

    check_model_dir(model_dir)
    tokenizer = AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
    max_len = _max_len(tokenizer, model_dir, hyper.max_seq_len)
    features = {name: task.features(tokenizer, records, max_len) for name, records in splits.items()}
    collate = loop.make_collate(tokenizer.pad_token_id or 0)
    device, fp16 = loop.device_and_precision()
    per_seed = []
    for seed in seeds:
        loop.seed_everything(seed)
        model = task.model(model_dir)
        started = time.time()
        trained = loop.train(model, features["train"], collate, lr=hyper.lr, epochs=hyper.epochs,
                             max_steps=hyper.max_steps, batch_size=hyper.batch_size, grad_accum=hyper.grad_accum,
                             warmup=hyper.warmup, seed=seed, device=device, fp16=fp16, desc=f"{label} seed {seed}")
        scores, predictions = {}, {}
        for name in ("dev", "test"):
            outputs = loop.predict(model, features[name], collate, batch_size=max(32, hyper.batch_size * 2),
                                   device=device, fp16=fp16, outputs=task.outputs, desc=f"{label} {name}")
            scores[name] = task.evaluate(splits[name], features[name], outputs)
            predictions[name] = outputs
        entry = {"seed": seed, "dev": scores["dev"], "test": scores["test"], "train_steps": trained["steps"],
                 "warmup_steps": trained["warmup_steps"], "final_train_loss": trained["final_loss"],
                 "train_seconds": round(time.time() - started, 1)}
        per_seed.append(entry)
        log(f"  {label} seed {seed}: dev {task.metric} {scores['dev'][task.metric]:.4f}  test {task.metric} "
            f"{scores['test'][task.metric]:.4f}  ({trained['steps']} steps)")
        if output:
            _write_predictions(os.path.join(output, label, f"seed{seed}"), task, splits["test"], features["test"],
                               predictions["test"])
        del model
    result = {"model": model_dir, "max_seq_len": max_len, "device": device.type, "fp16": fp16,
              "n_train_features": len(features["train"])}
    result.update(_aggregate(per_seed))
    return result


def _aggregate(per_seed: list[dict]) -> dict:
    if len(per_seed) == 1:
        only = per_seed[0]
        return {"dev": only["dev"], "test": only["test"], "per_seed": per_seed}
    mean, std = {}, {}
    for name in ("dev", "test"):
        keys = per_seed[0][name].keys()
        mean[name] = {k: statistics.fmean(s[name][k] for s in per_seed) for k in keys}
        std[name] = {k: statistics.stdev(s[name][k] for s in per_seed) for k in keys}
    return {"dev": mean["dev"], "test": mean["test"], "per_seed": per_seed, "mean": mean, "std": std}


def _write_predictions(folder: str, task, records, features, outputs) -> None:
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, "test_predictions.jsonl")
    if task.family == "qa":
        answers = task.best_answers(records, features, outputs)
        rows = [{"id": r["id"], "prediction": answers[r["id"]], "gold": r["answers"]["text"]} for r in records]
    elif task.family == "ner":
        predicted, gold = task.tag_sequences(features, outputs)
        rows = [{"id": r["id"], "prediction": p, "gold": g} for r, p, g in zip(records, predicted, gold)]
    else:
        preds = task.predictions(outputs)
        rows = [{"id": r["id"], "prediction": task.decode(r, p), "gold": r["label"]} for r, p in zip(records, preds)]
    with open(path, "w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, default=float) + "\n")


def difference(a: dict, b: dict) -> dict:
    return {name: {k: a[name][k] - b[name][k] for k in a[name] if k in b[name]} for name in ("dev", "test")}


def finetune(family: str, model_dir: str, splits: dict, *, hyper: Hyper | None = None, metric: str | None = None,
             seeds: int = 1, train_fraction: float | None = None, distractors: bool = False,
             baseline: str | None = None, output: str | None = None, log=print) -> dict:
    hyper = hyper or DEFAULTS[family]
    check_model_dir(model_dir)
    if baseline:
        check_model_dir(baseline)
    splits = prepare_splits(splits, family, train_fraction, distractors, hyper.seed)
    task = make_task(family, splits, metric, hyper)
    seed_list = [hyper.seed + i for i in range(seeds)]
    result = {"task": family, "metric": task.metric, "n_train": len(splits["train"]), "n_dev": len(splits["dev"]),
              "n_test": len(splits["test"]), "hyperparameters": hyper.to_dict(), "seeds": seed_list,
              "train_fraction": train_fraction, "distractors": distractors}
    log(f"fine-tuning {family} ({task.metric}) on {result['n_train']} train / {result['n_dev']} dev / "
        f"{result['n_test']} test records")
    result.update(run_model(model_dir, task, splits, hyper, seed_list, output, "model", log))
    if baseline:
        other = run_model(baseline, task, splits, hyper, seed_list, output, "baseline", log)
        result["baseline"] = other
        result["difference"] = difference(result, other)
    if output:
        os.makedirs(output, exist_ok=True)
        with open(os.path.join(output, "results.json"), "w", encoding="utf-8") as handle:
            json.dump(result, handle, indent=2, default=float)
    return result


def summary_lines(result: dict) -> list[str]:
    metric = result["metric"]
    lines = []
    std = result.get("std")

    def fmt(block, name, deviation=None):
        text = f"{block[name][metric]:.4f}"
        return text + (f" ± {deviation[name][metric]:.4f}" if deviation else "")

    lines.append(f"  model    {result['model']}: dev {metric} {fmt(result, 'dev', std)}  test {metric} "
                 f"{fmt(result, 'test', std)}")
    if "baseline" in result:
        base = result["baseline"]
        lines.append(f"  baseline {base['model']}: dev {metric} {fmt(base, 'dev', base.get('std'))}  test {metric} "
                     f"{fmt(base, 'test', base.get('std'))}")
        diff = result["difference"]
        lines.append(f"  difference (model - baseline): dev {diff['dev'][metric]:+.4f}  test {diff['test'][metric]:+.4f}")
    return lines
