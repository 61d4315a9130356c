"""``linkbert ablation``: do links help on this corpus? The paper's Tables 3-6 as one command.

One synthetic world (``linkbert synth wiki``); for each variant its pipeline output and a tiny model
pretrained for the same number of steps on the same number of tokens (same steps, batch and
sequence length; one shared WordPiece vocabulary, trained by the first variant's pipeline); each
model fine-tuned and evaluated on the same QA sets (``linkbert synth qa``: multi-hop, single-hop,
distractor, few-shot), with held-out MLM/DRP beside. Every step is a ``linkbert`` command run as a
subprocess, so the ablation exercises exactly what users run; a step whose output already exists is
not run again, so an interrupted ablation continues where it stopped.

Variants:

* ``hyperlink``: segment links, diversity sampling, DRP (the full method);
* ``hyperlink-document``: linked B from anywhere in A's document (``--link-scope document``);
* ``tfidf``, ``random-links``: TF-IDF neighbours and random edges instead of hyperlinks;
* ``no-diversity``: linked targets drawn uniformly, not proportional to 1/in-degree;
* ``no-drp``: MLM only, on the ``hyperlink`` variant's instances;
* ``bert``: contiguous and random pairs only, 50/50, as BERT's NSP (``--links none``);
* ``random-init``: no pretraining at all (the tiny architecture, randomly initialised, with the shared
  vocabulary), fine-tuned like the others: the floor. A pretrained variant that does not beat it
  has learned nothing the QA sets reward.

QA F1 is stored on SQuAD's 0-1 scale in ``ablation.json`` and shown x100 in the table and the plot.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass

QA_SETTINGS = ("multihop", "singlehop", "multihop-distractor", "multihop-fewshot")
SETTING_LABELS = {"multihop": "multi-hop F1", "singlehop": "single-hop F1", "multihop-distractor": "distractor F1",
                  "multihop-fewshot": "few-shot F1"}
INTRINSIC = ("mlm_acc", "drp_acc")


@dataclass(frozen=True)
class Variant:
    name: str
    pipeline_args: tuple[str, ...]
    train_args: tuple[str, ...] = ()
    data_of: str | None = None  # reuse another variant's pipeline output
    pretrain: bool = True  # False: a randomly initialised model (the floor), no intrinsic figures


VARIANTS = {
    "hyperlink": Variant("hyperlink", ("--links", "hyperlink")),
    "hyperlink-document": Variant("hyperlink-document", ("--links", "hyperlink", "--link-scope", "document")),
    "tfidf": Variant("tfidf", ("--links", "tfidf")),
    "random-links": Variant("random-links", ("--links", "random")),
    "no-diversity": Variant("no-diversity", ("--links", "hyperlink", "--no-diversity")),
    "no-drp": Variant("no-drp", (), ("--no-drp",), data_of="hyperlink"),
    "bert": Variant("bert", ("--links", "none")),
    "random-init": Variant("random-init", (), data_of="hyperlink", pretrain=False),
}
# A tiny model needs a far larger step than BERT-base's 5e-5 to be fine-tuned in 300 steps: chosen on dev F1
# of the hyperlink and bert seed-0 models (multi-hop) among 5e-5, 5e-4, 1e-3, 2e-3, 4e-3 (docs/ABLATION.md).
FINETUNE_LR = 2e-3
BASELINE = "bert"
FULL = "hyperlink"
FLOOR = "random-init"


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("ablation", help="pretrain and fine-tune one tiny model per variant: do links help?",
                                   description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="output directory (ablation.json, ablation.md, ablation.png)")
    parser.add_argument("--docs", type=_positive, default=1000, help="documents of the synthetic world (default 1000)")
    parser.add_argument("--steps", type=_positive, default=1500, help="pretraining steps per model (default 1500)")
    parser.add_argument("--seeds", type=_positive, default=3, help="seeds per variant (default 3)")
    parser.add_argument("--variants", default=",".join(VARIANTS), help=f"comma-separated subset of {','.join(VARIANTS)}")
    parser.add_argument("--finetune-steps", type=_positive, default=300, help="QA fine-tuning steps per setting (default 300)")
    parser.add_argument("--finetune-lr", type=float, default=FINETUNE_LR,
                        help=f"QA fine-tuning peak learning rate (default {FINETUNE_LR:g}; see docs/ABLATION.md)")
    parser.add_argument("--batch-size", type=_positive, default=32, help="pretraining batch (default 32)")
    parser.add_argument("--segment-tokens", type=_positive, default=30, help="tokens per segment (default 30)")
    parser.add_argument("--max-seq-len", type=_positive, default=64, help="tokens per pretraining pair (default 64)")
    parser.add_argument("--qa-max-seq-len", type=_positive, default=192, help="tokens per QA feature (default 192)")
    parser.add_argument("--vocab-size", type=_positive, default=8000)
    parser.add_argument("--world-seed", type=int, default=0, help="seed of the synthetic world and the QA sets")
    parser.set_defaults(func=run_from_args)


def _positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return number


def _linkbert(args: list[str], log_path: str) -> str:
    """Run ``linkbert ARGS``; its output goes to ``log_path``; returns the last line printed."""
    os.makedirs(os.path.dirname(log_path), exist_ok=True)
    with open(log_path, "w", encoding="utf-8") as log:
        result = subprocess.run([sys.executable, "-m", "linkbert", *args], stdout=subprocess.PIPE, stderr=log, text=True)
        log.write(result.stdout)
    if result.returncode != 0:
        raise SystemExit(f"linkbert ablation: 'linkbert {' '.join(args)}' failed (exit {result.returncode}); see {log_path}")
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    return lines[-1] if lines else ""


def _json_step(args: list[str], result_path: str, log_path: str) -> dict:
    if os.path.exists(result_path):
        with open(result_path, encoding="utf-8") as handle:
            return json.load(handle)
    result = json.loads(_linkbert([*args, "--json"], log_path))
    with open(result_path, "w", encoding="utf-8") as handle:
        json.dump(result, handle, indent=2, sort_keys=True)
    return result


def prepare_data(config: argparse.Namespace, variants: list[str]) -> dict[str, str]:
    """The world, one pipeline output per variant that needs one (one shared vocabulary), the QA sets."""
    corpus = os.path.join(config.out, "corpus")
    if not os.path.isdir(corpus):
        _linkbert(["synth", "wiki", "--docs", str(config.docs), "--seed", str(config.world_seed), "--out", corpus],
                  os.path.join(config.out, "logs", "synth-wiki.log"))
    data_dirs = {}
    tokenizer = None
    ordered = sorted({VARIANTS[name].data_of or name for name in variants}, key=lambda name: name != "hyperlink")
    for name in ordered:
        output = os.path.join(config.out, "data", name)
        if not os.path.exists(os.path.join(output, "manifest.json")):
            args = ["pipeline", "--source", "wikipedia", "--input", os.path.join(corpus, "*.xml.bz2"), "--output", output,
                    *VARIANTS[name].pipeline_args, "--vocab-size", str(config.vocab_size), "--heldout-fraction", "0.1",
                    "--num-shards", "2", "--segment-tokens", str(config.segment_tokens),
                    "--max-seq-len", str(config.max_seq_len), "--seed", str(config.world_seed)]
            if tokenizer:
                args += ["--tokenizer", tokenizer]
            _linkbert(args, os.path.join(config.out, "logs", f"pipeline-{name}.log"))
        tokenizer = tokenizer or os.path.join(output, "tokenizer")
        data_dirs[name] = output
    qa_dir = os.path.join(config.out, "qa")
    if not os.path.exists(os.path.join(qa_dir, "counts.json")):
        _linkbert(["synth", "qa", "--world", corpus, "--heldout-from", data_dirs[ordered[0]], "--seed",
                   str(config.world_seed), "--out", qa_dir], os.path.join(config.out, "logs", "synth-qa.log"))
    return {name: data_dirs[VARIANTS[name].data_of or name] for name in variants} | {"_qa": qa_dir}


def random_init_model(tokenizer_dir: str, output: str, seed: int) -> None:
    """The tiny architecture, randomly initialised (seeded), saved like a pretrained export."""
    import torch
    from transformers import AutoTokenizer

    from linkbert.train.model import from_scratch, set_dropout
    from linkbert.train.presets import PRESETS

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir, local_files_only=True)
    torch.manual_seed(seed)
    model = from_scratch(PRESETS["tiny"].architecture, len(tokenizer.get_vocab()), tokenizer.pad_token_id)
    set_dropout(model, 0.0, 0.0)  # as the pretrained variants, trained with --hidden-dropout 0 --attention-dropout 0
    model.config.linkbert_drp = False
    model.save_pretrained(output)
    tokenizer.save_pretrained(output)


def run_variant_seed(config: argparse.Namespace, name: str, seed: int, data_dir: str, qa_dir: str) -> dict:
    run_dir = os.path.join(config.out, "runs", f"{name}-seed{seed}")
    logs = os.path.join(run_dir, "logs")
    model = os.path.join(run_dir, "hf")
    if not VARIANTS[name].pretrain:
        if not os.path.exists(os.path.join(model, "config.json")):
            random_init_model(os.path.join(data_dir, "tokenizer"), model, seed)
    elif not os.path.exists(os.path.join(model, "config.json")):
        _linkbert(["train", "--data", data_dir, "--output", run_dir, "--preset", "tiny", "--max-steps", str(config.steps),
                   "--global-batch-size", str(config.batch_size), "--micro-batch-size", str(config.batch_size),
                   "--max-seq-len", str(config.max_seq_len), "--hidden-dropout", "0", "--attention-dropout", "0",
                   "--seed", str(seed), "--no-progress", "--no-tensorboard", *VARIANTS[name].train_args,
                   # an ablation interrupted mid-pretraining continues from its last checkpoint
                   *(["--resume"] if os.path.isdir(os.path.join(run_dir, "checkpoints")) else [])],
                  os.path.join(logs, "train.log"))
    intrinsic = {}
    if VARIANTS[name].pretrain:
        intrinsic = _json_step(["eval", "intrinsic", "--model", model, "--data", data_dir],
                               os.path.join(run_dir, "intrinsic.json"), os.path.join(logs, "intrinsic.log"))
    qa = {}
    for setting in QA_SETTINGS:
        result = _json_step(["eval", "finetune", "--task", "qa", "--model", model, "--data", os.path.join(qa_dir, setting),
                             "--output", os.path.join(run_dir, "qa", setting), "--max-steps", str(config.finetune_steps),
                             "--lr", str(config.finetune_lr),
                             "--max-seq-len", str(config.qa_max_seq_len), "--doc-stride", str(config.qa_max_seq_len // 3),
                             "--seed", str(seed)],
                            os.path.join(run_dir, f"qa-{setting}.json"), os.path.join(logs, f"qa-{setting}.log"))
        qa[setting] = result["test"]["f1"]
    return {"seed": seed, "intrinsic": {key: intrinsic.get(key) for key in INTRINSIC}, "qa_f1": qa}


def summarise(per_seed: list[dict]) -> dict:
    def stats(values):
        values = [v for v in values if v is not None]
        if not values:
            return {"mean": None, "std": None, "n": 0}
        return {"mean": statistics.fmean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0,
                "n": len(values)}

    summary = {setting: stats([run["qa_f1"][setting] for run in per_seed]) for setting in QA_SETTINGS}
    summary |= {key: stats([run["intrinsic"][key] for run in per_seed]) for key in INTRINSIC}
    return summary


def exceeds_spread(a: dict, b: dict) -> bool | None:
    """Whether two variants' means differ by more than their standard deviations added together."""
    if a["mean"] is None or b["mean"] is None or min(a["n"], b["n"]) < 2:
        return None
    return abs(a["mean"] - b["mean"]) > a["std"] + b["std"]


