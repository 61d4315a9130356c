"""Dynamic masking for masked-LM, applied at load time (never baked into the shards).

Three strategies choose *which* tokens to predict, 15% of the maskable tokens of each sequence:

- ``token``: individual WordPiece tokens (BERT).
- ``wwm``: whole words: every piece of a chosen word is predicted (PubMedBERT, BERT-wwm).
- ``span``: runs of whole words, span length in words ~ Geometric(p=0.2) truncated to [1, 10] and
  renormalised (SpanBERT: mean 3.8 words, 3.0% of spans 10 words long).

Chosen tokens are then replaced 80/10/10 by ``[MASK]`` / a random token / themselves (per token for
``token`` and ``wwm``, per span for ``span`` as SpanBERT does). Special tokens and padding are never
chosen, and spans never cross the ``[SEP]`` between A and B.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

STRATEGIES = ("token", "wwm", "span")


@dataclass(frozen=True)
class MaskingConfig:
    strategy: str = "token"
    rate: float = 0.15
    mask_fraction: float = 0.8
    random_fraction: float = 0.1
    span_p: float = 0.2
    max_span_words: int = 10

    def __post_init__(self):
        if self.strategy not in STRATEGIES:
            raise ValueError(f"unknown masking strategy {self.strategy!r}; choose one of {', '.join(STRATEGIES)}")
        if not 0.0 < self.rate < 1.0:
            raise ValueError(f"masking rate must be in (0, 1), got {self.rate}")
        if self.mask_fraction + self.random_fraction > 1.0:
            raise ValueError("mask_fraction + random_fraction must not exceed 1")
        if not 0.0 < self.span_p <= 1.0 or self.max_span_words < 1:
            raise ValueError("span lengths need 0 < span_p <= 1 and max_span_words >= 1")

    def span_length_probabilities(self) -> np.ndarray:
        """P(length = k) for k = 1..max_span_words: the geometric pmf truncated there and renormalised."""
        k = np.arange(1, self.max_span_words + 1)
        weights = self.span_p * (1.0 - self.span_p) ** (k - 1)
        return weights / weights.sum()


class Masker:
    """Chooses and replaces tokens of one sequence at a time; all randomness comes from the caller's ``rng``."""

    def __init__(self, config: MaskingConfig, vocab_tokens: list[str], special_ids: list[int], mask_id: int):
        self.config = config
        self.mask_id = int(mask_id)
        vocab_size = len(vocab_tokens)
        self.is_special = np.zeros(vocab_size, dtype=bool)
        self.is_special[list(special_ids)] = True
        self.is_continuation = np.array([token.startswith("##") for token in vocab_tokens], dtype=bool)
        # Random replacements are ordinary tokens, never [CLS]/[SEP]/[PAD]/[MASK]/[UNK].
        self.replacement_ids = np.flatnonzero(~self.is_special).astype(np.int64)
        if self.replacement_ids.size == 0:
            raise ValueError("the vocabulary has no non-special tokens to use as random replacements")
        self.span_length_cdf = np.cumsum(config.span_length_probabilities())

    def span_lengths(self, rng: np.random.Generator, size: int | None = None):
        """Span lengths in words drawn from the truncated, renormalised geometric distribution."""
        draws = np.searchsorted(self.span_length_cdf, rng.random(size), side="right") + 1
        return np.minimum(draws, self.config.max_span_words)  # guards a cdf ending at 1 - 1e-16

    @classmethod
    def from_tokenizer(cls, config: MaskingConfig, tokenizer) -> "Masker":
        vocab = tokenizer.get_vocab()
        tokens = [""] * (max(vocab.values()) + 1)
        for token, token_id in vocab.items():
            tokens[token_id] = token
        return cls(config, tokens, tokenizer.all_special_ids, tokenizer.mask_token_id)

    def budget(self, num_maskable: int) -> int:
        return max(1, int(round(num_maskable * self.config.rate))) if num_maskable else 0

    def choose(self, input_ids: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Positions to predict in an unpadded ``input_ids`` (sorted), and for each the index of its
        replacement decision: positions sharing an index get the same 80/10/10 treatment."""
        maskable = np.flatnonzero(~self.is_special[input_ids])
        budget = self.budget(maskable.size)
        if budget == 0:
            return maskable, maskable
        if self.config.strategy == "token":
            positions = np.sort(rng.choice(maskable, size=budget, replace=False))
            return positions, np.arange(positions.size)
        words = self._words(input_ids, maskable)
        if self.config.strategy == "wwm":
            positions = self._choose_words(words, budget, rng)
            return positions, np.arange(positions.size)
        return self._choose_spans(words, budget, rng)

    def _words(self, input_ids: np.ndarray, maskable: np.ndarray) -> list[np.ndarray]:
        """Maskable positions grouped into whole words, in order; a special token ends a word."""
        starts = ~self.is_continuation[input_ids[maskable]]
        starts[0] = True
        starts[1:] |= np.diff(maskable) != 1
        return np.split(maskable, np.flatnonzero(starts)[1:])

    @staticmethod
    def _choose_words(words: list[np.ndarray], budget: int, rng: np.random.Generator) -> np.ndarray:
        chosen, count = [], 0
        for index in rng.permutation(len(words)):
            word = words[index]
            if count + word.size <= budget:
                chosen.append(word)
                count += word.size
                if count == budget:
                    break
        return np.sort(np.concatenate(chosen)) if chosen else np.empty(0, dtype=np.int64)

    def _choose_spans(self, words: list[np.ndarray], budget: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        num_words = len(words)
        # A span stays within one segment: it stops where positions jump (over the [SEP] between A and B).
        segment_end = np.empty(num_words, dtype=np.int64)
        end = num_words
        for index in range(num_words - 1, -1, -1):
            if index + 1 < num_words and words[index + 1][0] != words[index][-1] + 1:
                end = index + 1
            segment_end[index] = end
        taken = np.zeros(num_words, dtype=bool)
        spans, count = [], 0
        for _ in range(4 * num_words):
            if count >= budget or taken.all():
                break
            length = int(self.span_lengths(rng))
            start = int(rng.integers(num_words))
            span = []
            for index in range(start, min(start + length, segment_end[start])):
                if taken[index] or count + words[index].size > budget:
                    break
                taken[index] = True
                span.append(words[index])
                count += words[index].size
            if span:
                spans.append(np.concatenate(span))
        if not spans:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
        positions = np.concatenate(spans)
        span_index = np.repeat(np.arange(len(spans)), [span.size for span in spans])
        order = np.argsort(positions, kind="stable")
        return positions[order], span_index[order]

    def apply(self, input_ids: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Mask one unpadded sequence: returns (masked input_ids, positions, original ids at positions)."""
        positions, decision_index = self.choose(input_ids, rng)
        labels = input_ids[positions]
        masked = input_ids.copy()
        if positions.size == 0:
            return masked, positions, labels
        draws = rng.random(int(decision_index.max()) + 1)[decision_index]
        to_mask = draws < self.config.mask_fraction
        to_random = (draws >= self.config.mask_fraction) & (draws < self.config.mask_fraction + self.config.random_fraction)
        masked[positions[to_mask]] = self.mask_id
        masked[positions[to_random]] = rng.choice(self.replacement_ids, size=int(to_random.sum()))
        return masked, positions, labels
