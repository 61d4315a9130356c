"""TF-IDF weights without concentrating a frequent term's postings in one call.

A document's postings go to its document shard only. Each document shard asks the term shards for
the document frequencies of its distinct terms (one request per term and document shard, with
the number of its documents that hold the term); a term shard sums the counts into document
frequencies and answers every shard that asked. A call therefore holds one document shard's
postings, or one term shard's requests: its terms' share of the vocabulary plus one request per
document shard for each of its terms (a term in every document costs S = n / docs_per_shard
requests of 24 bytes, never its n postings).
"""

from __future__ import annotations

import logging
from collections import defaultdict

import apache_beam as beam
import numpy as np

from linkbert.pipeline.edges.tfidf_arrays import (
    ShardBuffer,
    Vectors,
    call_records,
    merged,
    rechunked,
    run_starts,
    shard_of,
    top_per_group,
    unpack,
)
from linkbert.pipeline.records import counter
from linkbert.pipeline.stablehash import stable_hash

_TERM_CACHE_SIZE = 1 << 21
VECTORS_PER_BATCH = 500


def term_key(text: str) -> int:
    """A term's or doc_id's key: 63 bits of its stable hash (a non-negative int64, which numpy sorts fastest)."""
    return stable_hash(text) >> 1


def doc_count_bounds(params: dict, num_docs: int) -> tuple[float, float]:
    """(min, max) document frequency a term may have, as TfidfVectorizer computes them."""
    from numbers import Integral

    def bound(value):
        return value if isinstance(value, Integral) else value * num_docs

    return bound(params["min_df"]), bound(params["max_df"])


class RoutePostings(beam.DoFn):
    """A batch of (doc_id, counts) -> (doc shard, {doc, term, tf}) postings, (doc shard, {term}) on
    "terms" (the batch's distinct terms per shard) and (doc shard, {doc, name}) on "names"."""

    def setup(self):
        self._term_hashes: dict[str, int] = {}  # a cache: hashing is most of this stage's work

    def process(self, documents, shards):
        names = [doc_id for doc_id, _ in documents]
        doc_hashes = np.array([term_key(doc_id) for doc_id in names], dtype=np.int64)
        terms = [term for _, counts in documents for term in counts]
        tfs = [tf for _, counts in documents for tf in counts.values()]
        missing = set(terms).difference(self._term_hashes)
        if len(self._term_hashes) + len(missing) > _TERM_CACHE_SIZE:
            self._term_hashes.clear()
            missing = set(terms)
        self._term_hashes.update((term, term_key(term)) for term in missing)
        terms = np.fromiter(map(self._term_hashes.__getitem__, terms), dtype=np.int64, count=len(terms))
        docs = np.repeat(doc_hashes, [len(counts) for _, counts in documents])
        destinations = shard_of(docs, shards)
        postings = ShardBuffer()
        yield from postings.add(destinations, {"doc": docs, "term": terms, "tf": np.array(tfs, dtype=np.float64)})
        yield from postings.flush()
        term_lists = ShardBuffer()
        for batch in [*term_lists.add(destinations, {"term": terms}), *term_lists.flush()]:
            yield beam.pvalue.TaggedOutput("terms", batch)
        doc_names = ShardBuffer()
        for batch in [*doc_names.add(shard_of(doc_hashes, shards), {"doc": doc_hashes, "name": names}), *doc_names.flush()]:
            yield beam.pvalue.TaggedOutput("names", batch)


class RequestFrequencies(beam.DoFn):
    """(doc shard, term batches) -> (term shard, {term, count, shard}): each distinct term of the
    shard with the number of its postings (one a document)."""

    def process(self, element, shards):
        doc_shard, batches = element
        terms = np.sort(np.concatenate([unpack(batch["term"]) for batch in batches]))
        starts = run_starts(terms)
        distinct, counts = terms[starts], np.diff(np.r_[starts, len(terms)])
        requests = ShardBuffer()
        yield from requests.add(shard_of(distinct, shards), {
            "term": distinct, "count": counts.astype(np.int64), "shard": np.full(len(distinct), doc_shard, np.int64)})
        yield from requests.flush()


class AnswerFrequencies(beam.DoFn):
    """(term shard, requests) -> (doc shard, {term, idf, indexable}) for the kept terms each shard asked for."""

    def __init__(self, params: dict, max_postings: int):
        self._params = params
        self._max_postings = max_postings

    def setup(self):
        self._terms = counter("tfidf.terms")
        self._pruned_df = counter("tfidf.terms_pruned_min_max_df")
        self._pruned_frequent = counter("tfidf.terms_pruned_frequent")
        self._call = call_records("answer_frequencies")

    def process(self, element, num_docs):
        _, batches = element
        requests = merged(batches)
        self._call.update(len(requests["term"]))
        order = np.lexsort((requests["shard"], requests["term"]))
        terms, counts, shard = requests["term"][order], requests["count"][order], requests["shard"][order]
        starts = run_starts(terms)
        df = np.add.reduceat(counts, starts).astype(np.float64)
        min_count, max_count = doc_count_bounds(self._params, num_docs)
        kept = (df >= min_count) & (df <= max_count)
        indexable = kept & (df <= self._max_postings)
        self._terms.inc(int(kept.sum()))
        self._pruned_df.inc(int(len(df) - kept.sum()))
        self._pruned_frequent.inc(int(kept.sum() - indexable.sum()))
        if self._params["use_idf"]:
            smoothing = float(self._params["smooth_idf"])
            idf = np.log((num_docs + smoothing) / (df + smoothing)) + 1.0
        else:
            idf = np.ones(len(df))
        per_request = np.repeat(np.arange(len(starts)), np.diff(np.r_[starts, len(terms)]))
        keep = kept[per_request]
        answers = ShardBuffer()
        yield from answers.add(shard[keep], {"term": terms[keep], "idf": idf[per_request][keep],
                                             "indexable": indexable[per_request][keep]})
        yield from answers.flush()


