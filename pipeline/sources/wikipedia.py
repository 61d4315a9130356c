"""The Wikipedia source: MediaWiki XML dumps -> documents, redirects and dead letters (Apache Beam).

    outputs = pipeline | "ReadWikipedia" >> ReadWikipedia("gs://…/enwiki-…-pages-articles-multistream.xml.bz2")

Steps, top to bottom:

* ``MatchFiles``: the file pattern (a glob, or comma-separated globs) -> dump files; multistream index
  files a glob also matches are set aside.
* ``PlanWorkUnits`` (``multistream_plan``): a multistream dump with its index (``index_pattern``, or
  the ``…-multistream-index.txt.bz2`` beside it), or without one under ``build_index`` (its bz2
  streams found in a parallel first pass), becomes byte ranges of whole bz2 streams, so that one
  20 GB file is parsed by many workers; the index, too, is read in parallel pieces. Any other file is
  one unit. ``Reshuffle`` spreads the units.
* ``ReadPages``: a unit -> raw pages (``linkbert.pipeline.sources.wikidump``); an unreadable stream or page is
  a dead letter naming the file and byte offset or page id, and reading goes on.
* ``CleanPages``: namespace filter (default: articles), redirects (from ``<redirect title=…>``) to
  the ``redirects`` output, empty and disambiguation pages dropped, wikitext cleaned and out-links
  extracted (``linkbert.pipeline.sources.wikitext``); a page the parser fails on is a dead letter.
* ``DropDuplicatePages``: two pages with one page id (two dumps, overlapping globs) are never both
  documents: the latest revision is kept, the others are dead letters (``duplicate_page_id``).

Every page read is counted once (``linkbert.pipeline.records.counter``): ``wikipedia.pages_read`` =
``articles_written`` + ``duplicates_superseded`` + ``redirects`` + ``filtered.<namespace|empty|disambiguation>`` + ``failed``,
checked by ``reconcile``. Outside that sum: ``unreadable_streams`` (corrupt or truncated parts of a
dump, whose pages were never read) and ``work_units``.
"""

from __future__ import annotations

import logging
import re

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.pvalue import TaggedOutput

from linkbert.pipeline import progress
from linkbert.pipeline.edges.titles import is_valid_title, normalize_title
from linkbert.pipeline.records import counter, error_record
from linkbert.pipeline.sources import Source, register
from linkbert.pipeline.sources.multistream import DEFAULT_RANGE_BYTES, find_index, index_name_for
from linkbert.pipeline.sources.multistream_plan import INDEX_PIECE_BYTES, PlanWorkUnits
from linkbert.pipeline.sources.wikidump import RawPage, WorkUnit, read_pages
from linkbert.pipeline.sources.wikimarkup import disambiguation_template_name, expand_title_magic_words, marks_disambiguation
from linkbert.pipeline.sources.wikitext import WikitextCleaner, WikitextError, is_disambiguation

__all__ = ["ReadWikipedia", "normalize_title", "page_outcome", "reconcile"]

LOG = logging.getLogger(__name__)
SOURCE = "wikipedia"
ERRORS = "errors"
REDIRECTS = "redirects"


def _split_patterns(patterns: str) -> list[str]:
    return [pattern.strip() for pattern in patterns.split(",") if pattern.strip()]


def _is_index_file(path: str) -> bool:
    return "-multistream-index" in FileSystems.split(path)[1]


def _match(patterns: list[str]) -> list:
    return [m for pattern in patterns for m in FileSystems.match([pattern])[0].metadata_list]


