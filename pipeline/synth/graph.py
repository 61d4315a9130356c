"""The planted document graph: out-links per document, heavy-tailed in-degree, O(1) memory.

Each document draws a log-normal number of distinct targets. A share of the draws follow a Zipf law
over a keyed "popularity" order of all documents (a few documents collect a large part of all
links, as "United States" does on Wikipedia); the rest are uniform. Out-links of document ``i`` are
a pure function of ``(seed, domain, i)``.
"""

from __future__ import annotations

from linkbert.pipeline.synth.randomness import (
    KeyedPermutation,
    keyed_rng,
    lognormal_int,
    zipf_rank,
)


class LinkGraph:
    def __init__(
        self,
        num_docs: int,
        seed: int,
        domain: str,
        *,
        median_out: float = 9.0,
        min_out: int = 2,
        max_out: int = 40,
        popular_share: float = 0.6,
        earlier_share: float = 0.0,
    ) -> None:
        """``earlier_share``: probability of redrawing a target with a higher index than the source
        (citations point mostly to older articles)."""
        if num_docs < 2:
            raise ValueError(f"a linked corpus needs at least 2 documents, got {num_docs}")
        self.num_docs = num_docs
        self.seed = seed
        self.domain = domain
        self.median_out = median_out
        self.min_out = min_out
        self.max_out = max_out
        self.popular_share = popular_share
        self.earlier_share = earlier_share
        self._popularity = KeyedPermutation(num_docs, seed, domain, "popularity")

    def popular(self, rank: int) -> int:
        """The document at popularity ``rank`` (0 = the one Zipf draws pick most often)."""
        return self._popularity(rank)

    def out_links(self, index: int) -> list[int]:
        """Distinct targets of document ``index`` (never itself), in the order they were drawn."""
        n = self.num_docs
        rng = keyed_rng(self.seed, self.domain, "out-links", index)
        degree = min(n - 1, lognormal_int(rng, self.median_out, 0.6, self.min_out, self.max_out))
        targets: list[int] = []
        seen = {index}
        for _ in range(8 * degree + 8):
            if len(targets) == degree:
                break
            if rng.random() < self.popular_share:
                target = self._popularity(zipf_rank(rng, n))
            else:
                target = rng.randrange(n)
            if self.earlier_share and target > index and rng.random() < self.earlier_share:
                continue
            if target not in seen:
                seen.add(target)
                targets.append(target)
        return targets
