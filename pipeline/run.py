"""``linkbert pipeline``: dump files -> documents, edges, tokenizer, segments, instances, manifest.

Reads top to bottom as the data flow: sources -> edges -> instances -> shards. Options are parsed
once, here; every stage is a PTransform from its own room of ``linkbert.pipeline``. Runs on the DirectRunner by default; any Beam runner option
(``--runner DataflowRunner --project ...``) passes through.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import sys
import tempfile
import time

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions

from linkbert import schemas
from linkbert.pipeline import progress, sources
from linkbert.pipeline.edges.hyperlinks import LinkIndex, ResolveLinks, SegmentLinkTargets
from linkbert.pipeline.edges.random import RandomEdges
from linkbert.pipeline.instances.pairing import ANCHOR_POLICIES, LINK_SCOPES, MakeInstances
from linkbert.pipeline.instances.segment import Segment
from linkbert.pipeline.instances.tokenizer import DEFAULT_SAMPLE_CHARS, BuildTokenizer
from linkbert.pipeline.outcome import losses_exit_code
from linkbert.pipeline.preflight import (UsageError, check_inputs, check_option_combinations, check_output, float_in,
                                         int_at_least, namespace_list)
from linkbert.pipeline.records import collect_counters
from linkbert.pipeline.shards.card import write_dataset_card
from linkbert.pipeline.shards.manifest import write_manifest
from linkbert.pipeline.shards.writer import WriteParquetShards, instance_stats

LINK_TYPES = ("hyperlink", "citation", "tfidf", "random", "none")


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "pipeline",
        help="build documents, edges, segments and pretraining instances (Apache Beam)",
        description=__doc__.splitlines()[0] + " Unrecognised options are passed to Beam.",
        usage="linkbert pipeline --source SOURCE --input GLOB --output DIR [options] (--help lists them)",
    )
    add_arguments(parser)
    parser.set_defaults(func=run_from_args)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--source", required=True, choices=sources.names(),
                        help="input format (text: one document per file, or per JSON line with id/title/text)")
    parser.add_argument("--input", required=True, help="input files: a glob or comma-separated globs (gs:// works)")
    parser.add_argument("--output", required=True, help="output directory (gs:// works)")
    parser.add_argument("--links", choices=LINK_TYPES, help="edge source (default: hyperlink for wikipedia, citation for pubmed/pmc;"
                        " none: no edges, contiguous/random pairs 50/50 as BERT's NSP)")
    parser.add_argument("--seed", type=int, default=0, help="seed of every random choice (default 0)")
    parser.add_argument("--overwrite", action="store_true", help="clear an --output that holds an earlier run (default: refuse)")
    parser.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                        help="show input read, rate and ETA on stderr every few seconds (default: when stderr is a"
                             " terminal; only on the local DirectRunner, a remote runner's UI shows its own)")
    parser.add_argument("--tfidf-k", type=int_at_least(1), default=5, help="TF-IDF neighbours per document with --links tfidf (default 5)")
    parser.add_argument("--random-k", type=int_at_least(1), default=5, help="random edges per document with --links random (default 5)")
    group = parser.add_argument_group("tokenizer")
    group.add_argument("--tokenizer", help="local tokenizer directory or vocab.txt; default: train WordPiece on the corpus")
    group.add_argument("--vocab-size", type=int_at_least(16), default=30522, help="WordPiece vocabulary size when training (default 30522)")
    group.add_argument("--no-lowercase", dest="lowercase", action="store_false", help="keep case (default: lower-case)")
    group.add_argument("--strip-accents", action="store_true",
                       help="strip diacritics when training a tokenizer (default: keep them: ā, š, й stay distinct)")
    group.add_argument("--tokenizer-sample-docs", type=int_at_least(1), default=20000, help="documents sampled to train the tokenizer")
    group.add_argument("--tokenizer-sample-chars", type=int_at_least(1), default=DEFAULT_SAMPLE_CHARS,
                       help="characters of the sample at most (default 100M; each document gives its first 20k), so one"
                            " worker's memory for the sample is bounded whatever --tokenizer-sample-docs")
    group = parser.add_argument_group("instances")
    group.add_argument("--segment-tokens", type=int_at_least(8), default=254,
                       help="maximum tokens per segment (default 254: two segments and 3 special tokens fit 512)")
    group.add_argument("--max-seq-len", type=int_at_least(16), default=512, help="maximum tokens per instance (default 512)")
    group.add_argument("--dupe-factor", type=int_at_least(1), default=1, help="pairing rounds with different seeds (default 1)")
    group.add_argument("--heldout-fraction", type=float_in(0.0, 1.0), default=0.01, help="fraction of documents held out (default 0.01)")
    group.add_argument("--no-diversity", dest="diversity", action="store_false",
                       help="draw linked targets uniformly instead of proportional to 1/in-degree")
    group.add_argument("--link-scope", choices=LINK_SCOPES, default="segment",
                       help="linked B from a document linked inside A's span (segment, default, where link positions"
                            " exist) or anywhere in A's document (document)")
    group.add_argument("--anchors", choices=ANCHOR_POLICIES, default="balanced",
                       help="balanced (default): only anchors with every relation available, drawn uniformly, so A alone"
                            " does not predict the relation; all: the paper's per-anchor draw (more instances, label"
                            " guessable from A)")
    group.add_argument("--max-redirect-hops", type=int_at_least(0), default=3, help="redirect chain length followed (default 3)")
    group = parser.add_argument_group("shards")
    group.add_argument("--rows-per-shard", type=int_at_least(1), default=50000, help="instance rows per shard when --num-shards is not given")
    group.add_argument("--num-shards", type=int_at_least(1), help="number of training shards (default: from --rows-per-shard)")
    # A shard is one group handed to one worker, whole on the DirectRunner: these bound a worker's memory there.
    group.add_argument("--document-rows-per-shard", type=int_at_least(1), default=100000, help="documents per shard of documents/")
    group.add_argument("--segment-rows-per-shard", type=int_at_least(1), default=200000, help="segments per shard of segments/")
    group.add_argument("--edge-rows-per-shard", type=int_at_least(1), default=2000000, help="edges per shard of edges/")
    group = parser.add_argument_group("wikipedia")
    group.add_argument("--namespaces", type=namespace_list, default="0", help="comma-separated namespace ids kept (default 0)")
    group.add_argument("--keep-disambiguation", action="store_true", help="keep disambiguation pages (default: drop)")
    group.add_argument("--wiki-index", help="multistream index (default: the -multistream-index.txt.bz2 beside the dump)")
    group.add_argument("--build-wiki-index", action="store_true",
                       help="a multistream dump without its index: find its bz2 streams in a parallel first pass (one"
                            " extra read of the compressed file) instead of parsing it as one work unit")
    group.add_argument("--wiki-range-mb", type=float_in(0.0, float("inf"), low_open=True), default=64,
                       help="MB of whole bz2 streams per parallel work unit of a multistream dump (default 64)")
    group = parser.add_argument_group("pubmed / pmc")
    group.add_argument("--min-abstract-words", type=int_at_least(0), default=128,
                       help="drop PubMed abstracts shorter than this (PubMedBERT's 128; 0 keeps all)")
    group.add_argument("--pmc-body", action="store_true", help="include PMC body paragraphs, not only title and abstract")


def read_documents(pipeline: beam.Pipeline, config: argparse.Namespace) -> dict:
    """The source stage: {"documents", "errors"} and, for Wikipedia, {"redirects"}."""
    return sources.get(config.source).read(pipeline, config)


def build_edges(documents, redirects, link_type: str, config: argparse.Namespace, index=None):
    """The edge source chosen by --links (``index``: a shared ``LinkIndex`` for hyperlinks/citations)."""
    if link_type == "none":
        return documents.pipeline | "NoEdges" >> beam.Create([])
    if link_type == "tfidf":
        from linkbert.pipeline.edges.tfidf import TfidfEdges

        return documents | "TfidfEdges" >> TfidfEdges(k=config.tfidf_k, seed=config.seed)
    if link_type == "random":
        return documents | "RandomEdges" >> RandomEdges(config.random_k, config.seed)
    inputs = {"documents": documents}
    if redirects is not None and link_type == "hyperlink":
        inputs["redirects"] = redirects
    if index is not None:
        inputs["index"] = index
    return inputs | "Links" >> ResolveLinks(link_type, config.max_redirect_hops, sources.get(config.source).link_key)


class _CountDocuments(beam.DoFn):
    """Documents read, for the progress of a local run (``linkbert.pipeline.progress``)."""

    def process(self, document):
        progress.add("documents")
        yield document

    def finish_bundle(self):
        progress.flush()


def build_pipeline(pipeline: beam.Pipeline, config: argparse.Namespace, source: dict | None = None,
                   count_progress: bool = False) -> None:
    """Add every stage to ``pipeline``; ``source`` replaces the source stage (tests feed documents directly)."""
    output = config.output
    link_type = config.links or sources.get(config.source).default_links
    seed = config.seed

    source = source if source is not None else read_documents(pipeline, config)
    documents = source["documents"]
    if count_progress:
        documents = documents | "CountProgress" >> beam.ParDo(_CountDocuments())

    tokenizer = documents | "Tokenizer" >> BuildTokenizer(
        FileSystems.join(output, "tokenizer"), seed, config.vocab_size, config.lowercase,
        config.tokenizer_sample_docs, local_path=config.tokenizer,
        strip_accents=getattr(config, "strip_accents", False),
        sample_budget_chars=getattr(config, "tokenizer_sample_chars", DEFAULT_SAMPLE_CHARS),
    )
    link_index = None
    if link_type == "hyperlink":  # positions exist: segments resolve their own anchors through the same index
        link_inputs = {"documents": documents}
        if source.get("redirects") is not None:
            link_inputs["redirects"] = source["redirects"]
        link_index = link_inputs | "LinkIndex" >> LinkIndex(link_type, config.max_redirect_hops, sources.get(config.source).link_key)
    edges = build_edges(documents, source.get("redirects"), link_type, config, link_index)
    segmented = documents | "Segment" >> Segment(tokenizer, config.segment_tokens)
    pair_inputs = {"segments": segmented["segments"], "edges": edges, "tokenizer": tokenizer}
    if link_index is not None:  # segments' outlinks are joined in by MakeInstances, with no extra shuffle of ids
        pair_inputs["segment_links"] = {"segments": segmented["segments"], "index": link_index} | "SegmentLinks" >> SegmentLinkTargets()
    paired = pair_inputs | "Pair" >> MakeInstances(
        seed, config.dupe_factor, config.diversity, config.max_seq_len, config.heldout_fraction,
        link_scope=config.link_scope, anchor_policy=config.anchors, with_links=link_type != "none",
    )
    segments = paired["segments"]  # rows with outlinks (None where the source has no link positions)

    def strip_split(instance):
        return {key: value for key, value in instance.items() if key != "split" and not key.startswith("_")}

    by_split = paired["instances"] | "SplitHeldout" >> beam.Partition(lambda row, _: int(row["split"] == "heldout"), 2)
    table_stats = [
        documents | "WriteDocuments" >> WriteParquetShards(
            FileSystems.join(output, "documents"), "documents", "part", lambda d: d["doc_id"], seed,
            rows_per_shard=config.document_rows_per_shard),
        edges | "WriteEdges" >> WriteParquetShards(
            FileSystems.join(output, "edges"), "edges", "part", lambda e: (e["src"], e["dst"], e["link_type"]), seed,
            rows_per_shard=config.edge_rows_per_shard),
        segments | "WriteSegments" >> WriteParquetShards(
            FileSystems.join(output, "segments"), "segments", "part", lambda s: (s["doc_id"], s["seg_idx"]), seed,
            rows_per_shard=config.segment_rows_per_shard, tokenizer=tokenizer),
    ]
    instance_key = lambda row: (row["round"], row["doc_a"], row["seg_a"])  # noqa: E731
    for split, rows in zip(("train", "heldout"), by_split):
        table_stats.append(
            rows
            | f"Strip{split.title()}" >> beam.Map(strip_split)
            | f"Write{split.title()}" >> WriteParquetShards(
                FileSystems.join(output, "instances"), "instances", split, instance_key, seed,
                rows_per_shard=config.rows_per_shard, num_shards=config.num_shards if split == "train" else None,
                tokenizer=tokenizer, stats_fn=instance_stats, write_empty=split == "train")
        )

    errors = (source["errors"], segmented["errors"]) | "AllErrors" >> beam.Flatten()
    _ = (
        errors
        | "ErrorsToJson" >> beam.Map(lambda record: json.dumps(record, ensure_ascii=False, sort_keys=True))
        | "WriteErrors" >> beam.io.WriteToText(FileSystems.join(output, "errors", "errors"), file_name_suffix=".jsonl")
    )

    options_record = {key: value for key, value in vars(config).items() if key not in ("func", "beam_args")}
    options_record["links"] = link_type
    options_record["effective_link_scope"] = (
        "none" if link_type == "none" else config.link_scope if link_type == "hyperlink" else "document")
    _ = (
        table_stats
        | "AllStats" >> beam.Flatten()
        | "CollectStats" >> beam.combiners.ToList()
        | "WriteManifest" >> beam.Map(
            write_manifest, output, options_record,
            beam.pvalue.AsSingleton(tokenizer), beam.pvalue.AsSingleton(paired["relation_probabilities"]),
            beam.pvalue.AsSingleton(paired["a_only"]),
        )
    )


def parse_config(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    """``linkbert pipeline`` arguments -> (config, Beam arguments); for callers other than the CLI."""
    parser = argparse.ArgumentParser(prog="linkbert pipeline")
    add_arguments(parser)
    return parser.parse_known_args(argv)


def run(config: argparse.Namespace, beam_args: list[str] | None = None, source_fn=None) -> dict:
    """Run the pipeline to completion; returns the manifest (with the run's counters added).

    ``source_fn(pipeline) -> dict`` replaces the source stage (tests build documents in memory).
    """
    check_option_combinations(config)
    if source_fn is None:
        check_inputs(config)
    check_output(config)
    options = PipelineOptions(beam_args or [])
    started = time.time()
    pipeline = beam.Pipeline(options=options)
    runner = options.view_as(StandardOptions).runner
    show_progress = progress.wanted(getattr(config, "progress", None), runner, sys.stderr.isatty())
    if getattr(config, "progress", None) and not show_progress:
        print(f"linkbert pipeline: no progress line on {runner}: its own UI shows the job's progress", file=sys.stderr)
    build_pipeline(pipeline, config, source_fn(pipeline) if source_fn else None, count_progress=show_progress)
    with _progress(config if show_progress else None):
        result = pipeline.run()
        result.wait_until_finish()
    try:
        counters = collect_counters(result)
    except (NotImplementedError, AttributeError):  # a runner without a metrics API
        counters = {}
    if not counters:  # reported late or never (some portable runners): not a lost run
        balanced, summary = None, [f"source reconciliation: counters not available on this runner "
                                   f"({options.get_all_options().get('runner') or 'DirectRunner'})"]
    elif source_fn is None:
        balanced, summary = sources.get(config.source).reconcile(counters)
    else:  # documents built in memory: no source stage whose counters could reconcile
        balanced, summary = True, ["documents given in memory: no source counters to reconcile"]
    manifest_path = FileSystems.join(config.output, "manifest.json")
    with FileSystems.open(manifest_path) as handle:
        manifest = json.loads(handle.read().decode("utf-8"))
    manifest["counters"] = dict(sorted(counters.items()))
    if (config.links or sources.get(config.source).default_links) == "tfidf":
        from linkbert.pipeline.edges.tfidf import vectorizer_kwargs

        manifest["tfidf"] = {"vectorizer": vectorizer_kwargs()}  # TfidfVectorizer(**these) recomputes the reference
    manifest["source_reconciled"] = balanced
    manifest["wall_seconds"] = round(time.time() - started, 1)
    with FileSystems.create(manifest_path) as handle:
        handle.write(json.dumps(manifest, indent=2, sort_keys=True).encode("utf-8"))
    write_dataset_card(config.output, manifest)
    print_summary(config, manifest, summary)
    return manifest


@contextlib.contextmanager
def _progress(config):
    """Around a local run (``config``; None: no progress): the channel its processes count into, and the printer."""
    if config is None:
        yield
        return
    directory = tempfile.mkdtemp(prefix="linkbert-progress-")
    os.environ[progress.ENV] = directory  # the DirectRunner's worker processes inherit it
    printer = progress.Printer(directory, _input_bytes(config.input, config.source)).start()
    try:
        yield
    finally:
        try:
            printer.stop()
        finally:
            os.environ.pop(progress.ENV, None)
            shutil.rmtree(directory, ignore_errors=True)


def _input_bytes(patterns: str, source: str) -> int:
    """Compressed bytes of the input files (a multistream index is planning, not input)."""
    sizes = {}
    for pattern in (p.strip() for p in patterns.split(",") if p.strip()):
        for metadata in FileSystems.match([pattern])[0].metadata_list:
            if not (source == "wikipedia" and "-multistream-index" in metadata.path):
                sizes[metadata.path] = metadata.size_in_bytes
    return sum(sizes.values())


def print_summary(config, manifest: dict, source_lines: list[str]) -> None:
    print(f"pipeline: {config.source} -> {config.output} in {manifest['wall_seconds']}s")
    for line in source_lines:
        print(f"  {line}")
    tables = manifest["tables"]
    for name in schemas.TABLES:
        if name in tables:
            print(f"  {name}: {tables[name]['rows']} rows in {len(tables[name]['files'])} file(s)")
    for split, info in sorted(manifest["splits"].items()):
        mix = " ".join(f"{name}={share:.3f}" for name, share in sorted(info["relation_mix"].items()))
        print(f"  instances[{split}]: {info['rows']} rows, {info['tokens']} tokens, {mix}")
    if manifest["source_reconciled"] is False:
        print("  WARNING: source counters do not reconcile (see above)")  # stderr keeps the one FAILED line
    print(f"  manifest: {FileSystems.join(config.output, 'manifest.json')}")
    failed = sum(value for name, value in manifest["counters"].items() if name.endswith(("failed", "files_failed")))
    if failed:
        print(f"  dead letters: {failed} failed record(s)/file(s) -> {FileSystems.join(config.output, 'errors')}")


def run_from_args(args: argparse.Namespace) -> int:
    """Exit 1 when input was lost (failed files or records that do not reconcile); everything that
    could be processed has been written, and DIR/errors/ names what failed."""
    try:
        manifest = run(args, getattr(args, "beam_args", []))
    except UsageError as exc:
        print(f"linkbert pipeline: {exc}", file=sys.stderr)
        return 2
    return losses_exit_code(args, manifest)
