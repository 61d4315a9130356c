"""Segments that read like text: a real sentence segmenter, closing brackets and quotes kept,
paragraphs not split when they fit, headings starting the text they head, no token lost."""

from __future__ import annotations

from linkbert.pipeline.instances.pairing import make_pair
from linkbert.pipeline.instances.segment import link_titles, segment_text, split_sentences
from linkbert.pipeline.instances.tokenizer import load_tokenizer, train_wordpiece

TEXT = ("History\n\nDr. Smith joined the U.S. Army in 1990. He served (mostly abroad.) Then he left.\n\n"
        "She said “it is over.” The end came soon after.\n\nGeography\n\n"
        "The town lies on a river. The river floods in spring. The hills rise to the north.")


def _tokenizer(lowercase=True, strip_accents=False):
    return load_tokenizer(train_wordpiece([TEXT * 5, "ā š й " * 20], 300, lowercase, strip_accents=strip_accents))


def test_abbreviations_and_closing_marks_stay_in_their_sentence():
    assert split_sentences("Dr. Smith joined the U.S. Army in 1990. He left in 1995.") == [
        "Dr. Smith joined the U.S. Army in 1990.", "He left in 1995."]
    assert split_sentences("She said “it is over.” The end came.") == ["She said “it is over.”", "The end came."]
    sentences = split_sentences(TEXT)
    assert "".join(TEXT.split()) == "".join("".join(sentences).split())  # no character lost


def test_paragraphs_that_fit_are_not_split_and_headings_start_segments():
    tokenizer = _tokenizer()
    segments = segment_text(TEXT, tokenizer, 26)  # each heading + paragraph fits in 26 tokens; two do not
    texts = [TEXT[s.start:s.end] for s in segments]
    assert len(segments) == 3
    for paragraph in TEXT.split("\n\n"):
        if paragraph not in ("History", "Geography"):
            assert any(paragraph in text for text in texts), (paragraph, texts)
    for text in texts:
        assert not text.rstrip().endswith(("History", "Geography")), text
    assert any(text.startswith("Geography") for text in texts)
    total = sum(len(s.ids) for s in segments)
    assert total == sum(len(tokenizer.encode(p, add_special_tokens=False).ids) for p in split_sentences(TEXT))


def test_segment_link_titles_follow_anchor_positions():
    tokenizer = _tokenizer()
    segments = segment_text(TEXT, tokenizer, 24)
    start = TEXT.index("U.S. Army")
    later = TEXT.index("river floods")
    links = [{"start": start, "end": start + 9, "target": "United States Army"},
             {"start": later, "end": later + 5, "target": "River"}]
    titles = link_titles(segments, links)
    owner = [i for i, s in enumerate(segments) if s.start <= start < s.end][0]
    assert titles[owner] == ["United States Army"]
    assert sum(len(t) for t in titles) == 2
    assert link_titles(segments, None) == [None] * len(segments)


def test_default_lengths_fit_and_truncation_is_random_front_or_back():
    ids, b_start = make_pair(list(range(254)), list(range(1000, 1254)), 2, 3, 512)
    assert len(ids) == 511 and b_start == 256  # 2 x 254 + 3 fits: nothing truncated
    fronts = set()
    for uniform in (0.0, 0.3, 0.6, 0.9):
        ids, b_start = make_pair(list(range(10, 40)), list(range(100, 110)), 2, 3, 30, uniform)
        a = ids[1:b_start - 1]
        assert len(ids) == 30 and ids[b_start:-1] == list(range(100, 110))
        fronts.add(a[0] != 10)
        assert a == list(range(a[0], a[0] + len(a)))  # a contiguous run: cut at the ends only
    assert fronts == {True, False}


def test_lowercase_and_accent_stripping_are_separate():
    kept = _tokenizer(lowercase=True, strip_accents=False)
    stripped = _tokenizer(lowercase=True, strip_accents=True)
    assert kept.normalizer.normalize_str("Ā Š Й") == "ā š й"
    assert stripped.normalizer.normalize_str("Ā Š Й") == "a s и"


def test_report_counts_the_words_normalisation_changes(tmp_path):
    """``linkbert report``'s normalisation line: with accents kept (the default) no word loses its
    diacritics; with --strip-accents the Latgalian-like words do, and distinct words collide."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from linkbert.pipeline.report.checks import normalisation_check
    from linkbert.pipeline.report.gather import normalisation_changes
    from linkbert.pipeline.report.store import Store

    text = "Rēzekne ir Latgolys golvysmīsts. Šalts vējš pūš, salts ūdens. Sāls un sals nav viens."
    (tmp_path / "documents").mkdir()
    pq.write_table(pa.table({"text": [text] * 3}), tmp_path / "documents" / "documents-00000-of-00001.parquet")
    store = Store(str(tmp_path))
    kept = normalisation_changes(store, _tokenizer(lowercase=True, strip_accents=False))
    stripped = normalisation_changes(store, _tokenizer(lowercase=True, strip_accents=True))
    words = len(text.split()) * 3
    assert kept["words"] == stripped["words"] == words
    assert kept["accent_changed"] == 0 and kept["collisions"] == 0
    assert kept["changed"] == 3 * sum(word != word.lower() for word in text.split())  # case only
    assert stripped["accent_changed"] > 0 and stripped["collisions"] >= 4  # šalts/salts, sāls/sals
    detail = normalisation_check(stripped).detail
    assert f"{stripped['changed']:,} of {words:,}" in detail and "lose diacritics" in detail
