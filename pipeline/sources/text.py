"""``--source text``: corpora that are neither Wikipedia nor PubMed -> documents.

Two layouts, chosen per file by its name:

* **one document per file** (any name not below): ``doc_id`` and ``title`` are the file name without
  its folder and extensions (``books/alice.txt.gz`` -> ``alice``); the text is the whole file (UTF-8,
  ``\\r\\n`` -> ``\\n``, outer whitespace stripped).
* **one document per JSON line** (``*.jsonl``, ``*.ndjson``, optionally ``.gz``/``.bz2``): an object
  ``{"id", "text"[, "title", "outlinks", "links", "language"]}``. ``id`` (string or integer) is the
  ``doc_id``; ``title`` defaults to the id. A record may carry its own graph: ``outlinks`` (a list of
  target ids) and/or ``links`` (anchor spans ``[{"start", "end", "target"}]``, character offsets into
  ``text``, end exclusive, ``target`` an id). ``--links hyperlink`` resolves these by id, not by title.
  A line that is not such an object goes to the dead letters with its file and line number; blank
  lines are skipped.

Steps: the input patterns are matched on the workers (``fileio.MatchAll``, so a corpus of millions of
small files never passes through the driver) -> ``Reshuffle`` -> each file is read as a stream through
``FileSystems`` into keyed versions ``(doc_id, ((path, line), kind, payload))`` -> ``ResolveVersions``
keeps one document per id (the same id twice: the later file by path, then the later line, wins; the
others count as ``text.superseded``).

Counters (prefix ``text``): ``records_read`` = ``written`` + ``superseded`` + ``filtered.empty`` +
``failed``, checked by ``versions.reconcile``; a file that cannot be read as a whole (I/O error, corrupt
compression) counts in ``files_failed`` and is a dead letter; the records read before the damage are kept.
"""

from __future__ import annotations

import json
import posixpath
import zlib

import apache_beam as beam
from apache_beam.io import fileio
from apache_beam.io.filesystems import FileSystems

from linkbert import schemas
from linkbert.pipeline.records import error_record
from linkbert.pipeline.sources import Source, register
from linkbert.pipeline.sources.files import ERRORS, SourceCounters, open_decompressed
from linkbert.pipeline.sources.versions import ARTICLE, FILTERED, ResolveVersions, reconcile

PREFIX = "text"
_JSONL_SUFFIXES = (".jsonl", ".ndjson")
_COMPRESSION_SUFFIXES = (".gz", ".bz2", ".gzip", ".bzip2", ".deflate", ".zst", ".zstd", ".lzma", ".xz")
# Anchor spans are carried to the documents table once its schema has the column (issue 11 adds it);
# until then they only feed ``outlinks``.
_SCHEMA_HAS_LINKS = any(field["name"] == "links" for field in schemas.definition("documents")["fields"])


class BadRecord(ValueError):
    """A JSON line that is not a document record; the message says why."""


def _strip_compression(name: str) -> str:
    for suffix in _COMPRESSION_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


def is_jsonl(path: str) -> bool:
    return _strip_compression(posixpath.basename(path)).lower().endswith(_JSONL_SUFFIXES)


def file_doc_id(path: str) -> str:
    """``a/b/alice.txt.gz`` -> ``alice``; a name without an extension is kept whole."""
    name = _strip_compression(posixpath.basename(path.rstrip("/")))
    stem = name.rsplit(".", 1)[0] if "." in name.lstrip(".") else name
    return stem or name


def _ids(values, where: str) -> list[str]:
    if not isinstance(values, list):
        raise BadRecord(f"{where} must be a list, got {type(values).__name__}")
    out = []
    for value in values:
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            raise BadRecord(f"{where} holds {value!r}, not an id (string or integer)")
        out.append(str(value))
    return out


def _spans(values, text: str) -> list[dict]:
    if not isinstance(values, list):
        raise BadRecord(f"'links' must be a list, got {type(values).__name__}")
    spans = []
    for index, span in enumerate(values):
        if not isinstance(span, dict) or not {"start", "end", "target"} <= span.keys():
            raise BadRecord(f"links[{index}] must be an object with start, end and target")
        start, end = span["start"], span["end"]
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in (start, end)) or not 0 <= start <= end <= len(text):
            raise BadRecord(f"links[{index}]: span [{start!r}, {end!r}) is not inside the {len(text)}-character text")
        spans.append({"start": start, "end": end, "target": _ids([span["target"]], f"links[{index}].target")[0]})
    return spans


