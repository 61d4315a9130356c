"""Finding bz2 streams and blocks inside one byte range of a file, so that many workers can split a file
between them: a multistream dump without its index (``stream_starts``), and a large multistream index
(``index_block_offsets``, block by block as ``bzip2recover`` does, so it splits whether the index is one
bz2 stream or many).

A stream starts with ``BZh`` and a level digit, then the first block's 48-bit magic 0x314159265359, all
at a byte boundary; a candidate counts only when its first block decompresses and its first bytes are
what the caller expects (a ``<page>`` for a dump). Blocks start at any bit; each is decompressed on its
own (CRC checked), and the lines a block boundary cuts are handed back in two pieces keyed by the
boundary, for the caller to join.
"""

from __future__ import annotations

import bz2
import re
from collections.abc import Callable, Iterator

from linkbert.pipeline.sources.compressed import (
    _BLOCK_PATTERNS,
    _END_PATTERNS,
    RECOVERY_WINDOW_BYTES,
    DumpReadError,
    block_as_stream,
    find_magic,
    open_raw,
)

SCAN_CHUNK_BYTES = 4 << 20
_BLOCK_MAGIC_BYTES = (0x314159265359).to_bytes(6, "big")
_HEADER_BYTES = 4  # "BZh" + level
_FEED_BYTES = 1 << 16
_END_TRAILER_BITS = 48 + 32  # end-of-stream magic + combined CRC


class _Window:
    """Bytes of ``raw`` from absolute offset ``base`` on, read on demand."""

    def __init__(self, raw, base: int):
        self.raw, self.base, self.data, self.eof = raw, base, b"", False

    def ensure(self, upto: int) -> None:
        """Hold the bytes up to absolute offset ``upto`` (fewer at the end of the file)."""
        while not self.eof and self.base + len(self.data) < upto:
            more = self.raw.read(max(upto - self.base - len(self.data), _FEED_BYTES))
            if not more:
                self.eof = True
            self.data += more

    def drop(self, before: int) -> None:
        if before > self.base:
            self.data = self.data[before - self.base:]
            self.base = before


def _first_output(window: _Window, offset: int, limit: int = RECOVERY_WINDOW_BYTES) -> bytes | None:
    """The first decompressed bytes of a bz2 stream at ``offset`` (b"" for an empty stream), or None when
    its first ``limit`` bytes do not decompress."""
    decompressor = bz2.BZ2Decompressor()
    position = offset
    while position < offset + limit:
        window.ensure(position + _FEED_BYTES)
        piece = window.data[position - window.base: position - window.base + _FEED_BYTES]
        if not piece:
            return None
        position += len(piece)
        try:
            out = decompressor.decompress(piece)
        except (OSError, EOFError, ValueError):
            return None
        if out or decompressor.eof:
            return out
    return None


def stream_starts(path: str, start: int, end: int, accept: Callable[[bytes], bool]) -> Iterator[int]:
    """Offsets in [start, end) of ``path`` where a bz2 stream starts whose first decompressed bytes ``accept``.

    Reads the range once, plus what verifying its last candidates needs past ``end`` (one block)."""
    with open_raw(path) as raw:
        if start:
            raw.seek(start)
        window = _Window(raw, start)
        position = start
        while position < end:
            upto = min(position + SCAN_CHUNK_BYTES, end)
            window.ensure(upto + _HEADER_BYTES + 6)
            data, base = window.data, window.base
            found = data.find(_BLOCK_MAGIC_BYTES, max(position - base + _HEADER_BYTES, 0), upto - base + _HEADER_BYTES + 6)
            while found >= 0:
                candidate = base + found - _HEADER_BYTES
                if candidate >= upto:
                    break
                head = data[found - _HEADER_BYTES: found]
                if head[:3] == b"BZh" and 0x31 <= head[3] <= 0x39:
                    first = _first_output(window, candidate)
                    if first is not None and accept(first):
                        yield candidate
                    data, base = window.data, window.base  # verifying may have read further
                found = data.find(_BLOCK_MAGIC_BYTES, found + 1, upto - base + _HEADER_BYTES + 6)
            if window.eof and window.base + len(window.data) <= upto:
                return
            position = upto
            window.drop(position)


def starts_with_page(data: bytes) -> bool:
    """Whether decompressed dump bytes begin (after white space) with a ``<page>`` element, in UTF-8 or UTF-16."""
    head = data[:400]
    return any(head.decode(encoding, errors="ignore").lstrip("\ufeff \t\r\n").startswith("<page")
               for encoding in ("utf-8", "utf-16-le", "utf-16-be"))


# --------------------------------------------------------------------------------------------
# Blocks: a multistream index read in parallel pieces

_INDEX_LINE = re.compile(rb"^[ \t\r]*(\d+):", re.M)
_BAD_LINE = re.compile(rb"^(?![ \t\r]*\d+:)[ \t\r]*\S[^\n]*", re.M)


class IndexPiece:
    """What one byte range of an index yields: distinct stream ``offsets`` from the lines wholly inside
    its blocks, and ``pieces``: (boundary bit, "head" | "tail", bytes) of the lines cut by a block boundary.
    A block's head is keyed by its own start bit, a tail by the start bit of the block that follows
    (None after the last block of the file)."""

    def __init__(self):
        self.offsets: set[int] = set()
        self.pieces: list[tuple[int | None, str, bytes]] = []
        self.blocks = 0


def parse_index_lines(data: bytes, where: str, offsets: set[int]) -> None:
    """Add the stream offsets of complete ``offset:page_id:title`` lines; a malformed line raises, naming ``where``."""
    found = _INDEX_LINE.findall(data)
    if len(found) != data.count(b"\n") + (not data.endswith(b"\n")):  # blank lines, or a malformed one
        bad = _BAD_LINE.search(data)
        if bad is not None:
            raise DumpReadError(f"{where}: line is not 'offset:page_id:title': {bad.group(0).strip()[:80]!r}")
    offsets.update(int(offset) for offset in set(found))


