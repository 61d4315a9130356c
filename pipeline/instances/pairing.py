"""Segments + edges -> pretraining instances [CLS] A [SEP] B [SEP] labelled contiguous / random / linked.

For every anchor segment A and every round, one relation is drawn among those available to A
(contiguous needs a next segment, linked needs an out-link to a document with segments, random is
always available). The draw uses per-availability-class probabilities solved so that the global mix
is as close to 1/3 each as the corpus allows, while staying close to uniform within each class.
The draws of one document's anchors are spread evenly (``relation_uniform``), so the realised mix
matches those probabilities within a fraction of a point rather than within binomial noise.

Linked targets are drawn among A's document's out-links with probability proportional to
1/in-degree (LinkBERT's diversity adjustment) or uniformly (``diversity=False``). Random partners are
found without a whole-corpus side input: documents are bucketed by a stable hash, a request goes to a
random bucket and picks a document there. Every choice is seeded from (seed, round, doc_id, seg_idx).
"""

from __future__ import annotations

import bisect

import apache_beam as beam

from linkbert.pipeline.edges.random import RandomPartners
from linkbert.pipeline.records import counter
from linkbert.pipeline.stablehash import stable_choice_index, stable_uniform

CONTIGUOUS, RANDOM, LINKED = 0, 1, 2
RELATION_NAMES = {CONTIGUOUS: "contiguous", RANDOM: "random", LINKED: "linked"}
AVAILABILITY_CLASSES = ("R", "RC", "RL", "RCL")


def availability_class(has_next: bool, has_links: bool) -> str:
    return "R" + ("C" if has_next else "") + ("L" if has_links else "")


def solve_relation_probabilities(class_counts: dict[str, int]) -> dict[str, tuple[float, float, float]]:
    """Per availability class, the probabilities (contiguous, random, linked) of the draw.

    A small linear program: first minimise the distance of the global mix from 1/3 each, then,
    among the solutions, the distance from a uniform draw among the available relations.
    """
    from scipy.optimize import linprog

    n_r, n_rc, n_rl, n_rcl = (float(class_counts.get(name, 0)) for name in AVAILABILITY_CLASSES)
    total = n_r + n_rc + n_rl + n_rcl
    uniform = {"R": (0.0, 1.0, 0.0), "RC": (0.5, 0.5, 0.0), "RL": (0.0, 0.5, 0.5), "RCL": (1 / 3, 1 / 3, 1 / 3)}
    if total == 0:
        return uniform
    target = total / 3
    # Variables: qc (RC->contiguous), ql (RL->linked), pc, pl (RCL->contiguous, linked),
    # eC, eL, eR (global mix deviations), u1..u4 (deviations from the uniform draw).
    big, small = 1000.0 / total, 1.0 / total
    cost = [0, 0, 0, 0, big, big, big, small * n_rc, small * n_rl, small * n_rcl, small * n_rcl]
    contiguous = [n_rc, 0, n_rcl, 0]
    linked = [0, n_rl, 0, n_rcl]
    rows, bounds_rhs = [], []

    def absolute(coefficients, constant, slack_index):
        # |coefficients . x + constant| <= slack
        for sign in (1, -1):
            row = [sign * c for c in coefficients] + [0.0] * 7
            row[slack_index] = -1.0
            rows.append(row)
            bounds_rhs.append(-sign * constant)

    absolute(contiguous, -target, 4)
    absolute(linked, -target, 5)
    absolute([-c - l for c, l in zip(contiguous, linked)], total - target, 6)
    absolute([1, 0, 0, 0], -0.5, 7)
    absolute([0, 1, 0, 0], -0.5, 8)
    absolute([0, 0, 1, 0], -1 / 3, 9)
    absolute([0, 0, 0, 1], -1 / 3, 10)
    rows.append([0, 0, 1, 1] + [0.0] * 7)  # pc + pl <= 1
    bounds_rhs.append(1.0)
    bounds = [(0, 1)] * 4 + [(0, None)] * 7
    solution = linprog(cost, A_ub=rows, b_ub=bounds_rhs, bounds=bounds, method="highs")
    if not solution.success:
        return uniform
    qc, ql, pc, pl = (min(1.0, max(0.0, value)) for value in solution.x[:4])
    return {
        "R": (0.0, 1.0, 0.0),
        "RC": (qc, 1.0 - qc, 0.0),
        "RL": (0.0, 1.0 - ql, ql),
        "RCL": (pc, max(0.0, 1.0 - pc - pl), pl),
    }


_GOLDEN_FRACTION = 0.6180339887498949


