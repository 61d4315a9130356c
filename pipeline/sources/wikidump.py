"""Reading MediaWiki XML dumps: whole files, and multistream files split by their index.

A dump is read as one of two kinds of *work unit*:

* a whole file (``.xml``, ``.xml.bz2``, ``.xml.gz``; compression found from the magic bytes), parsed
  as one stream: the XML's own encoding (BOM or declaration) is honoured. A fault costs only the pages
  it overlaps: bad XML (invalid UTF-8, a page over libxml2's 10 MB text limit) loses the page in
  progress, whose id and title are named, and parsing resumes at the next ``<page>`` inside a
  synthetic root; undecompressable bz2 bytes are skipped to the next intact block, found by its magic
  as ``bzip2recover`` does (``compressed.recovering_chunks``); a DOCTYPE that declares entities is
  refused, and a file whose root is not ``<mediawiki>`` is refused naming the ``--source`` that fits;
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

import codecs
import re
from collections.abc import Iterator
from dataclasses import dataclass

from lxml import etree

from linkbert.pipeline.edges.titles import SiteInfo
from linkbert.pipeline.sources.compressed import Gap, prefetched, recovering_chunks
from linkbert.pipeline.sources.safe_xml import UnsafeXmlError, refuse_entity_declarations

__all__ = ["DumpHeader", "RawPage", "ReadFailure", "WorkUnit", "read_pages"]


PARSER_OPTIONS = dict(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False, remove_comments=True)
_PAGE_TAGS = ("{*}page", "{*}siteinfo", "{*}mediawiki")


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


def local_name(tag) -> str:
    return tag[tag.rfind("}") + 1:] if isinstance(tag, str) else ""


def site_from_element(siteinfo) -> SiteInfo:
    entries = []
    site_case = "first-letter"
    for child in siteinfo:
        name = local_name(child.tag)
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
        name = local_name(child.tag)
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
                if local_name(field.tag) == "text":
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


class StreamParser:
    """lxml pull parser fed in chunks; yields pages (and the siteinfo) as they complete."""

    def __init__(self, source_file: str, site: SiteInfo, encoding: str | None = None, wrap: bool = False):
        options = dict(PARSER_OPTIONS)
        if encoding:
            options["encoding"] = encoding
        self._parser = etree.XMLPullParser(events=("end",), tag=_PAGE_TAGS, **options)
        self.source_file = source_file
        self.site = site
        self.encoding = encoding
        self.wrap = wrap
        self.root_closed = False
        self.checked = False
        if wrap:
            self._parser.feed("<mediawiki>".encode(encoding or "UTF-8"))

    def feed(self, data: bytes) -> Iterator[RawPage | ReadFailure]:
        self._parser.feed(data)
        yield from self._events()

    def drain(self) -> Iterator[RawPage | ReadFailure]:
        """The pages completed before a parse error (lxml keeps their events)."""
        yield from self._events()

    def close(self) -> Iterator[RawPage | ReadFailure]:
        if self.wrap and not self.root_closed:
            self._parser.feed("</mediawiki>".encode(self.encoding or "UTF-8"))
        self._parser.close()
        yield from self._events()

    def _events(self) -> Iterator[RawPage | ReadFailure]:
        for _, element in self._parser.read_events():
            if not self.checked:  # the DTD is known by the first event: refuse entity declarations
                refuse_entity_declarations(element, self.source_file)
                self.checked = True
            name = local_name(element.tag)
            if name == "page":
                yield _page_from_element(element, self.source_file, self.site)
                _release(element)
            elif name == "siteinfo":
                self.site = site_from_element(element)
                _release(element)
            else:
                self.root_closed = True


# --------------------------------------------------------------------------------------------
# Whole files

MAX_PAGE_BYTES = 64 << 20  # a page still unfinished after this many bytes is dropped (libxml2 stops at 10 MB of text)
_ROOT_TAG = re.compile(rb"\s*<([A-Za-z_][\w.:-]*)")
_SKIP_PROLOG = re.compile(rb"\s*(?:<\?.*?\?>|<!--.*?-->|<!DOCTYPE(?:[^\[>]|\[.*?\])*>)", re.S)
# the --source that reads a file with this root element
SOURCE_OF_ROOT = {"mediawiki": "wikipedia", "PubmedArticleSet": "pubmed", "MedlineCitationSet": "pubmed",
                  "article": "pmc", "pmc-articleset": "pmc"}


def root_element_name(head: bytes) -> str | None:
    """The root element's name from a document's first bytes (after declaration, comments, DOCTYPE)."""
    position = 0
    while True:
        m = _SKIP_PROLOG.match(head, position)
        if not m or m.end() == position:
            break
        position = m.end()
    m = _ROOT_TAG.match(head, position)
    return m.group(1).decode("ascii", "replace").rpartition(":")[2] if m else None


def wrong_format(path: str, head: bytes) -> ReadFailure | None:
    """A failure naming the right ``--source`` when ``head`` starts a document that is no MediaWiki dump."""
    encoding = detect_encoding(head[:256])
    try:
        text = head.decode(encoding, errors="ignore").lstrip("\ufeff").encode("utf-8")
    except LookupError:
        return None
    name = root_element_name(text)
    if name is None and not text.strip():
        return ReadFailure(path, None, "empty_file", f"{path}: empty file (no XML after decompression)")
    if name is None or name == "mediawiki":
        return None
    hint = SOURCE_OF_ROOT.get(name)
    return ReadFailure(path, None, "wrong_format", f"{path}: root element <{name}> is not a MediaWiki dump"
                       + (f"; this is a {hint} file: use --source {hint}" if hint else ""))


class _Resync:
    """The bytes fed to the current parser from the start of its oldest unfinished ``<page>``, so that
    after a fault the page in progress can be named and parsing resumes at the next ``<page>``."""

    def __init__(self, encoding: str):
        self.marker = "<page>".encode(encoding)
        self.pending = bytearray()
        self.starts: list[int] = []  # offsets in pending of the <page> tags seen there
        self.scanned = 0

    def add(self, data: bytes) -> None:
        self.pending += data
        position = max(0, self.scanned - len(self.marker) + 1)
        while (found := self.pending.find(self.marker, position)) >= 0:
            if not self.starts or found > self.starts[-1]:
                self.starts.append(found)
            position = found + 1
        self.scanned = len(self.pending)

    def finished(self, pages: int) -> None:
        """``pages`` pages ended: drop their bytes."""
        if not pages:
            return
        del self.starts[:pages]
        cut = self.starts[0] if self.starts else max(0, len(self.pending) - len(self.marker) + 1)
        del self.pending[:cut]
        self.starts = [start - cut for start in self.starts]
        self.scanned = len(self.pending)

    def unfinished(self) -> tuple[str | None, str]:
        """(page id, title) of the page in progress, as far as its bytes tell."""
        if not self.starts:
            return None, ""
        end = self.starts[1] if len(self.starts) > 1 else len(self.pending)
        text = bytes(self.pending[self.starts[0]:min(end, self.starts[0] + 4096)]).decode("utf-8", "replace")
        page_id = re.search(r"<id>\s*(\d+)\s*</id>", text)
        title = re.search(r"<title>(.*?)</title>", text, re.S)
        return (page_id.group(1) if page_id else None), (title.group(1) if title else "")

    def after_fault(self) -> bytes | None:
        """The bytes from the ``<page>`` after the one in progress (None: not seen yet); resets."""
        rest = bytes(self.pending[self.starts[1]:]) if len(self.starts) > 1 else None
        self.pending, self.starts, self.scanned = bytearray(), [], 0
        return rest


def _fault_reason(message: str) -> str:
    return "page_too_large" if "too long" in message or "huge" in message.lower() else "bad_xml"


class _WholeFileReader:
    """One file, parsed as a stream; a fault (bad XML, a page too large, undecompressable bytes) costs
    the page it falls in: the pages parsed before it are handed over and parsing resumes at the next
    ``<page>`` with a fresh parser inside a synthetic root."""

    def __init__(self, path: str):
        self.path = path
        self.encoding = "UTF-8"
        self.parser: StreamParser | None = None
        self.resync: _Resync | None = None
        self.site = SiteInfo()
        self.skipping = False  # after a fault: discard bytes until the next <page>

    def _events(self, step) -> Iterator[RawPage | ReadFailure]:
        pages = 0
        try:
            for item in step():
                pages += 1
                yield item
        finally:
            if self.resync is not None:
                self.resync.finished(pages)

    def _fault(self, reason: str, message: str, where: str) -> Iterator[RawPage | ReadFailure]:
        """Hand over what the parser finished, report the page in progress, and resync."""
        yield from self._events(self.parser.drain)
        self.site = self.parser.site
        page_id, title = self.resync.unfinished()
        if page_id or title:
            yield ReadFailure(self.path, page_id, reason, f"{self.path}: page {title!r}: {message} ({where})", page_read=True)
        elif reason != "gap":
            yield ReadFailure(self.path, None, reason, f"{self.path}: {message} ({where})")
        rest = self.resync.after_fault()
        self.parser = None
        self.skipping = True
        if rest is not None:
            yield from self._feed(rest, where)

    def _feed(self, data: bytes, where: str) -> Iterator[RawPage | ReadFailure]:
        if self.skipping:
            self.resync.add(data)
            if not self.resync.starts:
                self.resync.after_fault()
                return
            data = bytes(self.resync.pending[self.resync.starts[0]:])
            self.resync.after_fault()
            self.skipping = False
            self.parser = StreamParser(self.path, self.site, self.encoding, wrap=True)
        self.resync.add(data)
        try:
            yield from self._events(lambda: self.parser.feed(data))
        except etree.XMLSyntaxError as exc:
            yield from self._fault(_fault_reason(str(exc)), f"XML error: {exc}", where)
            return
        if self.resync.starts and len(self.resync.pending) - self.resync.starts[0] > MAX_PAGE_BYTES:
            yield from self._fault("page_too_large", f"page larger than {MAX_PAGE_BYTES} bytes", where)

    def _start(self, head: bytes) -> ReadFailure | None:
        """The first bytes: refuse another format, else set up the parser for the encoding found."""
        failure = wrong_format(self.path, head)
        if failure is None:
            self.encoding = detect_encoding(head[:256])
            self.parser = StreamParser(self.path, SiteInfo())
            self.resync = _Resync(self.encoding)
        return failure

    def read(self) -> Iterator[RawPage | ReadFailure]:
        head = b""
        gapped = False
        where = "at the start of the file"
        try:
            for offset, item in prefetched(recovering_chunks(self.path)):
                where = f"near compressed byte {offset}"
                if isinstance(item, Gap):
                    if self.resync is None and head:  # what came before the gap
                        if (failure := self._start(head)) is not None:
                            yield failure
                            return
                        yield from self._feed(head, where)
                        head = b""
                    if self.parser is not None and not self.skipping:
                        yield from self._fault(item.reason, "the page's bytes could not be decompressed", where)
                    yield ReadFailure(self.path, None, item.reason, item.detail)
                    self.skipping = gapped = True
                    continue
                if self.resync is None:  # format and encoding from the first 4 KB
                    head += item
                    if len(head) < 4096:
                        continue
                    if (failure := self._start(head)) is not None:
                        yield failure
                        return
                    item, head = head, b""
                yield from self._feed(item, where)
            if self.resync is None:
                if gapped and not head:  # nothing readable at all: the gap is the one failure
                    return
                if (failure := self._start(head)) is not None:
                    yield failure
                    return
                yield from self._feed(head, where)
            if self.parser is not None and not self.skipping:
                try:
                    yield from self._events(self.parser.close)
                except etree.XMLSyntaxError as exc:
                    yield from self._fault("truncated", f"the XML ends early: {exc}", "at the end of the file")
        except UnsafeXmlError as exc:
            yield ReadFailure(self.path, None, "unsafe_xml", str(exc))


def _read_whole_file(path: str) -> Iterator[RawPage | ReadFailure]:
    return _WholeFileReader(path).read()


# --------------------------------------------------------------------------------------------
# Multistream: index, header, ranges


def read_pages(unit: WorkUnit) -> Iterator[RawPage | ReadFailure]:
    """Every page of a work unit, in file order; unreadable parts become ``ReadFailure``s."""
    if unit.streams:
        from linkbert.pipeline.sources.multistream import read_range  # multistream builds on this module

        return read_range(unit)
    return _read_whole_file(unit.path)
