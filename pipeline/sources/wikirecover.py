"""Reading MediaWiki XML past faults: a fault costs only the pages that overlap the damaged bytes.

``PageStream`` feeds XML bytes to one ``StreamParser`` at a time and keeps the bytes fed since the
last page it handed over (``Resync``). After a parse error nothing the parser holds is trusted
(libxml2 2.13 and later end the open elements when parsing fails, so a cut page would look complete):
the pending pages are parsed again, each from its own bytes, and the one that fails is the dead
letter; when none fails, the page in progress is. Reading resumes at the next ``<page>`` with a fresh
parser inside a synthetic root. A page still unclosed after ``MAX_PAGE_BYTES``, or one whose bytes
stop (a bz2 gap, the end of the file), is a dead letter too. Pages and tags are found in the bytes in
the file's own encoding, on character boundaries (UTF-16 dumps exist).

``read_whole_file`` reads one file so; ``multistream.read_range`` reads each bz2 stream of a range so.
When a file's first bz2 block is lost, the document's start (and its ``<siteinfo>``) goes with it:
the bytes after the gap are read from their first ``<page>`` inside a synthetic root.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from lxml import etree

from linkbert.pipeline.edges.titles import SiteInfo
from linkbert.pipeline.sources.compressed import Gap, prefetched, recovering_chunks
from linkbert.pipeline.sources.safe_xml import UnsafeXmlError, refuse_entity_declarations
from linkbert.pipeline.sources.wikidump import (
    PARSER_OPTIONS,
    RawPage,
    ReadFailure,
    StreamParser,
    detect_encoding,
    local_name,
    site_from_element,
    wrong_format,
)

__all__ = ["MAX_PAGE_BYTES", "PageStream", "read_whole_file"]

MAX_PAGE_BYTES = 64 << 20  # a page still unfinished after this many bytes is dropped (libxml2 stops at 10 MB of text)
_OUTSIDE_TAGS = ("{*}mediawiki", "{*}siteinfo")


class Resync:
    """The bytes fed since the end of the last page handed over, with the offsets of the ``<page>``
    tags in them, so that after a fault the pending pages can be parsed again and named."""

    def __init__(self, encoding: str):
        self.encoding = encoding
        self.marker = "<page>".encode(encoding)
        self.closer = "</page>".encode(encoding)
        self.unit = max(1, len("<<".encode(encoding)) - len("<".encode(encoding)))  # 2 in UTF-16
        self.pending = bytearray()
        self.base = 0  # stream offset of pending[0]: a tag counts only on a character boundary
        self.starts: list[int] = []  # offsets in pending of the <page> tags seen there
        self.scanned = 0

    def _find(self, needle: bytes, start: int, end: int | None = None) -> int:
        while (found := self.pending.find(needle, start, len(self.pending) if end is None else end)) >= 0:
            if (self.base + found) % self.unit == 0:
                return found
            start = found + 1
        return -1

    def find_in(self, data: bytes, needle: bytes) -> int:
        """``needle`` in ``data`` (which starts on a character boundary) at a character boundary."""
        position = 0
        while (found := data.find(needle, position)) >= 0 and found % self.unit:
            position = found + 1
        return found

    def add(self, data: bytes) -> None:
        self.pending += data
        position = max(0, self.scanned - len(self.marker) + 1)
        while (found := self._find(self.marker, position)) >= 0:
            if not self.starts or found > self.starts[-1]:
                self.starts.append(found)
            position = found + 1
        self.scanned = len(self.pending)

    def _drop(self, count: int) -> None:
        del self.pending[:count]
        self.base += count
        self.starts = [start - count for start in self.starts if start >= count]
        self.scanned = max(0, self.scanned - count)

    def clear(self) -> None:
        self._drop(len(self.pending))

    def drop_page(self) -> None:
        """Drop what is pending but a partial ``<page>`` tag at the end."""
        self._drop(max(0, len(self.pending) - len(self.marker) + 1))

    def finished(self, pages: int) -> None:
        """``pages`` pages were handed over: drop their bytes (what follows the last one's ``</page>``
        stays: if the parser fails there, it is checked again)."""
        if not pages:
            return
        following = self.starts[pages] if len(self.starts) > pages else None
        close = self._find(self.closer, self.starts[pages - 1], following)
        del self.starts[:pages]
        if close >= 0:
            self._drop(close + len(self.closer))
        else:
            self._drop(self.starts[0]) if self.starts else self.drop_page()

    def skip_to_page(self) -> bool:
        """Drop the bytes before the first pending ``<page>``; whether there is one."""
        if self.starts:
            self._drop(self.starts[0])
            return True
        self.drop_page()
        return False

    def split(self) -> tuple[bytes, list[tuple[bytes, bytes]], bytes | None]:
        """What is pending: (the bytes before the first ``<page>``, [(a page's bytes up to its ``</page>``,
        the bytes after it)], the bytes of an unclosed last page or None). Keeps only that last page."""
        data = bytes(self.pending)
        pages, tail = [], None
        for start, end in zip(self.starts, self.starts[1:] + [len(data)]):
            close = self._find(self.closer, start, end)
            if close >= 0:
                pages.append((data[start:close + len(self.closer)], data[close + len(self.closer):end]))
            elif end < len(data):  # not closed before the next <page>: parsing it again fails
                pages.append((data[start:end], b""))
            else:
                tail = data[start:]
        prefix = data[:self.starts[0]] if self.starts else data
        self._drop(self.starts[-1]) if tail is not None else self.drop_page()
        return prefix, pages, tail

    def name(self, page_bytes: bytes) -> tuple[str | None, str]:
        """(page id, title) of a page, as far as its first bytes tell."""
        head = page_bytes[:4096].decode(self.encoding, "replace")
        page_id = re.search(r"<id>\s*(\d+)\s*</id>", head)
        title = re.search(r"<title>(.*?)</title>", head, re.S)
        return (page_id.group(1) if page_id else None), (title.group(1) if title else "")


def fault_reason(message: str) -> str:
    return "page_too_large" if "too long" in message or "huge" in message.lower() else "bad_xml"


class PageStream:
    """Pages of XML bytes fed in chunks (``feed``, then ``close``); a fault costs the page it falls in.

    ``wrap``: the bytes are pages without the document's start (a multistream stream), else the first
    parser reads the document's start and finds its encoding itself."""

    def __init__(self, path: str, encoding: str, site: SiteInfo, wrap: bool, fragment_at: int | None = None):
        self.path = path
        self.encoding = encoding
        self.site = site
        self.resync = Resync(encoding)
        self.parser: StreamParser | None = None
        self.handed = 0  # pages the current parser handed over
        self.skipping = False  # after a fault: discard bytes until the next <page>
        if fragment_at is None:
            self._new_parser(wrap)
        else:  # bytes from inside a document whose start was lost: read from its next <page>
            self.skipping = True
            self.resync.base = -fragment_at  # (a <page> tag at fragment_at is on a character boundary)

    @property
    def reading(self) -> bool:
        return self.parser is not None and not self.skipping

    def _new_parser(self, wrap: bool) -> None:
        self.parser = StreamParser(self.path, self.site, self.encoding if wrap else None, wrap)
        self.handed = 0

    def _events(self, step) -> Iterator[RawPage | ReadFailure]:
        pages = 0
        try:
            for item in step():
                pages += 1
                yield item
        finally:
            self.handed += pages
            self.resync.finished(pages)

    def feed(self, data: bytes, where: str) -> Iterator[RawPage | ReadFailure]:
        self.resync.add(data)
        if self.skipping:
            if not self.resync.skip_to_page():
                return
            self.skipping = False
            self._new_parser(wrap=True)
            data = bytes(self.resync.pending)
        try:
            yield from self._events(lambda: self.parser.feed(data))
        except etree.XMLSyntaxError as exc:
            yield from self._fault(fault_reason(str(exc)), f"XML error: {exc}", where)
            return
        if self.resync.starts and len(self.resync.pending) - self.resync.starts[0] > MAX_PAGE_BYTES:
            yield from self._fault("page_too_large", f"page larger than {MAX_PAGE_BYTES} bytes", where,
                                   parse_error=False, page_lost=True)

    def close(self, reason: str, message: str, where: str) -> Iterator[RawPage | ReadFailure]:
        """The end of the bytes: the last pages; an unfinished one is a dead letter (``reason``)."""
        if self.reading:
            try:
                yield from self._events(self.parser.close)
            except etree.XMLSyntaxError as exc:
                yield from self._fault(reason, f"{message}: {exc}", where, page_lost=True)
        self.parser = None

    def gap(self, reason: str, where: str) -> Iterator[RawPage | ReadFailure]:
        """The bytes stop here and go on later (a part that cannot be decompressed): the page in
        progress is lost, and the bytes on either side do not join."""
        if self.reading:
            yield from self._fault(reason, "the page's bytes could not be decompressed", where,
                                   parse_error=False, page_lost=True)
        self.resync.clear()
        self.skipping = True

    def _page_again(self, page_bytes: bytes, where: str) -> list[RawPage | ReadFailure]:
        """One page parsed from its own bytes in a fresh parser."""
        parser = StreamParser(self.path, self.site, self.encoding, wrap=True)
        try:
            items = list(parser.feed(page_bytes)) + list(parser.close())
            error = None if items else "no <page> element in its bytes"
        except etree.XMLSyntaxError as exc:
            error = str(exc)
        if error is None:
            return items
        page_id, title = self.resync.name(page_bytes)
        return [ReadFailure(self.path, page_id, fault_reason(error), f"{self.path}: page {title!r}: XML error: {error}"
                            f" ({where})", page_read=True)]

    def _outside_pages(self, data: bytes, where: str, header: bool, whole: bool = True) -> ReadFailure | None:
        """Bytes outside pages checked again, to the end (``whole``: nothing of them is still to come):
        ``header``, the document's start, whose <siteinfo> is read here when the fault came before it
        was handed over; else what lies between two pages."""
        marker = self.resync.marker
        for length in range(len(marker) - 1, 0, -1):  # a <page> tag whose end is still to come
            if data.endswith(marker[:length]):
                data = data[:-length]
                break
        if not header and not data.decode(self.encoding, "replace").strip():
            return None
        options = dict(PARSER_OPTIONS, **({} if header else {"encoding": self.encoding}))
        parser = etree.XMLPullParser(events=("start", "end"), tag=_OUTSIDE_TAGS, **options)
        root, end = "<mediawiki>".encode(self.encoding), "</mediawiki>".encode(self.encoding)
        try:
            parser.feed(data if header else root + data)
            if whole:  # close the root so that the parser reads to the end
                parser.feed(b"" if self.resync.find_in(data, end) >= 0 else end)
                parser.close()
            for event, element in parser.read_events():
                if header and event == "start" and local_name(element.tag) == "mediawiki":
                    refuse_entity_declarations(element, self.path)
                elif header and event == "end" and local_name(element.tag) == "siteinfo":
                    self.site = site_from_element(element)
        except etree.XMLSyntaxError as exc:
            place = "before the first page" if header else "between pages"
            return ReadFailure(self.path, None, fault_reason(str(exc)), f"{self.path}: XML error {place}: {exc} ({where})")
        return None

    def _fault(self, reason: str, message: str, where: str, parse_error: bool = True,
               page_lost: bool = False) -> Iterator[RawPage | ReadFailure]:
        """After a parse error the pending pages are parsed again one by one and the ones that fail take
        the blame; else (or with ``page_lost``: its bytes stop, or it is too large) the page in progress
        does. Reading resumes at the next ``<page>``."""
        self.site = self.parser.site
        header = not self.parser.wrap and not self.handed
        self.parser = None
        self.skipping = True
        blamed = False
        prefix, pages, tail = self.resync.split()
        if parse_error:
            if (failure := self._outside_pages(prefix, where, header, whole=bool(pages or tail))) is not None:
                yield failure
                blamed = True
            for page_bytes, after in pages:
                for item in self._page_again(page_bytes, where):
                    blamed = blamed or isinstance(item, ReadFailure)
                    yield item
                if (failure := self._outside_pages(after, where, header=False)) is not None:
                    yield failure
                    blamed = True
        if tail is not None and blamed and not page_lost:  # the page in progress is not at fault: read on
            yield from self.feed(b"", where)
            return
        if tail is not None:
            page_id, title = self.resync.name(tail)
            yield ReadFailure(self.path, page_id, reason, f"{self.path}: page {title!r}: {message} ({where})", page_read=True)
        elif parse_error and not blamed:
            yield ReadFailure(self.path, None, reason, f"{self.path}: {message} ({where})")
        self.resync.drop_page()


