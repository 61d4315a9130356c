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
