"""Reading MediaWiki XML dumps: whole files, and multistream files split by their index.

A dump is read as one of two kinds of *work unit*:

* a whole file (``.xml``, ``.xml.bz2``, ``.xml.gz``; compression found from the magic bytes), parsed
  as one stream: the XML's own encoding (BOM or declaration) is honoured;
* a byte range of a multistream ``.xml.bz2``: consecutive bz2 streams, each holding whole ``<page>``
  elements, located by the ``…-multistream-index.txt.bz2`` (lines ``offset:page_id:title``). The
  header stream before the first indexed offset gives the ``<siteinfo>`` and the encoding, once, at
  planning time; every stream of a range is then parsed on its own, inside a synthetic root element.
  A corrupt or truncated stream costs only its own pages: the error names the file and its offset
  and the next stream is read.

All file access goes through Beam's ``FileSystems`` (``gs://`` works). Decompression runs in a
background thread (``bz2`` and ``zlib`` release the GIL) feeding ``lxml``'s pull parser in bounded
chunks, and every ``<page>`` element is cleared once read: memory does not grow with the input.
Tags are matched by local name, so export schemas 0.10, 0.11 (and others) read alike.
"""

from __future__ import annotations

import bz2
import codecs
import queue
import re
import threading
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from lxml import etree

from pipeline.sources.wikitext import SiteInfo

__all__ = [
    "DumpHeader",
    "RawPage",
    "ReadFailure",
    "WorkUnit",
    "find_index",
    "plan_units",
    "read_header",
    "read_pages",
    "read_stream_offsets",
]

CHUNK_BYTES = 1 << 16  # compressed bytes read at a time (larger parser feeds fragment the heap)
PREFETCH_CHUNKS = 16
DEFAULT_RANGE_BYTES = 64 << 20  # compressed bytes of one multistream work unit
MAX_HEADER_BYTES = 16 << 20

_PARSER_OPTIONS = dict(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False, remove_comments=True)
_PAGE_TAGS = ("{*}page", "{*}siteinfo", "{*}mediawiki")


class DumpReadError(Exception):
    """A dump cannot be read from ``offset`` on (compressed byte offset, or None when unknown)."""

    def __init__(self, message: str, offset: int | None = None):
        super().__init__(message)
        self.offset = offset


@dataclass(frozen=True)
class DumpHeader:
    """What parsing any part of a dump needs: the text encoding and the site's namespaces."""

    encoding: str = "UTF-8"
    site: SiteInfo = SiteInfo()
    schema_version: str = ""


@dataclass(frozen=True)
class WorkUnit:
    """A whole file (``streams`` empty) or the bz2 streams starting at ``streams`` up to ``end``."""

    path: str
    streams: tuple[int, ...] = ()
    end: int = 0
    header: DumpHeader | None = None

    def describe(self) -> str:
        if not self.streams:
            return self.path
        return f"{self.path} bytes {self.streams[0]}-{self.end} ({len(self.streams)} streams)"


@dataclass(frozen=True)
class RawPage:
    page_id: str
    title: str
    namespace: int
    text: str
    redirect: str | None  # the redirect target as written, or None
    source_file: str
    site: SiteInfo


@dataclass(frozen=True)
class ReadFailure:
    """Something in a dump that could not be read: ``record_id`` is a page id or None."""

    source_file: str
    record_id: str | None
    reason: str  # bad_page | corrupt_stream | truncated | bad_xml | bad_index | ...
    detail: str
    page_read: bool = False  # True when a <page> was read but not understood (it counts as read)


# --------------------------------------------------------------------------------------------
# Files and compression


def _open_raw(path: str):
    return FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED)


def _compression(head: bytes) -> str:
    if head.startswith(b"BZh"):
        return "bz2"
    if head.startswith(b"\x1f\x8b"):
        return "gzip"
    return "none"


def _decompressed_chunks(path: str) -> Iterator[tuple[int, bytes]]:
    """(compressed bytes read so far, decompressed chunk) of a whole file, following concatenated
    bz2 streams and gzip members. Raises ``DumpReadError`` naming the offset of a corrupt part."""
    with _open_raw(path) as raw:
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


def _prefetched(items: Iterable, depth: int = PREFETCH_CHUNKS) -> Iterator:
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


# --------------------------------------------------------------------------------------------
# XML

_XML_DECLARED_ENCODING = re.compile(rb"""<\?xml[^>]*encoding\s*=\s*["']([A-Za-z0-9._-]+)["']""")


