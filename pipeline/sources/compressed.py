"""Compressed dump files through ``FileSystems``: compression found from the magic bytes, decompression
in a background thread (``bz2`` and ``zlib`` release the GIL) in bounded chunks."""

from __future__ import annotations

import bz2
import queue
import threading
import zlib
from collections.abc import Iterable, Iterator

from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from linkbert.pipeline import progress

CHUNK_BYTES = 1 << 16  # compressed bytes read at a time (larger parser feeds fragment the heap)


PREFETCH_CHUNKS = 16


def open_raw(path: str):
    return FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED)


def _compression(head: bytes) -> str:
    if head.startswith(b"BZh"):
        return "bz2"
    if head.startswith(b"\x1f\x8b"):
        return "gzip"
    return "none"


def decompressed_chunks(path: str) -> Iterator[tuple[int, bytes]]:
    """(compressed bytes read so far, decompressed chunk) of a whole file, following concatenated
    bz2 streams and gzip members. Raises ``DumpReadError`` naming the offset of a corrupt part."""
    with open_raw(path) as raw:
        data = raw.read(4)
        kind = _compression(data)
        offset = len(data)
        decompressor = _new_decompressor(kind)
        fed = False
        while data:
            if decompressor is None:
                yield offset, data
                data = b""
            while data:
                fed = True
                try:
                    out = decompressor.decompress(data)
                except (OSError, EOFError, zlib.error) as exc:
                    raise DumpReadError(f"{path}: corrupt {kind} data at or before byte {offset}: {exc}", offset) from exc
                if out:
                    yield offset, out
                data = b""
                if decompressor.eof:  # the next bz2 stream or gzip member, unless only padding follows
                    data = decompressor.unused_data.lstrip(b"\x00")
                    decompressor = _new_decompressor(kind)
                    fed = False
            data = raw.read(CHUNK_BYTES)
            offset += len(data)
        if decompressor is not None and fed and not decompressor.eof:
            raise DumpReadError(f"{path}: the {kind} data ends early at byte {offset} (truncated file)", offset)


def _new_decompressor(kind: str):
    if kind == "bz2":
        return bz2.BZ2Decompressor()
    if kind == "gzip":
        return zlib.decompressobj(wbits=31)
    return None


