"""Planning the work units of Wikipedia dumps in parallel, on the workers (Apache Beam).

    units = dumps | "PlanWorkUnits" >> PlanWorkUnits(range_bytes, build_index=False)

``dumps`` holds (path, size, index or None) per dump file. A multistream dump becomes ranges of whole
bz2 streams, found one of two ways, each split into byte ranges that different workers read:

* **its index** (``…-multistream-index.txt.bz2``): every bz2 block of the index is decompressed on its
  own (``bz2scan.index_block_offsets``), so the index splits whether it is one stream or many; the
  lines a block boundary cuts are joined by a ``GroupByKey`` on the boundary;
* **a first pass over the dump** (``build_index``): each worker scans its byte range for bz2 stream
  starts that begin with a ``<page>`` (``bz2scan.stream_starts``).

Either way a stream offset goes to window ``offset // range_bytes`` (``multistream.window_of``); a
``GroupByKey`` per window gives a unit's streams, and one small record per window (its first offset)
per dump gives where each unit ends and where the header stream stops. No worker holds all offsets
of a dump: at most one window's, and one first offset per window. Any other file, a dump without an
index (unless ``build_index``), and a dump whose planning fails (a dead letter says why) are one unit.
"""

from __future__ import annotations

import logging

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.pvalue import TaggedOutput

from linkbert.pipeline.records import counter, error_record
from linkbert.pipeline.sources.bz2scan import index_block_offsets, starts_with_page, stitch_lines, stream_starts
from linkbert.pipeline.sources.compressed import DumpReadError, open_raw
from linkbert.pipeline.sources.multistream import index_name_for, read_header, warn_no_index, window_of
from linkbert.pipeline.sources.wikidump import DumpHeader, WorkUnit

LOG = logging.getLogger(__name__)
ERRORS, WHOLE, DUMPS, PIECES, FAILED = "errors", "whole", "dumps", "pieces", "failed"
_KEYED = beam.typehints.KV[beam.typehints.Any, beam.typehints.Any]  # the main output; tagged ones are other types
INDEX_PIECE_BYTES = 32 << 20  # compressed index bytes per parallel piece


def _is_bz2(path: str) -> bool:
    with open_raw(path) as raw:
        return raw.read(3) == b"BZh"


class _Tasks(beam.DoFn):
    """(path, size, index) -> byte ranges of the index (or of the dump, to scan) for the workers to read;
    a file that is read whole -> a WorkUnit at once; a marker per planned dump for the per-dump step."""

    def __init__(self, range_bytes: int, build_index: bool, index_piece_bytes: int):
        self._range_bytes, self._build_index, self._piece = range_bytes, build_index, index_piece_bytes

    def process(self, element):
        path, size, index = element
        try:
            if index is not None:
                index_size = FileSystems.match([index])[0].metadata_list[0].size_in_bytes
                ranges = [("index", path, index, start, min(start + self._piece, index_size))
                          for start in range(0, index_size, self._piece)]
            elif self._build_index and size and _is_bz2(path):
                ranges = [("scan", path, None, start, min(start + self._range_bytes, size))
                          for start in range(0, size, self._range_bytes)]
            else:
                if index_name_for(FileSystems.split(path)[1]) is not None and not self._build_index:
                    warn_no_index(path)
                yield TaggedOutput(WHOLE, WorkUnit(path))
                return
        except (OSError, ValueError) as exc:  # the index cannot be listed: read the dump whole
            yield TaggedOutput(ERRORS, error_record("wikipedia.plan", path, None, "bad_index",
                                                    f"{index}: {exc}; the dump is read as one unit"))
            yield TaggedOutput(WHOLE, WorkUnit(path))
            return
        yield TaggedOutput(DUMPS, (path, ("dump", size, index)))
        yield from ranges


@beam.typehints.with_output_types(_KEYED)
class _FindStreams(beam.DoFn):
    """A byte range -> ((dump, window), stream offset) for the streams found in it; an index range also
    -> the pieces of the lines its block boundaries cut; a range that cannot be read -> (dump, failure)."""

    def __init__(self, range_bytes: int):
        self._range_bytes = range_bytes

    def setup(self):
        self._blocks = counter("wikipedia.index_blocks")

    def process(self, task):
        kind, path, index, start, end = task
        try:
            if kind == "scan":
                for offset in stream_starts(path, start, end, starts_with_page):
                    yield (path, window_of(offset, self._range_bytes)), offset
                return
            piece = index_block_offsets(index, start, end)
        except (DumpReadError, OSError) as exc:
            yield TaggedOutput(FAILED, (path, ("failed", f"{index or path} bytes {start}-{end}: {exc}")))
            return
        self._blocks.inc(piece.blocks)
        for offset in piece.offsets:
            yield (path, window_of(offset, self._range_bytes)), offset
        for key, side, data in piece.pieces:
            yield TaggedOutput(PIECES, ((path, index, key), (side, data)))


@beam.typehints.with_output_types(_KEYED)
class _StitchLines(beam.DoFn):
    """((dump, index, boundary), [the two pieces of a line]) -> ((dump, window), offset)."""

    def __init__(self, range_bytes: int):
        self._range_bytes = range_bytes

    def process(self, element):
        (path, index, key), pieces = element
        offsets: set[int] = set()
        try:
            stitch_lines(key, list(pieces), index, offsets)
        except DumpReadError as exc:
            yield TaggedOutput(FAILED, (path, ("failed", str(exc))))
            return
        for offset in offsets:
            yield (path, window_of(offset, self._range_bytes)), offset