def detect_encoding(head: bytes) -> str:
    """The encoding of an XML document from its first bytes: BOM, then declaration, else UTF-8."""
    if head.startswith(codecs.BOM_UTF8):
        return "UTF-8"
    if head.startswith(codecs.BOM_UTF16_LE) or head.startswith(b"<\x00"):
        return "UTF-16LE"
    if head.startswith(codecs.BOM_UTF16_BE) or head.startswith(b"\x00<"):
        return "UTF-16BE"
    m = _XML_DECLARED_ENCODING.match(head.lstrip())
    if m:
        name = m.group(1).decode("ascii")
        codecs.lookup(name)  # LookupError for an encoding Python does not know either
        return name
    return "UTF-8"


def _local(tag) -> str:
    return tag[tag.rfind("}") + 1:] if isinstance(tag, str) else ""


def _site_from_element(siteinfo) -> SiteInfo:
    entries = []
    site_case = "first-letter"
    for child in siteinfo:
        name = _local(child.tag)
        if name == "case":
            site_case = (child.text or "first-letter").strip()
        elif name == "namespaces":
            for namespace in child:
                try:
                    key = int(namespace.get("key", ""))
                except ValueError:
                    continue
                entries.append((key, namespace.text or "", namespace.get("case", "")))
    return SiteInfo.from_namespaces(entries, site_case)


def _page_from_element(page, source_file: str, site: SiteInfo) -> RawPage | ReadFailure:
    title = page_id = namespace = None
    redirect = None
    has_redirect = False
    text = None
    for child in page:
        name = _local(child.tag)
        if name == "title":
            title = child.text or ""
        elif name == "ns":
            namespace = child.text
        elif name == "id":
            page_id = (child.text or "").strip()
        elif name == "redirect":
            has_redirect = True
            redirect = child.get("title")
        elif name == "revision":  # pages-articles holds one; a full-history dump ends with the latest
            for field in child:
                if _local(field.tag) == "text":
                    text = field.text
    if not page_id or not title:
        return ReadFailure(source_file, page_id or None, "bad_page",
                           f"<page> without {'an <id>' if not page_id else 'a <title>'} (title {title!r})", page_read=True)
    if namespace is None:  # export schemas before 0.6 have no <ns>: the title's prefix tells
        prefix, colon, _ = title.partition(":")
        namespace = (site.namespace_of(prefix) if colon else 0) or 0
    try:
        namespace = int(namespace)
    except ValueError:
        return ReadFailure(source_file, page_id, "bad_page", f"page {title!r}: <ns> is {namespace!r}, not a number",
                           page_read=True)
    if has_redirect and redirect is None:  # export schemas before 0.5: the target is in the text
        redirect = _first_link_target(text or "")
    return RawPage(page_id, title, namespace, text or "", redirect, source_file, site)


_FIRST_LINK = re.compile(r"\[\[([^\[\]|]+)")


def _first_link_target(text: str) -> str:
    m = _FIRST_LINK.search(text)
    return m.group(1) if m else ""


def _release(element) -> None:
    """Free a handled element and the siblings parsed before it."""
    element.clear()
    parent = element.getparent()
    if parent is not None:
        while element.getprevious() is not None:
            del parent[0]


class _StreamParser:
    """lxml pull parser fed in chunks; yields pages (and the siteinfo) as they complete."""

    def __init__(self, source_file: str, site: SiteInfo, encoding: str | None = None, wrap: bool = False):
        options = dict(_PARSER_OPTIONS)
        if encoding:
            options["encoding"] = encoding
        self._parser = etree.XMLPullParser(events=("end",), tag=_PAGE_TAGS, **options)
        self.source_file = source_file
        self.site = site
        self.encoding = encoding
        self.wrap = wrap
        self.root_closed = False
        if wrap:
            self._parser.feed("<mediawiki>".encode(encoding or "UTF-8"))

    def feed(self, data: bytes) -> Iterator[RawPage | ReadFailure]:
        self._parser.feed(data)
        yield from self._events()

    def close(self) -> Iterator[RawPage | ReadFailure]:
        if self.wrap and not self.root_closed:
            self._parser.feed("</mediawiki>".encode(self.encoding or "UTF-8"))
        self._parser.close()
        yield from self._events()

    def _events(self) -> Iterator[RawPage | ReadFailure]:
        for _, element in self._parser.read_events():
            name = _local(element.tag)
            if name == "page":
                yield _page_from_element(element, self.source_file, self.site)
                _release(element)
            elif name == "siteinfo":
                self.site = _site_from_element(element)
                _release(element)
            else:
                self.root_closed = True


# --------------------------------------------------------------------------------------------
# Whole files


