"""``linkbert synth``: write a synthetic linked corpus (Wikipedia dump or PubMed baseline) with its
ground-truth graph, for tests, benchmarks and the demo."""

from __future__ import annotations

import argparse
import sys
import time


def _at_least(minimum: int):
    def parse(value: str) -> int:
        number = int(value)
        if number < minimum:
            raise argparse.ArgumentTypeError(f"must be an integer >= {minimum}, got {value}")
        return number

    return parse


def _run_wiki(args: argparse.Namespace) -> int:
    from linkbert.pipeline.synth.wiki import write_wiki_dump

    started = time.perf_counter()
    paths = write_wiki_dump(args.out, args.docs, args.seed, multistream=args.multistream,
                            pages_per_stream=args.pages_per_stream)
    for path in paths.values():
        print(path)
    print(f"{args.docs} documents in {time.perf_counter() - started:.1f}s", file=sys.stderr)
    return 0


def _run_pubmed(args: argparse.Namespace) -> int:
    from linkbert.pipeline.synth.pubmed import write_pubmed_baseline

    started = time.perf_counter()
    paths = write_pubmed_baseline(args.out, args.docs, args.seed, num_files=args.files)
    for path in paths["files"] + [paths["truth"], paths["articles"]]:
        print(path)
    print(f"{args.docs} articles in {time.perf_counter() - started:.1f}s", file=sys.stderr)
    return 0


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("synth", help="write a synthetic linked corpus with its true graph",
                                   description=__doc__)
    kinds = parser.add_subparsers(dest="synth_kind", required=True, metavar="KIND")

    def common(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--docs", type=_at_least(2), required=True, help="number of documents (at least 2)")
        sub.add_argument("--seed", type=int, default=0, help="random seed; same seed, byte-identical files")
        sub.add_argument("--out", required=True, help="output directory (created if missing)")

    wiki = kinds.add_parser("wiki", help="MediaWiki pages-articles export (.xml.bz2), schema 0.11")
    common(wiki)
    wiki.add_argument("--multistream", action="store_true",
                      help="write the multistream layout: <name>-multistream.xml.bz2 plus its offset index")
    wiki.add_argument("--pages-per-stream", type=_at_least(1), default=100, help="pages per bz2 stream (default 100)")
    wiki.set_defaults(func=_run_wiki)

    pubmed = kinds.add_parser("pubmed", help="PubMed baseline files (pubmed26nNNNN.xml.gz)")
    common(pubmed)
    pubmed.add_argument("--files", type=_at_least(1), default=1, help="number of baseline files (default 1)")
    pubmed.set_defaults(func=_run_pubmed)