@beam.typehints.with_output_types(_KEYED)
class _PlanDump(beam.DoFn):
    """(dump, [its marker, (window, first offset) per window, failures]) -> ((dump, window), (end, header))
    per window; a dump that cannot be planned -> one WorkUnit and, unless it just has no streams, a dead letter."""

    def setup(self):
        self._unsplit = counter("wikipedia.dumps_without_page_streams")

    def process(self, element):
        path, records = element
        marker = next((r for r in records if r[0] == "dump"), None)
        if marker is None:
            return
        _, size, index = marker
        failures = sorted(r[1] for r in records if r[0] == "failed")
        firsts = sorted((r[1], r[2]) for r in records if r[0] == "window")
        try:
            if failures:
                raise DumpReadError("; ".join(failures[:3]) + (f" (and {len(failures) - 3} more)" if len(failures) > 3 else ""))
            if not firsts and index is not None:
                raise DumpReadError(f"{index}: the index lists no streams")
            header = read_header(path, firsts[0][1]) if firsts and firsts[0][1] > 0 else DumpHeader()
        except (DumpReadError, OSError) as exc:
            yield TaggedOutput(ERRORS, error_record("wikipedia.plan", path, None, "bad_index",
                                                    f"{exc}; the dump is read as one unit"))
            yield TaggedOutput(WHOLE, WorkUnit(path))
            return
        if not firsts:  # e.g. a single-stream dump: nothing to split
            LOG.warning("%s: no bz2 stream of it starts at a <page> (not a multistream dump?): one work unit", path)
            self._unsplit.inc()
            yield TaggedOutput(WHOLE, WorkUnit(path))
            return
        for (window, _), following in zip(firsts, firsts[1:] + [None]):
            yield (path, window), (following[1] if following else size, header)


def _unit(element):
    (path, _), grouped = element
    plans, streams = grouped["plan"], grouped["streams"]
    if plans and streams:  # no plan: the dump fell back to one unit
        end, header = plans[0]
        offsets = sorted(streams[0])
        yield WorkUnit(path, tuple(offsets), max(end, offsets[-1]), header)


class _CountUnits(beam.DoFn):
    def setup(self):
        self._units = counter("wikipedia.work_units")

    def process(self, unit):
        self._units.inc()
        yield unit


class PlanWorkUnits(beam.PTransform):
    """(path, size, index or None) per dump -> {"units": WorkUnit, "errors": dead letters}."""

    def __init__(self, range_bytes: int, build_index: bool = False, index_piece_bytes: int = INDEX_PIECE_BYTES):
        super().__init__()
        if range_bytes <= 0 or index_piece_bytes <= 0:
            raise ValueError("PlanWorkUnits: range_bytes and index_piece_bytes must be positive")
        self._range_bytes, self._build_index, self._piece = range_bytes, build_index, index_piece_bytes

    def expand(self, dumps):
        range_bytes = self._range_bytes
        tasks = dumps | "Ranges" >> beam.ParDo(_Tasks(range_bytes, self._build_index, self._piece)).with_outputs(
            ERRORS, WHOLE, DUMPS, main="ranges")
        found = (
            tasks.ranges
            | "ReshuffleRanges" >> beam.Reshuffle()
            | "FindStreams" >> beam.ParDo(_FindStreams(range_bytes)).with_outputs(PIECES, FAILED, main="offsets")
        )
        stitched = (
            found[PIECES]
            | "GroupCutLines" >> beam.GroupByKey()
            | "StitchLines" >> beam.ParDo(_StitchLines(range_bytes)).with_outputs(FAILED, main="offsets")
        )
        windows = (
            (found.offsets, stitched.offsets)
            | "AllOffsets" >> beam.Flatten()
            | "GroupWindows" >> beam.GroupByKey()
            | "DistinctOffsets" >> beam.MapTuple(lambda key, offsets: (key, sorted(set(offsets))))
        )
        firsts = windows | "FirstOffsets" >> beam.MapTuple(lambda key, offsets: (key[0], ("window", key[1], offsets[0])))
        planned = (
            (tasks[DUMPS], firsts, found[FAILED], stitched[FAILED])
            | "PerDump" >> beam.Flatten()
            | "GroupDumps" >> beam.GroupByKey()
            | "PlanDumps" >> beam.ParDo(_PlanDump()).with_outputs(ERRORS, WHOLE, main="ends")
        )
        ranged = (
            {"plan": planned.ends, "streams": windows}
            | "JoinWindows" >> beam.CoGroupByKey()
            | "Units" >> beam.FlatMap(_unit)
        )
        units = (
            (ranged, tasks[WHOLE], planned[WHOLE])
            | "AllUnits" >> beam.Flatten()
            | "CountUnits" >> beam.ParDo(_CountUnits())
        )
        errors = (tasks[ERRORS], planned[ERRORS]) | "PlanErrors" >> beam.Flatten()
        return {"units": units, "errors": errors}
