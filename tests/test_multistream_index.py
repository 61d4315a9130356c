"""Multistream dumps planned in parallel: the bz2 streams of a dump without its index found in a first
pass (``--build-wiki-index``), and the index itself read in pieces, block by block."""

import bz2
import os
import random
import shutil
from collections import defaultdict
from pathlib import Path

import pytest
from test_wikipedia_read import ENWIKI, by_id, page_key, read_all, repack_multistream, run_read

from linkbert.pipeline.sources.bz2scan import index_block_offsets, starts_with_page, stitch_lines, stream_starts
from linkbert.pipeline.sources.compressed import DumpReadError
from linkbert.pipeline.sources.multistream import plan_units, read_stream_offsets
from linkbert.pipeline.sources.wikidump import WorkUnit, read_pages
from linkbert.pipeline.sources.wikipedia import reconcile


def _pieces_offsets(index: Path, piece_bytes: int) -> list[int]:
    """What the pipeline does with an index, in one process: every byte range on its own, then the cut lines joined."""
    size = index.stat().st_size
    offsets: set[int] = set()
    cut: dict = defaultdict(list)
    for start in range(0, size, piece_bytes):
        piece = index_block_offsets(str(index), start, min(start + piece_bytes, size))
        offsets |= piece.offsets
        for key, side, data in piece.pieces:
            cut[key].append((side, data))
    for key, pieces in cut.items():
        stitch_lines(key, pieces, str(index), offsets)
    return sorted(offsets)


