"""``linkbert eval``: evaluation of exported encoders."""

from __future__ import annotations

import argparse
import json

from linkbert.train.masking import STRATEGIES


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("eval", help="evaluate an exported model", description=__doc__.splitlines()[0])
    kinds = parser.add_subparsers(dest="evaluation", required=True, metavar="EVALUATION")
    intrinsic = kinds.add_parser("intrinsic", help="MLM and document relation prediction on held-out shards")
    intrinsic.add_argument("--model", required=True, metavar="HF_DIR", help="an exported model (RUNDIR/hf)")
    intrinsic.add_argument("--data", required=True, metavar="DIR",
                           help="pipeline output with instances/heldout-*; DIR1,DIR2,... reports each and all together")
    intrinsic.add_argument("--split", default="heldout", help="instance split to read (default: heldout)")
    intrinsic.add_argument("--max-instances", type=int, help="evaluate only the first N instances")
    intrinsic.add_argument("--batch-size", type=int, default=32)
    intrinsic.add_argument("--max-seq-len", type=int,
                           help="truncate longer instances (default: the length the model was trained at)")
    intrinsic.add_argument("--masking", default="token", choices=STRATEGIES)
    intrinsic.add_argument("--seed", type=int, default=0, help="masking seed")
    intrinsic.add_argument("--json", action="store_true", help="end with the metrics as one JSON line")
    intrinsic.set_defaults(func=run_intrinsic)
    from linkbert.eval.finetune.cli import add_parsers as add_finetune_parsers

    add_finetune_parsers(kinds)


def run_intrinsic(args: argparse.Namespace) -> int:
    from linkbert.eval.combined import combine
    from linkbert.eval.intrinsic import evaluate

    data_dirs = [d.strip() for d in args.data.split(",") if d.strip()]
    try:
        results = [evaluate(args.model, data_dir, args.max_instances, args.batch_size, args.seed, args.masking,
                            args.split, args.max_seq_len) for data_dir in data_dirs]
    except SystemExit as exc:  # an input check's one line says which command refused
        if isinstance(exc.code, str) and not exc.code.startswith("linkbert"):
            raise SystemExit(f"linkbert eval intrinsic: {exc.code}") from None
        raise
    for data_dir, result in zip(data_dirs, results) if len(results) > 1 else ():
        _print_result(args, result, f" from {data_dir}")
    result = results[0] if len(results) == 1 else dict(combine(results), per_data=dict(zip(data_dirs, results)))
    _print_result(args, result, "" if len(results) == 1 else f" from all {len(results)} outputs together")
    if args.json:
        print(json.dumps(result))
    return 0


def _print_result(args: argparse.Namespace, result: dict, where: str) -> None:
    print(f"intrinsic evaluation of {args.model} on {result['instances']} {args.split} instances{where} "
          f"(at most {result['max_seq_len']} tokens)")
    print(f"  MLM: loss {result['mlm_loss']:.4f}  accuracy {result['mlm_acc']:.4f}  ({result['mlm_tokens']} masked tokens)")
    if result["drp_acc"] is None:
        print("  DRP: no trained relation head (none exported, or trained with --no-drp): no DRP accuracy")
    else:
        print(f"  DRP: loss {result['drp_loss']:.4f}  accuracy {result['drp_acc']:.4f}")
        for name, accuracy in result["drp_acc_per_relation"].items():
            count = result["drp_count_per_relation"][name]
            shown = "n/a" if accuracy is None else f"{accuracy:.4f}"
            print(f"    {name:<10} {shown}  ({count} instances)")
