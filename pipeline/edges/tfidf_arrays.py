"""Column batches for the TF-IDF stages: records travel between stages as a few numpy buffers keyed
by a shard (Beam's coder copies them whole), and the sorted-array group-bys the stages compute with."""

from __future__ import annotations

from collections import Counter, defaultdict

import numpy as np
import scipy.sparse as sparse

RECORDS_PER_BATCH = 100_000


def call_records(stage: str):
    """A distribution of the records one call of ``stage`` holds (its max is the per-call bound to watch)."""
    from apache_beam.metrics import Metrics

    from linkbert.pipeline.records import METRICS_NAMESPACE

    return Metrics.distribution(METRICS_NAMESPACE, f"tfidf.call_records.{stage}")


def pack(array: np.ndarray) -> tuple[str, bytes]:
    return array.dtype.str, array.tobytes()


def unpack(packed: tuple[str, bytes]) -> np.ndarray:
    dtype, data = packed
    return np.frombuffer(data, dtype=dtype)


def packed(columns: dict) -> dict:
    return {name: pack(value) if isinstance(value, np.ndarray) else value for name, value in columns.items()}


def unpacked(batch: dict) -> dict:
    return {name: unpack(value) if isinstance(value, tuple) else value for name, value in batch.items()}


def take(column, indices: np.ndarray):
    return column[indices] if isinstance(column, np.ndarray) else [column[i] for i in indices.tolist()]


def concatenate(parts: list[dict]) -> dict:
    """Unpacked column dicts with the same columns -> one."""
    return {
        name: np.concatenate([part[name] for part in parts]) if isinstance(first, np.ndarray)
        else [item for part in parts for item in part[name]]
        for name, first in parts[0].items()
    }


def rechunked(batches, records: int = RECORDS_PER_BATCH):
    """Unpacked column dicts of about ``records`` rows each from an iterable of packed batches, so
    that a shard's many small batches cost a few array operations, not one each."""
    parts, size = [], 0
    for batch in batches:
        part = unpacked(batch)
        parts.append(part)
        size += len(next(iter(part.values())))
        if size >= records:
            yield concatenate(parts)
            parts, size = [], 0
    if parts:
        yield concatenate(parts)


def merged(batches) -> dict | None:
    """One shard's grouped batches -> one dict of columns (None when there are none)."""
    parts = [unpacked(batch) for batch in batches]
    return concatenate(parts) if parts else None


class ShardBuffer:
    """Column chunks grouped by destination shard; ``add`` and ``flush`` yield ``(shard, batch)``
    once a shard holds ``limit`` records, and at the end."""

    def __init__(self, limit: int = RECORDS_PER_BATCH):
        self._limit = limit
        self._chunks: dict[int, list[dict]] = defaultdict(list)
        self._sizes: Counter = Counter()

    def add(self, destinations: np.ndarray, columns: dict):
        """Add records (equally long columns) whose destination shards are ``destinations``."""
        order = np.argsort(destinations, kind="stable")
        sorted_destinations = destinations[order]
        starts = run_starts(sorted_destinations)
        for start, end in zip(starts.tolist(), np.r_[starts[1:], len(order)].tolist()):
            part = order[start:end]
            shard = int(sorted_destinations[start])
            self._chunks[shard].append({name: take(value, part) for name, value in columns.items()})
            self._sizes[shard] += len(part)
            if self._sizes[shard] >= self._limit:
                yield self._emit(shard)

    def flush(self):
        for shard in sorted(self._chunks):
            yield self._emit(shard)

    def _emit(self, shard: int):
        del self._sizes[shard]
        return shard, packed(concatenate(self._chunks.pop(shard)))


def run_starts(sorted_values: np.ndarray) -> np.ndarray:
    """Start offsets of the runs of equal values in ``sorted_values``."""
    if len(sorted_values) == 0:
        return np.zeros(0, dtype=np.int64)
    return np.flatnonzero(np.r_[True, sorted_values[1:] != sorted_values[:-1]])


def rank_in_run(sorted_values: np.ndarray) -> np.ndarray:
    """0, 1, 2, ... within each run of equal values of ``sorted_values``."""
    starts = run_starts(sorted_values)
    return np.arange(len(sorted_values)) - np.repeat(starts, np.diff(np.r_[starts, len(sorted_values)]))


