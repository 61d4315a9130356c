"""Stable hashing for deterministic random choices, independent of runner, worker and process.

Python's ``hash`` is salted per process and ``random``'s global state depends on element order, so
every random choice in the pipeline is derived from a hash of stable keys instead.
"""

from __future__ import annotations

import hashlib

_SCALE = float(1 << 64)


def stable_hash(*keys: object) -> int:
    """A 64-bit unsigned integer determined only by ``keys`` (their ``str``), equal on every machine."""
    digest = hashlib.blake2b("\x1f".join(map(str, keys)).encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def stable_uniform(*keys: object) -> float:
    """A float in [0, 1) determined only by ``keys``."""
    return stable_hash(*keys) / _SCALE


def stable_choice_index(n: int, *keys: object) -> int:
    """An index in ``range(n)`` chosen uniformly, determined only by ``keys``."""
    if n <= 0:
        raise ValueError("stable_choice_index needs n > 0")
    return stable_hash(*keys) % n
