"""Write a synthetic Wikipedia pages-articles dump (MediaWiki export schema 0.11) with ground truth.

Files written into ``out_dir`` for ``name`` (default ``synthwiki-20240101-pages-articles``):

``<name>.xml.bz2``
    one bz2 stream: ``<mediawiki>`` header and ``<siteinfo>``, every ``<page>``, ``</mediawiki>``.
``<name>-multistream.xml.bz2`` and ``<name>-multistream-index.txt.bz2`` (with ``multistream=True``)
    the layout of Wikipedia's multistream dumps: a concatenation of independent bz2 streams (the
    header and siteinfo; then ``pages_per_stream`` pages per stream; then ``</mediawiki>``), and an
    index with one ``offset:page_id:title`` line per page, where ``offset`` is the byte offset in the
    ``.xml.bz2`` file of the stream holding that page and ``title`` is the raw title (it may contain
    ``:``; split at the first two). The decompressed content equals that of ``<name>.xml.bz2``.
``<name>-truth.tsv.gz``
    the planted link graph, tab-separated with a header line:
    ``source_id  source_title  target_id  target_title  relation``. One row per distinct
    (source, target) edge between *articles* (namespace 0, not redirects, not disambiguation
    pages), after following redirects; never a self-link. ``relation`` names the sentence that
    carries the link (e.g. ``drained_by``). In-degree of an article = its rows as target.
``<name>-pages.tsv.gz``
    one row per page: ``page_id  ns  title  kind  redirect_target  entity_index  entity_kind
    prose_words  out_links  facts``; ``kind`` is article, redirect, disambiguation, project,
    template or category; ``entity_index``/``entity_kind`` name the entity a page is about (for a
    redirect, the one it leads to); ``facts`` (articles only) is a JSON object of the entity's
    attributes, including its ``name``, i.e. what its article states, for probing and multi-hop
    questions; ``prose_words`` approximates reader-visible words of an article.

Everything is a pure function of ``(num_docs, seed)``: the same arguments give byte-identical files.
Memory stays O(1) per page: pages are rendered and compressed one at a time.
"""

from __future__ import annotations

import bz2
import collections
import datetime
import gzip
import hashlib
import io
import json
import logging
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from pathlib import Path
from xml.sax.saxutils import escape

from linkbert.pipeline.synth.names import GIVEN_NAMES
from linkbert.pipeline.synth.randomness import keyed_rng
from linkbert.pipeline.synth.wikiworld import (
    DEFAULT_ARTICLE_WORDS,
    SITE_NAME,
    Page,
    WikiWorld,
    article_page_id,
)

LOG = logging.getLogger(__name__)

DEFAULT_NAME = "synthwiki-20240101-pages-articles"
EXPORT_NS = "http://www.mediawiki.org/xml/export-0.11/"

NAMESPACES = (
    (-2, "Media"), (-1, "Special"), (0, ""), (1, "Talk"), (2, "User"), (3, "User talk"),
    (4, SITE_NAME), (5, f"{SITE_NAME} talk"), (6, "File"), (7, "File talk"), (8, "MediaWiki"),
    (9, "MediaWiki talk"), (10, "Template"), (11, "Template talk"), (12, "Help"), (13, "Help talk"),
    (14, "Category"), (15, "Category talk"), (100, "Portal"), (101, "Portal talk"), (118, "Draft"),
    (119, "Draft talk"), (828, "Module"), (829, "Module talk"),
)

# Helper fields used by the sentence templates, not facts about the entity.
_TEMPLATE_ONLY_FACTS = frozenset(
    {"N", "P", "late_life", "born_text", "was_is", "occupation_plural", "industry_cap", "era", "title",
     "kind", "pronoun", "poss"}
)
_EPOCH = datetime.datetime(2008, 1, 1, tzinfo=datetime.timezone.utc)


def _text(value: str) -> str:
    return escape(value, {'"': "&quot;"})


def _base36_sha1(data: bytes) -> str:
    """MediaWiki's revision hash: SHA-1 in base 36, zero-padded to 31 digits."""
    number = int.from_bytes(hashlib.sha1(data).digest(), "big")
    digits = []
    while number:
        number, digit = divmod(number, 36)
        digits.append("0123456789abcdefghijklmnopqrstuvwxyz"[digit])
    return "".join(reversed(digits)).rjust(31, "0")


def siteinfo_header() -> str:
    namespaces = "\n".join(
        f'      <namespace key="{key}" case="first-letter" />' if not label
        else f'      <namespace key="{key}" case="first-letter">{_text(label)}</namespace>'
        for key, label in NAMESPACES
    )
    return (
        f'<mediawiki xmlns="{EXPORT_NS}" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
        f'xsi:schemaLocation="{EXPORT_NS} http://www.mediawiki.org/xml/export-0.11.xsd" version="0.11" xml:lang="en">\n'
        "  <siteinfo>\n"
        f"    <sitename>{SITE_NAME}</sitename>\n"
        "    <dbname>synthwiki</dbname>\n"
        "    <base>https://synth.example.org/wiki/Main_Page</base>\n"
        "    <generator>MediaWiki 1.42.0-wmf.5</generator>\n"
        "    <case>first-letter</case>\n"
        "    <namespaces>\n"
        f"{namespaces}\n"
        "    </namespaces>\n"
        "  </siteinfo>\n"
    )


