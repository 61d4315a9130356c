"""Benchmark: our Wikipedia page-parse stage vs WikiExtractor, same dump, same run.

"Ours" is the stage ``ReadWikipedia`` runs per page, in one process: the dump read and parsed
(``pipeline.sources.wikidump``, decompression in a background thread), each page through
``page_outcome`` (namespace and redirect handling, wikitext cleaned, out-links extracted), each
document written as a JSON line. The peer is WikiExtractor as the LinkBERT authors ran it,
``wikiextractor --no-templates --links --processes 1`` (a reader, one extraction process and a
writer process). Disambiguation pages are kept on our side so both write the same 106 articles of the
shared enwiki fragment.

Each measurement runs in a fresh interpreter that times itself after its imports, ``--runs`` times
per tool, alternating; the medians are reported as articles/s and MB/s of uncompressed XML. Then the
peak RSS of our stage on a 1x and a 4x synthetic dump (``pipeline.synth.wiki``) shows whether memory
grows with input size.

Last line: ``wikipedia: ours=<articles/s> peer=<articles/s> ratio=<ours/peer>``.

    .venv/bin/python bench/wikipedia.py [--dump PATH] [--runs 5] [--memory-docs 1000]
"""

from __future__ import annotations

import argparse
import bz2
import json
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DUMP = REPO.parent / "shared/data/wikipedia/enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2"


def run_ours(dump: str, out_dir: str) -> dict:
    sys.path.insert(0, str(REPO))
    from linkbert.pipeline.sources.wikidump import RawPage, WorkUnit, read_pages
    from linkbert.pipeline.sources.wikipedia import page_outcome
    from linkbert.pipeline.sources.wikitext import WikitextCleaner

    started = time.perf_counter()
    articles = 0
    cleaner = None
    with open(Path(out_dir) / "documents.jsonl", "w", encoding="utf-8") as out:
        for page in read_pages(WorkUnit(dump)):
            if not isinstance(page, RawPage):
                raise SystemExit(f"unreadable part of {dump}: {page.detail}")
            if cleaner is None or cleaner.site is not page.site:
                cleaner = WikitextCleaner(page.site)
            kind, record, _ = page_outcome(page, cleaner, {0}, keep_disambiguation=True)
            if kind == "document":
                out.write(json.dumps(record, ensure_ascii=False) + "\n")
                articles += 1
    return {"seconds": time.perf_counter() - started, "articles": articles}


def run_peer(dump: str, out_dir: str) -> dict:
    from wikiextractor import WikiExtractor

    sys.argv = ["wikiextractor", "--no-templates", "--links", "--processes", "1", "--quiet", "-o", out_dir, dump]
    started = time.perf_counter()
    WikiExtractor.main()
    seconds = time.perf_counter() - started
    articles = sum(path.read_text(encoding="utf-8").count("<doc ") for path in Path(out_dir).rglob("wiki_*"))
    return {"seconds": seconds, "articles": articles}


def worker(tool: str, dump: str) -> dict:
    out_dir = tempfile.mkdtemp(prefix=f"bench-wikipedia-{tool}-")
    try:
        result = (run_ours if tool == "ours" else run_peer)(dump, out_dir)
    finally:
        shutil.rmtree(out_dir, ignore_errors=True)
    result["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return result


def measure(tool: str, dump: str) -> dict:
    completed = subprocess.run(
        [sys.executable, __file__, "--worker", tool, dump], capture_output=True, text=True, check=False
    )
    if completed.returncode != 0:
        raise SystemExit(f"{tool} failed on {dump}:\n{completed.stderr[-3000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dump", default=str(DEFAULT_DUMP), help="pages-articles .xml.bz2 (default: the shared enwiki fragment)")
    parser.add_argument("--runs", type=int, default=5, help="measurements per tool (default 5)")
    parser.add_argument("--memory-docs", type=int, default=1000, help="documents of the 1x synthetic dump (default 1000)")
    parser.add_argument("--worker", nargs=2, metavar=("TOOL", "DUMP"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(*args.worker)))
        return

    dump = Path(args.dump)
    if not dump.exists():
        raise SystemExit(f"dump not found: {dump}")
    xml_mb = len(bz2.decompress(dump.read_bytes())) / 1e6
    print(f"dump: {dump.name} ({dump.stat().st_size / 1e6:.2f} MB bz2, {xml_mb:.2f} MB XML); {args.runs} runs per tool, alternating")
    results: dict[str, list[dict]] = {"ours": [], "peer": []}
    for run in range(args.runs):
        for tool in (("ours", "peer") if run % 2 == 0 else ("peer", "ours")):
            results[tool].append(measure(tool, str(dump)))
    rates = {}
    for tool, label in (("ours", "ours (linkbert page-parse stage)"), ("peer", "peer (wikiextractor --no-templates --links --processes 1)")):
        seconds = statistics.median(r["seconds"] for r in results[tool])
        articles = results[tool][0]["articles"]
        rates[tool] = articles / seconds
        runs = " ".join(f"{r['seconds']:.2f}" for r in results[tool])
        print(f"{label}: {articles} articles, median {seconds:.3f} s -> {rates[tool]:.1f} articles/s, "
              f"{xml_mb / seconds:.2f} MB/s (runs: {runs} s)")

    sys.path.insert(0, str(REPO))
    from linkbert.pipeline.synth.wiki import write_wiki_dump

    with tempfile.TemporaryDirectory(prefix="bench-wikipedia-") as scratch:
        peaks = {}
        for factor in (1, 4):
            synthetic = write_wiki_dump(Path(scratch) / f"x{factor}", args.memory_docs * factor, seed=1)["dump"]
            measured = measure("ours", synthetic)
            size = Path(synthetic).stat().st_size / 1e6
            peaks[factor] = measured["peak_rss_mib"]
            print(f"memory {factor}x: synthetic dump of {args.memory_docs * factor} documents ({size:.1f} MB bz2): "
                  f"{measured['articles']} articles, peak RSS {peaks[factor]:.0f} MiB")
        print(f"memory: peak RSS 4x/1x = {peaks[4] / peaks[1]:.2f} (target <= 1.3)")

    print(f"wikipedia: ours={rates['ours']:.1f} peer={rates['peer']:.1f} ratio={rates['ours'] / rates['peer']:.2f}")


if __name__ == "__main__":
    main()
