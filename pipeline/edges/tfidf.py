"""TF-IDF top-k document edges (``--links tfidf``) without an all-pairs product over the corpus.

1. Analyze: scikit-learn's analyzer (``TfidfVectorizer(**options).build_analyzer()``) turns each
   document's title and text into term counts.
2. Weigh: postings go to their term's shard, where document frequencies are counted and each
   posting is weighed with TfidfVectorizer's formulas (tf raw, binary or 1 + ln tf; idf
   ln((1 + n) / (1 + df)) + 1 when smooth, else ln(n / df) + 1; ``min_df``/``max_df``). The
   weighted postings go back to their document's shard, where rows are l2-normalised. The
   vocabulary is unbounded, so it is joined by term, never broadcast as a side input.
3. Candidates: each document puts its ``index_terms`` highest-weighted terms into an inverted
   index; terms in more than ``max_postings`` documents (the most frequent ones) are left out, so a
   posting list holds at most ``max_postings`` documents and the work is at most
   n * index_terms * max_postings partial scores, linear in n. Partial scores are summed per pair
   and each document keeps its ``candidates`` best partners (ties broken by key, see below).
4. Rescore: each unordered candidate pair gets its exact cosine from the two full vectors, once;
   each document keeps its k nearest, ties broken by doc_id.

Recall needs documents whose own terms say what they are about. Where the most frequent words carry
most of the cosine (template prose, or short documents under the default, stop-word-keeping
analyzer), the exact neighbours are mostly decided by pruned terms and the index finds few of them;
``bench/tfidf.py`` measures both kinds of corpus.

Records travel between stages as column batches keyed by a shard instead of one element per
posting or pair: a grouping costs the Python SDK about the same per element whatever its size, and
there are hundreds of postings per document. Terms and documents are known by 63 bits of a stable
hash of their text (``linkbert.pipeline.stablehash``), so a batch is a few numpy buffers that Beam's coder
copies whole and the stages work on arrays; doc_id strings travel only where edges are made. A
shard holds about ``docs_per_shard`` documents' worth of records (the shard count is
n / docs_per_shard, at most ``max_shards``; rescoring also holds up to ``candidates`` partner vectors
per document), except that a term shard counts document frequencies over the 8-byte term keys of
all its postings, however frequent its terms.

Hashes could collide: two doc_ids sharing a hash are reported like a duplicated doc_id (no edges
for either); two terms sharing one would be counted as one term. Over a vocabulary of 10 million
terms the chance that any two collide is about 5e-6.
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from numbers import Integral

import apache_beam as beam
import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer

from linkbert.pipeline.edges.tfidf_arrays import (
    ShardBuffer,
    Vectors,
    merged,
    pack,
    rechunked,
    run_starts,
    shard_of,
    sorted_distinct,
    sorted_pairs,
    sum_by_pair,
    take,
    top_per_group,
    unpack,
)
from linkbert.pipeline.records import counter
from linkbert.pipeline.stablehash import stable_hash

LINK_TYPE = "tfidf"
VECTORS_PER_BATCH = 500
MAX_INDEX_TERMS = 4096
# Partial scores are rounded to multiples of 2**-40: a pair sums at most MAX_INDEX_TERMS of them,
# each at most 1, so every sum is exact in float64 and no runner's order of addition can change it.
_SCORE_GRID = float(1 << 40)
_TERM_CACHE_SIZE = 1 << 21

# TfidfVectorizer parameters this transform cannot reproduce; everything else is honoured.
_UNSUPPORTED = {
    "input": ("content",),
    "max_features": (None,),
    "vocabulary": (None,),
    "norm": ("l2",),
}


def document_text(document: dict) -> str:
    """The string a document is vectorised from: its title, a blank line, its text."""
    return f"{document['title']}\n\n{document['text']}"


def validate_vectorizer_options(options: dict) -> dict:
    """TfidfVectorizer keyword arguments -> all its parameters; raises for unknown or unsupported ones."""
    try:
        params = TfidfVectorizer(**options).get_params()
    except TypeError as exc:
        raise TypeError(f"TfidfEdges: not a TfidfVectorizer option: {exc}") from None
    for name, allowed in _UNSUPPORTED.items():
        if params[name] not in allowed:
            raise ValueError(f"TfidfEdges: TfidfVectorizer option {name}={params[name]!r} is not supported (only {allowed[0]!r})")
    if np.dtype(params["dtype"]) != np.float64:
        raise ValueError(f"TfidfEdges: weights are computed in float64; dtype={params['dtype']!r} is not supported")
    for name in ("min_df", "max_df"):
        value = params[name]
        if isinstance(value, float) and not 0.0 <= value <= 1.0:
            raise ValueError(f"TfidfEdges: {name}={value} must be an int or a float in [0, 1]")
    min_df, max_df = params["min_df"], params["max_df"]
    if isinstance(min_df, Integral) == isinstance(max_df, Integral) and max_df < min_df:
        raise ValueError(f"TfidfEdges: max_df={max_df} keeps fewer documents than min_df={min_df}")
    return params


def doc_count_bounds(params: dict, num_docs: int) -> tuple[float, float]:
    """(min, max) document frequency a term may have, as TfidfVectorizer computes them."""
    def bound(value):
        return value if isinstance(value, Integral) else value * num_docs

    return bound(params["min_df"]), bound(params["max_df"])


def _key(text: str) -> int:
    """A term's or doc_id's key: 63 bits of its stable hash (a non-negative int64, which numpy sorts fastest)."""
    return stable_hash(text) >> 1


def num_shards(num_docs: int, docs_per_shard: int, max_shards: int) -> int:
    return max(1, min(max_shards, -(-num_docs // docs_per_shard)))


# --- column batches ---------------------------------------------------------------------------
# A batch is a dict of columns: numpy arrays, packed as (dtype, bytes) so that Beam's coder copies
# one buffer instead of encoding every number, or lists of doc_id strings.


# --- array helpers ------------------------------------------------------------------------------


# --- stages -------------------------------------------------------------------------------------

class _AnalyzeDocument(beam.DoFn):
    """document -> (doc_id, {term: tf}); invalid documents are counted and reported, not raised."""

    def __init__(self, vectorizer_options: dict):
        self._vectorizer_options = vectorizer_options

    def setup(self):
        vectorizer = TfidfVectorizer(**self._vectorizer_options)
        self._analyzer = vectorizer.build_analyzer()
        self._binary = vectorizer.binary
        self._documents = counter("tfidf.documents")
        self._invalid = counter("tfidf.documents_invalid")

    def process(self, document):
        is_dict = isinstance(document, dict)
        doc_id = document.get("doc_id") if is_dict else None
        source_file = document.get("source_file") if is_dict else None
        if not (isinstance(doc_id, str) and doc_id and all(isinstance(document.get(f), str) for f in ("title", "text"))):
            self._invalid.inc()
            logging.warning("tfidf: skipped document %r from %s: doc_id must be a non-empty string, title and text strings",
                            doc_id, source_file)
            return
        try:
            counts = Counter(self._analyzer(document_text(document)))
        except Exception as exc:  # a user-supplied preprocessor or tokenizer may fail on one document
            self._invalid.inc()
            logging.warning("tfidf: skipped document %r from %s: analyzer failed: %s: %s",
                            doc_id, source_file, type(exc).__name__, exc)
            return
        self._documents.inc()
        yield doc_id, (dict.fromkeys(counts, 1) if self._binary else counts)


class _RoutePostings(beam.DoFn):
    """A batch of (doc_id, counts) -> (term shard, {term, doc, tf}) postings, and
    (doc shard, {doc, name}) on "names"; terms and documents as hashes."""

    def setup(self):
        self._term_hashes: dict[str, int] = {}  # a cache: hashing is most of this stage's work

    def process(self, documents, shards):
        names = [doc_id for doc_id, _ in documents]
        doc_hashes = np.array([_key(doc_id) for doc_id in names], dtype=np.int64)
        terms = [term for _, counts in documents for term in counts]
        tfs = [tf for _, counts in documents for tf in counts.values()]
        missing = set(terms).difference(self._term_hashes)
        if len(self._term_hashes) + len(missing) > _TERM_CACHE_SIZE:
            self._term_hashes.clear()
            missing = set(terms)
        self._term_hashes.update((term, _key(term)) for term in missing)
        terms = np.fromiter(map(self._term_hashes.__getitem__, terms), dtype=np.int64, count=len(terms))
        docs = np.repeat(doc_hashes, [len(counts) for _, counts in documents])
        postings = ShardBuffer()
        yield from postings.add(shard_of(terms, shards), {"term": terms, "doc": docs, "tf": np.array(tfs, dtype=np.float64)})
        yield from postings.flush()
        doc_names = ShardBuffer()
        for batch in [*doc_names.add(shard_of(doc_hashes, shards), {"doc": doc_hashes, "name": names}), *doc_names.flush()]:
            yield beam.pvalue.TaggedOutput("names", batch)


class _WeighTermShard(beam.DoFn):
    """(term shard, posting batches) -> (doc shard, {doc, term, weight, indexable}).

    Two passes over the postings: document frequencies from the term hashes alone (8 bytes a
    posting), then the weights, batch by batch.
    """

    def __init__(self, params: dict, max_postings: int):
        self._params = params
        self._max_postings = max_postings

    def setup(self):
        self._terms = counter("tfidf.terms")
        self._pruned_df = counter("tfidf.terms_pruned_min_max_df")
        self._pruned_frequent = counter("tfidf.terms_pruned_frequent")

    def process(self, element, num_docs, shards):
        _, batches = element
        all_terms = np.sort(np.concatenate([unpack(batch["term"]) for batch in batches]))
        starts = run_starts(all_terms)
        vocabulary, df = all_terms[starts], np.diff(np.r_[starts, len(all_terms)]).astype(np.float64)
        del all_terms
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

        weighted = ShardBuffer()
        for batch in rechunked(batches):
            rows = np.searchsorted(vocabulary, batch["term"])
            keep = kept[rows]
            rows, tf = rows[keep], batch["tf"][keep]
            docs = batch["doc"][keep]
            tf_weight = (1.0 + np.log(tf)) if self._params["sublinear_tf"] else tf
            yield from weighted.add(shard_of(docs, shards), {
                "doc": docs, "term": vocabulary[rows], "weight": tf_weight * idf[rows], "indexable": indexable[rows],
            })
        yield from weighted.flush()


class _BuildShardVectors(beam.DoFn):
    """(doc shard, {postings, names}) -> (doc shard, vector batch) of l2-normalised vectors; each
    document's top indexable terms go to their term shard as (term shard, {term, doc, weight}) on
    "index", and its doc_id to (doc shard, {name}) on "documents"."""

    def __init__(self, index_terms: int):
        self._index_terms = index_terms

    def setup(self):
        self._vectors = counter("tfidf.vectors")
        self._without_terms = counter("tfidf.documents_without_terms")
        self._shared = counter("tfidf.duplicate_doc_ids")
        self._fewer = counter("tfidf.documents_fewer_than_k")
        self._index_entries = counter("tfidf.index_entries")

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

    def process(self, element, shards):
        doc_shard, grouped = element
        name_of = self._names_by_key(grouped["names"])
        postings = merged(grouped["postings"])
        if postings is not None:
            keep = np.isin(postings["doc"], np.fromiter(name_of, dtype=np.int64, count=len(name_of)))
            postings = {name: column[keep] for name, column in postings.items()}
        if postings is None or len(postings["doc"]) == 0:
            self._without_terms.inc(len(name_of))
            self._fewer.inc(len(name_of))
            return
        order = np.lexsort((postings["term"], postings["doc"]))
        docs, terms = postings["doc"][order], postings["term"][order]
        weights, indexable = postings["weight"][order], postings["indexable"][order]
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
        chosen = candidates[top_per_group(docs[candidates], terms[candidates], weights[candidates], self._index_terms)]
        self._index_entries.inc(len(chosen))
        index = ShardBuffer()
        entries = {"term": terms[chosen], "doc": docs[chosen], "weight": weights[chosen]}
        for batch in [*index.add(shard_of(entries["term"], shards), entries), *index.flush()]:
            yield beam.pvalue.TaggedOutput("index", batch)


class _ScorePostingLists(beam.DoFn):
    """(term shard, index entries) -> (doc shard, {doc, other, score}): for every pair of documents
    in a posting list (at most ``max_postings`` long) the product of their weights, summed over the
    shard's terms, once per direction."""

    def setup(self):
        self._partial_scores = counter("tfidf.partial_scores")

    def process(self, element, shards):
        _, batches = element
        entries = merged(batches)
        order = np.lexsort((entries["doc"], entries["term"]))
        terms, docs, weights = entries["term"][order], entries["doc"][order], entries["weight"][order]
        starts = run_starts(terms)
        lengths = np.diff(np.r_[starts, len(terms)])
        firsts, seconds = [], []
        for length in np.unique(lengths[lengths > 1]).tolist():
            first, second = np.triu_indices(length, 1)
            group_starts = starts[lengths == length]
            firsts.append((group_starts[:, None] + first).ravel())
            seconds.append((group_starts[:, None] + second).ravel())
        if not firsts:
            return
        first, second = np.concatenate(firsts), np.concatenate(seconds)
        self._partial_scores.inc(len(first))
        partial = np.round(weights[first] * weights[second] * _SCORE_GRID) / _SCORE_GRID
        low, high, totals = sum_by_pair(docs[first], docs[second], partial)  # docs sorted within a term: low < high
        doc, other = np.r_[low, high], np.r_[high, low]
        partials = ShardBuffer()
        yield from partials.add(shard_of(doc, shards), {"doc": doc, "other": other, "score": np.r_[totals, totals]})
        yield from partials.flush()