FOOTER = "</mediawiki>\n"


def page_xml(page: Page, seed: int) -> str:
    """One ``<page>`` element as a real dump writes it (two-space indentation, trailing newline)."""
    rng = keyed_rng(seed, "wiki-revision", page.page_id)
    data = page.text.encode("utf-8")
    sha1 = _base36_sha1(data)
    revision_id = 5_000_000 + 7 * page.page_id + rng.randrange(7)
    timestamp = (_EPOCH + datetime.timedelta(seconds=rng.randrange(16 * 365 * 86400))).strftime("%Y-%m-%dT%H:%M:%SZ")
    lines = [
        "  <page>",
        f"    <title>{_text(page.title)}</title>",
        f"    <ns>{page.ns}</ns>",
        f"    <id>{page.page_id}</id>",
    ]
    if page.redirect is not None:
        lines.append(f'    <redirect title="{_text(page.redirect)}" />')
    lines += ["    <revision>", f"      <id>{revision_id}</id>"]
    if rng.random() < 0.8:
        lines.append(f"      <parentid>{revision_id - rng.randint(1, 5_000_000)}</parentid>")
    lines.append(f"      <timestamp>{timestamp}</timestamp>")
    if rng.random() < 0.85:
        user = f"{rng.choice(GIVEN_NAMES)}{rng.randint(1, 999)}"
        lines += ["      <contributor>", f"        <username>{user}</username>",
                  f"        <id>{rng.randint(1, 40_000_000)}</id>", "      </contributor>"]
    else:
        lines += ["      <contributor>", f"        <ip>192.0.2.{rng.randint(1, 254)}</ip>", "      </contributor>"]
    if rng.random() < 0.2:
        lines.append("      <minor />")
    if rng.random() < 0.7:
        comment = rng.choice(("Copy edit", "/* History */ expanded", "Added a reference & fixed links",
                              "Reverted edits by [[Special:Contributions/192.0.2.7|192.0.2.7]]",
                              "<nowiki>{{cn}}</nowiki> tags resolved"))
        lines.append(f"      <comment>{_text(comment)}</comment>")
    lines += [
        f"      <origin>{revision_id}</origin>",
        "      <model>wikitext</model>",
        "      <format>text/x-wiki</format>",
        f'      <text bytes="{len(data)}" sha1="{sha1}" xml:space="preserve">{_text(page.text)}</text>',
        f"      <sha1>{sha1}</sha1>",
        "    </revision>",
        "  </page>",
    ]
    return "\n".join(lines) + "\n"


def iter_pages(world: WikiWorld) -> Iterator[Page]:
    """Every page of the dump in page-id order."""
    yield from world.special_pages()
    for index in range(world.num_docs):
        yield world.article(index)
        yield from world.redirects(index)
        disambiguation = world.disambiguation(index)
        if disambiguation is not None:
            yield disambiguation
        if index and index % 20_000 == 0:
            LOG.info("rendered %d of %d documents", index, world.num_docs)


@contextmanager
def atomic_path(path: Path):
    """Yield a temporary path beside ``path``; move it into place only if the block succeeds."""
    temporary = path.with_name(path.name + ".partial")
    try:
        yield temporary
        os.replace(temporary, path)
    finally:
        if temporary.exists():
            temporary.unlink()


@contextmanager
def gzip_text_writer(path: Path):
    """A UTF-8 text gzip writer with no file name or time stamp in its header, so reruns are
    byte-identical."""
    with open(path, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=6, mtime=0) as packed:
        with io.TextIOWrapper(packed, encoding="utf-8", newline="\n") as text:
            yield text


def _tsv(fields) -> str:
    return "\t".join("" if f is None else str(f) for f in fields) + "\n"


def _facts_json(page: Page) -> str:
    if page.entity is None or page.kind != "article":
        return ""
    facts = {k: v for k, v in page.entity.facts.items() if k not in _TEMPLATE_ONLY_FACTS}
    return json.dumps(facts, sort_keys=True, ensure_ascii=False)


class _BackgroundJobs:
    """Runs jobs in submission order on one background thread, a bounded number ahead.

    bz2 releases the GIL while it compresses, so compression overlaps rendering the next pages.
    """

    def __init__(self, max_pending: int = 8) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="synth-bz2")
        self._pending: collections.deque = collections.deque()
        self._max_pending = max_pending

    def submit(self, job, *args) -> None:
        self._pending.append(self._pool.submit(job, *args))
        while len(self._pending) > self._max_pending:
            self._pending.popleft().result()

    def finish(self) -> None:
        while self._pending:
            self._pending.popleft().result()

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


