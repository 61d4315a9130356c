"""Segments + edges -> pretraining instances [CLS] A [SEP] B [SEP] labelled contiguous / random / linked.

Which segments are anchors and how their relations are drawn is the ``relations`` module's job
(default: only anchors with all three relations available, drawn uniformly, so nothing about A
predicts the relation; the pipeline measures that with an A-only classifier).

Linked B: a segment of a document linked from inside A's own span (``link_scope="segment"``, the
paper's X_B ⊆ X(j) with (X(i), X(j)) ∈ E, wherever segments carry ``outlinks``) or from anywhere in
A's document (``"document"``, and for link types without positions: citations, TF-IDF, random
edges), drawn ∝ 1/in-degree (LinkBERT's diversity adjustment) or uniformly (``diversity=False``).
Random B: a segment of a random training document that is neither A's nor one A's document links to;
found without a whole-corpus side input (``RandomPartners``: stable-hash buckets), drawn for every
anchor that may draw ``random`` before the relations are, so that A's token ids travel only once.

What crosses a shuffle: planning reads an outline of each document (segment lengths, out-links,
out-edges) without token ids; the ids are grouped once by document (to plan and build contiguous
pairs) and once by partner document (``bench/shuffle.py`` measures the bytes by stage).

Held-out split, by document (``is_heldout``): a held-out document's tokens never reach a train
instance, as A or as B (train anchors link only to train documents; random B are train documents).
A held-out A may pair with a train B; ``b_heldout`` says so, for the evaluation.
Every choice is seeded from (seed, round, doc_id, seg_idx).
"""

from __future__ import annotations

import bisect
import functools
import random

import apache_beam as beam

from linkbert.pipeline.edges.random import BUCKET_EMPTY, RandomOutcomeCounters, RandomPartners
from linkbert.pipeline.records import counter
from linkbert.pipeline.stablehash import stable_choice_index, stable_hash, stable_uniform

from linkbert.pipeline.instances.relations import (  # noqa: F401 - re-exported
    A_ONLY_FEATURES,
    A_ONLY_SAMPLE,
    ANCHOR_POLICIES,
    AVAILABILITY_CLASSES,
    CONTIGUOUS,
    LINKED,
    RANDOM,
    RELATION_NAMES,
    a_only_classifier,
    availability_class,
    balanced_probabilities,
    draw_balanced,
    draw_relation,
    pair_lengths_classifier,
    relation_uniform,
    solve_relation_probabilities,
)

LINK_SCOPES = ("segment", "document")
DOCS_PER_BALANCE_BUCKET = 4096


def is_heldout(seed: int, doc_id: str, fraction: float) -> bool:
    """The split of a document: a pure function of (seed, doc_id), so every stage agrees on it."""
    return stable_uniform(seed, "heldout", doc_id) < fraction


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


def make_pair(a_ids: list[int], b_ids: list[int], cls_id: int, sep_id: int, max_seq_len: int,
              uniform: float | None = None) -> tuple[list[int], int]:
    """[CLS] A [SEP] B [SEP]; returns (ids, b_start). When the pair is too long the longer side loses a
    token at a time, as BERT's ``truncate_seq_pair`` does: from its front or its back, drawn from the
    seeded ``uniform`` (None: always the back). The defaults (2 x 254 + 3 <= 512) never truncate."""
    a_ids, b_ids = list(a_ids), list(b_ids)
    budget = max_seq_len - 3
    excess = len(a_ids) + len(b_ids) - budget
    step = 0
    while excess > 0:
        side = a_ids if len(a_ids) >= len(b_ids) else b_ids
        front = uniform is not None and (int(uniform * (1 << 20)) >> (step % 20)) & 1 == 1
        del side[0 if front else -1]
        excess -= 1
        step += 1
    return [cls_id, *a_ids, sep_id, *b_ids, sep_id], len(a_ids) + 2