def prefetched(items: Iterable, depth: int = PREFETCH_CHUNKS) -> Iterator:
    """Iterate ``items`` in a background thread, ``depth`` items ahead; its exception re-raises here.

    Decompression releases the GIL, so reading the next chunks overlaps with parsing and cleaning.
    """
    handoff: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item) -> bool:
        while not stop.is_set():
            try:
                handoff.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce():
        try:
            for item in items:
                if not put((True, item)):
                    return
            put((False, None))
        except BaseException as exc:  # handed to the consumer, which re-raises it
            put((False, exc))
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()  # a generator's file is closed in the thread that reads it

    thread = threading.Thread(target=produce, name="wikidump-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            more, item = handoff.get()
            if more:
                yield item
            elif item is None:
                return
            else:
                raise item
    finally:
        stop.set()
        thread.join(timeout=5)


class DumpReadError(Exception):
    """A dump cannot be read from ``offset`` on (compressed byte offset, or None when unknown)."""

    def __init__(self, message: str, offset: int | None = None):
        super().__init__(message)
        self.offset = offset


# --------------------------------------------------------------------------------------------
# Reading past damage: bz2 blocks found by their magic, as bzip2recover does

_BLOCK_MAGIC = 0x314159265359  # pi: starts every bz2 block
_STREAM_END_MAGIC = 0x177245385090  # sqrt(pi): ends every bz2 stream
RECOVERY_WINDOW_BYTES = 2 << 20  # > the largest compressed block (900k * 1.01 + table overhead)
DECOMPRESS_PIECE_BYTES = 4096  # one decompress() call; a failing call loses at most the blocks ending in it


class Gap:
    """A part of a file that could not be decompressed: the bytes before and after it are good, but the
    decompressed data on either side do not join (a reader must drop what straddles the gap)."""

    def __init__(self, reason: str, detail: str, start: int, end: int | None):
        self.reason, self.detail, self.start, self.end = reason, detail, start, end


def _magic_patterns(magic: int) -> list[tuple[int, bytes, int, int, int, int]]:
    """Per bit shift s: (s, the 5 bytes fully fixed by the 48-bit magic at bit s of a 7-byte window,
    first-byte mask/value, last-byte mask/value)."""
    patterns = []
    for shift in range(8):
        window = (magic << (8 - shift)).to_bytes(7, "big")  # magic at bits [shift, shift + 48)
        head_mask = (1 << (8 - shift)) - 1
        tail_mask = (0xFF << (8 - shift)) & 0xFF
        patterns.append((shift, window[1:6], head_mask, window[0], tail_mask, window[6]))
    return patterns


_BLOCK_PATTERNS = _magic_patterns(_BLOCK_MAGIC)
_END_PATTERNS = _magic_patterns(_STREAM_END_MAGIC)


def find_magic(data: bytes, start_bit: int, patterns=_BLOCK_PATTERNS) -> int | None:
    """The first bit position >= ``start_bit`` where a 48-bit magic of ``patterns`` starts in ``data``."""
    best = None
    for shift, middle, head_mask, head, tail_mask, tail in patterns:
        position = max(0, start_bit // 8 - 1)
        while True:
            found = data.find(middle, position + 1)
            if found < 0 or found + 6 > len(data):
                break
            first = found - 1
            bit = first * 8 + shift
            position = found
            if best is not None and bit >= best:
                break
            if bit < start_bit:
                continue
            if data[first] & head_mask == head & head_mask and (tail_mask == 0 or data[found + 5] & tail_mask == tail & tail_mask):
                best = bit
                break
    return best


def _bits(data: bytes, start: int, end: int) -> int:
    first, last = start // 8, (end + 7) // 8
    number = int.from_bytes(data[first:last], "big")
    return (number >> (8 * last - end)) & ((1 << (end - start)) - 1)


def block_as_stream(data: bytes, start: int, end: int, level: int = 9) -> bytes:
    """The bz2 block at bits [start, end) of ``data`` as a stream of its own (header, block, end
    marker, combined CRC = the block's CRC): what ``bzip2recover`` writes for each block. ``level``
    (the block size, in 100k) must be at least the original stream's; a smaller one decompresses faster."""
    crc = _bits(data, start + 48, start + 80)
    value = int.from_bytes(b"BZh" + str(level).encode(), "big")
    value = (value << (end - start)) | _bits(data, start, end)
    value = (((value << 48) | _STREAM_END_MAGIC) << 32) | crc
    total = 32 + (end - start) + 80
    value <<= -total % 8
    return value.to_bytes((total + 7) // 8, "big")


def _recovered_blocks(raw, path: str, position: int, window: bytes) -> Iterator[tuple[int, bytes | Gap]]:
    """Blocks found by magic from compressed byte ``position`` on (``window`` holds the bytes read
    from there): each decompressed on its own; one that fails is a ``Gap``."""
    base = position
    bit = 0
    failed_from = position  # the damage starts here (the block it hit began before)
    while True:
        if len(window) - bit // 8 < RECOVERY_WINDOW_BYTES:
            more = raw.read(RECOVERY_WINDOW_BYTES)
            window = window[bit // 8:] + more
            base += bit // 8
            bit %= 8
        start = find_magic(window, bit)
        if start is None:  # after the last block only its stream's end marker and CRC may follow
            if failed_from is not None or len(window) - bit // 8 > 16:
                lost_from = base + bit // 8 if failed_from is None else failed_from
                yield base + len(window), Gap("corrupt_stream", f"{path}: corrupt bz2 data from byte {lost_from}: "
                                              "no intact block after it", lost_from, None)
            return
        ends = [b for b in (find_magic(window, start + 48), find_magic(window, start + 48, _END_PATTERNS)) if b is not None]
        if not ends:  # the last block has no end: the file is cut inside it
            yield base + len(window), Gap("truncated", f"{path}: the file ends inside the bz2 block at byte "
                                          f"{base + start // 8} (truncated file)", base + start // 8, None)
            return
        end = min(ends)
        try:
            out = bz2.decompress(block_as_stream(window, start, end))
        except (OSError, ValueError, EOFError):
            if failed_from is None:
                failed_from = base + start // 8
            bit = start + 48
            continue
        if failed_from is not None:
            yield base + start // 8, Gap("corrupt_stream", f"{path}: corrupt bz2 data at bytes {failed_from}-"
                                         f"{base + start // 8}", failed_from, base + start // 8)
            failed_from = None
        yield base + end // 8, out
        bit = end


def recovering_chunks(path: str) -> Iterator[tuple[int, bytes | Gap]]:
    """Like ``decompressed_chunks``, but a corrupt or truncated part is a ``Gap`` item and reading goes
    on: for bz2 from the next intact block (found by its magic, as ``bzip2recover`` does); for gzip
    nothing after the damage can be found again, so the gap runs to the end of the file. The compressed
    bytes read count towards a local run's progress."""
    with open_raw(path) as raw, progress.counting_bytes(raw) as raw:
        data = raw.read(4)
        kind = _compression(data)
        offset = len(data)
        decompressor = _new_decompressor(kind)
        fed = False
        while data:
            if decompressor is None:
                yield offset, data
                data = b""
            while data:
                piece, data = data[:DECOMPRESS_PIECE_BYTES], data[DECOMPRESS_PIECE_BYTES:]
                fed = True
                try:
                    out = decompressor.decompress(piece)
                except (OSError, EOFError, zlib.error) as exc:
                    failed_at = offset - len(data) - len(piece)
                    if kind != "bz2":
                        yield offset, Gap("corrupt_stream", f"{path}: corrupt {kind} data at or before byte {offset}: "
                                          f"{exc}; the rest of the file cannot be read", failed_at, None)
                        return
                    # blocks wholly before this piece are out; the damaged one and the rest are found by magic
                    yield from _recovered_blocks(raw, path, failed_at, piece + data)
                    return
                if out:
                    yield offset - len(data), out
                if decompressor.eof:  # the next bz2 stream or gzip member, unless only padding follows
                    data = (decompressor.unused_data + data).lstrip(b"\x00")
                    decompressor = _new_decompressor(kind)
                    fed = False
            data = raw.read(CHUNK_BYTES)
            offset += len(data)
        if decompressor is not None and fed and not decompressor.eof:
            yield offset, Gap("truncated", f"{path}: the {kind} data ends early at byte {offset} (truncated file)", offset, None)
