"""Reading dumps (pipeline.sources.wikidump) and the ReadWikipedia transform on the DirectRunner."""

import bz2
import codecs
import gzip
import html
import json
import re
from pathlib import Path

import apache_beam as beam
import pytest
from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline

from linkbert import schemas
from linkbert.pipeline.records import METRICS_NAMESPACE
from linkbert.pipeline.sources.compressed import DumpReadError
from linkbert.pipeline.sources.multistream import find_index, plan_units, read_stream_offsets
from linkbert.pipeline.sources.wikidump import RawPage, ReadFailure, WorkUnit, read_pages
from linkbert.pipeline.sources.wikipedia import ReadWikipedia, page_outcome, reconcile
from linkbert.pipeline.sources.wikitext import WikitextCleaner

ENWIKI = "wikipedia/enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2"
TABLES = "wikipedia/enwiki-table-markup.xml.bz2"
BGWIKI = "wikipedia/bgwiki-latest-pages-articles-shortened.xml.bz2"


def repack_multistream(source: Path, directory: Path, pages_per_stream: int, name: str = "testwiki"):
    """Re-pack a dump as Wikimedia does for multistream: a header stream, streams of
    ``pages_per_stream`` pages, a footer stream, and the ``offset:page_id:title`` index.
    Returns (dump path, index path, [(stream offset, [page ids])])."""
    xml = bz2.decompress(source.read_bytes())
    encoding = "utf-16-le" if xml.startswith(codecs.BOM_UTF16_LE) else "utf-8"
    starts = [m.start() for m in re.finditer(re.escape("<page>".encode(encoding)), xml)]
    footer = xml.rindex("</mediawiki>".encode(encoding))
    bounds = starts + [footer]
    dump = directory / f"{name}-multistream.xml.bz2"
    index = directory / f"{name}-multistream-index.txt.bz2"
    lines, streams = [], []
    with open(dump, "wb") as out:
        out.write(bz2.compress(xml[:starts[0]]))
        for first in range(0, len(starts), pages_per_stream):
            offset = out.tell()
            chunk = xml[bounds[first]:bounds[min(first + pages_per_stream, len(starts))]]
            pages = re.findall(r"<title>(.*?)</title>.*?<id>(\d+)</id>", chunk.decode(encoding), re.S)
            lines += [f"{offset}:{page_id}:{html.unescape(title)}" for title, page_id in pages]
            streams.append((offset, [page_id for _, page_id in pages]))
            out.write(bz2.compress(chunk))
        out.write(bz2.compress(xml[footer:]))
    index.write_bytes(bz2.compress(("\n".join(lines) + "\n").encode("utf-8")))
    return dump, index, streams


def read_all(unit_or_path) -> list:
    unit = unit_or_path if isinstance(unit_or_path, WorkUnit) else WorkUnit(str(unit_or_path))
    return list(read_pages(unit))


def page_key(page: RawPage):
    return (page.page_id, page.title, page.namespace, page.text, page.redirect)


def run_read(out_dir: Path, pattern: str, **options) -> dict:
    """Run ReadWikipedia on the DirectRunner -> {"documents", "redirects", "errors", "counters"}."""
    pipeline = BeamTestPipeline()
    outputs = pipeline | "ReadWikipedia" >> ReadWikipedia(pattern, **options)
    for name in ("documents", "redirects", "errors"):
        (
            outputs[name]
            | f"Json{name}" >> beam.Map(json.dumps, sort_keys=True, ensure_ascii=False)
            | f"Write{name}" >> beam.io.WriteToText(str(out_dir / name))
        )
    result = pipeline.run()
    result.wait_until_finish()
    counters: dict[str, int] = {}
    for item in result.metrics().query()["counters"]:
        if item.key.metric.namespace == METRICS_NAMESPACE:
            counters[item.key.metric.name] = counters.get(item.key.metric.name, 0) + item.committed
    collected = {"counters": counters}
    for name in ("documents", "redirects", "errors"):
        collected[name] = [json.loads(line) for path in sorted(out_dir.glob(f"{name}*")) for line in path.open(encoding="utf-8")]
    return collected


