"""Benchmark: the ``ReadPubmed`` Beam source stage vs a bare ``pubmed_parser.parse_medline_xml`` loop.

Both read the same synthetic baseline file (``linkbert synth pubmed``) in the same run, alternating,
``--runs`` times each; throughput is records per second of wall time, ours including the Beam
pipeline's start-up and its per-PMID version combine. Then the peak memory (VmHWM of a fresh
process) of both readers on a 1x and an 8x file shows whether memory grows with file size.

Last line: ``pubmed: ours=<docs/s> peer=<docs/s> ratio=<ours/peer>``.

    .venv/bin/python bench/pubmed.py [--docs 2500] [--runs 3]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import apache_beam as beam  # noqa: E402
import pubmed_parser  # noqa: E402

from linkbert.pipeline.records import collect_counters  # noqa: E402
from linkbert.pipeline.sources.pubmed import ReadPubmed  # noqa: E402
from linkbert.pipeline.synth.pubmed import write_pubmed_baseline  # noqa: E402

PEAK_MEMORY_SCRIPT = textwrap.dedent(
    r"""
    import re, sys
    sys.path.insert(0, sys.argv[3])
    reader, path = sys.argv[1], sys.argv[2]
    def kib(field):
        return int(re.search(field + r":\s+(\d+) kB", open("/proc/self/status").read()).group(1))
    if reader == "ours":
        from linkbert.pipeline.sources.medline_xml import iter_medline_records
        from linkbert.pipeline.sources.files import open_decompressed
        after_imports = kib("VmRSS")
        with open_decompressed(path) as stream:
            count = sum(1 for _ in iter_medline_records(stream, path))
    else:
        import pubmed_parser
        after_imports = kib("VmRSS")
        count = sum(1 for _ in pubmed_parser.parse_medline_xml(path, reference_list=True))
    print(count, after_imports, kib("VmHWM"))
    """
)


def time_ours(path: str) -> tuple[int, float]:
    started = time.perf_counter()
    pipeline = beam.Pipeline()
    _ = pipeline | "ReadPubmed" >> ReadPubmed(path, min_abstract_words=0)
    result = pipeline.run()
    result.wait_until_finish()
    elapsed = time.perf_counter() - started
    return collect_counters(result)["pubmed.records_read"], elapsed


def time_peer(path: str) -> tuple[int, float]:
    started = time.perf_counter()
    count = sum(1 for _ in pubmed_parser.parse_medline_xml(path, reference_list=True))
    return count, time.perf_counter() - started


def peak_memory_mib(reader: str, path: str) -> tuple[int, float, float]:
    """(records read, MiB resident after imports, peak MiB) of a fresh process reading ``path``."""
    out = subprocess.run(
        [sys.executable, "-c", PEAK_MEMORY_SCRIPT, reader, path, str(REPO)], capture_output=True, text=True, check=True
    ).stdout.split()
    return int(out[0]), int(out[1]) / 1024, int(out[2]) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=2500, help="articles in the 1x file (the 8x file has 8 times as many)")
    parser.add_argument("--runs", type=int, default=3, help="timed runs of each reader (medians reported)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-pubmed-") as tmp:
        one = write_pubmed_baseline(Path(tmp) / "1x", args.docs, args.seed)["files"][0]
        eight = write_pubmed_baseline(Path(tmp) / "8x", 8 * args.docs, args.seed)["files"][0]
        size_mb = Path(eight).stat().st_size / 1e6
        print(f"files: 1x {args.docs} articles, 8x {8 * args.docs} articles ({size_mb:.1f} MB gzip)")

        for reader in ("ours", "peer"):
            (count_1, base_1, peak_1), (count_8, _, peak_8) = peak_memory_mib(reader, one), peak_memory_mib(reader, eight)
            assert (count_1, count_8) == (args.docs, 8 * args.docs), (reader, count_1, count_8)
            label = "ours (medline_xml stream)" if reader == "ours" else "peer (pubmed_parser)"
            print(f"peak memory {label}: after imports {base_1:.1f} MiB; peak 1x {peak_1:.1f} MiB,"
                  f" 8x {peak_8:.1f} MiB, growth {peak_8 - peak_1:+.1f} MiB")

        rates = {"ours": [], "peer": []}
        for run in range(args.runs):
            for name, timer in (("ours", time_ours), ("peer", time_peer)):
                count, seconds = timer(eight)
                assert count == 8 * args.docs, (name, count)
                rates[name].append(count / seconds)
                print(f"run {run + 1}: {name} {count} records in {seconds:.2f}s = {count / seconds:.0f} docs/s")

    ours, peer = statistics.median(rates["ours"]), statistics.median(rates["peer"])
    print(f"pubmed: ours={ours:.0f} peer={peer:.0f} ratio={ours / peer:.2f}")


if __name__ == "__main__":
    main()
