"""``--source pubmed``: MEDLINE/PubMed XML (baseline + daily update files) -> documents.

Steps: list the input files (one element per file) -> ``Reshuffle`` -> parse each file as a stream
(``medline_xml``) into keyed *versions* ``(pmid, (order, kind, payload))`` -> ``CombinePerKey`` keeps
the latest version of each PMID (files ordered by their sequence number, records by position in the
file; a ``DeleteCitation`` is a version too) -> the winner becomes a document, or is counted as
deleted or filtered.

Counters (``linkbert.pipeline.records.counter``), per source prefix ``pubmed``/``pmc``: ``records_read`` =
``written`` + ``superseded`` + ``deleted`` + ``filtered.<reason>`` + ``failed``; ``reconcile`` checks it.
Whole-file problems (unsafe XML, not MEDLINE, truncated gzip) are counted in ``files_failed`` and go to
the dead-letter output; ``reconcile`` reports them as a failure.
"""

from __future__ import annotations

import zlib

import apache_beam as beam
from lxml import etree

from linkbert.pipeline.records import error_record
from linkbert.pipeline.sources import Source, register
from linkbert.pipeline.sources.files import (
    ERRORS,
    SourceCounters,
    match_input_files,
    open_decompressed,
)
from linkbert.pipeline.sources.medline_xml import (
    BadRecord,
    Deletion,
    MedlineArticle,
    MedlineFileError,
    iter_medline_records,
)
from linkbert.pipeline.sources.safe_xml import UnsafeXmlError
from linkbert.pipeline.sources.versions import (
    ARTICLE,
    DELETED,
    FILTERED,
    ResolveVersions,
    file_version_key,
    reconcile,
)

DEFAULT_MIN_ABSTRACT_WORDS = 128  # PubMedBERT's cut-off: abstracts under 128 words were dropped


def medline_document(article: MedlineArticle, source_file: str) -> dict:
    """A row of the documents schema; text = title, blank line, the abstract sections with their labels."""
    text = "\n\n".join(part for part in (article.title, article.abstract_text()) if part)
    return {
        "doc_id": article.pmid,
        "title": article.title,
        "text": text,
        "source": "pubmed",
        "outlinks": article.cited_pmids,
        "source_file": source_file,
        "language": article.language,
        "pub_year": article.pub_year,
        "mesh_terms": article.mesh_terms or None,
        "doi": article.doi,
    }


def abstract_filter_reason(article: MedlineArticle, min_abstract_words: int) -> str | None:
    if min_abstract_words <= 0:
        return None
    if not article.abstract:
        return "no_abstract"
    if article.abstract_words < min_abstract_words:
        return "short_abstract"
    return None


def file_error_reason(exc: BaseException) -> str:
    if isinstance(exc, UnsafeXmlError):
        return "unsafe_xml"
    if isinstance(exc, MedlineFileError):
        return "not_medline"
    if isinstance(exc, etree.XMLSyntaxError):
        return "xml_syntax"
    return "io_error"


def _source_hint(path: str) -> str:
    """'; this is a wikipedia file: use --source wikipedia' when the root element tells."""
    from linkbert.pipeline.sources.wikidump import SOURCE_OF_ROOT, root_element_name

    try:
        with open_decompressed(path) as stream:
            head = stream.read(8192)
    except (OSError, EOFError, zlib.error):
        return ""
    name = root_element_name(head.lstrip(b"\xef\xbb\xbf"))
    hint = SOURCE_OF_ROOT.get(name or "")
    return f"; root element <{name}>: this is a {hint} file: use --source {hint}" if hint and hint != "pubmed" else ""


class ParseMedlineFile(beam.DoFn):
    """One MEDLINE XML file -> keyed versions (main output) and dead-letter records (``errors``)."""

    STAGE = "pubmed.read"

    def __init__(self, min_abstract_words: int):
        self.min_abstract_words = min_abstract_words

    def setup(self):
        self.counters = SourceCounters("pubmed")

    def process(self, file):
        path, size = file
        self.counters.inc("files_read")
        if size == 0:
            self.counters.inc("files_failed")
            yield beam.pvalue.TaggedOutput(ERRORS, error_record(self.STAGE, path, None, "empty_file", f"{path}: empty file"))
            return
        file_key = file_version_key(path)
        try:
            with open_decompressed(path) as stream:
                for position, record in iter_medline_records(stream, path):
                    yield from self._versions(path, file_key, position, record)
        except (UnsafeXmlError, MedlineFileError, etree.XMLSyntaxError, OSError, EOFError, zlib.error) as exc:
            self.counters.inc("files_failed")
            detail = str(exc) if path in str(exc) else f"{path}: {exc}"
            if isinstance(exc, MedlineFileError):
                detail += _source_hint(path)
            yield beam.pvalue.TaggedOutput(ERRORS, error_record(self.STAGE, path, None, file_error_reason(exc), detail))

    def _versions(self, path, file_key, position, record):
        order = (file_key, position)
        if isinstance(record, Deletion):
            self.counters.inc("deletions_read")
            yield record.pmid, (order, DELETED, None)
        elif isinstance(record, BadRecord):
            self.counters.inc("deletions_failed" if record.deletion else "records_read")
            if not record.deletion:
                self.counters.inc("failed")
            yield beam.pvalue.TaggedOutput(
                ERRORS, error_record(self.STAGE, path, record.pmid, record.reason, f"{path}: record {position}: {record.detail}")
            )
        else:
            self.counters.inc("records_read")
            if not record.abstract:
                self.counters.inc("records_without_abstract")  # informational; also when they are kept
            reason = abstract_filter_reason(record, self.min_abstract_words)
            if reason is None:
                yield record.pmid, (order, ARTICLE, medline_document(record, path))
            else:
                yield record.pmid, (order, FILTERED, reason)


class ReadPubmed(beam.PTransform):
    """MEDLINE/PubMed XML files (``.xml`` or ``.xml.gz``, current or legacy format) -> documents.

    Returns ``{"documents": ..., "errors": ...}``. ``min_abstract_words``: records whose abstract has
    fewer words are filtered (``pubmed.filtered.short_abstract``), records without one too
    (``pubmed.filtered.no_abstract``); 0 keeps everything.
    """

    def __init__(self, file_pattern: str, min_abstract_words: int = DEFAULT_MIN_ABSTRACT_WORDS):
        super().__init__()
        if min_abstract_words < 0:
            raise ValueError(f"min_abstract_words must be >= 0, got {min_abstract_words}")
        self.file_pattern = file_pattern
        self.min_abstract_words = min_abstract_words

    def expand(self, pbegin):
        files = match_input_files(self.file_pattern)
        parsed = (
            pbegin
            | "ListFiles" >> beam.Create(files)
            | "ReshuffleFiles" >> beam.Reshuffle()
            | "ParseFiles" >> beam.ParDo(ParseMedlineFile(self.min_abstract_words)).with_outputs(ERRORS, main="versions")
        )
        documents = parsed.versions | "ResolveVersions" >> ResolveVersions("pubmed")
        return {"documents": documents, "errors": parsed[ERRORS]}




def _read_from_options(pipeline, config) -> dict:
    return pipeline | "ReadPubmed" >> ReadPubmed(config.input, min_abstract_words=config.min_abstract_words)


register(Source("pubmed", default_links="citation", read=_read_from_options, reconcile=reconcile))