def by_id(documents) -> dict:
    return {doc["doc_id"]: (doc["title"], doc["text"], doc["outlinks"]) for doc in documents}


_sequential_runs: dict[Path, dict] = {}


@pytest.fixture
def enwiki_sequential(real_data, tmp_path_factory):
    """The enwiki fragment read as one file, run once for the tests that compare with it."""
    path = real_data(ENWIKI)
    if path not in _sequential_runs:
        _sequential_runs[path] = run_read(tmp_path_factory.mktemp("sequential"), str(path))
    return path, _sequential_runs[path]


# --------------------------------------------------------------------------------------------
# The transform on the real enwiki fragment


@pytest.mark.slow
def test_enwiki_fragment_reconciles(enwiki_sequential):
    path, out = enwiki_sequential
    counters = out["counters"]
    # 206 pages: 106 namespace-0 articles (8 of them disambiguation pages), 99 + 1 redirects.
    assert counters["wikipedia.pages_read"] == 206
    assert counters["wikipedia.articles_written"] == 98
    assert counters["wikipedia.redirects"] == 99
    assert counters["wikipedia.filtered.disambiguation"] == 8
    assert counters["wikipedia.filtered.namespace"] == 1  # the redirect in namespace 4
    assert counters.get("wikipedia.failed", 0) == 0
    holds, lines = reconcile(counters)
    assert holds, lines
    assert lines[0].startswith("wikipedia: 206 pages read = 98 articles written + 99 redirects + 9 filtered")
    assert len(out["documents"]) == 98 and len(out["redirects"]) == 99 and out["errors"] == []

    rows = out["documents"]
    table = schemas.to_table(rows, "documents")  # exactly the documents schema's columns and types
    assert table.num_rows == 98
    assert {row["source"] for row in rows} == {"wikipedia"} and {row["source_file"] for row in rows} == {str(path)}
    anarchism = next(row for row in rows if row["title"] == "Anarchism")
    assert anarchism["doc_id"] == "12"
    assert anarchism["outlinks"][:3] == ["Political philosophy", "Self-governance", "Stateless society"]
    assert {"title": "AccessibleComputing", "target": "Computer accessibility"} in out["redirects"]
    assert all(not r["title"].startswith("Wikipedia:") for r in out["redirects"])


def test_keep_disambiguation_and_namespaces_options(real_data):
    pages = [p for p in read_all(real_data(ENWIKI)) if isinstance(p, RawPage)]
    cleaner = WikitextCleaner(pages[0].site)
    kinds = [page_outcome(p, cleaner, {0}, keep_disambiguation=True)[0] for p in pages]
    assert kinds.count("document") == 106 and kinds.count("redirect") == 99
    with_project = [page_outcome(p, cleaner, {0, 4})[:2] for p in pages if p.namespace == 4]
    assert with_project == [("redirect", {"title": "Wikipedia:Adding Wikipedia articles to Nupedia",
                                          "target": "Wikipedia:Nupedia and Wikipedia"})]


# --------------------------------------------------------------------------------------------
# Multistream: parallel ranges give exactly the documents of the sequential read


@pytest.mark.slow
def test_multistream_ranges_match_sequential_read(enwiki_sequential, tmp_path):
    path, sequential = enwiki_sequential
    dump, index, streams = repack_multistream(path, tmp_path, pages_per_stream=10)
    assert find_index(str(dump)) == str(index)
    units = plan_units(str(dump), str(index), range_bytes=150_000)
    assert len(units) >= 5 and [u.streams[0] for u in units] == sorted(u.streams[0] for u in units)
    assert sum(len(u.streams) for u in units) == len(streams) == 21

    out = run_read(tmp_path / "out", str(dump), range_bytes=150_000)  # index found beside the dump
    assert out["counters"]["wikipedia.work_units"] == len(units)
    assert by_id(out["documents"]) == by_id(sequential["documents"])
    assert sorted(map(json.dumps, out["redirects"])) == sorted(map(json.dumps, sequential["redirects"]))
    holds, lines = reconcile(out["counters"])
    assert holds and out["counters"]["wikipedia.pages_read"] == 206, lines


