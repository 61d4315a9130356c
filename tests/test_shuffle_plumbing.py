"""What crosses a shuffle changed (issue 13: token ids grouped once per document, segment links
joined without the segments, random partners drawn before the relations, redirect hops on the
reached titles only); the instances and segments did not: digests recorded from the code before."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import apache_beam as beam
import pyarrow.dataset as ds
from apache_beam.testing.util import assert_that, equal_to
from pipeline_fixtures import WORDS, linked_documents, memory_source

import linkbert.pipeline.run as pipeline_run
from linkbert.pipeline.edges.hyperlinks import ResolveRedirects

sys.path.append(str(Path(__file__).resolve().parents[1] / "bench"))  # after site-packages: bench/ names are generic
from shuffle import COUNTER_PREFIX, counting_shuffles, stage_name  # noqa: E402

# sha256 of the sorted rows of each table, from commit fadc4d4 (before the shuffle cuts), with the
# fixed vocabulary below. A change of instance semantics (pairing, segmenting) changes them on purpose:
# re-record them with ``_digests`` and say why in the commit.
BEFORE = {
    ("segment", "balanced"): {"instances": "3d6b381dfb35081b14b303777379946e4dbc0cc40f7dbfcd4806d67b18c67b11",
                              "segments": "9d6a09a5449153d6d395c7b8855742e32ea0660adc5aa4ed5ae9eceaf9cb9a37"},
    ("document", "all"): {"instances": "f980fa4598aadf5e1159729677fba05f456fbc30af00222f2d5a6f949fbcc6a8",
                          "segments": "9d6a09a5449153d6d395c7b8855742e32ea0660adc5aa4ed5ae9eceaf9cb9a37"},
}


def _vocabulary(path: Path) -> str:
    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ".", "entity", "is", "near", "and", *WORDS,
              *(str(digit) for digit in range(10)), *(f"##{digit}" for digit in range(10))]
    path.write_text("\n".join(tokens) + "\n", encoding="utf-8")
    return str(path)


def _digest(rows: list[dict]) -> str:
    lines = sorted(json.dumps(row, sort_keys=True) for row in rows)
    return hashlib.sha256("\n".join(lines).encode("utf-8")).hexdigest()


def _digests(tmp_path: Path, link_scope: str, anchors: str) -> dict[str, str]:
    documents, redirects = linked_documents(40, seed=3)
    output = tmp_path / f"{link_scope}-{anchors}"
    config, _ = pipeline_run.parse_config([
        "--source", "wikipedia", "--input", "memory", "--output", str(output),
        "--tokenizer", _vocabulary(tmp_path / "vocab.txt"), "--segment-tokens", "24", "--max-seq-len", "48",
        "--heldout-fraction", "0.15", "--dupe-factor", "2", "--link-scope", link_scope, "--anchors", anchors])
    manifest = pipeline_run.run(config, [], memory_source(documents, redirects))
    # enough of every relation, from train and held-out anchors, for the digests to mean something
    assert all(min(split["relation_mix"].values()) > 0.2 and split["rows"] > 20 for split in manifest["splits"].values())
    return {table: _digest(ds.dataset(output / table).to_table().to_pylist()) for table in ("instances", "segments")}


def test_instances_and_segments_are_those_of_the_code_before_the_shuffle_cuts(tmp_path):
    for (link_scope, anchors), expected in BEFORE.items():
        assert _digests(tmp_path, link_scope, anchors) == expected, (link_scope, anchors)


def _grouped_bytes(pipeline_result) -> dict[str, int]:
    totals: dict[str, int] = {}
    for metric in pipeline_result.metrics().query()["counters"]:
        name = metric.key.metric.name
        if name.startswith(COUNTER_PREFIX):
            stage = stage_name(name[len(COUNTER_PREFIX):]).split("/")[-1]
            totals[stage] = totals.get(stage, 0) + metric.committed
    return totals


def test_later_redirect_hops_do_not_regroup_the_title_tables():
    titles = [(f"Document {index}", str(index)) for index in range(2000)]
    redirects = [{"title": f"Alias {index}", "target": f"Document {index}"} for index in range(20)]
    redirects += [{"title": "Double", "target": "Alias 3"}, {"title": "Triple", "target": "Double"},
                  {"title": "Loop", "target": "Loop"}, {"title": "Nowhere", "target": "Missing"}]
    pipeline = beam.Pipeline()
    with counting_shuffles():
        resolved = (pipeline | "Redirects" >> beam.Create(redirects),
                    pipeline | "Titles" >> beam.Create(titles)) | ResolveRedirects(max_hops=3)
    expected = [(f"Alias {index}", str(index)) for index in range(20)] + [("Double", "3"), ("Triple", "3")]
    assert_that(resolved, equal_to(expected))
    result = pipeline.run()
    result.wait_until_finish()
    grouped = _grouped_bytes(result)
    # Hop 0 groups the 2,000 titles; hops 1 and 2 only the chains left and the titles they reached.
    assert grouped["JoinHop0"] > 2000 * 10
    assert grouped["JoinHop1"] + grouped["JoinHop2"] < grouped["JoinHop0"] / 20, grouped