def _cell(stat: dict, scale: float = 1.0) -> str:
    if stat["mean"] is None:
        return "n/a"
    return f"{stat['mean'] * scale:.2f} ± {stat['std'] * scale:.2f}"


def markdown(results: dict) -> str:
    config, summaries = results["config"], results["summary"]
    columns = [*QA_SETTINGS, *INTRINSIC]
    labels = [SETTING_LABELS[c] for c in QA_SETTINGS] + ["held-out MLM acc", "held-out DRP acc"]
    rows = results.get("train_rows", {})
    lines = ["# Ablation: do links help on this corpus?", "",
             f"World: {config['docs']} synthetic documents (seed {config['world_seed']}); tiny models, {config['steps']} "
             f"pretraining steps of {config['batch_size']} x {config['max_seq_len']} tokens; QA fine-tuning "
             f"{config['finetune_steps']} steps per setting at peak learning rate {config.get('finetune_lr', 5e-5):g}; "
             f"{config['seeds']} seed(s). Test F1 x100 (SQuAD token F1 "
             f"on questions about held-out documents), mean ± sample standard deviation over seeds. Held-out "
             f"MLM/DRP (%) are measured on each variant's own held-out instances (the relation mix differs between "
             f"variants, so DRP accuracy compares within a row, not across). Train instances: the distinct "
             f"pretraining pairs a variant's pipeline wrote (every variant sees the same number of pairs, "
             f"steps x batch, so fewer distinct pairs means more repeats).", "",
             "| variant | " + " | ".join(labels) + " | train instances |", "|---|" + "---|" * (len(labels) + 1)]
    for name, summary in summaries.items():
        cells = [_cell(summary[c], 100.0) for c in columns]
        count = rows.get(name)
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {'none' if count is None else count} |")
    lines += ["", "## Differences and the seed spread", "",
              "Each cell: the variant's mean minus the reference's (F1 x100); *exceeds* when the difference is larger "
              "than the two standard deviations added, *within* otherwise (then it cannot be told from seed noise)."]
    for reference in (BASELINE, FULL, FLOOR):
        if reference not in summaries or len(summaries) < 2:
            continue
        lines += ["", f"Against `{reference}`:", "", "| variant | " + " | ".join(SETTING_LABELS[c] for c in QA_SETTINGS) + " |",
                  "|---|" + "---|" * len(QA_SETTINGS)]
        for name, summary in summaries.items():
            if name != reference:
                cells = [_difference(summary[setting], summaries[reference][setting]) for setting in QA_SETTINGS]
                lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", "## Verdict", "", *verdict(summaries), "",
              f"Wall time of this invocation: {results['wall_seconds'] / 60:.1f} min (a step whose output already existed "
              f"was not run again)."]
    return "\n".join(lines) + "\n"


