"""``--source pubmed``: MEDLINE/PubMed XML (baseline + daily update files) -> documents.

Steps: list the input files (one element per file) -> ``Reshuffle`` -> parse each file as a stream
(``medline_xml``) into keyed *versions* ``(pmid, (order, kind, payload))`` -> ``CombinePerKey`` keeps
the latest version of each PMID (files ordered by their sequence number, records by position in the
file; a ``DeleteCitation`` is a version too) -> the winner becomes a document, or is counted as
deleted or filtered.

Counters (``pipeline.records.counter``), per source prefix ``pubmed``/``pmc``: ``records_read`` =
``written`` + ``superseded`` + ``deleted`` + ``filtered.<reason>`` + ``failed``; ``reconcile`` checks it.
Whole-file problems (unsafe XML, not MEDLINE, truncated gzip) are counted in ``files_failed`` and go to
the dead-letter output; ``reconcile`` reports them as a failure.
"""

from __future__ import annotations

import bz2
import contextlib
import gzip
import posixpath
import re
import zlib

import apache_beam as beam
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from lxml import etree

from pipeline.records import counter, error_record
from pipeline.sources.medline_xml import BadRecord, Deletion, MedlineArticle, MedlineFileError, iter_medline_records
from pipeline.sources.safe_xml import UnsafeXmlError

ERRORS = "errors"
DEFAULT_MIN_ABSTRACT_WORDS = 128  # PubMedBERT's cut-off: abstracts under 128 words were dropped

# Version kinds. A version is (order, kind, payload); the largest order wins.
ARTICLE = 0  # payload: the document dict
FILTERED = 1  # payload: the filter reason; the document itself is not carried through the shuffle
DELETED = 2  # payload: None

DOCUMENT_METADATA_COLUMNS = ("language", "pub_year", "mesh_terms", "doi")

_SEQUENCED_FILE = re.compile(r"^[A-Za-z]+(\d{2})n(\d{4,})(?:\D|$)")


def file_version_key(path: str) -> tuple[int, int, str, str]:
    """Order of input files for "the latest record wins": by (year, sequence number) in names such as
    ``pubmed26n1335.xml.gz`` (after ``pubmed26n1334``, after ``pubmed25n1274``); files without such a
    name sort before all sequenced files, by name."""
    name = posixpath.basename(path.rstrip("/"))
    match = _SEQUENCED_FILE.match(name)
    if match is None:
        return (-1, -1, name, path)
    return (int(match.group(1)), int(match.group(2)), name, path)


def match_input_files(file_pattern: str) -> list[tuple[str, int]]:
    """``(path, size)`` of every file matched by a glob or comma-separated list of globs, sorted, each once.

    A pattern that matches nothing is an error naming it.
    """
    patterns = [pattern.strip() for pattern in file_pattern.split(",") if pattern.strip()]
    if not patterns:
        raise ValueError(f"no input file pattern given: {file_pattern!r}")
    files: dict[str, int] = {}
    for pattern, result in zip(patterns, FileSystems.match(patterns)):
        if not result.metadata_list:
            raise FileNotFoundError(f"no input file matches {pattern!r}")
        for metadata in result.metadata_list:
            files[metadata.path] = metadata.size_in_bytes
    return sorted(files.items())


@contextlib.contextmanager
def open_decompressed(path: str):
    """A binary stream of ``path`` through ``FileSystems``, decompressed as its extension says.

    gzip and bzip2 are decompressed here with the standard library's streaming readers: Beam's own
    ``CompressedFile`` inflates 16 MiB of *compressed* input at a time (~150 MB of MEDLINE XML), which
    would make a worker's memory grow with the file. Other compressions go through Beam.
    """
    compression = CompressionTypes.detect_compression_type(path)
    if compression not in (CompressionTypes.GZIP, CompressionTypes.BZIP2, CompressionTypes.UNCOMPRESSED):
        with FileSystems.open(path) as stream:
            yield stream
        return
    with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as raw:
        if compression == CompressionTypes.GZIP:
            with gzip.GzipFile(fileobj=raw, mode="rb") as stream:
                yield stream
        elif compression == CompressionTypes.BZIP2:
            with bz2.BZ2File(raw, mode="rb") as stream:
                yield stream
        else:
            yield raw


class SourceCounters:
    """Counters ``<prefix>.<name>`` in the linkbert namespace, created on first use."""

    def __init__(self, prefix: str):
        self.prefix = prefix
        self._counters = {}

    def inc(self, name: str, n: int = 1) -> None:
        if n:
            if name not in self._counters:
                self._counters[name] = counter(f"{self.prefix}.{name}")
            self._counters[name].inc(n)


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


def _later(a, b):
    if a is None:
        return b
    if b is None:
        return a
    return b if (b[0], b[1]) > (a[0], a[1]) else a


class LatestVersion(beam.CombineFn):
    """Per key: the version with the largest order, and how many non-deletion versions were seen."""

    def create_accumulator(self):
        return (None, 0)

    def add_input(self, accumulator, version):
        latest, records = accumulator
        return _later(latest, version), records + (version[1] != DELETED)

    def merge_accumulators(self, accumulators):
        latest, records = None, 0
        for other_latest, other_records in accumulators:
            latest, records = _later(latest, other_latest), records + other_records
        return latest, records

    def extract_output(self, accumulator):
        return accumulator


