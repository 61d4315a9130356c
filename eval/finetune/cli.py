"""``linkbert eval finetune|pubmedqa|blurb|mrqa``: argument parsing and printing; torch is imported only when a
command runs."""

from __future__ import annotations

import argparse
import json
import os
import sys

# As ``linkbert train`` does: OpenMP threads that spin while waiting collapse when other processes hold the
# cores (QA fine-tuning of a tiny model ran at ~8 s/step instead of ~0.2 s/step on a loaded 2-core machine).
# Read when torch loads, which is after this (``linkbert eval`` imports torch only when a command runs).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

FAMILIES = ("seqcls", "qa", "mc", "ner")


def _hyper_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("hyperparameters (override the preset)")
    group.add_argument("--lr", type=float)
    group.add_argument("--epochs", type=float)
    group.add_argument("--max-steps", type=int, help="stop after N optimizer updates (overrides --epochs)")
    group.add_argument("--batch-size", type=int, help="examples per step")
    group.add_argument("--grad-accum", type=int, help="steps per optimizer update")
    group.add_argument("--max-seq-len", type=int)
    group.add_argument("--warmup", type=float, help="warm-up: N >= 1 steps, or a fraction < 1 of all updates")
    group.add_argument("--seed", type=int)
    group.add_argument("--doc-stride", type=int, help="QA window stride (default 128)")
    parser.add_argument("--seeds", type=int, default=1, metavar="K", help="run seeds SEED..SEED+K-1; report mean and std")
    parser.add_argument("--baseline", metavar="HF_DIR", help="also run this model on the same splits, seeds and "
                                                              "hyperparameters, and print the difference")
    parser.add_argument("--json", action="store_true", help="end with the results as one JSON line")


def _overrides(args) -> dict:
    return {"lr": args.lr, "epochs": args.epochs, "max_steps": args.max_steps, "batch_size": args.batch_size,
            "grad_accum": args.grad_accum, "max_seq_len": args.max_seq_len, "warmup": args.warmup,
            "seed": args.seed, "doc_stride": args.doc_stride}


def add_parsers(kinds) -> None:
    p = kinds.add_parser("finetune", help="fine-tune and score one task (seqcls, qa, mc, ner)")
    p.add_argument("--task", required=True, choices=FAMILIES)
    p.add_argument("--model", required=True, metavar="HF_DIR", help="a local Hugging Face checkpoint")
    p.add_argument("--data", required=True, metavar="DIR", help="holds train.json, dev.json, test.json")
    p.add_argument("--output", required=True, metavar="OUT", help="results.json and test predictions go here")
    p.add_argument("--metric", help="primary metric: accuracy, f1, macro_f1, pearson, exact_match")
    p.add_argument("--preset", help="the authors' hyperparameters for a task (see docs/FINETUNE.md)")
    p.add_argument("--train-fraction", type=float, metavar="F", help="train on a seeded F of the training questions")
    p.add_argument("--distractors", action="store_true", help="QA: add 1-2 contexts of other questions")
    _hyper_args(p)
    p.set_defaults(func=run_finetune)

    p = kinds.add_parser("pubmedqa", help="PubMedQA on its official split (500 test PMIDs)")
    p.add_argument("--model", required=True, metavar="HF_DIR")
    p.add_argument("--data", required=True, metavar="DIR", help="holds ori_pqal.json and test_ground_truth.json")
    p.add_argument("--output", metavar="OUT")
    _hyper_args(p)
    p.set_defaults(func=run_pubmedqa)

    for name, text in (("blurb", "every BLURB task found under DIR, and the BLURB score"),
                       ("mrqa", "every MRQA task found under DIR")):
        p = kinds.add_parser(name, help=text)
        p.add_argument("--model", required=True, metavar="HF_DIR")
        p.add_argument("--data", required=True, metavar="DIR", help="holds <task>_hf/ folders")
        p.add_argument("--output", default=f"runs/{name}", metavar="OUT", help=f"default: runs/{name}")
        if name == "mrqa":
            p.add_argument("--distractors", action="store_true", help="add 1-2 contexts of other questions")
            p.add_argument("--train-fraction", type=float, metavar="F", help="few-shot: a seeded F of the questions")
        _hyper_args(p)
        p.set_defaults(func=run_suite, suite=name)


def _guarded(body):
    def wrapper(args) -> int:
        from linkbert.eval.finetune.readers import DataError

        try:
            return body(args)
        except (DataError, FileNotFoundError, ValueError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    return wrapper


def _log(*parts):
    print(*parts, flush=True)


@_guarded
def run_finetune(args) -> int:
    from linkbert.eval.finetune import presets
    from linkbert.eval.finetune.readers import read_splits
    from linkbert.eval.finetune.run import check_model_dir, finetune, summary_lines

    preset = presets.get(args.preset) if args.preset else None
    if preset and preset.family != args.task:
        raise ValueError(f"--preset {preset.name} is a {preset.family} task, not --task {args.task}")
    hyper = (preset.hyper if preset else presets.DEFAULTS[args.task]).override(**_overrides(args))
    check_model_dir(args.model)
    splits = read_splits(args.data, args.task)
    result = finetune(args.task, args.model, splits, hyper=hyper, metric=args.metric or (preset and preset.metric),
                      seeds=args.seeds, train_fraction=args.train_fraction, distractors=args.distractors,
                      baseline=args.baseline, output=args.output, log=_log)
    print("\n".join(summary_lines(result)))
    if args.json:
        print(json.dumps(result, default=float))
    return 0


@_guarded
def run_pubmedqa(args) -> int:
    from linkbert.eval.finetune import presets
    from linkbert.eval.finetune.pubmedqa import official_split
    from linkbert.eval.finetune.run import check_model_dir, finetune, summary_lines

    preset = presets.get("pubmedqa")
    check_model_dir(args.model)
    splits = official_split(args.data)
    result = finetune("seqcls", args.model, splits, hyper=preset.hyper.override(**_overrides(args)),
                      metric="accuracy", seeds=args.seeds, baseline=args.baseline, output=args.output, log=_log)
    result["accuracy"] = result["test"]["accuracy"]
    result["macro_f1"] = result["test"]["macro_f1"]
    majority = max(set(r["label"] for r in splits["test"]), key=[r["label"] for r in splits["test"]].count)
    share = sum(r["label"] == majority for r in splits["test"]) / len(splits["test"])
    result["majority_class"] = {"label": majority, "accuracy": share}
    print("\n".join(summary_lines(result)))
    print(f"  test accuracy {result['accuracy']:.4f}  macro-F1 {result['macro_f1']:.4f}  "
          f"(majority class {majority!r}: {share:.4f})")
    if args.json:
        print(json.dumps(result, default=float))
    return 0


@_guarded
def run_suite(args) -> int:
    from linkbert.eval.finetune.suites import run_suite as suite

    extra = {}
    if args.suite == "mrqa":
        extra = {"distractors": args.distractors, "train_fraction": args.train_fraction}
    summary = suite(args.suite, args.model, args.data, args.output, overrides=_overrides(args),
                    baseline=args.baseline, seeds=args.seeds, log=_log, **extra)
    print(summary.pop("table"))
    print(f"wrote {args.output}/results.json and {args.output}/results.md")
    if args.json:
        print(json.dumps(summary, default=float))
    return 0
