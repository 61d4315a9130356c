"""Linked targets are drawn ∝ 1/in-degree (LinkBERT's diversity adjustment): a chi-square test on a
graph with planted in-degrees, with the uniform alternative rejected so the test can fail."""

from collections import Counter

import apache_beam as beam
from apache_beam.testing.test_pipeline import TestPipeline
from scipy.stats import chisquare

from linkbert.pipeline.instances.pairing import LINKED, MakeInstances

TARGETS = {"t1": 0, "t2": 20, "t3": 60, "t4": 180}  # extra in-links planted beyond the anchors' own
ANCHORS = [f"anchor{i}" for i in range(20)]
ROUNDS = 60


def _linked_targets(tmp_path, diversity: bool) -> Counter:
    segments, edges = [], []
    for doc_id in ANCHORS + list(TARGETS):
        segments.append({"doc_id": doc_id, "seg_idx": 0, "input_ids": [10, 11, 12], "num_tokens": 3})
    for anchor in ANCHORS:
        edges += [{"src": anchor, "dst": target, "link_type": "hyperlink", "score": None} for target in TARGETS]
    for target, extra in TARGETS.items():
        for index in range(extra):
            filler = f"filler-{target}-{index}"
            segments.append({"doc_id": filler, "seg_idx": 0, "input_ids": [13], "num_tokens": 1})
            edges.append({"src": filler, "dst": target, "link_type": "hyperlink", "score": None})
    picks = tmp_path / f"picks-{diversity}.txt"
    with TestPipeline() as p:
        paired = {
            "segments": p | "S" >> beam.Create(segments),
            "edges": p | "E" >> beam.Create(edges),
            "tokenizer": p | "T" >> beam.Create([{"cls_id": 2, "sep_id": 3}]),
        } | MakeInstances(seed=7, dupe_factor=ROUNDS, diversity=diversity, heldout_fraction=0.0,
                        anchor_policy="all")
        _ = (
            paired["instances"]
            | beam.Filter(lambda r: r["relation"] == LINKED and r["doc_a"].startswith("anchor"))
            | beam.Map(lambda r: r["doc_b"])
            | beam.io.WriteToText(str(picks), shard_name_template="")
        )
    return Counter(picks.read_text().split())


def test_linked_targets_follow_inverse_in_degree(tmp_path):
    counts = _linked_targets(tmp_path, diversity=True)
    total = sum(counts.values())
    assert total > 300
    in_degree = {target: len(ANCHORS) + extra for target, extra in TARGETS.items()}
    weights = {target: 1 / degree for target, degree in in_degree.items()}
    norm = sum(weights.values())
    observed = [counts[t] for t in TARGETS]
    expected = [total * weights[t] / norm for t in TARGETS]
    assert chisquare(observed, expected).pvalue > 1e-3
    assert chisquare(observed, [total / len(TARGETS)] * len(TARGETS)).pvalue < 1e-6


def test_no_diversity_draws_uniformly(tmp_path):
    counts = _linked_targets(tmp_path, diversity=False)
    total = sum(counts.values())
    observed = [counts[t] for t in TARGETS]
    assert chisquare(observed, [total / len(TARGETS)] * len(TARGETS)).pvalue > 1e-3
