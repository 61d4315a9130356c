"""``linkbert report`` on the same pipeline output with 1x and 8x its instance rows: the report's cost
must not grow with the instance count (counts come from the manifest, plots from a bounded sample).

One small pipeline run (linked documents in memory, 64-token instances), then two copies of its
output: each instance shard's rows repeated ``--scale`` times (1x) and ``--scale * --factor`` times
(8x), the manifest's counts multiplied to match (documents, edges and segments unchanged), so that
1x already holds more rows than the report's bounded sample. Each copy is reported ``--repeats``
times, alternating.

    .venv/bin/python bench/report.py [--docs 200] [--scale 64] [--factor 8] [--repeats 3]

Last line: ``report: rows1=<instance rows> rows8=<...> seconds1=<median> seconds8=<median>
ratio=<seconds8 / seconds1> read1=<instance rows read> read8=<...>`` (read: n/a on a version
without ``Store.rows_read``).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))


def _scale(entry: dict, factor: int) -> None:
    for key in ("rows", "tokens"):
        if key in entry:
            entry[key] *= factor
    for key in ("relations", "link_types"):
        if isinstance(entry.get(key), dict):
            entry[key] = {name: count * factor for name, count in entry[key].items()}


def inflate_instances(source: Path, destination: Path, factor: int) -> int:
    """Copy a pipeline output with every instance shard's rows repeated ``factor`` times and the manifest's
    instance counts multiplied to match; returns the instance rows of the copy."""
    shutil.copytree(source, destination, ignore=shutil.ignore_patterns("report*"))
    for path in sorted((destination / "instances").glob("*.parquet")):
        table = pq.read_table(path)
        pq.write_table(pa.concat_tables([table] * factor), path, row_group_size=1000)
    manifest = json.loads((destination / "manifest.json").read_text())
    _scale(manifest["tables"]["instances"], factor)
    for entry in manifest["tables"]["instances"]["files"]:
        _scale(entry, factor)
    for split in manifest["splits"].values():
        _scale(split, factor)
    (destination / "manifest.json").write_text(json.dumps(manifest))
    return manifest["tables"]["instances"]["rows"]


def _report(directory: Path) -> tuple[float, int | None]:
    """(seconds of build_report, instance rows it read)."""
    from linkbert.pipeline.report import build
    from linkbert.pipeline.report.store import Store

    stores = []
    original_init = Store.__init__

    def recording_init(self, *args, **kwargs):
        original_init(self, *args, **kwargs)
        stores.append(self)

    Store.__init__ = recording_init
    try:
        started = time.perf_counter()
        build.build_report(str(directory))
        seconds = time.perf_counter() - started
    finally:
        Store.__init__ = original_init
    read = [store.rows_read["instances"] for store in stores if hasattr(store, "rows_read")]
    return seconds, (sum(read) if read else None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=200)
    parser.add_argument("--scale", type=int, default=64)
    parser.add_argument("--factor", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    from pipeline_fixtures import linked_documents, memory_source

    import linkbert.pipeline.run as pipeline_run

    work = Path(tempfile.mkdtemp(prefix="bench-report-"))
    documents, redirects = linked_documents(args.docs)
    config, _ = pipeline_run.parse_config(["--source", "wikipedia", "--input", "memory", "--output", str(work / "run"),
                                           "--vocab-size", "400", "--num-shards", "4", "--segment-tokens", "30",
                                           "--max-seq-len", "64"])
    pipeline_run.run(config, [], memory_source(documents, redirects))
    rows = {1: inflate_instances(work / "run", work / "x1", args.scale),
            args.factor: inflate_instances(work / "run", work / "xn", args.scale * args.factor)}
    seconds: dict[int, list[float]] = {1: [], args.factor: []}
    read: dict[int, int | None] = {}
    for _ in range(args.repeats):
        for factor, directory in ((1, work / "x1"), (args.factor, work / "xn")):
            took, read[factor] = _report(directory)
            seconds[factor].append(took)
            print(f"  {factor}x: {rows[factor]} instance rows, {took:.2f}s, instance rows read {read[factor]}", flush=True)
    one, many = statistics.median(seconds[1]), statistics.median(seconds[args.factor])
    shutil.rmtree(work, ignore_errors=True)
    print(f"report: rows1={rows[1]} rows{args.factor}={rows[args.factor]} seconds1={one:.2f} seconds{args.factor}={many:.2f} "
          f"ratio={many / one:.2f} read1={read[1] if read[1] is not None else 'n/a'} "
          f"read{args.factor}={read[args.factor] if read[args.factor] is not None else 'n/a'}")


if __name__ == "__main__":
    main()