def top_per_group(groups: np.ndarray, others: np.ndarray, scores: np.ndarray, n: int) -> np.ndarray:
    """Indices of the ``n`` highest scores of each group, ties broken by the smaller ``others``."""
    order = np.lexsort((others, -scores, groups))
    return order[rank_in_run(groups[order]) < n]


def sorted_pairs(first: np.ndarray, second: np.ndarray):
    """(order sorting the pairs (first, second), start offsets of the runs of equal pairs in it)."""
    order = np.lexsort((second, first))
    first, second = first[order], second[order]
    if len(first) == 0:
        return order, np.zeros(0, dtype=np.int64)
    return order, np.flatnonzero(np.r_[True, (first[1:] != first[:-1]) | (second[1:] != second[:-1])])


def sum_by_pair(first: np.ndarray, second: np.ndarray, values: np.ndarray):
    """Distinct (first, second) pairs and the sums of their ``values``."""
    order, starts = sorted_pairs(first, second)
    sums = np.add.reduceat(values[order], starts) if len(starts) else values[:0]
    return first[order][starts], second[order][starts], sums


def sorted_distinct(values: np.ndarray) -> np.ndarray:
    values = np.sort(values)
    return values[run_starts(values)]


def shard_of(hashes: np.ndarray, shards: int) -> np.ndarray:
    return hashes % shards


class Vectors:
    """l2-normalised document vectors in CSR form: sorted doc hashes, doc_ids, row offsets, term hashes, weights."""

    def __init__(self, docs: np.ndarray, names: list, indptr: np.ndarray, terms: np.ndarray, weights: np.ndarray):
        self.docs, self.names, self.indptr, self.terms, self.weights = docs, names, indptr, terms, weights

    @classmethod
    def from_batches(cls, batches, sort: bool = True) -> "Vectors":
        """Concatenated batches; sorted by doc hash (what ``row_of`` needs) unless ``sort`` is False."""
        docs, names, indptrs, terms, weights = [], [], [], [], []
        offset = 0
        for batch in batches:
            batch = unpacked(batch)
            docs.append(batch["doc"])
            names.extend(batch["name"])
            indptrs.append(batch["indptr"][:-1] + offset)
            offset += int(batch["indptr"][-1])
            terms.append(batch["term"])
            weights.append(batch["weight"])
        if not docs:
            return cls(np.zeros(0, np.int64), [], np.zeros(1, np.int64), np.zeros(0, np.int64), np.zeros(0))
        vectors = cls(np.concatenate(docs), names, np.r_[np.concatenate(indptrs), offset],
                      np.concatenate(terms), np.concatenate(weights))
        return vectors.rows(np.argsort(vectors.docs, kind="stable")) if sort else vectors

    def rows(self, rows: np.ndarray) -> "Vectors":
        starts, ends = self.indptr[rows], self.indptr[rows + 1]
        lengths = ends - starts
        indptr = np.r_[0, np.cumsum(lengths)]
        elements = np.repeat(starts - indptr[:-1], lengths) + np.arange(indptr[-1])
        return Vectors(self.docs[rows], take(self.names, rows), indptr, self.terms[elements], self.weights[elements])

    def row_of(self, docs: np.ndarray) -> np.ndarray:
        """Row of each doc hash in ``docs``, -1 where absent."""
        if len(self.docs) == 0:
            return np.full(len(docs), -1, dtype=np.int64)
        rows = np.minimum(np.searchsorted(self.docs, docs), len(self.docs) - 1)
        return np.where(self.docs[rows] == docs, rows, -1)

    def batch(self) -> dict:
        return packed({"doc": self.docs, "name": self.names, "indptr": self.indptr, "term": self.terms, "weight": self.weights})

    def matrix(self, vocabulary: np.ndarray) -> sparse.csr_matrix:
        """Rows over the columns ``vocabulary`` (sorted term hashes). Terms outside it are dropped,
        which leaves each dot product with a row whose terms all lie in it unchanged."""
        rows = np.repeat(np.arange(len(self.docs)), np.diff(self.indptr))
        if len(vocabulary) == 0:
            return sparse.csr_matrix((len(self.docs), 0))
        columns = np.minimum(np.searchsorted(vocabulary, self.terms), len(vocabulary) - 1)
        known = vocabulary[columns] == self.terms
        return sparse.csr_matrix((self.weights[known], (rows[known], columns[known])), shape=(len(self.docs), len(vocabulary)))