class _SelectCandidates(beam.DoFn):
    """(doc shard, partial scores) -> (shard of the lower hash, {low, high}) for each document's
    ``candidates`` best partners (ties broken by hash)."""

    def __init__(self, candidates: int):
        self._candidates = candidates

    def setup(self):
        self._selected = counter("tfidf.candidates")

    def process(self, element, shards):
        _, batches = element
        partials = merged(batches)
        docs, others, totals = sum_by_pair(partials["doc"], partials["other"], partials["score"])
        best = top_per_group(docs, others, totals, self._candidates)
        self._selected.inc(len(best))
        low, high = np.minimum(docs[best], others[best]), np.maximum(docs[best], others[best])
        pairs = ShardBuffer()
        yield from pairs.add(shard_of(low, shards), {"low": low, "high": high})
        yield from pairs.flush()


class _ShipVectors(beam.DoFn):
    """(doc shard, {vectors, pairs}) -> (shard of the higher hash, {vectors, high, low_row}): the
    lower document's vector once per destination shard, with the pairs that need it."""

    def process(self, element, shards):
        _, grouped = element
        vectors = Vectors.from_batches(grouped["vectors"])
        pairs = merged(grouped["pairs"])
        if pairs is None:
            return
        order, starts = sorted_pairs(pairs["low"], pairs["high"])
        low, high = pairs["low"][order][starts], pairs["high"][order][starts]
        rows = vectors.row_of(low)
        keep = rows >= 0
        low, high, rows = low[keep], high[keep], rows[keep]
        destinations = shard_of(high, shards)
        order = np.lexsort((rows, destinations))
        destinations, high, rows = destinations[order], high[order], rows[order]
        starts = run_starts(destinations)
        for start, end in zip(starts.tolist(), np.r_[starts[1:], len(order)].tolist()):
            shipped_rows, low_row = np.unique(rows[start:end], return_inverse=True)
            yield int(destinations[start]), {
                "vectors": vectors.rows(shipped_rows).batch(),
                "high": pack(high[start:end]),
                "low_row": pack(low_row.ravel().astype(np.int64)),
            }


