"""Reading MediaWiki XML dumps: whole files, and multistream files split by their index.

A dump is read as one of two kinds of *work unit*:

* a whole file (``.xml``, ``.xml.bz2``, ``.xml.gz``; compression found from the magic bytes), parsed
  as one stream: the XML's own encoding (BOM or declaration) is honoured. Undecompressable bz2 bytes
  are skipped to the next intact block, found by its magic as ``bzip2recover`` does
  (``compressed.recovering_chunks``); a DOCTYPE that declares entities is refused, and a file whose
  root is not ``<mediawiki>`` is refused naming the ``--source`` that fits;
* a byte range of a multistream ``.xml.bz2``: consecutive bz2 streams, each holding whole ``<page>``
  elements, located by the ``…-multistream-index.txt.bz2`` (lines ``offset:page_id:title``). The
  header stream before the first indexed offset gives the ``<siteinfo>`` and the encoding, once, at
  planning time; every stream of a range is then parsed on its own, inside a synthetic root element.
  A corrupt or truncated stream costs only its own pages: the error names the file and its offset
  and the next stream is read.

In both, a fault costs only the pages it overlaps (``wikirecover``): bad XML (invalid UTF-8, a page
over libxml2's 10 MB text limit, a cut) loses the page it falls in, named by id and title, and every
complete page around it is kept.

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
from linkbert.pipeline.sources.safe_xml import refuse_entity_declarations

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
    # the (last) revision's <timestamp> and <id>: which of two pages with one page id is the latest
    timestamp: str = ""
    revision_id: int = -1


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
    timestamp, revision_id = "", -1
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
                field_name = local_name(field.tag)
                if field_name == "text":
                    text = field.text
                elif field_name == "timestamp":
                    timestamp = (field.text or "").strip()
                elif field_name == "id" and (field.text or "").strip().isdigit():
                    revision_id = int(field.text.strip())
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
    return RawPage(page_id, title, namespace, text or "", redirect, source_file, site, timestamp, revision_id)


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


# --------------------------------------------------------------------------------------------
# Multistream: index, header, ranges


def read_pages(unit: WorkUnit) -> Iterator[RawPage | ReadFailure]:
    """Every page of a work unit, in file order; unreadable parts become ``ReadFailure``s."""
    if unit.streams:
        from linkbert.pipeline.sources.multistream import read_range  # multistream builds on this module

        return read_range(unit)
    from linkbert.pipeline.sources.wikirecover import read_whole_file  # builds on this module

    return read_whole_file(unit.path)
