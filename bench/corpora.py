"""Synthetic corpora for the benchmarks, with no dependency on the code under test (numpy only), so a
benchmark can generate them while it imports another revision of ``linkbert``."""

from __future__ import annotations

import numpy as np

_LETTERS = "abcdefghijklmnopqrstuvwxyz"


def _word(index: int) -> str:
    """A distinct lower-case word for each index (at least two letters, so the analyzer keeps it)."""
    index += len(_LETTERS)
    letters = ""
    while index:
        index, remainder = divmod(index, len(_LETTERS))
        letters = _LETTERS[remainder] + letters
    return letters


def topic_corpus(num_docs: int, seed: int) -> list[dict]:
    rng = np.random.default_rng(seed)
    vocabulary_size, num_topics, topic_words = 30_000 + 3 * num_docs, max(20, num_docs // 25), 300
    vocabulary = np.array([_word(i) for i in range(vocabulary_size)], dtype=object)
    background = np.cumsum(1.0 / (np.arange(vocabulary_size) + 2.7) ** 1.07)
    background /= background[-1]
    topics = [rng.choice(np.arange(200, vocabulary_size), topic_words, replace=False) for _ in range(num_topics)]
    within_topic = np.cumsum(1.0 / (np.arange(topic_words) + 1.0) ** 0.9)
    within_topic /= within_topic[-1]
    documents = []
    for index in range(num_docs):
        length = int(np.clip(rng.lognormal(np.log(250), 0.7), 30, 3000))
        mixed = rng.choice(num_topics, rng.choice([1, 2, 3], p=[0.5, 0.35, 0.15]), replace=False)
        background_tokens = rng.binomial(length, 0.5)
        words = [np.searchsorted(background, rng.random(background_tokens))]
        for topic, count in zip(mixed, rng.multinomial(length - background_tokens, rng.dirichlet(np.ones(len(mixed))))):
            words.append(topics[topic][np.searchsorted(within_topic, rng.random(count))])
        tokens = vocabulary[np.concatenate(words)]
        rng.shuffle(tokens)
        documents.append({"doc_id": f"t{index}", "title": f"Article {index}", "text": " ".join(tokens)})
    return documents
