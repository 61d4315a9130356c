"""Multistream ``.xml.bz2`` dumps split by their index into work units of whole bz2 streams: the index
(lines ``offset:page_id:title``), the header stream's <siteinfo> and encoding, and reading one range
so that a corrupt or truncated stream costs only its own pages."""

from __future__ import annotations

import bz2
import logging
import re
from collections.abc import Iterator

from apache_beam.io.filesystems import FileSystems
from lxml import etree

from linkbert.pipeline import progress
from linkbert.pipeline.edges.titles import SiteInfo
from linkbert.pipeline.sources.bz2scan import starts_with_page, stream_starts
from linkbert.pipeline.sources.compressed import CHUNK_BYTES, DumpReadError, decompressed_chunks, open_raw, prefetched
from linkbert.pipeline.sources.wikidump import (
    PARSER_OPTIONS,
    DumpHeader,
    RawPage,
    ReadFailure,
    WorkUnit,
    detect_encoding,
    local_name,
    site_from_element,
)

DEFAULT_RANGE_BYTES = 64 << 20  # compressed bytes of one multistream work unit


MAX_HEADER_BYTES = 16 << 20


_MULTISTREAM_NAME = re.compile(r"-multistream(\d*)\.xml")


def index_name_for(dump_name: str) -> str | None:
    """``X-multistream.xml.bz2`` -> ``X-multistream-index.txt.bz2``;
    ``X-multistream1.xml-p1p41242.bz2`` -> ``X-multistream-index1.txt-p1p41242.bz2``; else None."""
    index_name, found = _MULTISTREAM_NAME.subn(r"-multistream-index\1.txt", dump_name)
    return index_name if found else None


def find_index(path: str) -> str | None:
    """The multistream index beside ``path``, if the dump is named as multistream and it exists."""
    directory, name = FileSystems.split(path)
    index_name = index_name_for(name)
    if index_name is None:
        return None
    candidate = FileSystems.join(directory, index_name)
    return candidate if FileSystems.exists(candidate) else None


def read_stream_offsets(index_path: str) -> list[int]:
    """The distinct stream offsets of a multistream index (``offset:page_id:title`` lines), sorted.

    Raises ``DumpReadError`` naming the line when the index is malformed."""
    offsets: set[int] = set()
    last = None
    pending = b""
    line_number = 0
    for _, chunk in decompressed_chunks(index_path):
        lines = (pending + chunk).split(b"\n")
        pending = lines.pop()
        for line in lines:
            line_number += 1
            last = _index_offset(line, last, index_path, line_number, offsets)
    if pending.strip():
        _index_offset(pending, last, index_path, line_number + 1, offsets)
    return sorted(offsets)


def _index_offset(line: bytes, last: bytes | None, index_path: str, line_number: int, offsets: set[int]):
    line = line.strip()
    if not line:
        return last
    head, colon, _ = line.partition(b":")
    if head == last:
        return last
    if not colon or not head.isdigit():
        raise DumpReadError(f"{index_path}: line {line_number} is not 'offset:page_id:title': {line[:80]!r}")
    offsets.add(int(head))
    return head


def read_header(path: str, first_offset: int) -> DumpHeader:
    """Encoding, siteinfo and schema version from the header stream (bytes before ``first_offset``)."""
    if first_offset > MAX_HEADER_BYTES:
        raise DumpReadError(f"{path}: the index's first stream starts at byte {first_offset}; a header "
                            f"(<siteinfo>) stream larger than {MAX_HEADER_BYTES} bytes is not a multistream dump's", 0)
    with open_raw(path) as raw:
        compressed = raw.read(first_offset)
    data = b""
    rest = compressed
    while rest:
        decompressor = bz2.BZ2Decompressor()
        try:
            data += decompressor.decompress(rest)
        except (OSError, EOFError) as exc:
            raise DumpReadError(f"{path}: corrupt header stream (bytes 0-{first_offset}): {exc}", 0) from exc
        rest = decompressor.unused_data if decompressor.eof else b""
    encoding = detect_encoding(data[:256])
    parser = etree.XMLPullParser(events=("start", "end"), **PARSER_OPTIONS)
    parser.feed(data)
    site = SiteInfo()
    version = ""
    for event, element in parser.read_events():
        name = local_name(element.tag)
        if event == "start" and name == "mediawiki":
            version = element.get("version", "")
        elif event == "end" and name == "siteinfo":
            site = site_from_element(element)
        elif event == "start" and name == "page":  # the streams found are not where the pages start
            raise DumpReadError(f"{path}: the bytes before the first stream (0-{first_offset}) hold pages, so its "
                                "streams do not start at pages as a multistream dump's do", 0)
    return DumpHeader(encoding, site, version)


def window_of(offset: int, range_bytes: int) -> int:
    """The work unit a stream belongs to: streams are grouped by ``offset // range_bytes``, a rule each
    worker can apply to its own offsets without seeing the others."""
    return offset // range_bytes


def units_from_offsets(path: str, offsets: list[int], size: int, header: DumpHeader,
                       range_bytes: int) -> list[WorkUnit]:
    """Work units of whole bz2 streams from the sorted stream offsets of one dump (what the parallel
    planner in ``multistream_plan`` computes window by window)."""
    windows: dict[int, list[int]] = {}
    for offset in offsets:
        windows.setdefault(window_of(offset, range_bytes), []).append(offset)
    ordered = [windows[key] for key in sorted(windows)]
    return [WorkUnit(path, tuple(streams), max(following[0] if following else size, streams[-1]), header)
            for streams, following in zip(ordered, ordered[1:] + [None])]