@pytest.mark.slow
def test_synthetic_multistream_matches_single_stream_dump(tmp_path):
    from linkbert.pipeline.synth.wiki import write_wiki_dump

    multi = write_wiki_dump(tmp_path / "multi", num_docs=120, seed=3, multistream=True, pages_per_stream=15)
    single = write_wiki_dump(tmp_path / "single", num_docs=120, seed=3)
    index_free = [page_key(p) for p in read_all(single["dump"])]
    ranged = [page_key(p) for u in plan_units(multi["dump"], multi["index"], range_bytes=20_000) for p in read_pages(u)]
    assert ranged == index_free and len(ranged) > 150

    # read apart: read together, the two copies of each page id would be one document (tested below)
    ranged_out = run_read(tmp_path / "multi-out", multi["dump"], index_pattern=multi["index"], range_bytes=20_000)
    single_out = run_read(tmp_path / "single-out", single["dump"])
    assert by_id(ranged_out["documents"]) == by_id(single_out["documents"]) and len(single_out["documents"]) >= 100
    assert ranged_out["counters"]["wikipedia.work_units"] > 1
    assert reconcile(ranged_out["counters"])[0] and reconcile(single_out["counters"])[0]


def test_utf16_multistream_reads_like_the_whole_file(real_data, tmp_path):
    path = real_data(BGWIKI)
    dump, index, _ = repack_multistream(path, tmp_path, pages_per_stream=1, name="bgwiki")
    units = plan_units(str(dump), str(index), range_bytes=1)
    assert len(units) == 3 and units[0].header.encoding == "UTF-16LE"
    assert units[0].header.site.namespace_of("Файл") == 6
    ranged = [page_key(p) for u in units for p in read_pages(u)]
    assert ranged == [page_key(p) for p in read_all(path)]
    assert ranged == [page_key(p) for p in read_all(dump)]  # without its index: one unit, all streams
    assert ranged[0][1] == "Григориански календар" and "Григорианският календар" in ranged[0][3]


# --------------------------------------------------------------------------------------------
# Formats


def test_plain_xml_gzip_and_schema_0_11_read_alike(real_data, tmp_path):
    path = real_data(TABLES)
    xml = bz2.decompress(path.read_bytes())
    plain = tmp_path / "tables.xml"
    plain.write_bytes(xml.replace(b"export-0.10", b"export-0.11").replace(b'version="0.10"', b'version="0.11"'))
    gzipped = tmp_path / "tables.xml.gz"
    gzipped.write_bytes(gzip.compress(xml))
    expected = [page_key(p) for p in read_all(path)]
    assert len(expected) == 5
    assert [page_key(p) for p in read_all(plain)] == expected
    assert [page_key(p) for p in read_all(gzipped)] == expected


# --------------------------------------------------------------------------------------------
# Faults


def test_corrupt_stream_costs_only_its_own_pages(real_data, tmp_path):
    dump, index, streams = repack_multistream(real_data(ENWIKI), tmp_path, pages_per_stream=10)
    broken_offset, broken_ids = streams[8]
    data = bytearray(dump.read_bytes())
    data[broken_offset + 200:broken_offset + 264] = bytes(64)
    dump.write_bytes(bytes(data))

    items = [item for u in plan_units(str(dump), str(index), range_bytes=100_000) for item in read_pages(u)]
    failures = [item for item in items if isinstance(item, ReadFailure)]
    pages = [item.page_id for item in items if isinstance(item, RawPage)]
    assert len(failures) == 1 and failures[0].reason == "corrupt_stream"
    assert failures[0].source_file == str(dump) and f"byte {broken_offset}" in failures[0].detail
    expected = [page_id for offset, ids in streams if offset != broken_offset for page_id in ids]
    assert pages == expected and not set(broken_ids) & set(pages)


