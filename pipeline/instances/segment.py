"""Documents -> segments of whole sentences, at most ``segment_tokens`` WordPiece tokens each.

Sentences come from ``sentencex`` (Wikimedia's segmenter, ~300 languages, abbreviation lists per
language: "Dr. Smith joined the U.S. Army." is one sentence). ``bench/sentences.py`` measures it
against ``pysbd`` and ``blingfire``: on the enwiki fragment's text it was the fastest (5.6x blingfire,
~380x pysbd) with the fewest suspect boundaries (after an abbreviation or initial, or before a
lower-case word: 115 vs 119 and 155); on 26 tricky cases it got 19 exact, blingfire 21 (which has no
per-language rules: it splits Bulgarian "Проф. Иванов"), pysbd 18. The text is cut at the starts of
its sentences, so no character (a closing ``)`` or ``”``) is ever lost.

Packing, greedy in text order:

* a paragraph (blank-line separated block) that fits in a segment never crosses a segment break: it
  starts a new segment when it does not fit in the current one;
* a heading-like block (one short line without final punctuation: how the cleaned text shows a
  section heading) is glued to the first sentence of the block it heads, so a heading starts the
  text it heads instead of ending the previous segment;
* a sentence longer than the limit is cut at word starts (never inside a word).

Each segment keeps its character span in the document's ``text``; the raw targets of the links whose
anchor starts inside the span travel as ``link_titles`` (None when the document has no link
positions) until ``SegmentLinkTargets`` and ``MakeInstances`` turn them into ``outlinks``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import apache_beam as beam

from linkbert.pipeline.instances.tokenizer import load_tokenizer
from linkbert.pipeline.records import counter, error_record

_BLOCK_BREAK = re.compile(r"\n[ \t]*\n\s*")
_FINAL_PUNCTUATION = ".!?:;…。！？\"”’)»"
_HEADING_MAX_WORDS = 12


def _segmenter(language: str):
    import sentencex

    return lambda text: sentencex.segment(language, text)


def _cut_at_starts(text: str, parts) -> list[tuple[int, int]]:
    """Spans of ``text`` cut at the start of each part the segmenter returned (found in order), so
    that whatever the segmenter trims or normalises, every character stays in some span."""
    starts = [0]
    position = 0
    for part in parts:
        stripped = part.strip()
        if not stripped:
            continue
        found = text.find(stripped, position)
        if found < 0:
            continue
        if found > starts[-1]:
            starts.append(found)
        position = found + len(stripped)
    starts.append(len(text))
    spans = []
    for start, end in zip(starts, starts[1:]):
        piece = text[start:end]
        left = len(piece) - len(piece.lstrip())
        right = len(piece.rstrip())
        if right > left:
            spans.append((start + left, start + right))
    return spans


def split_sentences(text: str, language: str = "en") -> list[str]:
    """Sentences of ``text`` (lines are split first: list items, headings)."""
    return [text[start:end] for start, end in sentence_spans(text, language)]


def sentence_spans(text: str, language: str = "en", segment=None) -> list[tuple[int, int]]:
    segment = segment or _segmenter(language)
    spans = []
    offset = 0
    for line in text.split("\n"):
        if line.strip():
            spans.extend((offset + start, offset + end) for start, end in _cut_at_starts(line, segment(line)))
        offset += len(line) + 1
    return spans


def _blocks(text: str) -> list[tuple[int, int]]:
    spans, start = [], 0
    for match in _BLOCK_BREAK.finditer(text):
        spans.append((start, match.start()))
        start = match.end()
    spans.append((start, len(text)))
    return [(s, e) for s, e in spans if text[s:e].strip()]


def is_heading_like(block: str) -> bool:
    block = block.strip()
    return "\n" not in block and block[-1] not in _FINAL_PUNCTUATION and len(block.split()) <= _HEADING_MAX_WORDS


@dataclass
class _Piece:
    ids: list[int]
    start: int
    end: int


@dataclass
class TextSegment:
    ids: list[int] = field(default_factory=list)
    start: int = 0
    end: int = 0


def _cut_long_sentence(ids, word_ids, offsets, base: int, limit: int) -> list[_Piece]:
    """Cut one over-long sentence into pieces of at most ``limit`` tokens at word starts."""
    pieces = []
    start = 0
    while len(ids) - start > limit:
        end = start + limit
        # Move the cut back to the first token of the word that straddles it.
        while end > start + 1 and word_ids[end] is not None and word_ids[end] == word_ids[end - 1]:
            end -= 1
        if end == start + 1 and word_ids[end] == word_ids[start]:
            end = start + limit  # a single word longer than the limit: cutting inside it is unavoidable
        pieces.append(_Piece(ids[start:end], base + offsets[start][0], base + offsets[end - 1][1]))
        start = end
    pieces.append(_Piece(ids[start:], base + offsets[start][0], base + offsets[-1][1]))
    return pieces


def pack_segments(blocks: list[list[_Piece]], heading: list[bool], limit: int) -> list[TextSegment]:
    """Pack the blocks' pieces (each <= limit) into segments; see the module docstring."""
    segments: list[TextSegment] = []
    current = TextSegment()

    def flush():
        nonlocal current
        if current.ids:
            segments.append(current)
        current = TextSegment()

    def add(piece: _Piece):
        if not current.ids:
            current.start = piece.start
        current.ids = current.ids + piece.ids
        current.end = piece.end

    carried: list[_Piece] = []  # heading pieces waiting for the text they head
    for pieces, is_heading in zip(blocks, heading):
        if is_heading:
            carried.extend(pieces)
            continue
        pieces = carried + pieces
        first_group = len(carried) + 1
        carried = []
        total = sum(len(p.ids) for p in pieces)
        if current.ids and len(current.ids) + total > limit and total <= limit:
            flush()
        for index, piece in enumerate(pieces):
            if index < first_group - 1:
                continue  # added with the first sentence below
            group = pieces[:first_group] if index == first_group - 1 else [piece]
            size = sum(len(p.ids) for p in group)
            if current.ids and len(current.ids) + size > limit:
                flush()
            for member in group:
                if current.ids and len(current.ids) + len(member.ids) > limit:
                    flush()
                add(member)
    for piece in carried:  # trailing headings (the cleaner drops empty sections, so rare)
        if current.ids and len(current.ids) + len(piece.ids) > limit:
            flush()
        add(piece)
    flush()
    return segments


