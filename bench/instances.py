"""Benchmark: what the instance policy gives, measured by the pipeline itself (issue 11).

For each corpus and segment length, four pipeline runs: ``--anchors balanced`` (default) or ``all``
(the paper's per-anchor draw), times ``--link-scope segment`` (default) or ``document``. Per run,
from ``manifest.json``: the train mix, the A-only classifier (accuracy vs majority class, the
threshold it must stay under and whether it passes), instances and anchors per document; and from
the train shards, a decision tree on what the model sees of a pair besides its tokens: the lengths
of A and B and of the whole sequence (``b_start`` and ``num_tokens``), cross-validated like the
A-only check, against the majority class.

Corpora:

* ``enwiki``: the shared real fragment (106 articles), ``--source wikipedia``;
* ``short``: ``linkbert synth wiki --docs 600 --seed 0 --article-words 120``, a generated corpus of
  short articles (most one or two 254-token segments), written by this script.

Lengths: the default (``--segment-tokens 254 --max-seq-len 512``) and the demo's (30 / 64).
Every run uses ``--vocab-size 8000 --heldout-fraction 0.05 --dupe-factor 1`` and seed 0. The
DirectRunner runs in-process; a full run takes about 10 minutes on 2 cores.

    .venv/bin/python bench/instances.py [--out DIR] [--corpora enwiki,short] [--lengths 254,30]
"""

from __future__ import annotations

import argparse
import collections
import glob
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("LINKBERT_REAL_DATA") or REPO.parent / "shared/data")
ENWIKI = DATA / "wikipedia/enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2"
LENGTHS = {"254": ("254", "512"), "30": ("30", "64")}
VARIANTS = [("balanced", "segment"), ("all", "segment"), ("balanced", "document"), ("all", "document")]


def pair_lengths_classifier(output: str, sample: int = 20000) -> dict:
    """Cross-validated accuracy of a depth-6 tree on (len A, len B, total length) of train rows."""
    import numpy as np
    import pyarrow.parquet as pq
    from sklearn.model_selection import RepeatedStratifiedKFold, cross_val_score
    from sklearn.tree import DecisionTreeClassifier

    rows = []
    for path in sorted(glob.glob(f"{output}/instances/train-*.parquet")):
        table = pq.read_table(path, columns=["b_start", "num_tokens", "relation"]).to_pydict()
        rows += zip(table["b_start"], table["num_tokens"], table["relation"])
    rows = np.array(rows)
    order = np.random.default_rng(0).permutation(len(rows))[:sample]
    rows = rows[order]
    len_a, total, labels = rows[:, 0] - 2, rows[:, 1], rows[:, 2]
    features = np.c_[len_a, total - rows[:, 0] - 1, total]
    majority = max(collections.Counter(labels.tolist()).values()) / len(labels)
    if min(collections.Counter(labels.tolist()).values()) < 5:
        return {"accuracy": None, "majority": majority, "samples": len(labels)}
    tree = DecisionTreeClassifier(max_depth=6, min_samples_leaf=20, random_state=0)
    cv = RepeatedStratifiedKFold(n_splits=5, n_repeats=3, random_state=0)
    accuracy = float(cross_val_score(tree, features, labels, cv=cv).mean())
    return {"accuracy": accuracy, "majority": majority, "samples": len(labels)}


def run_pipeline(source: str, pattern: str, output: str, length: str, anchors: str, scope: str) -> dict:
    sys.path.insert(0, str(REPO))
    import linkbert.pipeline.run as pipeline_run

    segment_tokens, max_seq_len = LENGTHS[length]
    config, beam_args = pipeline_run.parse_config([
        "--source", source, "--input", pattern, "--output", output, "--vocab-size", "8000",
        "--heldout-fraction", "0.05", "--segment-tokens", segment_tokens, "--max-seq-len", max_seq_len,
        "--anchors", anchors, "--link-scope", scope, "--num-shards", "2"])
    started = time.perf_counter()
    manifest = pipeline_run.run(config, beam_args)
    manifest["bench_seconds"] = time.perf_counter() - started
    return manifest


