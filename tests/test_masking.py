import numpy as np
import pytest

from linkbert.train.masking import Masker, MaskingConfig

# A toy WordPiece vocabulary: 5 specials, 40 word starts, 20 continuations ("##..").
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
VOCAB = SPECIALS + [f"w{i}" for i in range(40)] + [f"##c{i}" for i in range(20)]
PAD, UNK, CLS, SEP, MASK = range(5)
CONTINUATIONS = np.arange(45, 65)


def masker(strategy: str) -> Masker:
    return Masker(MaskingConfig(strategy=strategy), VOCAB, list(range(5)), MASK)


def sequence(rng: np.random.Generator, words_a: int, words_b: int) -> np.ndarray:
    """[CLS] A [SEP] B [SEP] where each word is a start token followed by 0-3 continuation pieces."""
    def words(n):
        ids = []
        for _ in range(n):
            ids.append(int(rng.integers(5, 45)))
            ids += [int(c) for c in rng.choice(CONTINUATIONS, size=int(rng.integers(0, 4)))]
        return ids
    return np.array([CLS, *words(words_a), SEP, *words(words_b), SEP], dtype=np.int64)


def word_spans(ids: np.ndarray) -> list[tuple[int, int]]:
    spans, start = [], None
    for i, token in enumerate(ids):
        special = token < 5
        continuation = token >= 45
        if start is not None and (special or not continuation):
            spans.append((start, i))
            start = None
        if not special and not continuation:
            start = i
    return spans


@pytest.mark.parametrize("strategy", ["token", "wwm", "span"])
def test_rates_and_replacements(strategy):
    rng = np.random.default_rng(0)
    m = masker(strategy)
    chosen = maskable = masked_as_mask = kept = 0
    for _ in range(400):
        ids = sequence(rng, int(rng.integers(20, 60)), int(rng.integers(20, 60)))
        out, positions, labels = m.apply(ids, rng)
        assert np.array_equal(labels, ids[positions])
        assert not np.isin(ids[positions], np.arange(5)).any(), "a special token was chosen"
        unchanged = np.ones(ids.size, dtype=bool)
        unchanged[positions] = False
        assert np.array_equal(out[unchanged], ids[unchanged]), "a position outside the chosen ones changed"
        assert not np.isin(out[positions], [PAD, UNK, CLS, SEP]).any()
        chosen += positions.size
        maskable += int((ids >= 5).sum())
        masked_as_mask += int((out[positions] == MASK).sum())
        kept += int((out[positions] == ids[positions]).sum())
    assert chosen / maskable == pytest.approx(0.15, abs=0.01)
    assert masked_as_mask / chosen == pytest.approx(0.80, abs=0.04)
    # Kept = the 10% left alone plus random replacements that drew the original token (1/60 of 10%).
    assert kept / chosen == pytest.approx(0.10 + 0.1 / 60, abs=0.03)
    random_other = chosen - masked_as_mask - kept
    assert random_other / chosen == pytest.approx(0.10 - 0.1 / 60, abs=0.03)


@pytest.mark.parametrize("strategy", ["wwm", "span"])
def test_whole_words_only(strategy):
    rng = np.random.default_rng(1)
    m = masker(strategy)
    for _ in range(200):
        ids = sequence(rng, 30, 30)
        _, positions, _ = m.apply(ids, rng)
        chosen = set(positions.tolist())
        for start, stop in word_spans(ids):
            covered = {i for i in range(start, stop) if i in chosen}
            assert not covered or len(covered) == stop - start, f"word {start}:{stop} partly masked"


def _truncated_geometric(p=0.2, top=10):
    k = np.arange(1, top + 1)
    weights = p * (1 - p) ** (k - 1)
    return weights / weights.sum()


def test_span_length_draws_are_the_renormalised_truncated_geometric():
    # SpanBERT: Geometric(0.2) truncated to [1, 10] and renormalised, mean 3.80 and P(10) = 0.030.
    # min(Geometric(0.2), 10) would have mean 4.46 and P(10) = 0.134: both checks fail for it.
    draws = masker("span").span_lengths(np.random.default_rng(7), 200_000)
    expected = _truncated_geometric()
    observed = np.bincount(draws, minlength=11)[1:] / draws.size
    assert draws.min() == 1 and draws.max() == 10
    assert np.abs(observed - expected).max() < 0.004
    assert draws.mean() == pytest.approx(3.797, abs=0.02)
    assert (draws == 10).mean() == pytest.approx(0.0301, abs=0.002)


def test_span_lengths_follow_clipped_geometric():
    rng = np.random.default_rng(2)
    m = masker("span")
    lengths = []
    for _ in range(300):
        # One-piece words only, so span lengths in words equal runs of chosen positions.
        ids = np.array([CLS, *rng.integers(5, 45, size=200), SEP, *rng.integers(5, 45, size=200), SEP])
        positions, decision = m.choose(ids, rng)
        for span in np.unique(decision):
            members = positions[decision == span]
            assert np.all(np.diff(members) == 1), "a span is not contiguous"
            assert not (members[0] <= 201 <= members[-1]), "a span crosses the [SEP] between A and B"
            lengths.append(members.size)
    lengths = np.array(lengths)
    assert lengths.max() <= 10
    # Realised spans are the draws, a little shorter where the budget or a taken word cuts them:
    # over 2000 such pairs the renormalised draws realise mean 3.45 and 2.1% of length 10, the old
    # min(geometric, 10) realised 4.01 and 9.1%.
    assert 3.2 < lengths.mean() < 3.7
    assert (lengths == 10).mean() < 0.05
    assert (lengths == 1).mean() == pytest.approx(0.258, abs=0.04)


def test_padding_and_short_sequences():
    m = masker("token")
    rng = np.random.default_rng(3)
    ids = np.array([CLS, 7, SEP, 9, SEP])
    _, positions, _ = m.apply(ids, rng)
    assert positions.size == 1 and positions[0] in (1, 3)
    only_specials = np.array([CLS, SEP, SEP])
    _, positions, _ = m.apply(only_specials, rng)
    assert positions.size == 0


def test_bad_config():
    with pytest.raises(ValueError, match="unknown masking strategy"):
        MaskingConfig(strategy="spam")
    with pytest.raises(ValueError, match="span lengths"):
        MaskingConfig(strategy="span", span_p=0.0)