class _ExactCosines(beam.DoFn):
    """(doc shard, {vectors, incoming}) -> (doc shard, {name, other, score}) in both directions."""

    def setup(self):
        self._rescored = counter("tfidf.pairs_rescored")

    def process(self, element, shards):
        doc_shard, grouped = element
        shipments = list(grouped["incoming"])
        if not shipments:
            return
        local = Vectors.from_batches(grouped["vectors"])
        lows = Vectors.from_batches([shipment["vectors"] for shipment in shipments], sort=False)
        first_rows = np.cumsum([0] + [len(unpack(shipment["vectors"]["doc"])) for shipment in shipments[:-1]])
        high = np.concatenate([unpack(shipment["high"]) for shipment in shipments])
        low_row = np.concatenate([unpack(shipment["low_row"]) + first for shipment, first in zip(shipments, first_rows)])
        high_row = local.row_of(high)
        keep = high_row >= 0
        high_row, low_row = high_row[keep], low_row[keep]
        vocabulary = sorted_distinct(local.terms)
        scores = np.asarray(local.matrix(vocabulary)[high_row].multiply(lows.matrix(vocabulary)[low_row]).sum(axis=1)).ravel()
        self._rescored.inc(len(scores))
        high_names, low_names = take(local.names, high_row), take(lows.names, low_row)
        scored = ShardBuffer()
        yield from scored.add(np.full(len(scores), doc_shard), {"name": high_names, "other": low_names, "score": scores})
        yield from scored.add(shard_of(lows.docs[low_row], shards), {"name": low_names, "other": high_names, "score": scores})
        yield from scored.flush()


