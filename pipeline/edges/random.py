"""Random partners without a driver-side list: documents are bucketed by a stable hash and each request
draws a bucket, then a document in it. Used for random B segments and for the random-link ablation."""

from __future__ import annotations

import apache_beam as beam

from linkbert.pipeline.records import counter
from linkbert.pipeline.stablehash import stable_choice_index, stable_hash

DOCS_PER_RANDOM_BUCKET = 256


CHOSEN, STEPPED, BUCKET_EMPTY, ONLY_SELF = "chosen", "stepped", "bucket_empty", "only_self"


class RandomOutcomeCounters:
    """The counters of random-partner draws that did not go plainly (counted where the draw is used)."""

    def __init__(self):
        self._counters = {BUCKET_EMPTY: counter("pairing.fallback.random_bucket_empty"),
                          ONLY_SELF: counter("pairing.fallback.random_no_other_document"),
                          STEPPED: counter("pairing.random_stepped_over_excluded")}

    def count(self, outcome: str) -> None:
        if outcome in self._counters:
            self._counters[outcome].inc()


def choose_member(members: list[str], request: dict, seed: int) -> tuple[str | None, str]:
    """(document drawn for ``request`` among the sorted bucket ``members``, or None; outcome)."""
    if not members:
        return None, BUCKET_EMPTY
    index = stable_choice_index(len(members), seed, request["round"], request["doc_a"], request["seg_a"], "random-doc")
    excluded = set(request.get("exclude") or ()) | {request["doc_a"]}
    for step in range(len(members)):  # the next member that is neither A's document nor excluded
        if members[(index + step) % len(members)] not in excluded:
            return members[(index + step) % len(members)], STEPPED if step else CHOSEN
    return None, ONLY_SELF


class _ChooseRandomDocument(beam.DoFn):
    def __init__(self, seed: int, outcomes: bool):
        self._seed = seed
        self._outcomes = outcomes

    def setup(self):
        self._counters = RandomOutcomeCounters()

    def process(self, element):
        _, grouped = element
        members = sorted(grouped["docs"])
        for request in grouped["requests"]:
            doc_b, outcome = choose_member(members, request, self._seed)
            if self._outcomes:
                yield request, doc_b, outcome
                continue
            self._counters.count(outcome)
            if doc_b is not None:
                yield doc_b, {k: v for k, v in request.items() if k != "exclude"}


def _bucket_of(doc_id: str, buckets: int) -> int:
    return stable_hash("random-bucket", doc_id) % buckets


def _bucket_request(request: dict, seed: int, buckets: int) -> tuple[int, dict]:
    """(bucket, request): only the excluded documents of that bucket travel with the request (the
    others cannot be drawn there), so a document's long out-link list does not cross the shuffle."""
    bucket = stable_choice_index(buckets, seed, request["round"], request["doc_a"], request["seg_a"], "bucket")
    if request.get("exclude"):
        request = {**request, "exclude": [doc_id for doc_id in request["exclude"] if _bucket_of(doc_id, buckets) == bucket]}
    return bucket, request


class RandomPartners(beam.PTransform):
    """{"documents": doc_ids, "requests": dicts with doc_a, seg_a, round} -> (doc_b, request), doc_b != doc_a
    and doc_b not in the request's optional ``exclude`` (removed from the request passed on).
    With ``outcomes``: (request, doc_b or None, outcome) for every request, and no counters (the
    caller counts the outcomes of the draws it uses).

    Documents are bucketed by a stable hash (about DOCS_PER_RANDOM_BUCKET per bucket); each request
    goes to a uniformly drawn bucket and picks a document there, so no worker holds the corpus.
    """

    def __init__(self, seed: int, outcomes: bool = False):
        super().__init__()
        self._seed = seed
        self._outcomes = outcomes

    def expand(self, inputs):
        seed = self._seed
        num_buckets = (
            inputs["documents"]
            | "CountDocuments" >> beam.combiners.Count.Globally()
            | "NumBuckets" >> beam.Map(lambda n: max(1, n // DOCS_PER_RANDOM_BUCKET))
        )
        buckets_side = beam.pvalue.AsSingleton(num_buckets)
        bucketed_documents = inputs["documents"] | "BucketDocuments" >> beam.Map(
            lambda doc_id, buckets: (_bucket_of(doc_id, buckets), doc_id), buckets_side
        )
        bucketed_requests = inputs["requests"] | "BucketRequests" >> beam.Map(_bucket_request, seed, buckets_side)
        return (
            {"docs": bucketed_documents, "requests": bucketed_requests}
            | "JoinBuckets" >> beam.CoGroupByKey()
            | "ChooseRandomDocument" >> beam.ParDo(_ChooseRandomDocument(seed, self._outcomes))
        )


class RandomEdges(beam.PTransform):
    """documents -> ``k`` edges per document to uniformly random other documents (``link_type`` random).

    The ablation control of the paper's Table 5: "linked" pairs that carry no real relation.
    """

    def __init__(self, k: int, seed: int):
        super().__init__()
        self._k = k
        self._seed = seed

    def expand(self, documents):
        k = self._k
        doc_ids = documents | "DocumentIds" >> beam.Map(lambda d: d["doc_id"])
        requests = doc_ids | "EdgeRequests" >> beam.FlatMap(
            lambda doc_id: ({"doc_a": doc_id, "seg_a": slot, "round": "random-edges"} for slot in range(k))
        )
        return (
            {"documents": doc_ids, "requests": requests}
            | "RandomPartners" >> RandomPartners(self._seed)
            | "Distinct" >> beam.Map(lambda kv: (kv[1]["doc_a"], kv[0]))
            | "Dedup" >> beam.Distinct()
            | "ToEdgeRows" >> beam.MapTuple(lambda src, dst: {"src": src, "dst": dst, "link_type": "random", "score": None})
        )