def _match_dumps(file_patterns: list[str], index_patterns: list[str]) -> list[tuple[str, int, str | None]]:
    """(path, size, multistream index or None) of every dump file; a pattern matching nothing is an
    error. Indexes pair with dumps by name (``…-multistream….xml…`` -> ``…-multistream-index….txt…``);
    one index left over pairs with the one dump left over."""
    dumps = {}
    for pattern in file_patterns:
        matched = [m for m in _match([pattern]) if not _is_index_file(m.path)]
        if not matched:
            raise ValueError(f"ReadWikipedia: no dump file matches {pattern!r}")
        dumps.update((m.path, m.size_in_bytes) for m in matched)
    if not index_patterns:
        return [(path, size, find_index(path)) for path, size in sorted(dumps.items())]
    indexes = {FileSystems.split(m.path)[1]: m.path for m in _match(index_patterns)}
    if not indexes:
        raise ValueError(f"ReadWikipedia: no index file matches {','.join(index_patterns)!r}")
    paired = {path: indexes.pop(index_name_for(FileSystems.split(path)[1]) or "", None) for path in dumps}
    unpaired = [path for path, index in paired.items() if index is None]
    if len(unpaired) == 1 and len(indexes) == 1:
        paired[unpaired[0]] = indexes.popitem()[1]
    elif indexes:
        LOG.warning("ReadWikipedia: index files %s pair with no dump file", sorted(indexes.values()))
    return [(path, dumps[path], paired[path]) for path in sorted(dumps)]


class _ReadPages(beam.DoFn):
    """WorkUnit -> RawPage; unreadable streams and pages -> dead letters."""

    def setup(self):
        self._read = counter("wikipedia.pages_read")
        self._failed = counter("wikipedia.failed")
        self._unreadable = counter("wikipedia.unreadable_streams")

    def process(self, unit: WorkUnit):
        for item in read_pages(unit):
            if isinstance(item, RawPage):
                self._read.inc()
                progress.add("pages")
                yield item
                continue
            if item.page_read:  # a <page> that was read but not understood
                self._read.inc()
                self._failed.inc()
            else:
                self._unreadable.inc()
            yield TaggedOutput(ERRORS, error_record("wikipedia.read", item.source_file, item.record_id, item.reason, item.detail))

    def finish_bundle(self):
        progress.flush()


# MediaWiki's #REDIRECT magic word (and common localisations), as the parser reads it: at the start
# of the text, then a link whose target is the redirect's.
_REDIRECT_TEXT = re.compile(
    r"\s*#(?:REDIRECT|WEITERLEITUNG|REDIRECTION|REDIRECCIÓN|RINVIA|PATRZ|ПЕРЕНАПРАВЛЕНИЕ|ПРЕНАСОЧВАНЕ)\s*:?\s*"
    r"\[\[([^\]|\n]+)", re.IGNORECASE)


def page_outcome(page: RawPage, cleaner: WikitextCleaner, namespaces, keep_disambiguation: bool = False,
                 disambiguation_templates: frozenset = frozenset()):
    """What becomes of one page: (kind, record, reason) with kind one of ``document`` (record: a
    documents row), ``redirect`` (record: {"title", "target"}), ``filtered`` (record None, reason:
    namespace | empty | disambiguation) or ``failed`` (record: an error record)."""
    site = page.site
    if page.namespace not in namespaces:
        return "filtered", None, "namespace"
    redirect = page.redirect
    if redirect is None:  # a dump without <redirect> elements: the text says it
        match = _REDIRECT_TEXT.match(page.text)
        redirect = match.group(1) if match else None
    if redirect is not None:
        title = site.normalize(page.title)
        target = site.normalize(redirect.split("#", 1)[0])
        if not is_valid_title(target) or not is_valid_title(title):
            detail = f"page {page.title!r}: redirect target {redirect!r} is not a valid title"
            return "failed", error_record("wikipedia.clean", page.source_file, page.page_id, "bad_redirect", detail), "bad_redirect"
        return "redirect", {"title": title, "target": target}, ""
    if not page.text.strip():
        return "filtered", None, "empty"
    if not keep_disambiguation and (is_disambiguation(page.title, page.text)
                                    or marks_disambiguation(page.text, disambiguation_templates)):
        return "filtered", None, "disambiguation"
    try:
        cleaned = cleaner.clean(expand_title_magic_words(page.text, page.title))
    except WikitextError as exc:
        detail = f"page {page.title!r}: {exc}"
        return "failed", error_record("wikipedia.clean", page.source_file, page.page_id, "parse_error", detail), "parse_error"
    except Exception as exc:  # noqa: BLE001 - one pathological page must never end its file
        detail = f"page {page.title!r}: {type(exc).__name__}: {exc}"
        return "failed", error_record("wikipedia.clean", page.source_file, page.page_id, "clean_error", detail), "clean_error"
    if not cleaned.text:
        return "filtered", None, "empty"
    document = {
        "doc_id": page.page_id,
        "title": page.title,
        "text": cleaned.text,
        "source": SOURCE,
        "outlinks": cleaned.outlinks,
        "links": [{"start": start, "end": end, "target": target} for start, end, target in cleaned.links],
        "source_file": page.source_file,
    }
    return "document", document, ""