_UTF8_PAGE, _UTF16_PAGE = "<page>".encode("UTF-8"), "<page>".encode("UTF-16LE")


def _fragment_start(data: bytes) -> tuple[str, int] | None:
    """(encoding, offset of the first ``<page>``) of bytes from inside a dump, or None when no page
    starts there yet. UTF-16 fragments are read as little-endian (the dumps that are UTF-16 are)."""
    utf8, utf16 = data.find(_UTF8_PAGE), data.find(_UTF16_PAGE)
    if utf8 >= 0:
        return "UTF-8", utf8
    return ("UTF-16LE", utf16) if utf16 >= 0 else None


class _WholeFileReader:
    """One file as one stream: compression from the magic bytes, format and encoding from the first
    4 KB, undecompressable bz2 bytes skipped to the next intact block (``compressed.recovering_chunks``)."""

    def __init__(self, path: str):
        self.path = path
        self.pages: PageStream | None = None

    def _start(self, head: bytes) -> ReadFailure | None:
        """Refuse another format, else set up the stream for the encoding found."""
        failure = wrong_format(self.path, head)
        if failure is None:
            self.pages = PageStream(self.path, detect_encoding(head[:256]), SiteInfo(), wrap=False)
        return failure

    def read(self) -> Iterator[RawPage | ReadFailure]:
        head = b""
        gapped = False
        where = "at the start of the file"
        try:
            for offset, item in prefetched(recovering_chunks(self.path)):
                where = f"near compressed byte {offset}"
                if isinstance(item, Gap):
                    if self.pages is None and head:  # what came before the gap
                        if (failure := self._start(head)) is not None:
                            yield failure
                            return
                        yield from self.pages.feed(head, where)
                        head = b""
                    if self.pages is not None:
                        yield from self.pages.gap(item.reason, where)
                    yield ReadFailure(self.path, None, item.reason, item.detail)
                    gapped = True
                    continue
                if self.pages is None and gapped:  # the document's start is lost: read from the next <page>
                    head = (head + item)[-MAX_PAGE_BYTES:]
                    if (start := _fragment_start(head)) is None:
                        continue
                    self.pages = PageStream(self.path, start[0], SiteInfo(), wrap=True, fragment_at=start[1])
                    item, head = head, b""
                elif self.pages is None:
                    head += item
                    if len(head) < 4096:
                        continue
                    if (failure := self._start(head)) is not None:
                        yield failure
                        return
                    item, head = head, b""
                yield from self.pages.feed(item, where)
            if self.pages is None:
                if gapped:  # nothing readable, or no page after the gap: the gap is the one failure
                    return
                if (failure := self._start(head)) is not None:
                    yield failure
                    return
                yield from self.pages.feed(head, where)
            yield from self.pages.close("truncated", "the XML ends early", "at the end of the file")
        except UnsafeXmlError as exc:
            yield ReadFailure(self.path, None, "unsafe_xml", str(exc))


def read_whole_file(path: str) -> Iterator[RawPage | ReadFailure]:
    return _WholeFileReader(path).read()