class _EmitEdges(beam.DoFn):
    """(doc shard, {documents, scored}) -> edge rows: each document's k nearest, ties broken by doc_id."""

    def __init__(self, k: int):
        self._k = k

    def setup(self):
        self._edges = counter("tfidf.edges")
        self._fewer = counter("tfidf.documents_fewer_than_k")

    def process(self, element):
        _, grouped = element
        documents = [name for batch in grouped["documents"] for name in batch["name"]]
        emitted = Counter()
        scored = merged(grouped["scored"])
        if scored is not None:
            names = sorted(set(scored["name"]) | set(scored["other"]))
            code_of = {name: code for code, name in enumerate(names)}
            docs = np.fromiter((code_of[name] for name in scored["name"]), dtype=np.int64, count=len(scored["name"]))
            others = np.fromiter((code_of[name] for name in scored["other"]), dtype=np.int64, count=len(docs))
            nearest = top_per_group(docs, others, scored["score"], self._k)
            for doc, other, score in zip(docs[nearest].tolist(), others[nearest].tolist(), scored["score"][nearest].tolist()):
                emitted[names[doc]] += 1
                yield {"src": names[doc], "dst": names[other], "link_type": LINK_TYPE, "score": score}
        self._edges.inc(sum(emitted.values()))
        self._fewer.inc(sum(1 for name in documents if emitted[name] < self._k))