class _InstanceBuilder:
    def __init__(self, seed: int, max_seq_len: int, heldout_fraction: float):
        self._seed = seed
        self._max_seq_len = max_seq_len
        self._heldout_fraction = heldout_fraction

    def build(self, request: dict, doc_b: str, seg_b: int, b_ids: list[int], tokenizer: dict) -> dict:
        truncation = stable_uniform(self._seed, request["round"], request["doc_a"], request["seg_a"], "truncate")
        input_ids, b_start = make_pair(request["a_ids"], b_ids, tokenizer["cls_id"], tokenizer["sep_id"],
                                       self._max_seq_len, truncation)
        heldout = is_heldout(self._seed, request["doc_a"], self._heldout_fraction)
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
            "b_heldout": is_heldout(self._seed, doc_b, self._heldout_fraction),
            "split": "heldout" if heldout else "train",
            "_features": request["features"],
        }


class _Anchors:
    """One document's segments and links, seen from its anchors: which partners each may link to."""

    def __init__(self, doc_id, segments, edges, seed, heldout_fraction, link_scope):
        self.doc_id = doc_id
        self.segments = segments  # [(num_tokens, outlinks or None)] in seg_idx order
        self.heldout = is_heldout(seed, doc_id, heldout_fraction)
        # A train anchor links only to train documents: no held-out token reaches a train instance.
        usable = [edge for edge in edges if self.heldout or not is_heldout(seed, edge[0], heldout_fraction)]
        self.doc_edges = usable
        self.by_target = {}
        for edge in usable:
            self.by_target.setdefault(edge[0], edge)
        self.link_scope = link_scope
        self.exclude = sorted({edge[0] for edge in edges} | {doc_id})

    def candidates(self, seg_idx: int) -> list[tuple[str, str, int]]:
        outlinks = self.segments[seg_idx][1]
        if self.link_scope == "document" or outlinks is None:
            return self.doc_edges  # no link positions (citations, TF-IDF, random edges)
        return [self.by_target[dst] for dst in outlinks if dst in self.by_target]

    def features(self, seg_idx: int, candidates) -> tuple:
        n = len(self.segments)
        return (seg_idx, int(seg_idx + 1 == n), n, self.segments[seg_idx][0], int(bool(candidates)),
                int(bool(self.doc_edges)))


def _open_document(element, seed, heldout_fraction, link_scope) -> _Anchors | None:
    """(doc_id, (segment outlines, out-edges)) from ``_document_outline`` -> its anchors (None without segments)."""
    doc_id, (segments, edges) = element
    if not segments:
        return None  # a document without segments (only edges pointing at it) plans nothing
    return _Anchors(doc_id, segments, edges, seed, heldout_fraction, link_scope)


def _segment_outline(segment: dict, resolves_links: bool):
    """segment row -> (doc_id, (seg_idx, num_tokens, outlinks)): what planning needs, without token ids.
    With segment links to join (``resolves_links``), outlinks start empty where the segment has link
    positions (``link_titles`` not None) and None where it has none."""
    if resolves_links:
        outlinks = None if segment.get("link_titles") is None else []
    else:
        outlinks = segment.get("outlinks")
    return segment["doc_id"], (segment["seg_idx"], len(segment["input_ids"]), outlinks)


def _keyed_row(segment: dict):
    """(doc_id, the row without the link fields): raw link titles are resolved apart (``segment_links``)."""
    return segment["doc_id"], {key: value for key, value in segment.items() if key not in ("link_titles", "outlinks")}


def _document_outline(element):
    """(doc_id, {"segments", "edges", "links"?}) -> (doc_id, ([(num_tokens, outlinks)] by seg_idx,
    sorted distinct out-edges)); a segment's resolved link targets become its sorted, distinct outlinks."""
    doc_id, grouped = element
    outlines = sorted(grouped["segments"], key=lambda outline: outline[0])
    if not outlines:
        return
    targets: dict[int, set] = {}
    for seg_idx, dst in grouped.get("links", ()):
        targets.setdefault(seg_idx, set()).add(dst)
    segments = [(num_tokens, outlinks if outlinks is None or seg_idx not in targets else sorted(targets[seg_idx]))
                for seg_idx, num_tokens, outlinks in outlines]
    yield doc_id, (segments, sorted(set(grouped["edges"])))