def test_truncated_whole_file_keeps_pages_before_the_cut(real_data, tmp_path):
    data = real_data(ENWIKI).read_bytes()
    truncated = tmp_path / "truncated.xml.bz2"
    truncated.write_bytes(data[: len(data) // 2])
    items = read_all(truncated)
    assert isinstance(items[-1], ReadFailure) and items[-1].reason == "truncated"
    assert str(truncated) in items[-1].detail and "byte" in items[-1].detail
    pages = [item for item in items if isinstance(item, RawPage)]
    complete = [page_key(p) for p in read_all(real_data(ENWIKI))]
    assert 20 < len(pages) < 206 and [page_key(p) for p in pages] == complete[: len(pages)]


def test_malformed_index_names_the_line(tmp_path):
    index = tmp_path / "x-multistream-index.txt.bz2"
    index.write_bytes(bz2.compress(b"600:10:Foo\n600:12:Bar\nnot an index line\n"))
    with pytest.raises(DumpReadError, match="line 3"):
        read_stream_offsets(str(index))


BAD_PAGES_XML = """<mediawiki xmlns="http://www.mediawiki.org/xml/export-0.11/" version="0.11">
  <page><title>Good</title><ns>0</ns><id>1</id><revision><text>A [[good]] page.</text></revision></page>
  <page><title>No id</title><ns>0</ns><revision><text>Text.</text></revision></page>
  <page><title>Deep</title><ns>0</ns><id>3</id><revision><text>{nesting}</text></revision></page>
  <page><title>Empty</title><ns>0</ns><id>4</id><revision><text>{{{{Infobox}}}}</text></revision></page>
  <page><title>After</title><ns>0</ns><id>5</id><revision><text>Still read.</text></revision></page>
</mediawiki>
"""


@pytest.mark.slow
def test_bad_pages_and_truncated_ranges_are_dead_letters(real_data, tmp_path):
    bad = tmp_path / "bad.xml"
    bad.write_text(BAD_PAGES_XML.replace("{nesting}", "{{nowrap|" * 1200 + "x" + "}}" * 1200), encoding="utf-8")
    dump, index, streams = repack_multistream(real_data(ENWIKI), tmp_path, pages_per_stream=10)
    cut = streams[15][0] + 1000
    dump.write_bytes(dump.read_bytes()[:cut])

    out = run_read(tmp_path / "out", f"{bad},{dump}", range_bytes=150_000)
    counters = out["counters"]
    holds, lines = reconcile(counters)
    assert not holds and "reconciled over the pages read" in lines[0], lines  # the sum holds; a stream was lost
    pages_before_cut = sum(len(ids) for offset, ids in streams[:15])
    assert counters["wikipedia.pages_read"] == 5 + pages_before_cut
    assert counters["wikipedia.failed"] == 2 and counters["wikipedia.filtered.empty"] == 1
    assert {doc["title"] for doc in out["documents"] if doc["source_file"] == str(bad)} == {"Good", "After"}

    errors = {(e["source_file"], e["record_id"], e["reason"]): e for e in out["errors"]}
    assert (str(bad), None, "bad_page") in errors
    deep = errors[(str(bad), "3", "parse_error")]
    assert "Deep" in deep["detail"] and deep["stage"] == "wikipedia.clean"
    truncated = [e for e in out["errors"] if e["reason"] == "truncated"]
    assert truncated and all(e["source_file"] == str(dump) for e in truncated)
    assert any(f"byte {streams[15][0]}" in e["detail"] for e in truncated)
    assert counters["wikipedia.unreadable_streams"] == len(truncated)
    assert any("unreadable" in line for line in lines)


def test_reconcile_reports_a_mismatch():
    holds, lines = reconcile({"wikipedia.pages_read": 10, "wikipedia.articles_written": 7, "wikipedia.filtered.empty": 2})
    assert not holds and "MISMATCH, +1 pages unaccounted for" in lines[0]
    assert reconcile({})[0]


def test_a_pattern_matching_nothing_is_an_error(tmp_path):
    with pytest.raises(Exception, match="no dump file matches"):
        run_read(tmp_path / "out", str(tmp_path / "missing-*.xml.bz2"))


# --------------------------------------------------------------------------------------------
# Duplicate page ids and redirects written only in the text


def _dump(pages: list[tuple[str, str, str, int, str]]) -> str:
    """(page id, title, timestamp, revision id, wikitext) -> a minimal export-0.10 dump without <redirect>."""
    body = "".join(
        f"<page><title>{title}</title><ns>0</ns><id>{page_id}</id><revision><id>{revision}</id>"
        f"<timestamp>{timestamp}</timestamp><text xml:space=\"preserve\">{html.escape(text)}</text></revision></page>"
        for page_id, title, timestamp, revision, text in pages)
    return ('<mediawiki xmlns="http://www.mediawiki.org/xml/export-0.10/" version="0.10" xml:lang="en">'
            f"<siteinfo><sitename>Test</sitename><namespaces><namespace key=\"0\" /></namespaces></siteinfo>{body}</mediawiki>")


def test_duplicate_page_ids_keep_the_latest_revision_and_dead_letter_the_rest(tmp_path):
    older = tmp_path / "testwiki-20240101-pages-articles.xml"
    newer = tmp_path / "testwiki-20240201-pages-articles.xml"
    older.write_text(_dump([
        ("5", "Alpha", "2024-01-01T00:00:00Z", 10, "Alpha was a village. It lies near [[Beta]]."),
        ("6", "Beta", "2024-01-01T00:00:00Z", 11, "Beta is a river."),
    ]), encoding="utf-8")
    newer.write_text(_dump([
        ("5", "Alpha", "2024-02-01T00:00:00Z", 30, "Alpha is a town. It lies on the [[Beta]] river."),
        ("7", "Gamma", "2024-02-01T00:00:00Z", 31, "#REDIRECT [[Beta]]"),
    ]), encoding="utf-8")
    # the older dump is matched second, so the rule is the revision, not the order files are listed in
    collected = run_read(tmp_path / "out", f"{newer},{older}")
    documents = by_id(collected["documents"])
    assert sorted(documents) == ["5", "6"]
    assert documents["5"][1].startswith("Alpha is a town")
    duplicates = [e for e in collected["errors"] if e["reason"] == "duplicate_page_id"]
    assert [(e["record_id"], Path(e["source_file"]).name) for e in duplicates] == [("5", older.name)]
    assert "revision 10" in duplicates[0]["detail"] and "revision 30" in duplicates[0]["detail"]
    assert collected["redirects"] == [{"title": "Gamma", "target": "Beta"}]
    counters = collected["counters"]
    assert counters["wikipedia.duplicates_superseded"] == 1 and counters["wikipedia.articles_written"] == 2
    holds, lines = reconcile(counters)
    assert holds, lines
    assert "1 superseded" in lines[0]


def test_a_dump_matched_twice_yields_each_page_once(real_data, tmp_path):
    path = real_data(TABLES)
    copy = tmp_path / "copy-of-tables.xml.bz2"
    copy.write_bytes(path.read_bytes())
    once = run_read(tmp_path / "once", str(path))
    twice = run_read(tmp_path / "twice", f"{path},{copy}")
    assert by_id(twice["documents"]) == by_id(once["documents"]) and once["documents"]
    superseded = [e for e in twice["errors"] if e["reason"] == "duplicate_page_id"]
    assert len(superseded) == len(once["documents"]) == twice["counters"]["wikipedia.duplicates_superseded"]
    assert reconcile(twice["counters"])[0]