class TfidfEdges(beam.PTransform):
    """documents -> edge rows ``{"src", "dst", "link_type": "tfidf", "score": cosine}``, k per document.

    ``vectorizer_options`` are TfidfVectorizer keyword arguments (its defaults otherwise): the
    analyzer options (lowercase, token_pattern, stop_words, ngram_range, ...), ``min_df``,
    ``max_df``, ``binary``, ``use_idf``, ``smooth_idf`` and ``sublinear_tf`` are honoured;
    ``max_features``, ``vocabulary`` and norms other than l2 are refused.

    ``index_terms``, ``max_postings`` and ``candidates`` trade recall against work (``candidates=10``,
    twice k: recall@5 0.967 on the enwiki fragment and 0.990 on 20k topic documents in ``bench/tfidf.py``,
    against 0.990 / 0.999 with 20, for 1.5x less time and fewer vector copies to rescore);
    ``docs_per_shard`` and ``max_shards`` size the batches (see the module docstring). ``seed`` is
    accepted so that every edge source takes the same arguments: TF-IDF edges are a pure function
    of the documents and involve no random choice.
    """

    def __init__(self, k: int = 5, seed: int = 0, *, index_terms: int = 20, max_postings: int = 1000,
                 candidates: int = 10, docs_per_shard: int = 500, max_shards: int = 1000, **vectorizer_options):
        super().__init__()
        sizes = {"k": k, "index_terms": index_terms, "max_postings": max_postings, "candidates": candidates,
                 "docs_per_shard": docs_per_shard, "max_shards": max_shards}
        for name, value in sizes.items():
            if not isinstance(value, Integral) or isinstance(value, bool) or value < 1:
                raise ValueError(f"TfidfEdges: {name} must be a positive int, got {value!r}")
        if index_terms > MAX_INDEX_TERMS:
            raise ValueError(f"TfidfEdges: index_terms must be at most {MAX_INDEX_TERMS}, got {index_terms}")
        if candidates < k:
            raise ValueError(f"TfidfEdges: candidates ({candidates}) must be at least k ({k})")
        self._k = k
        self._seed = seed
        self._index_terms = index_terms
        self._max_postings = max_postings
        self._candidates = candidates
        self._docs_per_shard = docs_per_shard
        self._max_shards = max_shards
        self._vectorizer_options = dict(vectorizer_options)
        self._params = validate_vectorizer_options(self._vectorizer_options)

    def expand(self, documents):
        analyzed = documents | "Analyze" >> beam.ParDo(_AnalyzeDocument(self._vectorizer_options))
        num_docs = analyzed | "CountDocuments" >> beam.combiners.Count.Globally()
        shards = beam.pvalue.AsSingleton(
            num_docs | "ShardCount" >> beam.Map(num_shards, self._docs_per_shard, self._max_shards)
        )
        routed = (
            analyzed
            | "BatchDocuments" >> beam.BatchElements(min_batch_size=self._docs_per_shard,
                                                     max_batch_size=self._docs_per_shard)
            | "RoutePostings" >> beam.ParDo(_RoutePostings(), shards).with_outputs("names", main="postings")
        )
        weighted = (
            routed.postings
            | "GroupByTerm" >> beam.GroupByKey()
            | "Weigh" >> beam.ParDo(_WeighTermShard(self._params, self._max_postings),
                                    beam.pvalue.AsSingleton(num_docs), shards)
        )
        built = (
            {"postings": weighted, "names": routed.names}
            | "GroupByDocument" >> beam.CoGroupByKey()
            | "BuildVectors" >> beam.ParDo(_BuildShardVectors(self._index_terms), shards).with_outputs(
                "index", "documents", main="vectors")
        )
        candidate_pairs = (
            built.index
            | "GroupPostingLists" >> beam.GroupByKey()
            | "ScorePostingLists" >> beam.ParDo(_ScorePostingLists(), shards)
            | "GroupPartialScores" >> beam.GroupByKey()
            | "SelectCandidates" >> beam.ParDo(_SelectCandidates(self._candidates), shards)
        )
        shipped = (
            {"vectors": built.vectors, "pairs": candidate_pairs}
            | "JoinLowerDocument" >> beam.CoGroupByKey()
            | "ShipVectors" >> beam.ParDo(_ShipVectors(), shards)
        )
        scored = (
            {"vectors": built.vectors, "incoming": shipped}
            | "JoinHigherDocument" >> beam.CoGroupByKey()
            | "ExactCosines" >> beam.ParDo(_ExactCosines(), shards)
        )
        return (
            {"documents": built.documents, "scored": scored}
            | "JoinDocuments" >> beam.CoGroupByKey()
            | "EmitEdges" >> beam.ParDo(_EmitEdges(self._k))
        )