def index_block_offsets(path: str, start: int, end: int) -> IndexPiece:
    """The bz2 blocks of ``path`` that start in bytes [start, end), each decompressed on its own."""
    piece = IndexPiece()
    with open_raw(path) as raw:
        if start:
            raw.seek(start)
        window = _Window(raw, start)
        bit = 0  # relative to window.base
        while True:
            block = _find(window, bit)
            if block is None or window.base + block // 8 >= end:
                return piece
            decoded = _decode_block(window, block)
            if decoded is None:  # a false magic inside a block (1 in 2^48 bits), or a corrupt block: see stitching
                bit = block + 1
                continue
            data, block_end, following = decoded
            piece.blocks += 1
            block_bit = window.base * 8 + block
            head, newline, rest = data.partition(b"\n")
            if not newline:
                raise DumpReadError(f"{path}: the bz2 block at byte {block_bit // 8} holds no line end; index lines are short")
            body, _, tail = rest.rpartition(b"\n")
            parse_index_lines(body, f"{path}: bz2 block at byte {block_bit // 8}", piece.offsets)
            piece.pieces.append((block_bit, HEAD, head))
            piece.pieces.append((following, TAIL, tail))
            bit = block_end
            if bit > 8 * _DROP_BYTES:
                window.drop(window.base + bit // 8)
                bit %= 8


HEAD, TAIL = "head", "tail"
_DROP_BYTES = 1 << 20
_FIRST_SPAN = 1 << 10


def _find(window: _Window, bit: int, patterns=_BLOCK_PATTERNS, before: int | None = None) -> int | None:
    """``find_magic`` from ``bit`` of the window (and starting before bit ``before``), looking a little ahead
    first (blocks of a multistream index are a few KB), then further, up to the largest block."""
    if before is not None:
        return find_magic(window.data[: before // 8 + 7], bit, patterns)
    span, first = _FIRST_SPAN, bit // 8
    while True:
        limit = first + span
        window.ensure(window.base + limit)
        found = find_magic(window.data[first:limit], bit - 8 * first, patterns)
        if found is not None:
            return found + 8 * first
        if limit >= len(window.data) or span >= 2 * RECOVERY_WINDOW_BYTES:
            return None
        span *= 4
FIRST_BLOCK_BIT = 32  # the first block of a file follows its 4-byte stream header


def _decode_block(window: _Window, start: int) -> tuple[bytes, int, int | None] | None:
    """(the block at bit ``start`` of the window decompressed, its end bit, the absolute bit where the next
    block of the file starts or None), or None when no end makes it decompress (CRC checked)."""
    bit = start + 48
    for _ in range(4):  # a false magic inside the block ends it too early; the CRC says so
        next_block = _find(window, bit)
        stream_end = _find(window, bit, _END_PATTERNS, next_block)
        ends = [b for b in (next_block, stream_end) if b is not None]
        if not ends:
            return None
        block_end = min(ends)
        data = None
        for level in dict.fromkeys((_level(window, start), 9)):
            try:
                data = bz2.decompress(block_as_stream(window.data, start, block_end, level))
                break
            except (OSError, ValueError, EOFError):
                continue
        if data is None:
            bit = block_end + 1
            continue
        following = window.base * 8 + block_end if block_end == next_block else _after_stream_end(window, block_end)
        return data, block_end, following
    return None


def _level(window: _Window, start: int) -> int:
    """The block size level of the stream a block at bit ``start`` opens (its header is the 4 bytes before
    it), else 9, the largest (a level at least the stream's decompresses; a smaller one allocates less)."""
    if start % 8 == 0 and start >= 32:
        header = window.data[start // 8 - _HEADER_BYTES: start // 8]
        if header[:3] == b"BZh" and 0x31 <= header[3] <= 0x39:
            return header[3] - 0x30
    return 9


def _after_stream_end(window: _Window, stream_end: int) -> int | None:
    """The absolute bit of the first block of the stream after the end marker at bit ``stream_end`` (past the
    combined CRC, the byte padding, any zero bytes and the next header), or None at the end of the file."""
    position = (stream_end + _END_TRAILER_BITS + 7) // 8
    window.ensure(window.base + position + 4096)
    while position < len(window.data) and window.data[position] == 0:
        position += 1
    header = window.data[position: position + _HEADER_BYTES + 6]
    if header[:3] == b"BZh" and header[_HEADER_BYTES:] == _BLOCK_MAGIC_BYTES:
        return (window.base + position + _HEADER_BYTES) * 8
    return None


def stitch_lines(key: int | None, pieces: list[tuple[str, bytes]], path: str, offsets: set[int]) -> None:
    """Join the tail and head of the line cut at block boundary ``key`` and add its offset. A head alone is
    whole only at the first block of the file, a tail alone only after the last; otherwise the block beside
    it could not be read, and that is an error rather than a guess."""
    heads = [data for kind, data in pieces if kind == HEAD]
    tails = [data for kind, data in pieces if kind == TAIL]
    if len(heads) > 1 or len(tails) > 1:
        raise DumpReadError(f"{path}: bz2 block boundary at bit {key} seen twice")
    if not tails and key != FIRST_BLOCK_BIT:
        raise DumpReadError(f"{path}: the bz2 block before bit {key} could not be read (corrupt index)")
    if not heads and key is not None:
        raise DumpReadError(f"{path}: the bz2 block at bit {key} could not be read (corrupt index)")
    parse_index_lines((tails or [b""])[0] + (heads or [b""])[0], f"{path}: line across bz2 block boundary bit {key}",
                      offsets)
