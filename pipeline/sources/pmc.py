"""``--source pmc``: PMC Open Access articles (JATS ``.nxml``, optionally compressed) -> documents.

The input is ``.nxml`` files (one article each, optionally compressed) and PMC's bulk packages
(``.tar.gz``/``.tgz``/``.tar``, the form of the OA bulk download), in any mix. File patterns are
matched on the workers (``fileio.MatchAll``), never listed on the driver into the job graph; a
package is read as a stream, one member at a time, and each article becomes one element (its
``source_file`` is ``<package>/<member>``), reshuffled so that one package's articles are parsed
across workers. One article is one record. ``doc_id`` is the PMID when the article has one, else the
PMC id (``PMC123``); text is the title and abstract, plus the body's paragraphs with
``include_body=True``; outlinks are the cited PMIDs. The same ``doc_id`` in several files (an
article re-issued in a later package) keeps the file that sorts last (``versions.file_version_key``)
and counts the others as ``pmc.superseded``.
"""

from __future__ import annotations

import copy
import io
import tarfile

import apache_beam as beam
from apache_beam.io import fileio
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from lxml import etree

from linkbert.pipeline import progress
from linkbert.pipeline.records import error_record
from linkbert.pipeline.sources import Source, register
from linkbert.pipeline.sources.files import (
    ERRORS,
    SourceCounters,
    open_decompressed,
)
from linkbert.pipeline.sources.pmc_jats import (
    JatsArticle,
    NotJatsError,
    read_jats_article,
)
from linkbert.pipeline.sources.safe_xml import UnsafeXmlError, iterparse_safe, parse_bytes_safe
from linkbert.pipeline.sources.versions import (
    ARTICLE,
    FILTERED,
    ResolveVersions,
    file_version_key,
    reconcile,
)


def pmc_document(article: JatsArticle, source_file: str) -> dict:
    text = "\n\n".join(part for part in (article.title, *article.abstract, *article.body) if part)
    return {
        "doc_id": article.doc_id,
        "title": article.title,
        "text": text,
        "source": "pmc",
        "outlinks": article.cited_pmids,
        "source_file": source_file,
        "language": article.language,
        "pub_year": article.pub_year,
        "mesh_terms": None,
        "doi": article.doi,
    }


PACKAGE_SUFFIXES = (".tar.gz", ".tgz", ".tar")


def is_package(path: str) -> bool:
    return path.lower().endswith(PACKAGE_SUFFIXES)


class ExpandPackages(beam.DoFn):
    """A matched file -> ``(path, None)`` for an article file, or ``(package/member, bytes)`` for
    each ``.nxml`` member of a package, read as a stream (one member held at a time). A package
    that breaks part-way keeps the articles before the break and sends the package to ``errors``."""

    STAGE = "pmc.package"

    def setup(self):
        self.counters = SourceCounters("pmc")

    def process(self, path):
        self.counters.inc("files_read")
        if not is_package(path):
            yield path, None
            return
        self.counters.inc("packages_read")
        member = None
        try:
            with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as raw, \
                    progress.counting_bytes(raw) as raw:
                mode = "r|" if path.lower().endswith(".tar") else "r|gz"
                with tarfile.open(fileobj=raw, mode=mode) as package:
                    for member in package:
                        if not (member.isfile() and member.name.lower().endswith(".nxml")):
                            continue
                        handle = package.extractfile(member)
                        yield f"{path}/{member.name}", handle.read()
        except Exception as exc:  # a truncated or corrupt package: what was read is kept
            self.counters.inc("files_failed")
            where = f" after member {member.name}" if member is not None else ""
            yield beam.pvalue.TaggedOutput(ERRORS, error_record(
                self.STAGE, path, None, "io_error", f"{path}: package unreadable{where}: {type(exc).__name__}: {exc}"))