def _read_whole_file(path: str) -> Iterator[RawPage | ReadFailure]:
    parser = _StreamParser(path, SiteInfo())
    offset = 0
    try:
        for offset, chunk in _prefetched(_decompressed_chunks(path)):
            yield from parser.feed(chunk)
        yield from parser.close()
    except DumpReadError as exc:
        reason = "truncated" if "truncated" in str(exc) or "ends early" in str(exc) else "corrupt_stream"
        yield ReadFailure(path, None, reason, str(exc))
    except etree.XMLSyntaxError as exc:
        yield ReadFailure(path, None, "bad_xml", f"{path}: XML error near compressed byte {offset}: {exc}")


# --------------------------------------------------------------------------------------------
# Multistream: index, header, ranges

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
    for _, chunk in _decompressed_chunks(index_path):
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
    with _open_raw(path) as raw:
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
    parser = etree.XMLPullParser(events=("start", "end"), **_PARSER_OPTIONS)
    parser.feed(data)
    site = SiteInfo()
    version = ""
    for event, element in parser.read_events():
        name = _local(element.tag)
        if event == "start" and name == "mediawiki":
            version = element.get("version", "")
        elif event == "end" and name == "siteinfo":
            site = _site_from_element(element)
    return DumpHeader(encoding, site, version)


def plan_units(
    path: str, index_path: str | None = None, range_bytes: int = DEFAULT_RANGE_BYTES, size: int | None = None
) -> list[WorkUnit]:
    """Work units of one dump: ranges of whole bz2 streams when an index is given, else the file."""
    if index_path is None:
        return [WorkUnit(path)]
    offsets = read_stream_offsets(index_path)
    if not offsets:
        raise DumpReadError(f"{index_path}: the index lists no streams")
    if size is None:
        size = FileSystems.match([path])[0].metadata_list[0].size_in_bytes
    header = read_header(path, offsets[0]) if offsets[0] > 0 else DumpHeader()
    units = []
    streams: list[int] = []
    for position, offset in enumerate(offsets):
        streams.append(offset)
        end = offsets[position + 1] if position + 1 < len(offsets) else size
        if end - streams[0] >= range_bytes or position + 1 == len(offsets):
            units.append(WorkUnit(path, tuple(streams), max(end, offset), header))
            streams = []
    return units


def _range_streams(unit: WorkUnit) -> Iterator[tuple[str, int, bytes | str]]:
    """Events of a range, per bz2 stream: ("begin", offset, b""), ("data", offset, chunk)..., then
    ("end", offset, b"") or ("error", offset, reason) when the stream cannot be decompressed."""
    bounds = list(unit.streams) + [unit.end]
    with _open_raw(unit.path) as raw:
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


def _read_range(unit: WorkUnit) -> Iterator[RawPage | ReadFailure]:
    header = unit.header or DumpHeader()
    parser = None
    broken = None  # offset of a stream whose XML failed: skip to its end
    for kind, offset, payload in _prefetched(_range_streams(unit)):
        if kind == "begin":
            parser = None
            broken = None
        elif kind == "error":
            yield ReadFailure(unit.path, None, "truncated" if "truncated" in payload else "corrupt_stream",
                              f"{unit.path}: bz2 stream at byte {offset}: {payload}")
            parser = None
        elif broken is not None:
            continue
        elif kind == "data":
            try:
                if parser is None:
                    parser = _StreamParser(unit.path, header.site, header.encoding, wrap=not _is_document_start(payload, header.encoding))
                yield from parser.feed(payload)
            except etree.XMLSyntaxError as exc:
                yield ReadFailure(unit.path, None, "bad_xml", f"{unit.path}: XML error in the bz2 stream at byte {offset}: {exc}")
                broken = offset
        elif kind == "end" and parser is not None:
            try:
                yield from parser.close()
            except etree.XMLSyntaxError as exc:
                yield ReadFailure(unit.path, None, "bad_xml", f"{unit.path}: XML error at the end of the bz2 stream at byte {offset}: {exc}")
            parser = None


def _is_document_start(data: bytes, encoding: str) -> bool:
    """Whether a stream starts a document itself (declaration or root), so needs no synthetic root."""
    head = data[:400].decode(encoding, errors="ignore").lstrip("\ufeff \t\r\n")
    return head.startswith("<?xml") or head.startswith("<mediawiki")


def read_pages(unit: WorkUnit) -> Iterator[RawPage | ReadFailure]:
    """Every page of a work unit, in file order; unreadable parts become ``ReadFailure``s."""
    return _read_range(unit) if unit.streams else _read_whole_file(unit.path)