class _SingleStreamDump:
    """``<name>.xml.bz2``: everything in one bz2 stream, compressed in chunks of about 1 MiB."""

    CHUNK = 1 << 20

    def __init__(self, file, jobs: _BackgroundJobs) -> None:
        self._file, self._jobs = file, jobs
        self._compressor = bz2.BZ2Compressor(9)
        self._buffer: list[str] = []
        self._size = 0

    def _compress(self, data: bytes, last: bool) -> None:
        self._file.write(self._compressor.compress(data) + (self._compressor.flush() if last else b""))

    def write(self, text: str, last: bool = False) -> None:
        self._buffer.append(text)
        self._size += len(text)
        if self._size >= self.CHUNK or last:
            self._jobs.submit(self._compress, "".join(self._buffer).encode("utf-8"), last)
            self._buffer, self._size = [], 0

    def add(self, page: Page, xml: str) -> None:
        self.write(xml)

    def close(self) -> None:
        self.write(FOOTER, last=True)


class _MultistreamDump:
    """``<name>-multistream.xml.bz2`` and its index: one independent bz2 stream per group of pages."""

    def __init__(self, file, index, pages_per_stream: int, jobs: _BackgroundJobs) -> None:
        self._file, self._index, self._jobs = file, index, jobs
        self._pages_per_stream = pages_per_stream
        self._pending: list[tuple[int, str, str]] = []

    def _write_stream(self, content: bytes, index_entries: list[tuple[int, str]]) -> None:
        offset = self._file.tell()
        self._file.write(bz2.compress(content, 9))
        self._index.write("".join(f"{offset}:{page_id}:{title}\n" for page_id, title in index_entries))

    def write(self, text: str) -> None:
        """A stream of its own that the index does not list (the header and the footer)."""
        self._jobs.submit(self._write_stream, text.encode("utf-8"), [])

    def add(self, page: Page, xml: str) -> None:
        self._pending.append((page.page_id, page.title, xml))
        if len(self._pending) == self._pages_per_stream:
            self._flush()

    def _flush(self) -> None:
        if self._pending:
            content = "".join(xml for _, _, xml in self._pending).encode("utf-8")
            self._jobs.submit(self._write_stream, content, [(page_id, title) for page_id, title, _ in self._pending])
            self._pending = []

    def close(self) -> None:
        self._flush()
        self.write(FOOTER)


def write_wiki_dump(
    out_dir: str | os.PathLike,
    num_docs: int,
    seed: int,
    multistream: bool = False,
    pages_per_stream: int = 100,
    name: str = DEFAULT_NAME,
    article_words: int = DEFAULT_ARTICLE_WORDS,
) -> dict[str, str]:
    """Write the dump and its ground truth; returns ``{"dump", "truth", "pages"}`` (+ ``"index"``
    for multistream) as path strings. ``article_words``: median prose words per article (see
    ``WikiWorld``; a small value gives a short-article corpus)."""
    if num_docs < 2:
        raise ValueError(f"--docs must be at least 2, got {num_docs}")
    if pages_per_stream < 1:
        raise ValueError(f"--pages-per-stream must be at least 1, got {pages_per_stream}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    world = WikiWorld(num_docs, seed, article_words)
    paths = {
        "dump": out / (f"{name}-multistream.xml.bz2" if multistream else f"{name}.xml.bz2"),
        "truth": out / f"{name}-truth.tsv.gz",
        "pages": out / f"{name}-pages.tsv.gz",
    }
    if multistream:
        paths["index"] = out / f"{name}-multistream-index.txt.bz2"

    with ExitStack() as stack:
        temporary = {key: stack.enter_context(atomic_path(path)) for key, path in paths.items()}
        truth = stack.enter_context(gzip_text_writer(temporary["truth"]))
        pages = stack.enter_context(gzip_text_writer(temporary["pages"]))
        truth.write(_tsv(("source_id", "source_title", "target_id", "target_title", "relation")))
        pages.write(_tsv(("page_id", "ns", "title", "kind", "redirect_target", "entity_index", "entity_kind",
                          "prose_words", "out_links", "facts")))
        data = stack.enter_context(open(temporary["dump"], "wb"))
        index = stack.enter_context(bz2.open(temporary["index"], "wt", encoding="utf-8", newline="\n")) if multistream else None
        jobs = _BackgroundJobs()
        stack.callback(jobs.close)  # runs before the files close, also when rendering fails
        dump = _MultistreamDump(data, index, pages_per_stream, jobs) if multistream else _SingleStreamDump(data, jobs)
        dump.write(siteinfo_header())

        for page in iter_pages(world):
            dump.add(page, page_xml(page, seed))
            entity = page.entity
            pages.write(_tsv((page.page_id, page.ns, page.title, page.kind, page.redirect,
                              entity.index if entity else None, entity.kind if entity else None,
                              page.words if page.kind == "article" else None,
                              len(page.links) if page.kind == "article" else None, _facts_json(page))))
            for target_index, relation in page.links:
                target = world.entity(target_index)
                truth.write(_tsv((page.page_id, page.title, article_page_id(target_index), target.title, relation)))

        dump.close()
        jobs.finish()
    return {key: str(path) for key, path in paths.items()}