def warn_no_index(path: str) -> None:
    directory, name = FileSystems.split(path)
    logging.warning(
        "MULTISTREAM DUMP WITHOUT ITS INDEX: %s becomes ONE work unit, parsed by one worker from start to "
        "end. Put %s (the same dump date, from https://dumps.wikimedia.org/) beside it, or pass "
        "--build-wiki-index to find its bz2 streams in a parallel first pass, to split it into ranges of "
        "streams read in parallel.", path, FileSystems.join(directory, index_name_for(name)))


def plan_units(
    path: str, index_path: str | None = None, range_bytes: int = DEFAULT_RANGE_BYTES, size: int | None = None,
    build_index: bool = False,
) -> list[WorkUnit]:
    """Work units of one dump, in one process: ranges of whole bz2 streams when an index is given (or
    ``build_index`` finds the streams), else the file. The pipeline plans the same units in parallel."""
    if index_path is None and not build_index:
        if index_name_for(FileSystems.split(path)[1]) is not None:
            warn_no_index(path)
        return [WorkUnit(path)]
    if size is None:
        size = FileSystems.match([path])[0].metadata_list[0].size_in_bytes
    if index_path is None:
        offsets = list(stream_starts(path, 0, size, starts_with_page))
        if not offsets:
            return [WorkUnit(path)]
    else:
        offsets = read_stream_offsets(index_path)
        if not offsets:
            raise DumpReadError(f"{index_path}: the index lists no streams")
    header = read_header(path, offsets[0]) if offsets[0] > 0 else DumpHeader()
    return units_from_offsets(path, offsets, size, header, range_bytes)


def _range_streams(unit: WorkUnit) -> Iterator[tuple[str, int, bytes | str]]:
    """Events of a range, per bz2 stream: ("begin", offset, b""), ("data", offset, chunk)..., then
    ("end", offset, b"") or ("error", offset, reason) when the stream cannot be decompressed."""
    bounds = list(unit.streams) + [unit.end]
    with open_raw(unit.path) as raw, progress.counting_bytes(raw) as raw:
        position = -1
        for start, end in zip(bounds, bounds[1:]):
            if position != start:  # (a seek on gs:// drops the read-ahead buffer)
                raw.seek(start)
            position = end
            yield "begin", start, b""
            decompressor = bz2.BZ2Decompressor()
            fed = False
            failure = None
            remaining = end - start
            while remaining > 0 and failure is None:
                data = raw.read(min(CHUNK_BYTES, remaining))
                if not data:
                    position = -1
                    later = len(bounds) - 2 - bounds.index(start)
                    failure = f"truncated: the file ends before byte {end}" + (
                        f"; the {later} later stream(s) of this range are missing too" if later else "")
                    break
                remaining -= len(data)
                while data:
                    fed = True
                    try:
                        out = decompressor.decompress(data)
                    except (OSError, EOFError) as exc:
                        failure = f"corrupt bz2 data: {exc}"
                        position = -1
                        break
                    if out:
                        yield "data", start, out
                    data = b""
                    if decompressor.eof:  # a further stream inside the range (e.g. the trailer)
                        data = decompressor.unused_data.lstrip(b"\x00")
                        decompressor = bz2.BZ2Decompressor()
                        fed = False
            if failure is None and fed and not decompressor.eof:
                failure = "truncated: the bz2 stream has no end-of-stream marker"
            yield ("error", start, failure) if failure else ("end", start, b"")
            if failure and "the file ends" in failure:
                return


def read_range(unit: WorkUnit) -> Iterator[RawPage | ReadFailure]:
    """Every page of a range, stream by stream; a bad page costs only itself, a bz2 stream that cannot
    be decompressed only its own pages (``wikirecover.PageStream``)."""
    from linkbert.pipeline.sources.wikirecover import PageStream

    header = unit.header or DumpHeader()
    pages = None
    for kind, offset, payload in prefetched(_range_streams(unit)):
        where = f"in the bz2 stream at byte {offset}"
        if kind == "begin":
            pages = None
        elif kind == "error":
            if pages is not None:
                yield from pages.gap("truncated" if "truncated" in payload else "corrupt_stream", where)
            yield ReadFailure(unit.path, None, "truncated" if "truncated" in payload else "corrupt_stream",
                              f"{unit.path}: bz2 stream at byte {offset}: {payload}")
            pages = None
        elif kind == "data":
            if pages is None:
                pages = PageStream(unit.path, header.encoding, header.site, wrap=not _is_document_start(payload, header.encoding))
            yield from pages.feed(payload, where)
        elif kind == "end" and pages is not None:
            yield from pages.close("bad_xml", "XML error at the end of the stream", where)
            pages = None


def _is_document_start(data: bytes, encoding: str) -> bool:
    """Whether a stream starts a document itself (declaration or root), so needs no synthetic root."""
    head = data[:400].decode(encoding, errors="ignore").lstrip("\ufeff \t\r\n")
    return head.startswith("<?xml") or head.startswith("<mediawiki")