class ApplyVersions(beam.DoFn):
    """The latest version of a key becomes a document; every other record is counted once."""

    def __init__(self, prefix: str):
        self.prefix = prefix

    def setup(self):
        self.counters = SourceCounters(self.prefix)

    def process(self, keyed):
        _key, ((_order, kind, payload), records) = keyed
        if kind == DELETED:
            self.counters.inc("deleted", records)
            return
        self.counters.inc("superseded", records - 1)
        if kind == FILTERED:
            self.counters.inc(f"filtered.{payload}")
            return
        self.counters.inc("written")
        yield payload


class ResolveVersions(beam.PTransform):
    """Keyed versions -> the documents that survive, counted under ``prefix``."""

    def __init__(self, prefix: str):
        super().__init__()
        self.prefix = prefix

    def expand(self, versions):
        return (
            versions
            | "LatestVersion" >> beam.CombinePerKey(LatestVersion())
            | "ApplyVersions" >> beam.ParDo(ApplyVersions(self.prefix))
        )


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


def merge_documents(documents: list[dict]) -> dict:
    """One document from several with the same doc_id: the longest text wins (then source, file name);
    outlinks are the union in order (winner's first); missing metadata is taken from the others."""
    ranked = sorted(documents, key=lambda d: (-len(d["text"]), d["source"], d["source_file"]))
    merged = dict(ranked[0])
    outlinks = dict.fromkeys(merged["outlinks"])
    for other in ranked[1:]:
        outlinks.update(dict.fromkeys(other["outlinks"]))
        for column in DOCUMENT_METADATA_COLUMNS:
            if merged.get(column) is None and other.get(column) is not None:
                merged[column] = other[column]
    merged["outlinks"] = list(outlinks)
    return merged


class _CollectDocuments(beam.CombineFn):
    def create_accumulator(self):
        return []

    def add_input(self, accumulator, document):
        accumulator.append(document)
        return accumulator

    def merge_accumulators(self, accumulators):
        return [document for accumulator in accumulators for document in accumulator]

    def extract_output(self, accumulator):
        return accumulator


class _MergeGroup(beam.DoFn):
    def setup(self):
        self.merged = counter("documents.merged")

    def process(self, keyed):
        _doc_id, documents = keyed
        if len(documents) > 1:
            self.merged.inc(len(documents) - 1)
        yield merge_documents(documents)


class MergeDocuments(beam.PTransform):
    """Documents of several sources (a PCollection or a tuple/list of them) -> one per ``doc_id``.

    ``(pubmed_docs, pmc_docs) | MergeDocuments()``: an article in both is one document whose outlinks
    are the union. ``documents.merged`` counts the documents folded into another.
    """

    def expand(self, documents):
        if isinstance(documents, (tuple, list)):
            documents = documents | "Flatten" >> beam.Flatten()
        return (
            documents
            | "KeyByDocId" >> beam.Map(lambda document: (document["doc_id"], document))
            | "CollectByDocId" >> beam.CombinePerKey(_CollectDocuments())
            | "Merge" >> beam.ParDo(_MergeGroup())
        )


def reconcile(counters: dict[str, int]) -> tuple[bool, list[str]]:
    """Check ``read = written + superseded + deleted + filtered(reason) + failed`` for every source
    prefix that has a ``<prefix>.records_read`` counter, and that no input file failed.

    ``counters`` maps counter names (``pubmed.records_read``, ...) to values. Returns whether all
    hold, and one summary line per source (plus one per source with failed files).
    """
    prefixes = sorted(name[: -len(".records_read")] for name in counters if name.endswith(".records_read"))
    if not prefixes:
        return True, ["no source counters (<source>.records_read) to reconcile"]
    all_ok = True
    lines = []
    for prefix in prefixes:

        def value(name: str) -> int:
            return int(counters.get(f"{prefix}.{name}", 0))

        filtered = {
            name[len(prefix) + len(".filtered.") :]: int(count)
            for name, count in sorted(counters.items())
            if name.startswith(f"{prefix}.filtered.")
        }
        read = value("records_read")
        accounted = value("written") + value("superseded") + value("deleted") + sum(filtered.values()) + value("failed")
        balanced = read == accounted
        reasons = ", ".join(f"{reason} {count}" for reason, count in filtered.items())
        lines.append(
            f"{prefix}: read {read} {'=' if balanced else '!='} written {value('written')}"
            f" + superseded {value('superseded')} + deleted {value('deleted')}"
            f" + filtered {sum(filtered.values())}{f' ({reasons})' if reasons else ''} + failed {value('failed')}"
            + ("" if balanced else f"  MISMATCH: {read - accounted:+d} records unaccounted")
        )
        files_failed = value("files_failed")
        if files_failed:
            lines.append(f"{prefix}: {files_failed} input file(s) failed as a whole; see the dead-letter output")
        all_ok = all_ok and balanced and not files_failed
    return all_ok, lines
