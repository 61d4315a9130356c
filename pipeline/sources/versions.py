"""Versioned records (PubMed, PMC): keyed versions (doc_id, (order, kind, payload)) -> the latest
version of each id, as a keyed combine; and the reconciliation of those sources' counters
(read = written + superseded + deleted + filtered(reason) + failed)."""

from __future__ import annotations

import posixpath
import re

import apache_beam as beam

from linkbert.pipeline.sources.files import SourceCounters

# Version kinds. A version is (order, kind, payload); the largest order wins.
ARTICLE = 0  # payload: the document dict


FILTERED = 1  # payload: the filter reason; the document itself is not carried through the shuffle


DELETED = 2  # payload: None


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


def reconcile(counters: dict[str, int]) -> tuple[bool, list[str]]:
    """Check ``read = written + superseded + deleted + filtered(reason) + failed`` for every source
    prefix that has a ``<prefix>.records_read`` counter, and that no input file failed.

    ``counters`` maps counter names (``pubmed.records_read``, ...) to values. Returns whether all
    hold, and one summary line per source (plus one per source with failed files).
    """
    prefixes = sorted({name.rpartition(".")[0] for name in counters if name.endswith((".records_read", ".files_read"))})
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
