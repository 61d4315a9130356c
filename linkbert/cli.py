"""The ``linkbert`` console script. Each area registers its own subcommands; imports stay lazy so that
``linkbert synth`` does not pay for importing torch and ``linkbert train`` does not import Beam."""

from __future__ import annotations

import argparse
import importlib
import sys

# (subcommand, module providing add_parser(subparsers)); each add_parser sets ``func`` on its parser.
SUBCOMMANDS = (
    ("synth", "linkbert.pipeline.synth.cli"),
    ("pipeline", "linkbert.pipeline.run"),
    ("report", "linkbert.pipeline.report.build"),
    ("train", "linkbert.train.cli"),
    ("eval", "linkbert.eval.cli"),
    ("ablation", "linkbert.eval.ablation"),
)


def build_parser(argv: list[str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="linkbert", description=__doc__.splitlines()[0])
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    wanted = argv[0] if argv and not argv[0].startswith("-") else None
    for name, module in SUBCOMMANDS:
        if wanted is not None and wanted != name:
            # Register a stub so --help lists it, without importing its module.
            subparsers.add_parser(name, help=f"see 'linkbert {name} --help'", add_help=False)
            continue
        try:
            importlib.import_module(module).add_parser(subparsers)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(argv)
    if argv and argv[0] == "pipeline":
        # Beam options (--runner, --direct_num_workers, ...) pass through untouched.
        args, beam_args = parser.parse_known_args(argv)
        args.beam_args = beam_args
    else:
        args = parser.parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
