"""Seeded randomness that is a pure function of stable keys, so any document can be rebuilt alone.

The generators never hold per-document state: document ``i``'s text, out-links and attributes are
derived from ``(seed, domain, i)``, which keeps memory O(1) per document and lets a page that links
to document ``j`` state facts about ``j`` that ``j``'s own page also states.
"""

from __future__ import annotations

import math
import random

from linkbert.pipeline.stablehash import stable_hash

_MASK64 = (1 << 64) - 1


def keyed_rng(*keys: object) -> random.Random:
    """A ``random.Random`` seeded from ``keys`` only (same sequence on every machine and Python 3)."""
    return random.Random(stable_hash(*keys))


def _mix64(value: int) -> int:
    """splitmix64 finaliser: a cheap, well-distributed 64-bit integer hash."""
    value = (value + 0x9E3779B97F4A7C15) & _MASK64
    value = ((value ^ (value >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    value = ((value ^ (value >> 27)) * 0x94D049BB133111EB) & _MASK64
    return value ^ (value >> 31)


class KeyedPermutation:
    """A keyed bijection of ``range(size)`` in O(1) memory.

    A 4-round balanced Feistel network on the smallest even bit width that covers ``size``, with
    cycle-walking back into range (the domain is at most 4x ``size``, so a few rounds on average).
    """

    __slots__ = ("size", "_half_bits", "_half_mask", "_round_keys")

    def __init__(self, size: int, *keys: object) -> None:
        if size <= 0:
            raise ValueError(f"KeyedPermutation needs size > 0, got {size}")
        bits = max(2, (size - 1).bit_length())
        bits += bits % 2
        self.size = size
        self._half_bits = bits // 2
        self._half_mask = (1 << self._half_bits) - 1
        self._round_keys = tuple(stable_hash(*keys, "feistel-round", r) for r in range(4))

    def __call__(self, value: int) -> int:
        if not 0 <= value < self.size:
            raise IndexError(f"{value} outside range({self.size})")
        half_bits, half_mask = self._half_bits, self._half_mask
        while True:
            left, right = value >> half_bits, value & half_mask
            for round_key in self._round_keys:
                left, right = right, left ^ (_mix64(right ^ round_key) & half_mask)
            value = (left << half_bits) | right
            if value < self.size:
                return value


def zipf_rank(rng: random.Random, n: int) -> int:
    """A rank in ``range(n)`` with P(rank = r) roughly proportional to 1 / (r + 1) (Zipf, s = 1).

    Inverse-CDF sampling of the continuous 1/x law on [1, n + 1): O(1) time and memory for any n.
    """
    return min(n - 1, int((n + 1) ** rng.random()) - 1)


def lognormal_int(rng: random.Random, median: float, sigma: float, low: int, high: int) -> int:
    """A log-normally distributed integer with the given median, clipped to [low, high]."""
    return max(low, min(high, int(round(math.exp(rng.gauss(math.log(median), sigma))))))


def log_uniform_int(rng: random.Random, low: int, high: int) -> int:
    """An integer spread evenly over orders of magnitude between ``low`` and ``high``."""
    return int(round(math.exp(rng.uniform(math.log(low), math.log(high)))))
