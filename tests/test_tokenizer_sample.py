"""The tokenizer's training sample: chosen from (hash, doc_id, length) triples, its texts gathered for the
chosen documents only and capped by a character budget; the same vocabulary as the earlier sample
(the smallest-hash documents' texts) wherever the budget does not bind."""

import apache_beam as beam
import pytest
from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline
from pipeline_fixtures import linked_documents
from tokenizers import Tokenizer

from linkbert.pipeline.instances.tokenizer import BuildTokenizer, _SampleKey, sample_cut, train_wordpiece
from linkbert.pipeline.records import collect_counters
from linkbert.pipeline.stablehash import stable_hash

SEED, VOCAB, MAX_CHARS = 7, 300, 400


def _build(tmp_path, documents, sample_docs, budget) -> tuple[list[str], dict]:
    """(the vocabulary written, in id order; the run's counters)."""
    pipeline = BeamTestPipeline()
    _ = pipeline | beam.Create(documents) | BuildTokenizer(str(tmp_path / "tokenizer"), SEED, VOCAB, True, sample_docs,
                                                           sample_chars=MAX_CHARS, sample_budget_chars=budget)
    result = pipeline.run()
    result.wait_until_finish()
    return (tmp_path / "tokenizer" / "vocab.txt").read_text(encoding="utf-8").splitlines(), collect_counters(result)


def _vocabulary(texts: list[str]) -> list[str]:
    vocab = Tokenizer.from_str(train_wordpiece(texts, VOCAB, True)).get_vocab()
    return sorted(vocab, key=vocab.get)


def _reference_texts(documents, sample_docs: int, budget: int | None = None) -> list[str]:
    """The earlier sample: the ``sample_docs`` smallest (hash, text[:MAX_CHARS]), in order; then the budget."""
    chosen = sorted((stable_hash(SEED, "tokenizer-sample", d["doc_id"]), d["text"][:MAX_CHARS]) for d in documents)[:sample_docs]
    texts, total = [], 0
    for _, text in chosen:
        if budget is not None and texts and total + len(text) > budget:
            break
        texts.append(text)
        total += len(text)
    return texts


@pytest.mark.parametrize("sample_docs", [40, 200])
def test_sample_and_vocabulary_are_the_earlier_ones_when_the_budget_does_not_bind(tmp_path, sample_docs):
    documents, _ = linked_documents(90, seed=3)
    vocabulary, counters = _build(tmp_path, documents, sample_docs=sample_docs, budget=10**9)
    texts = _reference_texts(documents, sample_docs)
    assert counters["tokenizer.sample_documents"] == min(sample_docs, 90)
    assert counters["tokenizer.sample_characters"] == sum(map(len, texts))
    assert vocabulary == _vocabulary(texts) and len(vocabulary) > 100


def test_the_character_budget_caps_the_gathered_sample_and_keeps_its_order(tmp_path):
    documents, _ = linked_documents(90, seed=3)
    budget = 5000
    vocabulary, counters = _build(tmp_path, documents, sample_docs=40, budget=budget)
    texts = _reference_texts(documents, 40, budget)
    assert 1 < len(texts) < 40
    assert counters["tokenizer.sample_documents"] == len(texts)
    assert counters["tokenizer.sample_characters"] == sum(map(len, texts)) <= budget
    assert vocabulary == _vocabulary(texts) and len(vocabulary) > 100


def test_what_the_top_combiner_holds_does_not_grow_with_the_text():
    """Each Top accumulator holds ``sample_docs`` of these elements: (hash, doc_id, length), never text."""
    short, long = ({"doc_id": "d1", "text": "x" * n} for n in (10, 1_000_000))
    key = _SampleKey(SEED, 20_000)
    assert [len(repr(element)) for element in key.process(short)][0] >= len(repr(next(key.process(long)))) - 3
    assert next(key.process(long))[1:] == ("d1", 20_000)
    assert sample_cut([(3, "b", 10), (1, "a", 10), (2, "c", 10**6)], 100) == (1, "a")
    assert sample_cut([(3, "b", 10), (1, "a", 10**6)], 100) == (1, "a")  # at least one document
    assert sample_cut([], 100) is None