_VERSION = "_version"  # (timestamp, revision id, file) of a cleaned page, until duplicates are resolved


class _CollectVersions(beam.CombineFn):
    """doc_id -> the versions seen: small tuples, so finding duplicates shuffles no text."""

    def create_accumulator(self):
        return []

    def add_input(self, accumulator, version):
        accumulator.append(version)
        return accumulator

    def merge_accumulators(self, accumulators):
        return [version for accumulator in accumulators for version in accumulator]

    def extract_output(self, accumulator):
        return accumulator


def _pick_latest(keyed):
    """(doc_id, documents sharing it) -> the kept document, then the superseded ones."""
    _doc_id, documents = keyed
    ranked = sorted(documents, key=lambda d: (d[_VERSION], d["title"], d["text"]), reverse=True)
    return ranked[0], ranked[1:]


class _ResolveDuplicates(beam.DoFn):
    def setup(self):
        self._written = counter("wikipedia.articles_written")
        self._superseded = counter("wikipedia.duplicates_superseded")

    def process(self, keyed):
        kept, superseded = _pick_latest(keyed)
        for document in superseded:
            self._written.dec()
            self._superseded.inc()
            timestamp, revision, _file = document[_VERSION]
            kept_timestamp, kept_revision, kept_file = kept[_VERSION]
            yield TaggedOutput(ERRORS, error_record(
                "wikipedia.duplicates", document["source_file"], document["doc_id"], "duplicate_page_id",
                f"page id {document['doc_id']} ({document['title']!r}, revision {revision}, {timestamp or 'no timestamp'})"
                f" also in {kept_file} ({kept['title']!r}, revision {kept_revision}, {kept_timestamp or 'no timestamp'}),"
                " which is kept as the latest revision"))
        yield {key: value for key, value in kept.items() if key != _VERSION}


class DropDuplicatePages(beam.PTransform):
    """Documents that may share a page id (two dumps, or a dump matched twice) -> one per id and dead letters.

    The latest revision is kept (by <timestamp>, then revision <id>, then file name, then title and text); the
    others go to the errors output as ``duplicate_page_id`` and are counted in ``wikipedia.duplicates_superseded``
    (and not in ``articles_written``). Only page ids and versions cross a shuffle unless an id is duplicated.
    """

    def expand(self, documents):
        duplicated = (
            documents
            | "Versions" >> beam.Map(lambda d: (d["doc_id"], d[_VERSION]))
            | "CollectVersions" >> beam.CombinePerKey(_CollectVersions())
            | "Duplicated" >> beam.FlatMap(lambda kv: [(kv[0], True)] if len(kv[1]) > 1 else [])
        )
        split = documents | "SplitDuplicated" >> beam.Partition(
            lambda d, _n, ids: int(d["doc_id"] in ids), 2, beam.pvalue.AsDict(duplicated))
        unique = split[0] | "StripVersion" >> beam.Map(lambda d: {key: value for key, value in d.items() if key != _VERSION})
        resolved = (
            split[1]
            | "KeyById" >> beam.Map(lambda d: (d["doc_id"], d))
            | "GroupById" >> beam.GroupByKey()
            | "KeepLatest" >> beam.ParDo(_ResolveDuplicates()).with_outputs(ERRORS, main="documents")
        )
        documents_out = (unique, resolved.documents) | "AllDocuments" >> beam.Flatten()
        return {"documents": documents_out, "errors": resolved[ERRORS]}


