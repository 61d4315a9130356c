"""``linkbert report DIR``: an HTML page with plots that shows at a glance whether a pipeline output is right.

Writes ``DIR/report/index.html`` and its PNG plots: the realised relation mix against 1/3, segment
and instance lengths, the in-degree distribution of the edges against how often each document is
the B side of a linked instance (LinkBERT's diversity sampling), the fraction of links resolved, the
dead-letter records by reason, the manifest summary, consistency checks between the manifest and the
files, and a dozen instances decoded back to text with A and B marked.

Tables are read with ``pyarrow.dataset``, one or two columns at a time: counts are streamed
aggregations (Acero group-bys hold one row per document, never one per edge or instance). Instances
are not scanned: their counts per split, relation and link type come from the manifest's per-shard
entries, each checked against its file's footer (a file that does not match is counted from its own
rows), and the length and linked-B plots and the sample instances come from a bounded number of rows
at the head of the shards, which the pipeline already shuffled with a seeded permutation. Paths may be local or any URI ``pyarrow.fs`` understands (``gs://``).
"""

from __future__ import annotations

import argparse
import sys

from linkbert import schemas
from linkbert.pipeline.report.checks import Report, build_checks, normalisation_check
from linkbert.pipeline.report.gather import (
    count_relations,
    decode_samples,
    degree_arrays,
    footer_facts,
    instance_lengths,
    instance_sample,
    link_resolution_from_counters,
    link_resolution_from_tables,
    load_tokenizer,
    normalisation_changes,
    pick_sample_rows,
    read_dead_letters,
)
from linkbert.pipeline.report.page import render_html
from linkbert.pipeline.report.plots import plot_in_degree, plot_lengths, plot_links_resolved, plot_relation_mix
from linkbert.pipeline.report.store import ReportError, Store, load_manifest, streamed_bincount

# ---------------------------------------------------------------------------------------------- I/O


# ------------------------------------------------------------------------------------------ plots


# -------------------------------------------------------------------------------------- gathering


# ------------------------------------------------------------------------------------------- HTML


# ------------------------------------------------------------------------------------------ checks


# ------------------------------------------------------------------------------------------ driver


def build_report(directory: str, output: str | None = None, num_samples: int = 12) -> Report:
    """Write the report of the pipeline output ``directory`` into ``output`` (default ``directory/report``)."""
    store = Store(directory)
    manifest = load_manifest(store)
    out = Store(output) if output else Store(directory.rstrip("/") + "/report")
    options = manifest.get("options", {})

    footers = {table: footer_facts(store, table) for table in schemas.TABLES}
    relation_counts = count_relations(store, manifest)
    counters = manifest.get("counters", {})
    resolution = link_resolution_from_counters(counters)
    resolution_source = "counters"
    if not resolution:
        resolution, resolution_source = link_resolution_from_tables(store), "documents' out-links vs edges"
    dead_letters, dead_examples, unreadable_errors = read_dead_letters(store)
    sample = instance_sample(store)  # bounded: the report's cost does not grow with the instance count
    in_degree, picks_aligned, linked_picks, orphan_picks = degree_arrays(store, sample)
    documents_rows = footers["documents"][0]
    zero_in_degree = documents_rows - in_degree.size if footers["documents"][1] else None

    tokenizer = load_tokenizer(store)
    tokenizer_fingerprint = schemas.tokenizer_fingerprint(tokenizer.get_vocab()) if tokenizer else None
    vocab = tokenizer.get_vocab() if tokenizer else {}
    samples = decode_samples(store, pick_sample_rows(store, num_samples), tokenizer, vocab.get("[CLS]"), vocab.get("[SEP]"))

    plots = {
        "relation_mix.png": plot_relation_mix(relation_counts),
        "lengths.png": plot_lengths(
            streamed_bincount(store.dataset(store.table_files("segments")), "num_tokens", store, "segments"),
            instance_lengths(sample, footers["instances"][0]),
            options.get("segment_tokens"), options.get("max_seq_len")),
        "in_degree.png": plot_in_degree(in_degree, picks_aligned, linked_picks, options.get("diversity")),
        "links_resolved.png": plot_links_resolved(resolution, resolution_source),
    }
    plot_paths = {name: out.write_bytes(data, name) for name, data in plots.items()}
    checks = build_checks(manifest, footers, tokenizer_fingerprint, relation_counts, samples, dead_letters,
                          unreadable_errors, resolution, orphan_picks)
    normalisation = normalisation_check(normalisation_changes(store, tokenizer))
    if normalisation is not None:
        checks.append(normalisation)
    report = Report(index_html=out.path("index.html"), plots=plot_paths, checks=checks, samples=samples,
                    relation_counts=relation_counts, dead_letters=dead_letters, link_resolution=resolution,
                    link_resolution_source=resolution_source)
    tables_on_disk = {table: (footers[table][0], footers[table][1]) for table in schemas.TABLES}
    page = render_html(store, manifest, report, tables_on_disk, dead_examples, unreadable_errors, zero_in_degree)
    out.write_bytes(page.encode("utf-8"), "index.html")
    return report


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("report", help="write DIR/report/index.html: plots, checks and sample instances",
                                   description=__doc__.splitlines()[0])
    parser.add_argument("directory", metavar="DIR", help="output directory of 'linkbert pipeline' (gs:// works)")
    parser.add_argument("--output", help="where to write index.html and the plots (default DIR/report)")
    parser.add_argument("--samples", type=int, default=12, help="instances decoded in the report (default 12)")
    parser.add_argument("--strict", action="store_true",
                        help="exit 1 on WARN checks too (a FAIL check always exits 1)")
    parser.set_defaults(func=run_from_args)


def run_from_args(args: argparse.Namespace) -> int:
    try:
        report = build_report(args.directory, args.output, args.samples)
    except ReportError as exc:
        print(f"linkbert report: {exc}", file=sys.stderr)
        return 2
    for check in report.checks:
        print(f"  [{check.status.upper():4}] {check.name}: {check.detail}")
    print(f"report: {report.index_html}")
    failing = [check.name for check in report.checks
               if check.status == "fail" or (getattr(args, "strict", False) and check.status == "warn")]
    if failing:
        kinds = "FAIL or WARN (--strict)" if getattr(args, "strict", False) else "FAIL"
        print(f"linkbert report: {len(failing)} check(s) {kinds} for {args.directory}: {'; '.join(failing)}",
              file=sys.stderr)
        return 1
    return 0
