"""The whole pipeline on synthetic wikis of 1x, 4x and 16x a base size: cost per document and peak
RSS per process, to show that neither grows with the corpus.

Each size: ``linkbert synth wiki --docs <n>`` then ``linkbert pipeline --source wikipedia`` on the
DirectRunner with ``--direct_running_mode=multi_processing --direct_num_workers=2``, as a child
process. Cost is CPU seconds (user + system, of the pipeline and all its worker processes, sampled
every 0.2 s with psutil) per document, which load from other processes on the machine changes less
than wall time (wall is printed too). Peak RSS per worker is the largest resident set any one SDK
worker process reached; the driver's is printed apart (the DirectRunner keeps each stage's output
in the driver between stages, so the driver grows with the corpus on this runner by design). The base is small (default 60 documents) so
that 16x finishes on a shared 2-core machine; a fixed start-up cost (Beam, tokenizer training) is
spread over more documents at larger sizes, which lowers the ratio.

    .venv/bin/python bench/scale.py [--base 60] [--links hyperlink]

Last line: ``scale: docs1=<n> docs16=<n> ratio=<CPU s/doc at 16x / at 1x> rss_ratio=<peak RSS 16x / 1x>``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[1]
LINKBERT = [sys.executable, "-m", "linkbert.cli"]


def _run_measured(command: list[str]) -> tuple[float, float, float, float]:
    """Run ``command``; -> (wall s, CPU s of it and its descendants, peak RSS MB of the driver, of any one worker)."""
    started = time.perf_counter()
    log = tempfile.TemporaryFile()
    process = psutil.Popen(command, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
    driver_peak, worker_peak, cpu = 0, 0, {}
    while process.poll() is None:
        try:
            for proc in [process, *process.children(recursive=True)]:
                with proc.oneshot():
                    rss, times = proc.memory_info().rss, proc.cpu_times()
                cpu[proc.pid] = times.user + times.system
                if proc.pid == process.pid:
                    driver_peak = max(driver_peak, rss)
                else:
                    worker_peak = max(worker_peak, rss)
        except psutil.Error:
            pass
        time.sleep(0.2)
    log.seek(0)
    output = log.read().decode(errors="replace")
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{output[-3000:]}")
    wall = time.perf_counter() - started
    return wall, sum(cpu.values()), driver_peak / 2**20, worker_peak / 2**20


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", type=int, default=60, help="documents at 1x (default 60)")
    parser.add_argument("--links", default="hyperlink")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    results = {}
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        for factor in (1, 4, 16):
            docs = args.base * factor
            corpus, output = Path(tmp) / f"corpus{factor}", Path(tmp) / f"out{factor}"
            subprocess.run([*LINKBERT, "synth", "wiki", "--docs", str(docs), "--seed", str(args.seed), "--out", str(corpus)],
                           cwd=REPO, check=True, capture_output=True)
            wall, cpu, driver, peak = _run_measured([
                *LINKBERT, "pipeline", "--source", "wikipedia", "--input", f"{corpus}/*.xml.bz2", "--output", str(output),
                "--links", args.links, "--vocab-size", "4000", "--segment-tokens", "64", "--max-seq-len", "128",
                "--heldout-fraction", "0.1", "--direct_running_mode=multi_processing", "--direct_num_workers=2"])
            results[factor] = (docs, wall, cpu, peak)
            print(f"{factor:>2}x: {docs} docs, wall {wall:.1f}s ({wall / docs * 1000:.1f} ms/doc), "
                  f"CPU {cpu:.1f}s ({cpu / docs * 1000:.1f} ms/doc), peak RSS: driver {driver:.0f} MB, "
                  f"largest worker {peak:.0f} MB", flush=True)
    (docs1, _, cpu1, rss1), (docs16, _, cpu16, rss16) = results[1], results[16]
    print(f"scale: docs1={docs1} docs16={docs16} ratio={(cpu16 / docs16) / (cpu1 / docs1):.2f} rss_ratio={rss16 / rss1:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