def _difference(a: dict, b: dict) -> str:
    if a["mean"] is None or b["mean"] is None:
        return "n/a"
    beyond = exceeds_spread(a, b)
    word = "(1 seed)" if beyond is None else "exceeds" if beyond else "within"
    return f"{100 * (a['mean'] - b['mean']):+.2f} {word}"


def verdict(summaries: dict) -> list[str]:
    """Plain sentences: the full method against the baseline and the floor on multi-hop questions, and the ordering."""
    lines = []
    full, base = summaries.get(FULL), summaries.get(BASELINE)
    if not full or not base:
        lines.append("- The full method or the baseline was not run: no verdict on links.")
    else:
        a, b = full["multihop"], base["multihop"]
        beyond = exceeds_spread(a, b)
        if beyond is None:
            lines.append("- One seed only: no difference can be told from seed noise.")
        elif beyond and a["mean"] > b["mean"]:
            lines.append(f"- On multi-hop questions the full method beats `{BASELINE}` by more than the seed spread.")
        else:
            lines.append(f"- On multi-hop questions the full method does not beat `{BASELINE}` by more than the seed "
                         f"spread ({100 * a['mean']:.2f} ± {100 * a['std']:.2f} vs {100 * b['mean']:.2f} ± "
                         f"{100 * b['std']:.2f}): at this size (steps, documents) the benchmark does not separate them.")
    floor = summaries.get(FLOOR)
    if floor:
        above = [name for name, s in summaries.items() if name != FLOOR and exceeds_spread(s["multihop"], floor["multihop"])
                 and s["multihop"]["mean"] > floor["multihop"]["mean"]]
        others = [name for name in summaries if name != FLOOR and name not in above]
        def names(found):
            return ", ".join(f"`{name}`" for name in found) or "none"

        lines.append(f"- Against the floor (`{FLOOR}`, no pretraining) on multi-hop questions: above it beyond the "
                     f"spread: {names(above)}; not: {names(others)}.")
    ranked = sorted((name for name in summaries if summaries[name]["multihop"]["mean"] is not None),
                    key=lambda name: -summaries[name]["multihop"]["mean"])
    if ranked:
        lines.append("- Multi-hop ordering by mean: " + " > ".join(f"`{name}`" for name in ranked) + ".")
    return lines


