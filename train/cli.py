"""``linkbert train``: pretrain a LinkBERT encoder with DeepSpeed on the pipeline's instance shards.

``deepspeed -m train ...`` and ``python -m train ...`` take the same options; ``linkbert train export``
writes ``RUNDIR/hf`` from any checkpoint of a run.
"""

from __future__ import annotations

import argparse
import os
import sys

# OpenMP threads that spin while waiting collapse when another process holds a core (a shared 2-core
# machine ran 6x slower); passive waiting costs little when the cores are free. Read when torch loads.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from linkbert.train.dsconfig import PRECISIONS
from linkbert.train.masking import STRATEGIES
from linkbert.train.presets import PRESETS


def _at_least(minimum: int):
    def parse(value: str) -> int:
        try:
            number = int(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be an integer >= {minimum}, got {value!r}") from None
        if number < minimum:
            raise argparse.ArgumentTypeError(f"must be an integer >= {minimum}, got {value}")
        return number

    parse.__name__ = f"integer >= {minimum}"
    return parse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", help="pipeline output directory (instances/, tokenizer/, manifest.json), or "
                        "DIR1[:WEIGHT],DIR2[:WEIGHT],... to mix several (default: in proportion to their rows)")
    parser.add_argument("--output", metavar="RUNDIR", help="run directory (checkpoints, metrics, hf/); required")
    recipe = parser.add_argument_group("recipe (defaults from the preset)")
    recipe.add_argument("--preset", default="tiny", choices=sorted(PRESETS))
    recipe.add_argument("--init", metavar="PATH", help="continue from this local BERT checkpoint directory")
    shape = parser.add_argument_group("model shape (from-scratch presets; default: the preset's)")
    shape.add_argument("--layers", type=_at_least(1), help="transformer layers")
    shape.add_argument("--hidden-size", type=_at_least(1))
    shape.add_argument("--heads", type=_at_least(1), help="attention heads (a divisor of --hidden-size)")
    shape.add_argument("--intermediate-size", type=_at_least(1), help="feed-forward width")
    recipe.add_argument("--max-steps", type=_at_least(1), help="optimizer steps (the warm-up keeps the preset's fraction)")
    recipe.add_argument("--lr", type=float, help="peak learning rate")
    recipe.add_argument("--warmup-steps", type=_at_least(0))
    recipe.add_argument("--warmup-fraction", type=float)
    recipe.add_argument("--global-batch-size", type=_at_least(1), help="sequences per optimizer step over all devices")
    recipe.add_argument("--micro-batch-size", type=_at_least(1), help="sequences per device per forward pass")
    recipe.add_argument("--max-seq-len", type=_at_least(8),
                        help="truncate longer instances to this many tokens (default: the preset's 512, at most the model's positions); "
                             "BERT's first phase uses 128")
    recipe.add_argument("--hidden-dropout", type=float, help="hidden-state dropout (default: the model config's, 0.1)")
    recipe.add_argument("--attention-dropout", type=float,
                        help="attention-probability dropout (default: the model config's, 0.1); 0 lets the CPU use "
                             "the fused attention kernel")
    recipe.add_argument("--masking", choices=STRATEGIES,
                        help="default: the preset's (wwm for bio-base/bio-large as PubMedBERT, token otherwise)")
    recipe.add_argument("--mask-rate", type=float, default=0.15)
    recipe.add_argument("--no-drp", action="store_true", help="MLM only (the ablation without relation prediction)")
    recipe.add_argument("--sbo", action="store_true",
                        help="add SpanBERT's span boundary objective (best with --masking span); off by default")
    recipe.add_argument("--drp-weight", type=float, default=1.0, help="weight of the DRP loss in MLM + w * DRP")
    recipe.add_argument("--seed", type=int, default=0)
    engine = parser.add_argument_group("DeepSpeed")
    engine.add_argument("--precision", choices=PRECISIONS, help="default: fp16 on a GPU, fp32 on the CPU")
    engine.add_argument("--zero-stage", type=int, choices=(0, 1, 2))
    engine.add_argument("--gradient-clipping", type=float)
    engine.add_argument("--deepspeed-config", metavar="JSON", help="base DeepSpeed config instead of train/configs/")
    engine.add_argument("--max-nonfinite", type=_at_least(1), default=20,
                        help="abort after this many consecutive steps with a non-finite loss")
    engine.add_argument("--local_rank", "--local-rank", type=int, default=None, help=argparse.SUPPRESS)
    data = parser.add_argument_group("data loading")
    data.add_argument("--num-workers", type=_at_least(0), default=1, help="DataLoader worker processes per rank")
    data.add_argument("--shuffle-buffer", type=_at_least(1), default=10_000, help="rows per shuffled window")
    data.add_argument("--bucket-batches", type=int, default=16,
                      help="micro-batches per length-bucketing pool (0: no bucketing)")
    run = parser.add_argument_group("checkpoints and logging")
    run.add_argument("--save-every", type=_at_least(1), default=1000, help="checkpoint every N steps (and at the end)")
    run.add_argument("--keep-checkpoints", type=_at_least(0), default=2, help="complete checkpoints to keep (0: all)")
    run.add_argument("--resume", action="store_true", help="continue from RUNDIR/checkpoints/latest if present")
    run.add_argument("--overwrite", action="store_true",
                     help="start afresh in a RUNDIR that holds an earlier run (its checkpoints and metrics are removed)")
    run.add_argument("--log-every", type=_at_least(1), default=10)
    run.add_argument("--no-tensorboard", action="store_true")
    run.add_argument("--no-progress", action="store_true", help="no console progress bar")
    run.add_argument("--peak-tflops", type=float, help="device peak for the MFU estimate (default: known GPUs)")
    run.add_argument("--threads", type=int, help="torch intra-op threads on the CPU")