class ParsePmcFile(beam.DoFn):
    """One article (``(path, None)`` to read, or ``(path, bytes)``) -> one keyed version (main
    output), or a dead-letter record (``errors``)."""

    STAGE = "pmc.read"

    def __init__(self, include_body: bool):
        self.include_body = include_body

    def setup(self):
        self.counters = SourceCounters("pmc")

    def process(self, article_file):
        path, data = article_file
        self.counters.inc("records_read")
        try:
            if data is None:
                with open_decompressed(path) as stream:
                    data = stream.read()
            if not data.strip():
                raise NotJatsError(f"{path}: empty file")
            if _root_name(data) == "pmc-articleset":
                yield from self._article_set(path, data)
                return
            tree = parse_bytes_safe(data, path)
        except Exception as exc:  # one bad file never ends the run
            self.counters.inc("failed")
            yield beam.pvalue.TaggedOutput(ERRORS, error_record(self.STAGE, path, None, _reason(exc), _detail(path, exc)))
            return
        yield from self._article(path, 0, tree)

    def _article_set(self, path: str, data: bytes):
        """An efetch result: each ``<article>`` of ``<pmc-articleset>`` is a record (the file counted the
        first); one cut or broken costs only itself, the articles before it are kept."""
        position = 0
        started = False  # an <article> has started and not ended
        try:
            for event, element in iterparse_safe(io.BytesIO(data), path, ("pmc-articleset", "article")):
                parent = element.getparent()
                if element.tag != "article" or parent is None or parent.tag != "pmc-articleset":
                    continue
                if event == "start":
                    started = True
                    self.counters.inc("records_read", 1 if position else 0)
                    continue
                started = False
                yield from self._article(path, position, etree.ElementTree(copy.deepcopy(element)))
                position += 1
                element.clear()
                while element.getprevious() is not None:
                    del parent[0]
        except (etree.XMLSyntaxError, UnsafeXmlError) as exc:
            if started or not position:  # the article in progress (or the file, when none was read)
                self.counters.inc("failed")
            yield beam.pvalue.TaggedOutput(ERRORS, error_record(
                self.STAGE, path, None, _reason(exc), f"{path}: article {position} of the <pmc-articleset>: {exc}"))
            return
        if not position:
            self.counters.inc("failed")
            yield beam.pvalue.TaggedOutput(ERRORS, error_record(
                self.STAGE, path, None, "not_jats", f"{path}: <pmc-articleset> holds no <article>"))

    def _article(self, path: str, position: int, tree):
        try:
            article = read_jats_article(tree, path, self.include_body)
            if article.doc_id is None:
                raise NotJatsError(f"{path}: article {position} has neither a PMID nor a PMC id")
        except Exception as exc:  # one bad article never ends the run
            self.counters.inc("failed")
            yield beam.pvalue.TaggedOutput(ERRORS, error_record(self.STAGE, path, None, _reason(exc), _detail(path, exc)))
            return
        order = (file_version_key(path), position)
        if article.abstract or article.body:
            yield article.doc_id, (order, ARTICLE, pmc_document(article, path))
        else:
            yield article.doc_id, (order, FILTERED, "no_text" if self.include_body else "no_abstract")


def _root_name(data: bytes) -> str | None:
    from linkbert.pipeline.sources.wikidump import root_element_name

    return root_element_name(data[:8192].lstrip(b"\xef\xbb\xbf"))


def _reason(exc: BaseException) -> str:
    if isinstance(exc, UnsafeXmlError):
        return "unsafe_xml"
    if isinstance(exc, NotJatsError):
        return "not_jats"
    if isinstance(exc, etree.XMLSyntaxError):
        return "xml_syntax"
    if isinstance(exc, (OSError, EOFError)):
        return "io_error"
    return "parse_error"


def _detail(path: str, exc: BaseException) -> str:
    message = str(exc)
    return message if path in message else f"{path}: {type(exc).__name__}: {message}"


class ReadPmc(beam.PTransform):
    """PMC OA ``.nxml`` files -> ``{"documents": ..., "errors": ...}`` (see the module docstring)."""

    def __init__(self, file_pattern: str, include_body: bool = False):
        super().__init__()
        self.file_pattern = file_pattern
        self.include_body = include_body

    def expand(self, pbegin):
        patterns = [pattern.strip() for pattern in self.file_pattern.split(",") if pattern.strip()]
        if not patterns:
            raise ValueError(f"no input file pattern given: {self.file_pattern!r}")
        expanded = (
            pbegin
            | "Patterns" >> beam.Create(patterns)
            | "MatchFiles" >> fileio.MatchAll(fileio.EmptyMatchTreatment.DISALLOW)
            | "Paths" >> beam.Map(lambda metadata: metadata.path)
            | "EachFileOnce" >> beam.Distinct()
            | "ExpandPackages" >> beam.ParDo(ExpandPackages()).with_outputs(ERRORS, main="articles")
        )
        parsed = (
            expanded.articles
            | "ReshuffleArticles" >> beam.Reshuffle()
            | "ParseFiles" >> beam.ParDo(ParsePmcFile(self.include_body)).with_outputs(ERRORS, main="versions")
        )
        documents = parsed.versions | "ResolveVersions" >> ResolveVersions("pmc")
        errors = (expanded[ERRORS], parsed[ERRORS]) | "AllErrors" >> beam.Flatten()
        return {"documents": documents, "errors": errors}


def _read_from_options(pipeline, config) -> dict:
    return pipeline | "ReadPmc" >> ReadPmc(config.input, include_body=config.pmc_body)


register(Source("pmc", default_links="citation", read=_read_from_options, reconcile=reconcile))