def record_document(record, path: str) -> dict:
    """A parsed JSON line -> a documents row; ``BadRecord`` says what is wrong with it."""
    if not isinstance(record, dict):
        raise BadRecord(f"a record must be a JSON object, got {type(record).__name__}")
    if "id" not in record:
        raise BadRecord("no 'id'")
    doc_id = _ids([record["id"]], "'id'")[0]
    text = record.get("text")
    if not isinstance(text, str):
        raise BadRecord(f"'text' must be a string, got {type(text).__name__}")
    title = record.get("title", doc_id)
    if not isinstance(title, str):
        raise BadRecord(f"'title' must be a string, got {type(title).__name__}")
    language = record.get("language")
    if language is not None and not isinstance(language, str):
        raise BadRecord(f"'language' must be a string, got {type(language).__name__}")
    spans = _spans(record.get("links", []), text)
    targets = [span["target"] for span in spans] + _ids(record.get("outlinks", []), "'outlinks'")
    document = text_document(doc_id, title, text, path, [t for t in dict.fromkeys(targets) if t != doc_id], language)
    if _SCHEMA_HAS_LINKS:
        document["links"] = spans
    return document


def text_document(doc_id: str, title: str, text: str, path: str, outlinks: list[str], language=None) -> dict:
    document = {
        "doc_id": doc_id, "title": title, "text": text, "source": PREFIX, "outlinks": outlinks,
        "source_file": path, "language": language, "pub_year": None, "mesh_terms": None, "doi": None,
    }
    if _SCHEMA_HAS_LINKS:
        document["links"] = []
    return document


class ReadTextFile(beam.DoFn):
    """One matched file -> keyed versions (main output) and dead letters (``errors``)."""

    STAGE = "text.read"

    def setup(self):
        self.counters = SourceCounters(PREFIX)

    def process(self, metadata):
        path = metadata.path
        self.counters.inc("files_read")
        line = 0
        try:
            with open_decompressed(path) as stream:
                if not is_jsonl(path):
                    yield from self._whole_file(path, stream.read())
                    return
                for line, raw in enumerate(stream, start=1):
                    if raw.strip():
                        yield from self._line(path, line, raw)
        except (OSError, EOFError, zlib.error) as exc:
            self.counters.inc("files_failed")
            where = f"{path}: after line {line}" if line else path
            yield beam.pvalue.TaggedOutput(ERRORS, error_record(self.STAGE, path, None, "io_error", f"{where}: {exc}"))

    def _version(self, doc_id: str, order, document: dict):
        if document["text"].strip():
            return doc_id, (order, ARTICLE, document)
        return doc_id, (order, FILTERED, "empty")

    def _whole_file(self, path: str, data: bytes):
        self.counters.inc("records_read")
        doc_id = file_doc_id(path)
        try:
            text = data.decode("utf-8").replace("\r\n", "\n").strip()
        except UnicodeDecodeError as exc:
            self.counters.inc("failed")
            yield beam.pvalue.TaggedOutput(
                ERRORS, error_record(self.STAGE, path, doc_id, "not_utf8", f"{path}: not UTF-8 text ({exc})"))
            return
        yield self._version(doc_id, (path, 0), text_document(doc_id, doc_id, text, path, []))

    def _line(self, path: str, line: int, raw: bytes):
        self.counters.inc("records_read")
        record_id = None
        try:
            record = json.loads(raw)
            if isinstance(record, dict) and isinstance(record.get("id"), (str, int)):
                record_id = str(record["id"])
            document = record_document(record, path)
        except (UnicodeDecodeError, json.JSONDecodeError, BadRecord) as exc:
            self.counters.inc("failed")
            reason = "bad_record" if isinstance(exc, BadRecord) else "bad_json"
            yield beam.pvalue.TaggedOutput(
                ERRORS, error_record(self.STAGE, path, record_id, reason, f"{path}: line {line}: {exc}"))
            return
        yield self._version(document["doc_id"], (path, line), document)


class ReadText(beam.PTransform):
    """Plain-text files and JSON-lines files -> ``{"documents", "errors"}``."""

    def __init__(self, file_pattern: str):
        super().__init__()
        self.patterns = [pattern.strip() for pattern in file_pattern.split(",") if pattern.strip()]
        if not self.patterns:
            raise ValueError(f"no input file pattern given: {file_pattern!r}")

    def expand(self, pbegin):
        # One file per pattern is enough to refuse a pattern that matches nothing before the run starts;
        # the full listing happens on the workers.
        for pattern, result in zip(self.patterns, FileSystems.match(self.patterns, limits=[1] * len(self.patterns))):
            if not result.metadata_list:
                raise FileNotFoundError(f"no input file matches {pattern!r}")
        parsed = (
            pbegin
            | "Patterns" >> beam.Create(self.patterns)
            | "MatchFiles" >> fileio.MatchAll(fileio.EmptyMatchTreatment.DISALLOW)
            | "ReshuffleFiles" >> beam.Reshuffle()
            | "ReadFiles" >> beam.ParDo(ReadTextFile()).with_outputs(ERRORS, main="versions")
        )
        documents = parsed.versions | "OneDocumentPerId" >> ResolveVersions(PREFIX)
        return {"documents": documents, "errors": parsed[ERRORS]}


def _read_from_options(pipeline, config) -> dict:
    return pipeline | "ReadText" >> ReadText(config.input)


# Links name their targets by doc_id, so hyperlinks resolve against ids (as citations do), not titles.
register(Source(PREFIX, default_links="hyperlink", read=_read_from_options, reconcile=reconcile, link_key="doc_id"))
