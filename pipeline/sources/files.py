"""What the file-per-element sources share: matching input files, opening them decompressed as a
stream through FileSystems, and per-source counters."""

from __future__ import annotations

import bz2
import contextlib
import gzip

from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from linkbert.pipeline import progress
from linkbert.pipeline.records import counter


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
    with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as raw, progress.counting_bytes(raw) as raw:
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


ERRORS = "errors"