def add_export_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--output", required=True, metavar="RUNDIR", help="the run directory")
    parser.add_argument("--tag", help="checkpoint tag (default: latest)")
    parser.add_argument("--hf-dir", help="where to write (default: RUNDIR/hf)")


def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    parser = parser or argparse.ArgumentParser(prog="python -m train", description=__doc__.splitlines()[0])
    add_arguments(parser)
    actions = parser.add_subparsers(dest="action", metavar="{export}")
    export = actions.add_parser("export", help="write RUNDIR/hf from a checkpoint of the run")
    add_export_arguments(export)
    export.set_defaults(func=run_export)
    parser.set_defaults(func=run_train)
    return parser


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("train", help="pretrain a LinkBERT encoder with DeepSpeed",
                                   description=__doc__.splitlines()[0],
                                   usage="linkbert train --data DIR --output RUNDIR [options] (--help lists them)")
    build_parser(parser)


def run_train(args: argparse.Namespace) -> int:
    if not args.data or not args.output:
        raise SystemExit("linkbert train: --data DIR and --output RUNDIR are required")
    from linkbert.train.checkpoint import RunDirError, prepare_run_dir
    from linkbert.train.data import ShardError
    from linkbert.train.loop import NonFiniteLossError, train

    from linkbert.train.mixing import parse_data

    for source in parse_data(args.data):  # one directory, or DIR1[:W],DIR2[:W],... to mix
        if not os.path.isdir(source.path):
            raise SystemExit(f"linkbert train: --data {source.path}: no such directory")
    shape_flags = [flag for flag, value in (("--layers", args.layers), ("--hidden-size", args.hidden_size),
                                            ("--heads", args.heads), ("--intermediate-size", args.intermediate_size)) if value]
    if args.init and shape_flags:
        raise SystemExit(f"linkbert train: {', '.join(shape_flags)} shape a model trained from scratch; "
                         f"--init {args.init} brings its own shape")
    if args.init and not os.path.isdir(args.init):
        raise SystemExit(f"linkbert train: --init {args.init}: no such directory (checkpoints are read from local paths only)")
    try:
        prepare_run_dir(args.output, args.resume, getattr(args, "overwrite", False))
    except RunDirError as exc:
        raise SystemExit(f"linkbert train: {exc}") from exc
    try:
        train(args)
    except (ShardError, NonFiniteLossError) as exc:
        raise SystemExit(f"linkbert train: {exc}") from exc
    return 0


def run_export(args: argparse.Namespace) -> int:
    from linkbert.train.export import export_checkpoint

    path = export_checkpoint(args.output, args.tag, args.hf_dir)
    print(f"exported {path}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    return int(args.func(args) or 0)