class _CleanPages(beam.DoFn):
    """RawPage -> documents / redirects / dead letters, counting each outcome."""

    def __init__(self, namespaces, keep_disambiguation: bool):
        self._namespaces = frozenset(namespaces)
        self._keep_disambiguation = keep_disambiguation

    def setup(self):
        self._cleaner: WikitextCleaner | None = None
        self._written = counter("wikipedia.articles_written")
        self._redirects = counter("wikipedia.redirects")
        self._failed = counter("wikipedia.failed")
        self._filtered: dict[str, object] = {}

    def _cleaner_for(self, page: RawPage) -> WikitextCleaner:
        cleaner = self._cleaner
        if cleaner is None or (cleaner.site is not page.site and cleaner.site != page.site):
            cleaner = self._cleaner = WikitextCleaner(page.site, self._namespaces)
        return cleaner

    def process(self, page: RawPage, disambiguation_templates=()):
        if getattr(self, "_templates_from", None) is not disambiguation_templates:  # once per side-input value
            self._templates_from, self._templates = disambiguation_templates, frozenset(disambiguation_templates)
        kind, record, reason = page_outcome(page, self._cleaner_for(page), self._namespaces, self._keep_disambiguation,
                                            self._templates)
        if kind == "document":
            self._written.inc()
            yield {**record, _VERSION: (page.timestamp, page.revision_id, page.source_file)}
        elif kind == "redirect":
            self._redirects.inc()
            yield TaggedOutput(REDIRECTS, record)
        elif kind == "filtered":
            if reason not in self._filtered:
                self._filtered[reason] = counter(f"wikipedia.filtered.{reason}")
            self._filtered[reason].inc()
        else:
            self._failed.inc()
            yield TaggedOutput(ERRORS, record)


class ReadWikipedia(beam.PTransform):
    """MediaWiki XML dumps -> {"documents", "redirects", "errors"} PCollections.

    ``file_pattern``: a glob or comma-separated globs of ``.xml``, ``.xml.bz2`` (multistream or not)
    or ``.xml.gz`` dumps. ``namespaces``: page namespaces kept (default articles). ``index_pattern``:
    multistream index file(s); by default the index beside each ``…-multistream….xml….bz2`` is used
    when it exists. ``range_bytes``: compressed bytes per parallel work unit of a multistream dump.
    ``build_index``: find the bz2 streams of a dump without an index in a parallel first pass (else such
    a dump is one work unit, with a warning). ``index_piece_bytes``: compressed index bytes per worker.
    """

    def __init__(
        self,
        file_pattern: str,
        namespaces=(0,),
        keep_disambiguation: bool = False,
        index_pattern: str | None = None,
        range_bytes: int = DEFAULT_RANGE_BYTES,
        build_index: bool = False,
        index_piece_bytes: int = INDEX_PIECE_BYTES,
    ):
        super().__init__()
        if not _split_patterns(file_pattern):
            raise ValueError("ReadWikipedia: empty file pattern")
        if range_bytes <= 0:
            raise ValueError(f"ReadWikipedia: range_bytes must be positive, got {range_bytes}")
        self._file_pattern = file_pattern
        self._namespaces = tuple(int(n) for n in namespaces)
        self._keep_disambiguation = keep_disambiguation
        self._index_pattern = index_pattern
        self._range_bytes = range_bytes
        self._build_index = build_index
        self._index_piece_bytes = index_piece_bytes

    def expand(self, pbegin):
        patterns = (_split_patterns(self._file_pattern), _split_patterns(self._index_pattern or ""))
        planned = (
            pbegin
            | "Patterns" >> beam.Create([patterns])
            | "MatchFiles" >> beam.FlatMapTuple(_match_dumps)
            | "ReshuffleFiles" >> beam.Reshuffle()
            | "PlanWorkUnits" >> PlanWorkUnits(self._range_bytes, self._build_index, self._index_piece_bytes)
        )
        read = (
            planned["units"]
            | "ReshuffleUnits" >> beam.Reshuffle()
            | "ReadPages" >> beam.ParDo(_ReadPages()).with_outputs(ERRORS, main="pages")
        )
        # the templates this wiki marks as disambiguation (template pages holding __DISAMBIG__): a few names
        disambiguation = (
            read.pages
            | "DisambiguationTemplates" >> beam.FlatMap(
                lambda p: [name] if (name := disambiguation_template_name(p.namespace, p.title, p.text)) else [])
            | "DistinctTemplates" >> beam.Distinct()
        )
        cleaned = read.pages | "CleanPages" >> beam.ParDo(
            _CleanPages(self._namespaces, self._keep_disambiguation), beam.pvalue.AsList(disambiguation)
        ).with_outputs(REDIRECTS, ERRORS, main="documents")
        deduplicated = cleaned.documents | "DropDuplicatePages" >> DropDuplicatePages()
        errors = (planned["errors"], read[ERRORS], cleaned[ERRORS], deduplicated["errors"]) | "MergeErrors" >> beam.Flatten()
        return {"documents": deduplicated["documents"], "redirects": cleaned[REDIRECTS], "errors": errors}


