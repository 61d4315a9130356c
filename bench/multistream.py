"""What planning a multistream dump in parallel costs, against reading its pages, in one process.

On one synthetic multistream dump (``pipeline.synth.wiki``, 100 pages per bz2 stream, as Wikimedia's):

* ``scan``: the first pass of ``--build-wiki-index`` over the whole dump (``bz2scan.stream_starts``:
  find every stream start, decompress its first block to check it is a ``<page>``), in 64 MB ranges;
* ``index``: the index read whole (``multistream.read_stream_offsets``), and read in pieces block by
  block (``bz2scan.index_block_offsets`` + ``stitch_lines``) as the pipeline's workers do; the dump's
  own index is small, so also an index of ``--index-lines`` made-up lines (enwiki's has ~23 M), as one
  bz2 stream and as one stream per 100 lines;
* ``pages``: every page of the dump read and parsed (``wikidump.read_pages`` over the planned units),
  the work the plan is for (the cleaning after it costs several times more again).

Each step runs ``--runs`` times, alternating; medians. The CPU figures are per core (one process).

    .venv/bin/python bench/multistream.py [--docs 3000] [--runs 3]

The line before the last gives the rates in MB of XML/s too (``docs/SCALE.md`` measures read + clean
at 0.85 MB of XML/s per core). Last line: ``multistream: dump_mb=<compressed MB> scan_mb_s=<MB/s> pages_mb_s=<MB/s>
scan_vs_pages=<scan s / pages s> index_pieces_vs_whole=<pieced s / whole s, one-stream index>
offsets_equal=<bool>``.
"""

from __future__ import annotations

import argparse
import bz2
import os
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=3000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--piece-kb", type=int, default=1024, help="index bytes per piece (the pipeline: 32 MB)")
    parser.add_argument("--index-lines", type=int, default=1_000_000)
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))
    from linkbert.pipeline.sources.bz2scan import index_block_offsets, starts_with_page, stitch_lines, stream_starts
    from linkbert.pipeline.sources.multistream import plan_units, read_stream_offsets
    from linkbert.pipeline.sources.wikidump import RawPage, read_pages
    from linkbert.pipeline.synth.wiki import write_wiki_dump

    work = tempfile.mkdtemp(prefix="bench-multistream-")
    paths = write_wiki_dump(Path(work), num_docs=args.docs, seed=1, multistream=True, pages_per_stream=100)
    dump, index = paths["dump"], paths["index"]
    size, index_size = os.path.getsize(dump), os.path.getsize(index)
    xml_mb = len(bz2.decompress(Path(dump).read_bytes())) / 2**20
    units = plan_units(dump, index)

    def scan():
        return [o for start in range(0, size, 64 << 20) for o in stream_starts(dump, start, min(start + (64 << 20), size),
                                                                                starts_with_page)]

    def index_pieces(index=index, index_size=index_size):
        offsets, cut = set(), defaultdict(list)
        piece = args.piece_kb << 10
        for start in range(0, index_size, piece):
            found = index_block_offsets(index, start, min(start + piece, index_size))
            offsets |= found.offsets
            for key, side, data in found.pieces:
                cut[key].append((side, data))
        for key, pieces in cut.items():
            stitch_lines(key, pieces, index, offsets)
        return sorted(offsets)

    def pages():
        return sum(1 for unit in units for item in read_pages(unit) if isinstance(item, RawPage))

    lines = [f"{600 + (n // 100) * 50000}:{n + 10}:Made-up title number {n}" for n in range(args.index_lines)]
    big = {"one_stream": Path(work, "one-stream-index.txt.bz2"), "streams": Path(work, "streams-index.txt.bz2")}
    big["one_stream"].write_bytes(bz2.compress(("\n".join(lines) + "\n").encode()))
    big["streams"].write_bytes(b"".join(bz2.compress(("\n".join(lines[i:i + 100]) + "\n").encode())
                                        for i in range(0, len(lines), 100)))
    del lines
    steps = {"scan": scan, "index_whole": lambda: read_stream_offsets(index), "index_pieces": index_pieces, "pages": pages}
    for name, path in big.items():
        steps[f"big_{name}_whole"] = lambda path=path: read_stream_offsets(str(path))
        steps[f"big_{name}_pieces"] = lambda path=path: index_pieces(str(path), path.stat().st_size)
    seconds: dict[str, list[float]] = {name: [] for name in steps}
    results = {}
    for _ in range(args.runs):
        for name, step in steps.items():
            started = time.process_time()
            results[name] = step()
            seconds[name].append(time.process_time() - started)
    median = {name: statistics.median(values) for name, values in seconds.items()}
    for name, value in median.items():
        print(f"  {name}: {value:.3f} CPU s (runs {', '.join(f'{v:.3f}' for v in seconds[name])})")
    equal = results["scan"] == results["index_whole"] == results["index_pieces"] and all(
        results[f"big_{name}_whole"] == results[f"big_{name}_pieces"] for name in big)
    for name, path in big.items():
        print(f"  {args.index_lines:,}-line index as {name}: {path.stat().st_size / 2**20:.1f} MB, pieces/whole CPU "
              f"{median[f'big_{name}_pieces'] / median[f'big_{name}_whole']:.2f}")
    mb = size / 2**20
    print(f"  dump {mb:.1f} MB compressed, {xml_mb:.1f} MB of XML, {len(results['scan'])} streams, {results['pages']} pages; "
          f"index {index_size / 2**10:.0f} KB; scan {xml_mb / median['scan']:.1f} MB of XML/s, pages {xml_mb / median['pages']:.1f}")
    print(f"multistream: dump_mb={mb:.1f} scan_mb_s={mb / median['scan']:.1f} pages_mb_s={mb / median['pages']:.1f} "
          f"scan_vs_pages={median['scan'] / median['pages']:.3f} "
          f"index_pieces_vs_whole={median['big_one_stream_pieces'] / median['big_one_stream_whole']:.2f} offsets_equal={equal}")


if __name__ == "__main__":
    main()