def _index_lines(streams: int = 800, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    lines, offset = [], 617
    for _ in range(streams):
        for _ in range(rng.randint(1, 100)):
            lines.append(f"{offset}:{len(lines) + 10}:Title ü {rng.random()}{'x' * rng.randint(0, 50)}")
        offset += rng.randint(1000, 90000)
    return lines


@pytest.mark.parametrize("layout", ["one stream", "a stream per 100 lines"])
def test_index_read_in_pieces_gives_the_serial_reads_offsets(tmp_path, layout):
    lines = _index_lines()
    index = tmp_path / "x-multistream-index.txt.bz2"
    if layout == "one stream":  # 100k blocks (level 1): lines are cut by block boundaries
        index.write_bytes(bz2.compress(("\n".join(lines) + "\n").encode(), 1))
    else:
        index.write_bytes(b"".join(bz2.compress(("\n".join(lines[i:i + 100]) + "\n").encode())
                                   for i in range(0, len(lines), 100)))
    serial = read_stream_offsets(str(index))
    assert len(serial) == 800
    size = index.stat().st_size
    for piece_bytes in (size, 50_000, 4096, 777):
        assert _pieces_offsets(index, piece_bytes) == serial, piece_bytes
    assert index_block_offsets(str(index), 0, size).blocks >= (5 if layout == "one stream" else 200)


def test_a_corrupt_index_block_is_an_error_not_a_guess(tmp_path):
    index = tmp_path / "x-multistream-index.txt.bz2"
    data = bytearray(bz2.compress(("\n".join(_index_lines()) + "\n").encode(), 1))
    middle = len(data) // 2
    data[middle:middle + 32] = bytes(32)
    index.write_bytes(bytes(data))
    with pytest.raises(DumpReadError, match="could not be read"):
        _pieces_offsets(index, 100_000)


def test_scan_finds_page_streams_only(tmp_path):
    """Stream starts are verified by decompressing: a header-and-magic pattern followed by garbage, the
    header stream and the footer stream are not page streams; a single-stream dump has none."""
    streams = [b"<mediawiki><siteinfo></siteinfo>\n", b"  <page><title>A</title></page>\n",
               b"  <page><title>B</title></page>\n", b"</mediawiki>\n"]
    parts = [bz2.compress(streams[0]), bz2.compress(streams[1]), b"BZh91AY&SY" + bytes(range(256)) * 40,
             bz2.compress(streams[2]), bz2.compress(streams[3])]
    path = tmp_path / "fake.bz2"
    path.write_bytes(b"".join(parts))
    starts = [len(b"".join(parts[:i])) for i in (1, 3)]
    assert list(stream_starts(str(path), 0, path.stat().st_size, starts_with_page)) == starts
    assert list(stream_starts(str(path), 0, starts[1], starts_with_page)) == starts[:1]  # a range holds its own starts
    assert list(stream_starts(str(path), starts[1], starts[1] + 1, starts_with_page)) == starts[1:]
    single = tmp_path / "single.xml.bz2"
    single.write_bytes(bz2.compress(b"".join(streams)))
    assert plan_units(str(single), build_index=True) == [WorkUnit(str(single))]
    assert starts_with_page("\ufeff\n  <page>".encode("utf-16-le")) and not starts_with_page(b"<mediawiki>")


@pytest.mark.slow
def test_built_index_and_pieced_index_read_the_pages_of_the_real_index_and_the_sequential_read(tmp_path):
    from linkbert.pipeline.synth.wiki import write_wiki_dump

    multi = write_wiki_dump(tmp_path / "multi", num_docs=120, seed=3, multistream=True, pages_per_stream=15)
    single = write_wiki_dump(tmp_path / "single", num_docs=120, seed=3)
    alone = tmp_path / "alone"
    alone.mkdir()
    dump = str(shutil.copy(multi["dump"], alone))  # no index beside it
    indexed_units = plan_units(multi["dump"], multi["index"], range_bytes=20_000)
    assert len(indexed_units) >= 5
    built_units = plan_units(dump, build_index=True, range_bytes=20_000)
    assert [(u.streams, u.end, u.header) for u in built_units] == [(u.streams, u.end, u.header) for u in indexed_units]
    sequential = [page_key(p) for p in read_all(single["dump"])]
    assert [page_key(p) for u in built_units for p in read_pages(u)] == sequential

    # the index padded with more lines for the same streams (so it spans several 100k bz2 blocks) and read in 1 KB pieces
    lines = bz2.decompress(Path(multi["index"]).read_bytes()).decode().splitlines()
    padded = tmp_path / "padded-index.txt.bz2"
    padded.write_bytes(bz2.compress(("\n".join(lines * 60) + "\n").encode(), 1))
    outs = {
        "index": run_read(tmp_path / "index", multi["dump"], index_pattern=str(padded), range_bytes=20_000,
                          index_piece_bytes=1024),
        "built": run_read(tmp_path / "built", dump, range_bytes=20_000, build_index=True),
        "sequential": run_read(tmp_path / "sequential", single["dump"]),
    }
    assert outs["index"]["counters"]["wikipedia.index_blocks"] >= 3
    for name, out in outs.items():
        assert reconcile(out["counters"])[0] and out["errors"] == [], name
    assert outs["index"]["counters"]["wikipedia.work_units"] == outs["built"]["counters"]["wikipedia.work_units"] == len(indexed_units)
    assert by_id(outs["index"]["documents"]) == by_id(outs["built"]["documents"]) == by_id(outs["sequential"]["documents"])
    assert len(outs["built"]["documents"]) >= 100


@pytest.mark.slow
def test_built_index_on_real_enwiki_pages_matches_the_index(real_data, tmp_path):
    dump, index, streams = repack_multistream(real_data(ENWIKI), tmp_path, pages_per_stream=10)
    os.remove(index)
    indexed = plan_units(str(dump), None, range_bytes=150_000)
    assert indexed == [WorkUnit(str(dump))]  # without --build-wiki-index: one unit (and a warning)
    built = plan_units(str(dump), build_index=True, range_bytes=150_000)
    assert [offset for unit in built for offset in unit.streams] == [offset for offset, _ in streams]
    assert built[0].header.site.namespace_of("Wikipedia") == 4
    assert [page_key(p) for u in built for p in read_pages(u)] == [page_key(p) for p in read_all(real_data(ENWIKI))]


@pytest.mark.slow
def test_a_corrupt_index_falls_back_to_one_unit_with_a_dead_letter(tmp_path):
    from linkbert.pipeline.synth.wiki import write_wiki_dump

    multi = write_wiki_dump(tmp_path / "multi", num_docs=40, seed=5, multistream=True, pages_per_stream=5)
    lines = bz2.decompress(Path(multi["index"]).read_bytes()).decode().splitlines()
    data = bytearray(bz2.compress(("\n".join(lines * 200) + "\n").encode(), 1))
    data[len(data) // 2: len(data) // 2 + 32] = bytes(32)
    broken = tmp_path / "broken-index.txt.bz2"
    broken.write_bytes(bytes(data))
    out = run_read(tmp_path / "out", multi["dump"], index_pattern=str(broken), index_piece_bytes=4096)
    assert out["counters"]["wikipedia.work_units"] == 1
    assert [(e["stage"], e["reason"]) for e in out["errors"]] == [("wikipedia.plan", "bad_index")]
    assert "could not be read" in out["errors"][0]["detail"] and "read as one unit" in out["errors"][0]["detail"]
    assert reconcile(out["counters"])[0] and len(out["documents"]) >= 30


def test_the_pipeline_option_reaches_the_reader(monkeypatch):
    import apache_beam as beam

    from linkbert.pipeline import sources
    from linkbert.pipeline.run import parse_config
    from linkbert.pipeline.sources import wikipedia

    given = {}
    monkeypatch.setattr(wikipedia, "ReadWikipedia", lambda *args, **kwargs: given.update(kwargs) or beam.Create([]))
    for argv, expected in (([], False), (["--build-wiki-index"], True)):
        config, _ = parse_config(["--source", "wikipedia", "--input", "gs://b/x.xml.bz2", "--output", "gs://b/o", *argv])
        sources.get("wikipedia").read(beam.Pipeline(), config)
        assert given["build_index"] is expected
