"""Baselines a trained model must beat, computed from the data alone."""

from __future__ import annotations

import collections
import glob
import os

import pyarrow.parquet as pq


def unigram_mlm_accuracy(data_dir: str, special_ids, split: str = "heldout") -> float:
    """Masked-token accuracy of always predicting the most frequent ordinary token of the train shards:
    that token's share of the ``split`` shards' ordinary tokens (token masking draws uniformly from them)."""
    special = set(special_ids)

    def counts(name: str) -> collections.Counter:
        counter = collections.Counter()
        for path in glob.glob(os.path.join(data_dir, "instances", f"{name}-*.parquet")):
            for ids in pq.read_table(path, columns=["input_ids"]).column("input_ids").to_pylist():
                counter.update(i for i in ids if i not in special)
        return counter

    train, held = counts("train"), counts(split)
    top = train.most_common(1)[0][0]
    return held[top] / sum(held.values())