def relation_uniform(offset: float, seg_idx: int) -> float:
    """The uniform that draws anchor ``seg_idx``'s relation: a golden-ratio (Weyl) sequence from a
    per-document seeded ``offset``. Within a document the draws are spread evenly over [0, 1), so each
    document's relation counts stay within about one of their expectation and the corpus-wide mix
    tracks the solved probabilities far closer than independent draws would (binomial noise is about
    a point on a few thousand anchors); across documents the offsets are independent."""
    return (offset + seg_idx * _GOLDEN_FRACTION) % 1.0


def draw_relation(probabilities: tuple[float, float, float], uniform: float) -> int:
    p_contiguous, p_random, _ = probabilities
    if uniform < p_contiguous:
        return CONTIGUOUS
    if uniform < p_contiguous + p_random:
        return RANDOM
    return LINKED


def choose_link(edges: list[tuple[str, str, int]], uniform: float, diversity: bool) -> tuple[str, str]:
    """Pick (dst, link_type) among sorted ``edges`` (dst, link_type, dst_in_degree), ∝ 1/in-degree."""
    weights = [1.0 / max(1, in_degree) if diversity else 1.0 for _, _, in_degree in edges]
    cumulative = []
    running = 0.0
    for weight in weights:
        running += weight
        cumulative.append(running)
    index = min(bisect.bisect_right(cumulative, uniform * running), len(edges) - 1)
    return edges[index][0], edges[index][1]


def make_pair(a_ids: list[int], b_ids: list[int], cls_id: int, sep_id: int, max_seq_len: int) -> tuple[list[int], int]:
    """[CLS] A [SEP] B [SEP], truncating the longer side from its end until it fits; returns (ids, b_start)."""
    a_ids, b_ids = list(a_ids), list(b_ids)
    budget = max_seq_len - 3
    while len(a_ids) + len(b_ids) > budget:
        if len(a_ids) >= len(b_ids):
            a_ids.pop()
        else:
            b_ids.pop()
    return [cls_id, *a_ids, sep_id, *b_ids, sep_id], len(a_ids) + 2


class _InstanceBuilder:
    def __init__(self, seed: int, max_seq_len: int, heldout_fraction: float):
        self._seed = seed
        self._max_seq_len = max_seq_len
        self._heldout_fraction = heldout_fraction

    def build(self, request: dict, doc_b: str, seg_b: int, b_ids: list[int], tokenizer: dict) -> dict:
        input_ids, b_start = make_pair(request["a_ids"], b_ids, tokenizer["cls_id"], tokenizer["sep_id"], self._max_seq_len)
        heldout = stable_uniform(self._seed, "heldout", request["doc_a"]) < self._heldout_fraction
        return {
            "input_ids": input_ids,
            "b_start": b_start,
            "relation": request["relation"],
            "link_type": request["link_type"],
            "doc_a": request["doc_a"],
            "seg_a": request["seg_a"],
            "doc_b": doc_b,
            "seg_b": seg_b,
            "round": request["round"],
            "num_tokens": len(input_ids),
            "split": "heldout" if heldout else "train",
        }


class _PlanInstances(beam.DoFn):
    """Per document: draw each anchor's relation; emit contiguous instances and link/random requests."""

    def __init__(self, seed: int, dupe_factor: int, diversity: bool, max_seq_len: int, heldout_fraction: float):
        self._seed = seed
        self._dupe_factor = dupe_factor
        self._diversity = diversity
        self._builder = _InstanceBuilder(seed, max_seq_len, heldout_fraction)

    def setup(self):
        self._anchors = counter("pairing.anchors")
        self._drawn = {relation: counter(f"pairing.drawn.{name}") for relation, name in RELATION_NAMES.items()}

    def process(self, element, probabilities, tokenizer):
        doc_id, grouped = element
        # A document without segments (only edges pointing at it) plans nothing.
        segments = next(iter(grouped["segments"]), [])
        edges = sorted(set(grouped["edges"]))
        seed = self._seed
        for round_index in range(self._dupe_factor):
            offset = stable_uniform(seed, round_index, doc_id, "relation")
            for seg_idx, a_ids in enumerate(segments):
                has_next = seg_idx + 1 < len(segments)
                klass = availability_class(has_next, bool(edges))
                relation = draw_relation(probabilities[klass], relation_uniform(offset, seg_idx))
                self._anchors.inc()
                self._drawn[relation].inc()
                request = {"doc_a": doc_id, "seg_a": seg_idx, "a_ids": a_ids, "round": round_index,
                           "relation": relation, "link_type": None}
                if relation == CONTIGUOUS:
                    yield self._builder.build(request, doc_id, seg_idx + 1, segments[seg_idx + 1], tokenizer)
                elif relation == LINKED:
                    dst, link_type = choose_link(edges, stable_uniform(seed, round_index, doc_id, seg_idx, "link"), self._diversity)
                    request["link_type"] = link_type
                    yield beam.pvalue.TaggedOutput("linked", (dst, request))
                else:
                    yield beam.pvalue.TaggedOutput("random", request)