def reconcile(counters: dict[str, int]) -> tuple[bool, list[str]]:
    """Check read = written + superseded duplicates + redirects + filtered(reason) + failed over the run's counters
    (``linkbert.pipeline.records.counter`` names; missing ones are 0), and that no dump part was unreadable
    -> (holds, summary lines)."""

    def get(name: str) -> int:
        return int(counters.get(f"wikipedia.{name}", 0) or 0)

    read, written, redirects, failed = get("pages_read"), get("articles_written"), get("redirects"), get("failed")
    superseded = get("duplicates_superseded")
    prefix = "wikipedia.filtered."
    filtered = {name[len(prefix):]: int(value or 0) for name, value in counters.items() if name.startswith(prefix)}
    accounted = written + superseded + redirects + sum(filtered.values()) + failed
    holds = read == accounted
    reasons = ", ".join(f"{reason} {count}" for reason, count in sorted(filtered.items())) or "none"
    lines = [
        f"wikipedia: {read} pages read = {written} articles written"
        + (f" + {superseded} superseded (a later revision of the same page id is kept)" if superseded else "")
        + f" + {redirects} redirects"
        f" + {sum(filtered.values())} filtered ({reasons}) + {failed} failed"
        + (": reconciled" if holds else f": MISMATCH, {read - accounted:+d} pages unaccounted for")
    ]
    unreadable = get("unreadable_streams")
    if unreadable:  # their pages were never read, so the sum above cannot hold them: a loss all the same
        lines[0] = lines[0].replace(": reconciled", ": reconciled over the pages read")
        lines.append(f"wikipedia: LOST {unreadable} unreadable file(s) or dump part(s) (empty, corrupt, truncated,"
                     " refused); their pages are not in the sum; see the errors output")
    units = get("work_units")
    if units:
        lines.append(f"wikipedia: the dumps were read as {units} work unit(s)")
    return holds and not unreadable, lines  # like PubMed's: a file or stream lost is not reconciled


def _read_from_options(pipeline, config) -> dict:
    namespaces = tuple(int(value) for value in config.namespaces.split(",") if value.strip())
    return pipeline | "ReadWikipedia" >> ReadWikipedia(
        config.input, namespaces=namespaces, keep_disambiguation=config.keep_disambiguation,
        index_pattern=config.wiki_index, range_bytes=max(1, int(config.wiki_range_mb * (1 << 20))),
        build_index=getattr(config, "build_wiki_index", False),
    )


register(Source("wikipedia", default_links="hyperlink", read=_read_from_options, reconcile=reconcile))