class _PlanInstances(beam.DoFn):
    """Per document: choose its anchors and draw each one's relation (``relations`` module); emit
    contiguous instances and link/random requests."""

    def __init__(self, seed: int, dupe_factor: int, diversity: bool, max_seq_len: int, heldout_fraction: float,
                 link_scope: str, anchor_policy: str, with_links: bool):
        self._seed = seed
        self._dupe_factor = dupe_factor
        self._diversity = diversity
        self._heldout_fraction = heldout_fraction
        self._link_scope = link_scope
        self._policy = anchor_policy
        self._with_links = with_links
        self._builder = _InstanceBuilder(seed, max_seq_len, heldout_fraction)

    def setup(self):
        self._segments = counter("pairing.segments")
        self._anchors = counter("pairing.anchors")
        self._not_anchors = counter("pairing.segments_not_anchors")
        self._drawn = {relation: counter(f"pairing.drawn.{name}") for relation, name in RELATION_NAMES.items()}
        self._random_outcomes = RandomOutcomeCounters()

    def process(self, element, probabilities, tokenizer):
        doc_id, grouped = element
        rows = sorted(grouped["segments"], key=lambda row: row["seg_idx"])
        if not rows:
            return
        outline = next(iter(grouped["outline"]), None)
        segments = outline[0] if outline is not None else [(len(row["input_ids"]), None) for row in rows]
        for row, (_, outlinks) in zip(rows, segments):
            yield beam.pvalue.TaggedOutput("segments", {**row, "outlinks": outlinks})
        ids = [row["input_ids"] for row in rows]
        yield beam.pvalue.TaggedOutput("partners", (doc_id, ids))
        doc = _open_document((doc_id, outline), self._seed, self._heldout_fraction, self._link_scope) if outline else None
        if doc is None:
            return
        starts = dict(next(iter(grouped["starts"]), []))
        random_partners = {(round_index, seg_idx): (doc_b, outcome)
                           for round_index, seg_idx, doc_b, outcome in grouped["random"]}
        seed = self._seed
        candidates = [doc.candidates(index) for index in range(len(segments))]
        num_relations = 3 if self._with_links else 2
        num_kept = sum(1 for index in range(len(segments)) if _balanced_anchor(doc, index, candidates, self._with_links))
        for round_index in range(self._dupe_factor):
            offset = stable_uniform(seed, round_index, doc_id, "relation")
            # balanced: this document's share of its bucket's cyclic sequence, in a seeded order
            balanced = [(starts.get(round_index, 0) + k) % num_relations for k in range(num_kept)]
            random.Random(stable_hash(seed, round_index, doc_id, "balanced-order")).shuffle(balanced)
            kept = 0
            for seg_idx, a_ids in enumerate(ids):
                has_next = seg_idx + 1 < len(segments)
                links = candidates[seg_idx] if self._with_links else []
                if round_index == 0:
                    self._segments.inc()
                if self._policy == "balanced":
                    if not has_next or (self._with_links and not links):
                        if round_index == 0:
                            self._not_anchors.inc()
                        continue
                    relation = balanced[kept]
                else:
                    klass = availability_class(has_next, bool(links))
                    relation = draw_relation(probabilities[klass], relation_uniform(offset, seg_idx))
                kept += 1
                self._anchors.inc()
                self._drawn[relation].inc()
                request = {"doc_a": doc_id, "seg_a": seg_idx, "a_ids": a_ids, "round": round_index,
                           "relation": relation, "link_type": None, "features": doc.features(seg_idx, links)}
                if relation == CONTIGUOUS:
                    yield self._builder.build(request, doc_id, seg_idx + 1, ids[seg_idx + 1], tokenizer)
                elif relation == LINKED:
                    dst, link_type = choose_link(links, stable_uniform(seed, round_index, doc_id, seg_idx, "link"), self._diversity)
                    request["link_type"] = link_type
                    yield beam.pvalue.TaggedOutput("linked", (dst, request))
                else:  # B's document was drawn beforehand (``_random_candidates``), never one A's links to
                    doc_b, outcome = random_partners.get((round_index, seg_idx), (None, BUCKET_EMPTY))
                    self._random_outcomes.count(outcome)
                    if doc_b is not None:
                        yield beam.pvalue.TaggedOutput("random", (doc_b, request))