def plot(results: dict, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(results["summary"])
    figure, axis = plt.subplots(figsize=(10, 4))
    width = 0.8 / len(names)
    for position, name in enumerate(names):
        summary = results["summary"][name]
        means = [100 * (summary[s]["mean"] or 0.0) for s in QA_SETTINGS]
        errors = [100 * (summary[s]["std"] or 0.0) for s in QA_SETTINGS]
        xs = [index + position * width for index in range(len(QA_SETTINGS))]
        axis.bar(xs, means, width, yerr=errors, capsize=3, label=name)
    axis.set_xticks([index + 0.4 - width / 2 for index in range(len(QA_SETTINGS))])
    axis.set_xticklabels([SETTING_LABELS[s] for s in QA_SETTINGS])
    axis.set_ylabel("test F1 (x100), mean ± std over seeds")
    axis.legend(fontsize=8, ncol=4)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def _train_rows(data_dir: str) -> int:
    with open(os.path.join(data_dir, "manifest.json"), encoding="utf-8") as handle:
        return json.load(handle)["splits"]["train"]["rows"]


def run(config: argparse.Namespace) -> dict:
    started = time.time()
    variants = [name.strip() for name in config.variants.split(",") if name.strip()]
    unknown = [name for name in variants if name not in VARIANTS]
    if unknown or not variants:
        raise SystemExit(f"linkbert ablation: unknown variant(s) {', '.join(unknown) or '(none given)'}; "
                         f"known: {', '.join(VARIANTS)}")
    os.makedirs(config.out, exist_ok=True)
    data = prepare_data(config, variants)
    per_variant = {name: [run_variant_seed(config, name, seed, data[name], data["_qa"]) for seed in range(config.seeds)]
                   for name in variants}
    results = {
        "config": {key: getattr(config, key) for key in ("docs", "steps", "seeds", "finetune_steps", "finetune_lr", "batch_size",
                                                         "segment_tokens", "max_seq_len", "qa_max_seq_len",
                                                         "vocab_size", "world_seed")} | {"variants": variants},
        "per_seed": per_variant,
        "summary": {name: summarise(runs) for name, runs in per_variant.items()},
        "train_rows": {name: _train_rows(data[name]) if VARIANTS[name].pretrain else None for name in variants},
        "wall_seconds": round(time.time() - started, 1),
    }
    with open(os.path.join(config.out, "ablation.json"), "w", encoding="utf-8") as handle:
        json.dump(results, handle, indent=2, sort_keys=True)
    with open(os.path.join(config.out, "ablation.md"), "w", encoding="utf-8") as handle:
        handle.write(markdown(results))
    plot(results, os.path.join(config.out, "ablation.png"))
    return results


def run_from_args(args: argparse.Namespace) -> int:
    results = run(args)
    print(markdown(results))
    print(f"ablation: {os.path.join(args.out, 'ablation.md')}, ablation.json, ablation.png")
    return 0
