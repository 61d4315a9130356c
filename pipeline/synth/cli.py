"""``linkbert synth``: write a synthetic linked corpus (Wikipedia dump or PubMed baseline) with its
ground-truth graph, for tests, benchmarks and the demo."""

from __future__ import annotations

import argparse
import os
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
                            pages_per_stream=args.pages_per_stream, article_words=args.article_words)
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


def _run_qa(args: argparse.Namespace) -> int:
    from linkbert.pipeline.synth import qa

    if os.path.isdir(args.world):
        articles, links = qa.world_from_corpus(args.world)
    else:
        try:
            seed = int(args.world)
        except ValueError:
            print(f"linkbert synth qa: --world {args.world!r} is neither a directory nor a seed", file=sys.stderr)
            return 2
        if args.docs is None:
            print("linkbert synth qa: --world SEED needs --docs N", file=sys.stderr)
            return 2
        articles, links = qa.world_from_seed(args.docs, seed)
    heldout = qa.heldout_doc_ids(args.heldout_from) if args.heldout_from else None
    sets = qa.build_sets(articles, links, args.seed, heldout, fewshot_fraction=args.fewshot_fraction)
    counts = qa.write_sets(sets, args.out)
    for setting, splits in counts.items():
        print(f"{setting}: " + " ".join(f"{split}={n}" for split, n in splits.items()))
    if not counts["multihop"]["test"] or not counts["multihop"]["train"]:
        print("linkbert synth qa: no multi-hop train or test question could be made (too few documents?)", file=sys.stderr)
        return 1
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
    wiki.add_argument("--article-words", type=_at_least(20), default=620,
                      help="median prose words per article (default 620; e.g. 120 for a short-article corpus whose"
                           " articles are mostly one or two 254-token segments)")
    wiki.set_defaults(func=_run_wiki)

    pubmed = kinds.add_parser("pubmed", help="PubMed baseline files (pubmed26nNNNN.xml.gz)")
    common(pubmed)
    pubmed.add_argument("--files", type=_at_least(1), default=1, help="number of baseline files (default 1)")
    pubmed.set_defaults(func=_run_pubmed)

    qa = kinds.add_parser("qa", help="extractive QA sets (multi-hop, single-hop, distractor, few-shot) from a synthetic world")
    qa.add_argument("--world", required=True, help="a 'linkbert synth wiki' output directory, or a seed (with --docs)")
    qa.add_argument("--docs", type=_at_least(2), help="documents of the world when --world is a seed")
    qa.add_argument("--heldout-from", metavar="DIR", help="pipeline output whose held-out documents become the test entities")
    qa.add_argument("--seed", type=int, default=0, help="seed of the splits, facts asked and distractors (default 0)")
    qa.add_argument("--fewshot-fraction", type=float, default=0.1, help="share of training questions kept for few-shot")
    qa.add_argument("--out", required=True, help="output directory: <setting>/{train,dev,test}.json, samples.md")
    qa.set_defaults(func=_run_qa)
