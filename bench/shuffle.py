"""Bytes shuffled per document, by stage, for the whole pipeline; optionally against another revision.

Every ``GroupByKey`` the pipeline applies (``CoGroupByKey`` and ``Reshuffle`` expand into one) gets a
counting ``Map`` in front of it that adds the encoded size of each element (key and value, each with
Beam's ``FastPrimitivesCoder``, the coder of untyped elements) to a Beam counter named after the
grouping. ``CombinePerKey`` (and the ``Count``/``ToList``/``Top`` combines built on it) is counted
at its input but reported apart: runners lift combiners, so only partial accumulators cross the
shuffle, never those elements. Side inputs are not counted (they are broadcast, not shuffled).

The corpus is a ``linkbert synth wiki`` dump (links, redirects, templates); the run is
``linkbert pipeline --source wikipedia`` with its defaults (254-token segments, 512-token pairs) on
the in-process DirectRunner. ``--baseline REV`` runs the same measurement, on the same corpus, with
the code of git revision REV (``git archive`` into a temporary directory), in the same invocation.

    .venv/bin/python bench/shuffle.py [--docs 300] [--links hyperlink] [--baseline REV]

Last line: ``shuffle: docs=<n> bytes_per_doc=<grouped bytes / document> [baseline=<same, REV> ratio=<now / REV>]``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
COUNTER_PREFIX = "shuffle_bytes."
COMBINE_PREFIX = "combine_input_bytes."
_INTERNAL = ("/CoGroupByKeyImpl", "/GroupByKey", "/ReshufflePerKey")


@contextlib.contextmanager
def counting_shuffles():
    """Within the block, every grouping applied to a pipeline counts the bytes it receives."""
    import apache_beam as beam
    from apache_beam.coders import FastPrimitivesCoder
    from apache_beam.metrics import Metrics
    from apache_beam.pipeline import Pipeline
    from apache_beam.transforms.core import CombinePerKey, GroupByKey

    from linkbert.pipeline.records import METRICS_NAMESPACE

    original = Pipeline._apply_internal

    class _CountBytes(beam.DoFn):
        def __init__(self, name: str):
            self._name = name

        def setup(self):
            self._coder = FastPrimitivesCoder()
            self._bytes = Metrics.counter(METRICS_NAMESPACE, self._name)

        def process(self, element):
            key, value = element
            self._bytes.inc(len(self._coder.encode(key)) + len(self._coder.encode(value)))
            yield element

    def apply(self, transform, pvalueish=None, label=None):
        counted = isinstance(transform, (GroupByKey, CombinePerKey)) and not label
        enclosing = self._current_transform()
        if counted and isinstance(enclosing.transform, CombinePerKey):
            counted = False  # the combine's own grouping: counted at the combine's input
        if counted:
            full_label = "/".join([enclosing.full_label, transform.label]).lstrip("/")
            prefix = COMBINE_PREFIX if isinstance(transform, CombinePerKey) else COUNTER_PREFIX
            counter = beam.ParDo(_CountBytes(prefix + full_label))
            if pvalueish.element_type is not None:
                counter = counter.with_output_types(pvalueish.element_type)
            pvalueish = original(self, counter, pvalueish, f"{transform.label}[bytes]")
        return original(self, transform, pvalueish, label)

    Pipeline._apply_internal = apply
    try:
        yield
    finally:
        Pipeline._apply_internal = original


def stage_name(full_label: str) -> str:
    for suffix in _INTERNAL:
        full_label = full_label.replace(suffix, "")
    return full_label


def measure(corpus: str, output: str, links: str, extra: list[str]) -> dict:
    """Run the pipeline on ``corpus`` with counting groupings -> {"docs", "shuffle", "combine"} (bytes by stage)."""
    import apache_beam as beam

    import linkbert.pipeline.run as pipeline_run

    config, beam_args = pipeline_run.parse_config(
        ["--source", "wikipedia", "--input", f"{corpus}/*.xml.bz2", "--output", output, "--links", links,
         "--overwrite", *extra])
    build = pipeline_run.build_pipeline

    def counted_build(pipeline: beam.Pipeline, *args, **kwargs):
        with counting_shuffles():
            return build(pipeline, *args, **kwargs)

    pipeline_run.build_pipeline = counted_build
    try:
        manifest = pipeline_run.run(config, beam_args)
    finally:
        pipeline_run.build_pipeline = build
    counters = manifest["counters"]
    result = {"docs": manifest["tables"]["documents"]["rows"],
              "instances": sum(split["rows"] for split in manifest["splits"].values()),
              "shuffle": defaultdict(int), "combine": defaultdict(int)}
    for name, value in counters.items():
        for prefix, kind in ((COUNTER_PREFIX, "shuffle"), (COMBINE_PREFIX, "combine")):
            if name.startswith(prefix):
                result[kind][stage_name(name[len(prefix):])] += value
    return result


def baseline_tree(revision: str, directory: str) -> str:
    """``revision``'s code importable as ``linkbert`` from the returned directory (for PYTHONPATH)."""
    tree = os.path.join(directory, "tree")
    os.makedirs(tree)
    archive = subprocess.run(["git", "-C", str(REPO), "archive", revision], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", tree], input=archive, check=True)
    package = os.path.join(directory, "pkg", "linkbert")
    os.makedirs(package)
    for name in os.listdir(os.path.join(tree, "linkbert")):
        os.symlink(os.path.join(tree, "linkbert", name), os.path.join(package, name))
    for name in ("pipeline", "train", "eval", "schemas"):
        os.symlink(os.path.join(tree, name), os.path.join(package, name))
    return os.path.dirname(package)


def _measure_in_child(corpus: str, output: str, args, python_path: str | None) -> dict:
    env = dict(os.environ)
    if python_path:
        env["PYTHONPATH"] = python_path
    command = [sys.executable, __file__, "--measure", corpus, "--output", output, "--links", args.links]
    done = subprocess.run(command, env=env, capture_output=True, text=True, cwd=tempfile.gettempdir())
    if done.returncode:
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _print_table(results: dict[str, dict]) -> None:
    names = list(results)
    for kind, title in (("shuffle", "bytes shuffled per document"),
                        ("combine", "combine inputs per document (lifted: not shuffled as such)")):
        stages = sorted({stage for result in results.values() for stage in result[kind]})
        print(f"{title}, by grouping ({' | '.join(names)}):")
        for stage in stages:
            values = [results[name][kind].get(stage, 0) / results[name]["docs"] for name in names]
            print(f"  {stage:<70} " + " | ".join(f"{value:>10.0f}" for value in values))
        totals = [sum(results[name][kind].values()) / results[name]["docs"] for name in names]
        print(f"  {'total':<70} " + " | ".join(f"{value:>10.0f}" for value in totals))
    tops = {}
    for name in names:
        top = defaultdict(int)
        for stage, value in results[name]["shuffle"].items():
            top[stage.split("/")[0]] += value
        tops[name] = top
    print(f"bytes shuffled per document, by top-level stage ({' | '.join(names)}):")
    for stage in sorted({s for top in tops.values() for s in top}):
        values = [tops[name].get(stage, 0) / results[name]["docs"] for name in names]
        print(f"  {stage:<30} " + " | ".join(f"{value:>10.0f}" for value in values))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=300, help="documents of the synthetic wiki (default 300)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--links", default="hyperlink")
    parser.add_argument("--baseline", help="git revision to measure the same way, for comparison")
    parser.add_argument("--measure", metavar="CORPUS", help=argparse.SUPPRESS)  # child mode: one measurement
    parser.add_argument("--output", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.measure:
        result = measure(args.measure, args.output, args.links, [])
        print(json.dumps(result))
        return 0
    with tempfile.TemporaryDirectory(prefix="bench-shuffle-") as tmp:
        corpus = os.path.join(tmp, "corpus")
        subprocess.run([sys.executable, "-m", "linkbert.cli", "synth", "wiki", "--docs", str(args.docs), "--seed",
                        str(args.seed), "--out", corpus], check=True, capture_output=True)
        results = {"now": _measure_in_child(corpus, os.path.join(tmp, "now"), args, None)}
        if args.baseline:
            path = baseline_tree(args.baseline, os.path.join(tmp, "baseline"))
            results[args.baseline] = _measure_in_child(corpus, os.path.join(tmp, "before"), args, path)
        for name, result in results.items():
            print(f"{name}: {result['docs']} documents, {result['instances']} instances")
        _print_table(results)
        now = results["now"]
        line = f"shuffle: docs={now['docs']} bytes_per_doc={sum(now['shuffle'].values()) / now['docs']:.0f}"
        if args.baseline:
            before = results[args.baseline]
            before_total = sum(before["shuffle"].values()) / before["docs"]
            line += (f" baseline={before_total:.0f} ratio={sum(now['shuffle'].values()) / now['docs'] / before_total:.2f}")
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
