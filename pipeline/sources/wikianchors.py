"""In-text anchors of the wikitext walk: marked in its output by private-use characters, which the
assembly's clean-ups leave alone, then turned into character spans of the final text."""

from __future__ import annotations

import re

# In-text anchors are bracketed in the walk's output by private-use characters, which the assembly's
# clean-ups leave alone, and turned into character spans of the final text (``_extract_anchors``).
ANCHOR_OPEN, ANCHOR_CLOSE, ANCHOR_BASE, ANCHOR_LIMIT = "\ue000", "\ue001", 0xF0000, 0xFFFD
_SPACE_BETWEEN_MARKS = re.compile(r" (?=[ ,.;)])|(?<=\() ")
_ANCHOR_MARK = re.compile("\ue000([\U000f0000-\U000ffffd])|\ue001")


def extract_anchors(marked: str, targets: list[str]) -> tuple[str, list[tuple[int, int, str]]]:
    """The assembled text with anchor marks -> (text, [(start, end, target)]) in text order; an anchor
    whose text was dropped (an emptied line, a removed section) leaves no span."""
    if ANCHOR_OPEN not in marked:
        return marked.replace(ANCHOR_CLOSE, ""), []
    pieces: list[str] = []
    length = 0
    position = 0
    stack: list[tuple[int, int]] = []
    spans: list[tuple[int, int, str]] = []
    for match in _ANCHOR_MARK.finditer(marked):
        piece = marked[position:match.start()]
        pieces.append(piece)
        length += len(piece)
        position = match.end()
        if match.group(1):
            stack.append((ord(match.group(1)) - ANCHOR_BASE, length))
        elif stack:
            index, start = stack.pop()
            spans.append((start, length, targets[index]))
    pieces.append(marked[position:])
    text = "".join(pieces)
    # Marks kept apart spaces and punctuation that the assembly would have joined: join them now.
    removed = [m.start() for m in _SPACE_BETWEEN_MARKS.finditer(text)]
    if removed:
        keep = [True] * (len(text) + 1)
        for index in removed:
            keep[index] = False
        shift = [0] * (len(text) + 1)
        running = 0
        for index in range(len(text) + 1):
            shift[index] = running
            if not keep[index]:
                running += 1
        text = "".join(char for char, kept in zip(text, keep) if kept)
        spans = [(start - shift[start], end - shift[end], target) for start, end, target in spans]
    trimmed = []
    for start, end, target in spans:
        while start < end and text[start].isspace():
            start += 1
        while end > start and text[end - 1].isspace():
            end -= 1
        if end > start:
            trimmed.append((start, end, target))
    trimmed.sort()
    return text, trimmed