class _AttachPartner(beam.DoFn):
    """Per partner document (its segments' token ids): pick a segment for each request and build the instance."""

    def __init__(self, seed: int, max_seq_len: int, heldout_fraction: float):
        self._seed = seed
        self._builder = _InstanceBuilder(seed, max_seq_len, heldout_fraction)

    def process(self, element, tokenizer):
        doc_b, grouped = element
        segments = next(iter(grouped["segments"]), [])
        for request in grouped["requests"] if segments else ():
            seg_b = stable_choice_index(len(segments), self._seed, request["round"], request["doc_a"], request["seg_a"], "partner-seg")
            yield self._builder.build(request, doc_b, seg_b, segments[seg_b], tokenizer)


def _balanced_anchor(doc: _Anchors, index: int, candidates, with_links: bool) -> bool:
    return index + 1 < len(doc.segments) and (not with_links or bool(candidates[index]))


def _bucketed_anchor_count(element, seed, heldout_fraction, link_scope, with_links, num_buckets):
    doc = _open_document(element, seed, heldout_fraction, link_scope)
    if doc is None:
        return []
    candidates = [doc.candidates(index) for index in range(len(doc.segments))]
    count = sum(1 for index in range(len(doc.segments)) if _balanced_anchor(doc, index, candidates, with_links))
    # train and held-out documents balance separately: each split's mix is exact on its own
    bucket = (doc.heldout, stable_hash(seed, "balance-bucket", doc.doc_id) % num_buckets)
    return [(bucket, (doc.doc_id, count))] if count else []


def _bucket_starts(element, seed, rounds):
    """Within one bucket of documents, per round: each document's start in one cyclic sequence
    C, R, L, C, ... over the bucket's anchors (documents in a seeded order), so the bucket's mix is
    exact to one anchor per relation and the corpus' within a point, with no corpus-wide list."""
    _, members = element
    members = sorted(members)
    starts: dict[str, list] = {doc_id: [] for doc_id, _ in members}
    for round_index in range(rounds):
        running = 0
        for doc_id, count in sorted(members, key=lambda m: stable_hash(seed, round_index, "balance-order", m[0])):
            starts[doc_id].append((round_index, running))
            running += count
    return list(starts.items())


def _random_candidates(element, seed, heldout_fraction, link_scope, with_links, policy, rounds):
    """A random-partner request for every anchor of every round that may draw ``random``: drawn before
    the relations (which need the whole bucket's counts), so that A's token ids never travel to a
    random bucket, only to B's document (about three requests per random instance, of a few dozen bytes)."""
    doc = _open_document(element, seed, heldout_fraction, link_scope)
    if doc is None:
        return
    candidates = [doc.candidates(index) for index in range(len(doc.segments))]
    anchors = [index for index in range(len(doc.segments))
               if policy != "balanced" or _balanced_anchor(doc, index, candidates, with_links)]
    for round_index in range(rounds):
        for seg_idx in anchors:
            yield {"doc_a": doc.doc_id, "seg_a": seg_idx, "round": round_index, "exclude": doc.exclude}