class BuildShardVectors(beam.DoFn):
    """(doc shard, {postings, names, idf}) -> (doc shard, vector batch) of l2-normalised vectors;
    index entries (term shard, {term, doc, weight, top}) on "index": every indexable posting of
    a document (its ``query_terms`` heaviest), ``top`` on its ``index_terms`` heaviest; and its
    doc_id as (doc shard, {name}) on "documents"."""

    def __init__(self, params: dict, index_terms: int, query_terms: int):
        self._params = params
        self._index_terms = index_terms
        self._query_terms = query_terms

    def setup(self):
        self._vectors = counter("tfidf.vectors")
        self._without_terms = counter("tfidf.documents_without_terms")
        self._shared = counter("tfidf.duplicate_doc_ids")
        self._fewer = counter("tfidf.documents_fewer_than_k")
        self._index_entries = counter("tfidf.index_entries")
        self._query_entries = counter("tfidf.query_entries")
        self._call = call_records("build_vectors")

    def _names_by_key(self, batches) -> dict[int, str]:
        """doc key -> doc_id; a key named by several documents is reported and left out."""
        names_of = defaultdict(list)
        for batch in batches:
            for doc, name in zip(unpack(batch["doc"]).tolist(), batch["name"]):
                names_of[doc].append(name)
        for names in names_of.values():
            if len(names) > 1:
                self._shared.inc()
                self._fewer.inc()
                logging.warning("tfidf: no edges for doc_id(s) %s: they share one key (a duplicated doc_id or a hash "
                                "collision)", sorted(names))
        return {doc: names[0] for doc, names in names_of.items() if len(names) == 1}

    def _weighted(self, grouped, name_of):
        """The shard's kept postings as (doc, term, weight, indexable) columns, or None."""
        answers = merged(grouped["idf"])
        if answers is None:
            return None
        order = np.argsort(answers["term"])
        vocabulary, idf, indexable = answers["term"][order], answers["idf"][order], answers["indexable"][order]
        known = np.fromiter(name_of, dtype=np.int64, count=len(name_of))
        parts = []
        for batch in rechunked(grouped["postings"]):
            rows = np.minimum(np.searchsorted(vocabulary, batch["term"]), max(len(vocabulary) - 1, 0))
            keep = (vocabulary[rows] == batch["term"]) & np.isin(batch["doc"], known)
            rows, tf = rows[keep], batch["tf"][keep]
            tf_weight = (1.0 + np.log(tf)) if self._params["sublinear_tf"] else tf
            parts.append((batch["doc"][keep], batch["term"][keep], tf_weight * idf[rows], indexable[rows]))
        if not parts:
            return None
        columns = tuple(np.concatenate(column) for column in zip(*parts))
        self._call.update(len(columns[0]))
        return columns

    def process(self, element, shards):
        doc_shard, grouped = element
        name_of = self._names_by_key(grouped["names"])
        weighted = self._weighted(grouped, name_of) if name_of else None
        if weighted is None or len(weighted[0]) == 0:
            self._without_terms.inc(len(name_of))
            self._fewer.inc(len(name_of))
            return
        docs, terms, weights, indexable = weighted
        order = np.lexsort((terms, docs))
        docs, terms, weights, indexable = docs[order], terms[order], weights[order], indexable[order]
        starts = run_starts(docs)
        norms = np.sqrt(np.add.reduceat(weights * weights, starts))
        weights = weights / np.repeat(norms, np.diff(np.r_[starts, len(docs)]))
        vectors = Vectors(docs[starts], [name_of[doc] for doc in docs[starts].tolist()], np.r_[starts, len(docs)],
                          terms, weights)
        self._vectors.inc(len(starts))
        self._without_terms.inc(len(name_of) - len(starts))
        self._fewer.inc(len(name_of) - len(starts))
        for first in range(0, len(starts), VECTORS_PER_BATCH):
            yield doc_shard, vectors.rows(np.arange(first, min(len(starts), first + VECTORS_PER_BATCH))).batch()
        yield beam.pvalue.TaggedOutput("documents", (doc_shard, {"name": list(vectors.names)}))

        candidates = np.flatnonzero(indexable)
        by_weight = candidates[top_per_group(docs[candidates], terms[candidates], weights[candidates],
                                             max(self._query_terms, self._index_terms))]
        top = np.zeros(len(docs), dtype=bool)
        top[candidates[top_per_group(docs[candidates], terms[candidates], weights[candidates], self._index_terms)]] = True
        self._index_entries.inc(int(top.sum()))
        self._query_entries.inc(len(by_weight))
        index = ShardBuffer()
        entries = {"term": terms[by_weight], "doc": docs[by_weight], "weight": weights[by_weight], "top": top[by_weight]}
        for batch in [*index.add(shard_of(entries["term"], shards), entries), *index.flush()]:
            yield beam.pvalue.TaggedOutput("index", batch)