def segment_text(text: str, tokenizer, limit: int, language: str = "en") -> list[TextSegment]:
    segment = _segmenter(language)
    block_spans = _blocks(text)
    sentences: list[tuple[int, int]] = []
    owners: list[int] = []
    for number, (start, end) in enumerate(block_spans):
        for s, e in sentence_spans(text[start:end], language, segment):
            sentences.append((start + s, start + e))
            owners.append(number)
    if not sentences:
        return []
    encodings = tokenizer.encode_batch([text[s:e] for s, e in sentences], add_special_tokens=False)
    blocks: list[list[_Piece]] = [[] for _ in block_spans]
    for (start, end), owner, encoding in zip(sentences, owners, encodings):
        if not encoding.ids:
            continue
        if len(encoding.ids) > limit:
            blocks[owner].extend(_cut_long_sentence(encoding.ids, encoding.word_ids, encoding.offsets, start, limit))
        else:
            blocks[owner].append(_Piece(encoding.ids, start, end))
    heading = [is_heading_like(text[s:e]) for s, e in block_spans]
    kept = [(pieces, flag) for pieces, flag in zip(blocks, heading) if pieces]
    return pack_segments([p for p, _ in kept], [f for _, f in kept], limit)


def link_titles(segments: list[TextSegment], links) -> list[list[str] | None]:
    """Per segment, the raw targets of the links whose anchor starts inside it (None: no positions)."""
    if links is None:
        return [None] * len(segments)
    titles: list[list[str]] = [[] for _ in segments]
    starts = [segment.start for segment in segments]
    import bisect

    for link in links:
        index = bisect.bisect_right(starts, link["start"]) - 1
        if index >= 0 and link["start"] < segments[index].end:
            titles[index].append(link["target"])
    return titles


def _language(document) -> str:
    language = document.get("language") or "en"
    return language if len(language) == 2 else "en"


class SegmentDocuments(beam.DoFn):
    """document -> segment rows; the tokenizer comes as a singleton side input (see linkbert.pipeline.instances.tokenizer)."""

    def __init__(self, segment_tokens: int):
        self._limit = segment_tokens

    def setup(self):
        self._documents = counter("segments.documents")
        self._segments = counter("segments.written")
        self._empty = counter("segments.documents_without_tokens")
        self._failed = counter("segments.failed")

    def process(self, document, tokenizer):
        try:
            token_segments = segment_text(document["text"], load_tokenizer(tokenizer["json"]), self._limit,
                                          _language(document))
            titles = link_titles(token_segments, document.get("links"))
        except Exception as exc:  # noqa: BLE001 - one bad document goes to the dead letters
            self._failed.inc()
            yield beam.pvalue.TaggedOutput(
                "errors",
                error_record("segment", document.get("source_file", ""), document["doc_id"], "segment_error", repr(exc)),
            )
            return
        self._documents.inc()
        if not token_segments:
            self._empty.inc()
            return
        for index, (segment, segment_titles) in enumerate(zip(token_segments, titles)):
            self._segments.inc()
            yield {"doc_id": document["doc_id"], "seg_idx": index, "input_ids": segment.ids,
                   "num_tokens": len(segment.ids), "link_titles": segment_titles}


class Segment(beam.PTransform):
    """documents -> {"segments", "errors"}; segments carry ``link_titles`` (see ``SegmentLinkTargets``)."""

    def __init__(self, tokenizer_info, segment_tokens: int):
        super().__init__()
        self._tokenizer_info = tokenizer_info
        self._segment_tokens = segment_tokens

    def expand(self, documents):
        results = documents | "Tokenize" >> beam.ParDo(
            SegmentDocuments(self._segment_tokens), beam.pvalue.AsSingleton(self._tokenizer_info)
        ).with_outputs("errors", main="segments")
        return {"segments": results.segments, "errors": results.errors}
