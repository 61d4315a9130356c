"""Documents -> segments of whole sentences, at most ``segment_tokens`` WordPiece tokens each.

Sentences are packed greedily; a sentence longer than the limit is cut at word starts (never inside
a word). Segments never cross a paragraph break when the paragraph fits: paragraphs are
sentence-like units of their own.
"""

from __future__ import annotations

import re

import apache_beam as beam

from linkbert.pipeline.instances.tokenizer import load_tokenizer
from linkbert.pipeline.records import counter, error_record

# A sentence ends at . ! ? (optionally followed by closing quotes/brackets) before whitespace and an
# upper-case letter, digit or opening quote; paragraph and line breaks always end one.
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"'”’)\]]*\s+(?=[\"'“‘(\[]?[A-Z0-9À-ÖØ-ÞА-Я])|\n+")


def split_sentences(text: str) -> list[str]:
    return [sentence.strip() for sentence in _SENTENCE_END.split(text) if sentence and sentence.strip()]


def _cut_long_sentence(ids: list[int], word_ids: list[int | None], limit: int) -> list[list[int]]:
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
        pieces.append(ids[start:end])
        start = end
    pieces.append(ids[start:])
    return pieces


def pack_segments(sentence_ids: list[list[int]], limit: int) -> list[list[int]]:
    """Greedily pack consecutive sentences (already cut to <= limit) into segments of <= limit tokens."""
    segments: list[list[int]] = []
    current: list[int] = []
    for ids in sentence_ids:
        if not ids:
            continue
        if current and len(current) + len(ids) > limit:
            segments.append(current)
            current = []
        current = current + ids
    if current:
        segments.append(current)
    return segments


def segment_text(text: str, tokenizer, limit: int) -> list[list[int]]:
    sentences = split_sentences(text)
    if not sentences:
        return []
    encodings = tokenizer.encode_batch(sentences, add_special_tokens=False)
    pieces: list[list[int]] = []
    for encoding in encodings:
        if len(encoding.ids) > limit:
            pieces.extend(_cut_long_sentence(encoding.ids, encoding.word_ids, limit))
        else:
            pieces.append(encoding.ids)
    return pack_segments(pieces, limit)


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
            token_segments = segment_text(document["text"], load_tokenizer(tokenizer["json"]), self._limit)
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
        for index, ids in enumerate(token_segments):
            self._segments.inc()
            yield {"doc_id": document["doc_id"], "seg_idx": index, "input_ids": ids, "num_tokens": len(ids)}


class Segment(beam.PTransform):
    """documents -> {"segments", "errors"}."""

    def __init__(self, tokenizer_info, segment_tokens: int):
        super().__init__()
        self._tokenizer_info = tokenizer_info
        self._segment_tokens = segment_tokens

    def expand(self, documents):
        results = documents | "Tokenize" >> beam.ParDo(
            SegmentDocuments(self._segment_tokens), beam.pvalue.AsSingleton(self._tokenizer_info)
        ).with_outputs("errors", main="segments")
        return {"segments": results.segments, "errors": results.errors}
