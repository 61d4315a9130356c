"""Random partners without a driver-side list: documents are bucketed by a stable hash and each request
draws a bucket, then a document in it. Used for random B segments and for the random-link ablation."""

from __future__ import annotations

import apache_beam as beam

from linkbert.pipeline.records import counter
from linkbert.pipeline.stablehash import stable_choice_index, stable_hash

DOCS_PER_RANDOM_BUCKET = 256


class _ChooseRandomDocument(beam.DoFn):
    def __init__(self, seed: int):
        self._seed = seed

    def setup(self):
        self._empty_bucket = counter("pairing.fallback.random_bucket_empty")
        self._only_self = counter("pairing.fallback.random_no_other_document")
        self._stepped = counter("pairing.random_stepped_over_excluded")

    def process(self, element):
        _, grouped = element
        members = sorted(grouped["docs"])
        for request in grouped["requests"]:
            if not members:
                self._empty_bucket.inc()
                continue
            index = stable_choice_index(len(members), self._seed, request["round"], request["doc_a"], request["seg_a"], "random-doc")
            excluded = request.get("exclude") or (request["doc_a"],)
            excluded = set(excluded) | {request["doc_a"]}
            for step in range(len(members)):  # the next member that is neither A's document nor excluded
                if members[(index + step) % len(members)] not in excluded:
                    if step:
                        self._stepped.inc()
                    yield members[(index + step) % len(members)], {k: v for k, v in request.items() if k != "exclude"}
                    break
            else:
                self._only_self.inc()


class RandomPartners(beam.PTransform):
    """{"documents": doc_ids, "requests": dicts with doc_a, seg_a, round} -> (doc_b, request), doc_b != doc_a
    and doc_b not in the request's optional ``exclude`` (removed from the request passed on).

    Documents are bucketed by a stable hash (about DOCS_PER_RANDOM_BUCKET per bucket); each request
    goes to a uniformly drawn bucket and picks a document there, so no worker holds the corpus.
    """

    def __init__(self, seed: int):
        super().__init__()
        self._seed = seed

    def expand(self, inputs):
        seed = self._seed
        num_buckets = (
            inputs["documents"]
            | "CountDocuments" >> beam.combiners.Count.Globally()
            | "NumBuckets" >> beam.Map(lambda n: max(1, n // DOCS_PER_RANDOM_BUCKET))
        )
        buckets_side = beam.pvalue.AsSingleton(num_buckets)
        bucketed_documents = inputs["documents"] | "BucketDocuments" >> beam.Map(
            lambda doc_id, buckets: (stable_hash("random-bucket", doc_id) % buckets, doc_id), buckets_side
        )
        bucketed_requests = inputs["requests"] | "BucketRequests" >> beam.Map(
            lambda request, buckets: (
                stable_choice_index(buckets, seed, request["round"], request["doc_a"], request["seg_a"], "bucket"),
                request,
            ),
            buckets_side,
        )
        return (
            {"docs": bucketed_documents, "requests": bucketed_requests}
            | "JoinBuckets" >> beam.CoGroupByKey()
            | "ChooseRandomDocument" >> beam.ParDo(_ChooseRandomDocument(seed))
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
