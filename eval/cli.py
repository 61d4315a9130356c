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
    intrinsic.add_argument("--data", required=True, metavar="DIR", help="pipeline output with instances/heldout-*")
    intrinsic.add_argument("--split", default="heldout", help="instance split to read (default: heldout)")
    intrinsic.add_argument("--max-instances", type=int, help="evaluate only the first N instances")
    intrinsic.add_argument("--batch-size", type=int, default=32)
    intrinsic.add_argument("--max-seq-len", type=int,
                           help="truncate longer instances (default: the length the model was trained at)")
    intrinsic.add_argument("--masking", default="token", choices=STRATEGIES)
    intrinsic.add_argument("--seed", type=int, default=0, help="masking seed")
    intrinsic.add_argument("--json", action="store_true", help="end with the metrics as one JSON line")
    intrinsic.set_defaults(func=run_intrinsic)


def run_intrinsic(args: argparse.Namespace) -> int:
    from linkbert.eval.intrinsic import evaluate

    result = evaluate(args.model, args.data, args.max_instances, args.batch_size, args.seed, args.masking, args.split,
                      args.max_seq_len)
    print(f"intrinsic evaluation of {args.model} on {result['instances']} {args.split} instances "
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
    if args.json:
        print(json.dumps(result))
    return 0