class _AttachPartner(beam.DoFn):
    """Per partner document: pick a segment of it for each request and build the instance."""

    def __init__(self, seed: int, max_seq_len: int, heldout_fraction: float):
        self._seed = seed
        self._builder = _InstanceBuilder(seed, max_seq_len, heldout_fraction)

    def process(self, element, tokenizer):
        doc_b, grouped = element
        segments = next(iter(grouped["segments"]), [])
        for request in grouped["requests"] if segments else ():
            seg_b = stable_choice_index(len(segments), self._seed, request["round"], request["doc_a"], request["seg_a"], "partner-seg")
            yield self._builder.build(request, doc_b, seg_b, segments[seg_b], tokenizer)


def _class_counts_of_document(element) -> list[tuple[str, int]]:
    _, grouped = element
    segment_lists = list(grouped["segments"])
    if not segment_lists:
        return []
    num_segments = len(segment_lists[0])
    has_links = any(True for _ in grouped["edges"])
    return [(availability_class(True, has_links), num_segments - 1), (availability_class(False, has_links), 1)]


class MakeInstances(beam.PTransform):
    """{"segments", "edges", "tokenizer"} -> {"instances", "relation_probabilities"}.

    Instances carry an extra ``split`` key (train | heldout, by anchor document) for the writer.
    """

    def __init__(self, seed: int, dupe_factor: int = 1, diversity: bool = True, max_seq_len: int = 512,
                 heldout_fraction: float = 0.01):
        super().__init__()
        self._seed = seed
        self._dupe_factor = dupe_factor
        self._diversity = diversity
        self._max_seq_len = max_seq_len
        self._heldout_fraction = heldout_fraction

    def expand(self, inputs):
        segments, edges, tokenizer = inputs["segments"], inputs["edges"], inputs["tokenizer"]
        seed = self._seed
        tokenizer_side = beam.pvalue.AsSingleton(tokenizer)

        doc_segments = (
            segments
            | "KeySegments" >> beam.Map(lambda s: (s["doc_id"], (s["seg_idx"], s["input_ids"])))
            | "GroupSegments" >> beam.GroupByKey()
            | "OrderSegments" >> beam.MapTuple(lambda doc_id, items: (doc_id, [ids for _, ids in sorted(items)]))
        )
        segment_counts = doc_segments | "SegmentCounts" >> beam.MapTuple(lambda doc_id, segs: (doc_id, len(segs)))
        in_degree = (
            edges
            | "EdgeTargets" >> beam.Map(lambda e: (e["dst"], 1))
            | "InDegree" >> beam.CombinePerKey(sum)
        )
        # Out-edges carry their target's in-degree; edges to documents without segments are dropped.
        out_edges = (
            {
                "edges": edges | "KeyByTarget" >> beam.Map(lambda e: (e["dst"], (e["src"], e["link_type"]))),
                "in_degree": in_degree,
                "segments": segment_counts,
            }
            | "JoinTargets" >> beam.CoGroupByKey()
            | "OutEdges" >> beam.FlatMap(
                lambda kv: [
                    (src, (kv[0], link_type, sum(kv[1]["in_degree"])))
                    for src, link_type in kv[1]["edges"]
                    if any(count > 0 for count in kv[1]["segments"])
                ]
            )
        )
        documents = {"segments": doc_segments, "edges": out_edges} | "JoinDocuments" >> beam.CoGroupByKey()

        probabilities = (
            documents
            | "AvailabilityClasses" >> beam.FlatMap(_class_counts_of_document)
            | "CountClasses" >> beam.CombinePerKey(sum)
            | "ClassTable" >> beam.combiners.ToDict()
            | "SolveMix" >> beam.Map(solve_relation_probabilities)
        )
        planned = documents | "PlanInstances" >> beam.ParDo(
            _PlanInstances(seed, self._dupe_factor, self._diversity, self._max_seq_len, self._heldout_fraction),
            beam.pvalue.AsSingleton(probabilities),
            tokenizer_side,
        ).with_outputs("linked", "random", main="contiguous")
        random_requests = {
            "documents": segment_counts | "DocumentIds" >> beam.Keys(),
            "requests": planned.random,
        } | "RandomPartners" >> RandomPartners(seed)
        partnered = (
            {
                "segments": doc_segments,
                "requests": (planned.linked, random_requests) | "AllRequests" >> beam.Flatten(),
            }
            | "JoinPartners" >> beam.CoGroupByKey()
            | "AttachPartner" >> beam.ParDo(_AttachPartner(seed, self._max_seq_len, self._heldout_fraction), tokenizer_side)
        )
        instances = (planned.contiguous, partnered) | "AllInstances" >> beam.Flatten()
        return {"instances": instances, "relation_probabilities": probabilities}