def _class_counts_of_document(element, seed, heldout_fraction, link_scope, with_links) -> list[tuple[str, int]]:
    doc = _open_document(element, seed, heldout_fraction, link_scope)
    if doc is None:
        return []
    n = len(doc.segments)
    return [(availability_class(index + 1 < n, with_links and bool(doc.candidates(index))), 1) for index in range(n)]


def _a_only_sample(instance, seed):
    key = stable_hash(seed, "a-only", instance["round"], instance["doc_a"], instance["seg_a"])
    len_a = instance["b_start"] - 2
    return key, (instance["_features"], (len_a, instance["num_tokens"] - len_a - 3), instance["relation"])


def _shallow_classifiers(sample) -> dict:
    """The A-only check, with the pair-lengths measurement beside it (same sample)."""
    rows = [row for _, row in sample]
    result = a_only_classifier([(*features, relation) for features, _, relation in rows])
    result["pair_lengths"] = pair_lengths_classifier([(*lengths, relation) for _, lengths, relation in rows])
    return result


class MakeInstances(beam.PTransform):
    """{"segments", "edges", "tokenizer", "segment_links"?} -> {"instances", "relation_probabilities",
    "a_only", "segments"}.

    ``segments`` are segment rows; their ``outlinks`` come from ``segment_links`` when it is given
    ((doc_id, (seg_idx, linked doc_id)) pairs, ``SegmentLinkTargets``: rows with ``link_titles`` not
    None get the sorted distinct targets, the others None), else from the rows' own ``outlinks``. The
    ``segments`` output is the rows with those ``outlinks`` (``link_titles`` dropped), for the table.

    Instances carry extra keys for the writer, to strip before writing: ``split`` (train | heldout,
    by A's document) and ``_features`` (A's features for the A-only check). ``link_scope``: linked B
    comes from a document linked from inside A's own span (``segment``, wherever segments carry
    ``outlinks``) or from anywhere in A's document (``document``). ``anchor_policy``: ``balanced`` or
    ``all`` (see ``relations``). ``with_links=False``: contiguous / random only (``--links none``).
    """

    def __init__(self, seed: int, dupe_factor: int = 1, diversity: bool = True, max_seq_len: int = 512,
                 heldout_fraction: float = 0.01, link_scope: str = "segment", anchor_policy: str = "balanced",
                 with_links: bool = True):
        super().__init__()
        if link_scope not in LINK_SCOPES:
            raise ValueError(f"MakeInstances: link_scope must be one of {LINK_SCOPES}, got {link_scope!r}")
        if anchor_policy not in ANCHOR_POLICIES:
            raise ValueError(f"MakeInstances: anchor_policy must be one of {ANCHOR_POLICIES}, got {anchor_policy!r}")
        self._seed = seed
        self._dupe_factor = dupe_factor
        self._diversity = diversity
        self._max_seq_len = max_seq_len
        self._heldout_fraction = heldout_fraction
        self._link_scope = link_scope
        self._policy = anchor_policy
        self._with_links = with_links

    def expand(self, inputs):
        segments, edges, tokenizer = inputs["segments"], inputs["edges"], inputs["tokenizer"]
        segment_links = inputs.get("segment_links")
        seed, fraction = self._seed, self._heldout_fraction
        tokenizer_side = beam.pvalue.AsSingleton(tokenizer)

        # Planning sees each document's outline (segment lengths and out-links), never its token ids:
        # the ids cross one grouping by document (JoinDocument) and one by partner (JoinPartners).
        segment_counts = (
            segments
            | "OneSegment" >> beam.Map(lambda s: (s["doc_id"], 1))
            | "SegmentCounts" >> beam.CombinePerKey(sum)
        )
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
        outline_inputs = {
            "segments": segments | "SegmentOutlines" >> beam.Map(_segment_outline, segment_links is not None),
            "edges": out_edges,
        }
        if segment_links is not None:
            outline_inputs["links"] = segment_links
        documents = (
            outline_inputs
            | "JoinOutlines" >> beam.CoGroupByKey()
            | "DocumentOutlines" >> beam.FlatMap(_document_outline)
        )

        # the table the ``all`` draw uses; for ``balanced``, the table of its uniform draw (for the manifest)
        solve = (solve_relation_probabilities if self._policy == "all"
                 else functools.partial(balanced_probabilities, with_links=self._with_links))
        probabilities = (
            documents
            | "AvailabilityClasses" >> beam.FlatMap(_class_counts_of_document, seed, fraction, self._link_scope, self._with_links)
            | "CountClasses" >> beam.CombinePerKey(sum)
            | "ClassTable" >> beam.combiners.ToDict()
            | "SolveMix" >> beam.Map(solve)
        )
        num_buckets = (
            segment_counts
            | "CountDocuments" >> beam.combiners.Count.Globally()
            | "BalanceBuckets" >> beam.Map(lambda n: max(1, n // DOCS_PER_BALANCE_BUCKET))
        )
        starts = (
            documents
            | "AnchorCounts" >> beam.FlatMap(
                lambda element, buckets: _bucketed_anchor_count(element, seed, fraction, self._link_scope,
                                                                self._with_links, buckets),
                beam.pvalue.AsSingleton(num_buckets))
            | "GroupBalanceBuckets" >> beam.GroupByKey()
            | "BucketStarts" >> beam.FlatMap(_bucket_starts, seed, self._dupe_factor)
        )
        # Random B comes from training documents only (a held-out A may pair with a train B).
        train_documents = (
            segment_counts
            | "DocumentIds" >> beam.Keys()
            | "TrainDocuments" >> beam.Filter(lambda doc_id: not is_heldout(seed, doc_id, fraction))
        )
        random_requests = documents | "RandomCandidates" >> beam.FlatMap(
            _random_candidates, seed, fraction, self._link_scope, self._with_links, self._policy, self._dupe_factor)
        random_partners = (
            {"documents": train_documents, "requests": random_requests}
            | "RandomPartners" >> RandomPartners(seed, outcomes=True)
            | "RandomByAnchor" >> beam.MapTuple(
                lambda request, doc_b, outcome: (request["doc_a"], (request["round"], request["seg_a"], doc_b, outcome)))
        )
        planned = (
            {"segments": segments | "KeyByDocument" >> beam.Map(_keyed_row),
             "outline": documents, "starts": starts, "random": random_partners}
            | "JoinDocument" >> beam.CoGroupByKey()
            | "PlanInstances" >> beam.ParDo(
                _PlanInstances(seed, self._dupe_factor, self._diversity, self._max_seq_len, fraction,
                               self._link_scope, self._policy, self._with_links),
                beam.pvalue.AsSingleton(probabilities),
                tokenizer_side,
            ).with_outputs("linked", "random", "segments", "partners", main="contiguous")
        )
        partnered = (
            {
                "segments": planned.partners,
                "requests": (planned.linked, planned.random) | "AllRequests" >> beam.Flatten(),
            }
            | "JoinPartners" >> beam.CoGroupByKey()
            | "AttachPartner" >> beam.ParDo(_AttachPartner(seed, self._max_seq_len, fraction), tokenizer_side)
        )
        instances = (planned.contiguous, partnered) | "AllInstances" >> beam.Flatten()
        a_only = (
            instances
            | "TrainRows" >> beam.Filter(lambda row: row["split"] == "train")
            | "AOnlyFeatures" >> beam.Map(_a_only_sample, seed)
            | "AOnlySample" >> beam.combiners.Top.Smallest(A_ONLY_SAMPLE)
            | "AOnlyClassifier" >> beam.Map(_shallow_classifiers)
        )
        return {"instances": instances, "relation_probabilities": probabilities, "a_only": a_only,
                "segments": planned.segments}