def summarise(manifest: dict, output: str) -> dict:
    documents = manifest["tables"]["documents"]["rows"]
    segments = manifest["tables"]["segments"]["rows"]
    train = manifest["splits"]["train"]
    heldout = manifest["splits"].get("heldout", {"rows": 0})
    a_only = manifest["a_only_classifier"]
    return {
        "documents": documents,
        "segments": segments,
        "anchors_per_document": manifest["counters"].get("pairing.anchors", 0) / documents,
        "instances_per_document": (train["rows"] + heldout["rows"]) / documents,
        "train_rows": train["rows"],
        "train_mix": train["relation_mix"],
        "a_only": {key: a_only.get(key) for key in ("accuracy", "majority", "threshold", "noise", "samples", "passes")},
        "pair_lengths": pair_lengths_classifier(output),
        "seconds": round(manifest["bench_seconds"], 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", help="work directory (default: a temporary one, removed at the end)")
    parser.add_argument("--corpora", default="enwiki,short")
    parser.add_argument("--lengths", default="254,30")
    args = parser.parse_args()
    logging.getLogger().setLevel(logging.ERROR)

    with tempfile.TemporaryDirectory() as scratch:
        work = Path(args.out or scratch)
        corpora = {}
        for corpus in args.corpora.split(","):
            if corpus == "enwiki":
                if not ENWIKI.exists():
                    raise SystemExit(f"missing {ENWIKI} (set LINKBERT_REAL_DATA)")
                corpora["enwiki"] = ("wikipedia", str(ENWIKI))
            elif corpus == "short":
                short = work / "short-corpus"
                if not list(short.glob("*.xml.bz2")):
                    subprocess.run([sys.executable, "-m", "linkbert", "synth", "wiki", "--docs", "600", "--seed", "0",
                                    "--article-words", "120", "--out", str(short)], check=True, stdout=subprocess.DEVNULL)
                corpora["short"] = ("wikipedia", str(short / "*.xml.bz2"))
            else:
                raise SystemExit(f"unknown corpus {corpus!r}")
        results = []
        for corpus, (source, pattern) in corpora.items():
            for length in args.lengths.split(","):
                for anchors, scope in VARIANTS:
                    output = str(work / f"{corpus}-{length}-{anchors}-{scope}")
                    manifest = run_pipeline(source, pattern, output, length, anchors, scope)
                    row = {"corpus": corpus, "segment_tokens": int(LENGTHS[length][0]), "anchors": anchors,
                           "link_scope": scope, **summarise(manifest, output)}
                    results.append(row)
                    print(json.dumps(row), flush=True)

    print()
    print(f"{'corpus':7s} {'seg':>4s} {'anchors':8s} {'scope':8s} {'docs':>5s} {'inst/doc':>8s} {'train':>6s} "
          f"{'C':>6s} {'R':>6s} {'L':>6s} {'A-only':>7s} {'major':>6s} {'thresh':>6s} {'pass':>5s} {'lengths':>7s} {'major':>6s}")
    for row in results:
        mix, a_only, lengths = row["train_mix"], row["a_only"], row["pair_lengths"]
        print(f"{row['corpus']:7s} {row['segment_tokens']:4d} {row['anchors']:8s} {row['link_scope']:8s} "
              f"{row['documents']:5d} {row['instances_per_document']:8.2f} {row['train_rows']:6d} "
              f"{mix.get('contiguous', 0):6.3f} {mix.get('random', 0):6.3f} {mix.get('linked', 0):6.3f} "
              f"{a_only['accuracy'] or 0:7.3f} {a_only['majority'] or 0:6.3f} {a_only['threshold'] or 0:6.3f} "
              f"{str(a_only['passes']):>5s} {lengths['accuracy'] or 0:7.3f} {lengths['majority']:6.3f}")


if __name__ == "__main__":
    main()
