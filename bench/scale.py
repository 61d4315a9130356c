"""The whole pipeline on synthetic wikis of 1x, 4x and 16x a base size: CPU per document and peak RSS
per worker process, to show that neither grows with the corpus.

Each run: ``linkbert synth wiki --docs <n>`` then ``linkbert pipeline --source wikipedia`` on the
DirectRunner with ``--direct_running_mode=multi_processing --direct_num_workers=2``, as a child
process.

* **Cost** is CPU seconds (user + system) of the pipeline and every process it started
  (``getrusage(RUSAGE_CHILDREN)`` around the run), which load from other processes changes less
  than wall time (wall is printed too). A run has a fixed cost (Python and Beam start-up, worker
  processes, pipeline construction) that has nothing to do with the corpus and would make the
  per-document figure fall with size; it is measured on a ``--fixed-docs`` corpus in the same
  invocation and subtracted: cost per document at n = (CPU(n) - CPU(fixed)) / (n - fixed docs).
  Each size runs ``--runs`` times, interleaved, and the medians are used.
* **Peak RSS per worker** is the largest resident set any one SDK worker process reached (psutil,
  every 0.2 s); the driver's is printed apart (the DirectRunner keeps every stage's output in the
  driver, by design). A worker is handed a whole shard of a table as one group on this runner, so
  its memory follows the shard size: the runs use small shards (``--*-rows-per-shard``,
  see ``SHARD_OPTIONS``) that the 1x corpus already fills, the regime every real corpus is in at the
  defaults. Below that, a worker's memory grows with the corpus up to one default shard.

    .venv/bin/python bench/scale.py [--base 200] [--runs 3] [--links hyperlink]

``--trace N`` runs the pipeline once on N documents, in this process, and prints each bundle that
raised the largest worker's RSS (sampled before and after every bundle the DirectRunner executes):
where a worker's memory goes, stage by stage.

Last line: ``scale: docs1=<n> docs16=<n> ratio=<CPU/doc at 16x / at 1x> rss_ratio=<worker peak RSS 16x / 1x>``.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[1]
LINKBERT = [sys.executable, "-m", "linkbert.cli"]
# Shards that a 1x corpus of a couple of hundred documents already fills (see the module docstring).
SHARD_OPTIONS = ["--rows-per-shard", "500", "--document-rows-per-shard", "100", "--segment-rows-per-shard", "1000",
                 "--edge-rows-per-shard", "2000"]


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _run_measured(command: list[str]) -> tuple[float, float, float, float]:
    """Run ``command``; -> (wall s, CPU s of it and its descendants, peak RSS MB of the driver, of any one worker)."""
    started, cpu_before = time.perf_counter(), _children_cpu()
    log = tempfile.TemporaryFile()
    process = psutil.Popen(command, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
    driver_peak, worker_peak = 0, 0
    while process.poll() is None:
        try:
            driver_peak = max(driver_peak, process.memory_info().rss)
            for child in process.children(recursive=True):
                worker_peak = max(worker_peak, child.memory_info().rss)
        except psutil.Error:
            pass
        time.sleep(0.2)
    wall, cpu = time.perf_counter() - started, _children_cpu() - cpu_before
    log.seek(0)
    output = log.read().decode(errors="replace")
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{output[-3000:]}")
    return wall, cpu, driver_peak / 2**20, worker_peak / 2**20


def _pipeline_args(corpus: str, output: str, links: str) -> list[str]:
    return ["pipeline", "--source", "wikipedia", "--input", f"{corpus}/*.xml.bz2", "--output", output, "--overwrite",
            "--links", links, "--vocab-size", "4000", "--segment-tokens", "64", "--max-seq-len", "128",
            "--heldout-fraction", "0.1", *SHARD_OPTIONS, "--direct_running_mode=multi_processing",
            "--direct_num_workers=2"]


def trace(docs: int, links: str, seed: int, threshold_mb: float = 10) -> None:
    """One in-process run on ``docs`` documents: the bundles after which a worker's RSS had grown."""
    from apache_beam.runners.portability.fn_api_runner import fn_runner

    import linkbert.pipeline.run as pipeline_run

    def workers_mb() -> list[float]:
        return [child.memory_info().rss / 2**20 for child in psutil.Process().children(recursive=True)]

    grown = []
    execute = fn_runner.FnApiRunner._execute_bundle

    def traced(self, context, bundle, inputs):
        before = workers_mb()
        result = execute(self, context, bundle, inputs)
        after = workers_mb()
        if len(before) == len(after):
            grown.append((max((a - b for a, b in zip(after, before)), default=0), max(after, default=0), bundle.stage.name))
        return result

    with tempfile.TemporaryDirectory(prefix="bench-scale-trace-") as tmp:
        subprocess.run([*LINKBERT, "synth", "wiki", "--docs", str(docs), "--seed", str(seed), "--out", f"{tmp}/corpus"],
                       cwd=REPO, check=True, capture_output=True)
        config, beam_args = pipeline_run.parse_config(_pipeline_args(f"{tmp}/corpus", f"{tmp}/out", links)[1:])
        fn_runner.FnApiRunner._execute_bundle = traced
        try:
            pipeline_run.run(config, beam_args)
        finally:
            fn_runner.FnApiRunner._execute_bundle = execute
    print(f"trace: {docs} documents; bundles after which a worker had grown by {threshold_mb:.0f} MB or more:")
    for growth, largest, stage in grown:
        if growth >= threshold_mb:
            print(f"  +{growth:5.0f} MB -> largest worker {largest:5.0f} MB  {stage[:150]}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", type=int, default=200, help="documents at 1x (default 200)")
    parser.add_argument("--fixed-docs", type=int, default=10, help="documents of the run that measures the fixed cost")
    parser.add_argument("--runs", type=int, default=3, help="runs per size, interleaved; medians are reported")
    parser.add_argument("--links", default="hyperlink")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--trace", type=int, metavar="N", help="trace worker memory by bundle on N documents instead")
    args = parser.parse_args(argv)
    if args.trace:
        trace(args.trace, args.links, args.seed)
        return 0
    sizes = {"fixed": args.fixed_docs, 1: args.base, 4: 4 * args.base, 16: 16 * args.base}
    runs = {size: [] for size in sizes}
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        for size, docs in sizes.items():
            subprocess.run([*LINKBERT, "synth", "wiki", "--docs", str(docs), "--seed", str(args.seed), "--out",
                            f"{tmp}/corpus-{size}"], cwd=REPO, check=True, capture_output=True)
        for attempt in range(args.runs):
            for size, docs in sizes.items():
                measured = _run_measured([*LINKBERT, *_pipeline_args(f"{tmp}/corpus-{size}", f"{tmp}/out-{size}", args.links)])
                runs[size].append(measured)
                wall, cpu, driver, worker = measured
                print(f"run {attempt + 1} {size!s:>5}: {docs} docs, wall {wall:.1f}s, CPU {cpu:.1f}s, peak RSS: driver "
                      f"{driver:.0f} MB, largest worker {worker:.0f} MB (load {os.getloadavg()[0]:.1f})", flush=True)
    median = {size: [statistics.median(values) for values in zip(*measured)] for size, measured in runs.items()}
    fixed_cpu = median["fixed"][1]
    per_doc = {}
    for size in (1, 4, 16):
        docs = sizes[size]
        wall, cpu, driver, worker = median[size]
        per_doc[size] = (cpu - fixed_cpu) / (docs - sizes["fixed"])
        print(f"{size:>2}x: {docs} docs, median CPU {cpu:.1f}s = fixed {fixed_cpu:.1f}s + {per_doc[size] * 1000:.1f} ms/doc; "
              f"median wall {wall:.1f}s; median peak RSS: driver {driver:.0f} MB, largest worker {worker:.0f} MB")
    print(f"scale: docs1={sizes[1]} docs16={sizes[16]} ratio={per_doc[16] / per_doc[1]:.2f} "
          f"rss_ratio={median[16][3] / median[1][3]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
