"""Bad Wikipedia inputs cost only the pages that overlap the damage (issue 14): every complete page
before a fault is kept and reading resumes after it. The inputs are generated here, small."""

import bz2
import codecs
import random

import pytest

from linkbert.pipeline.sources.compressed import Gap, block_as_stream, find_magic, recovering_chunks
from linkbert.pipeline.sources.wikidump import RawPage, ReadFailure, WorkUnit, read_pages
from linkbert.pipeline.sources.wikitext import clean_wikitext

HEADER = ('<mediawiki xmlns="http://www.mediawiki.org/xml/export-0.10/" version="0.10" xml:lang="en">\n'
          "<siteinfo><sitename>Test</sitename><case>first-letter</case><namespaces>"
          '<namespace key="0" case="first-letter" /><namespace key="10" case="first-letter">Template</namespace>'
          "</namespaces></siteinfo>\n")
FOOTER = "</mediawiki>\n"
WORDS = "river city mountain lake forest stone bridge tower castle field garden meadow harbour valley".split()


def page(page_id: int, text: str | None = None, title: str | None = None, ns: int = 0) -> str:
    rng = random.Random(page_id)
    text = text if text is not None else " ".join(rng.choice(WORDS) for _ in range(rng.randint(150, 400))) + "."
    return (f"<page><title>{title or f'Page {page_id}'}</title><ns>{ns}</ns><id>{page_id}</id>"
            f"<revision><id>{page_id + 100000}</id><text xml:space=\"preserve\">{text}</text></revision></page>\n")


def dump(pages: list[str]) -> bytes:
    return (HEADER + "".join(pages) + FOOTER).encode("utf-8")


def read(path) -> tuple[list[RawPage], list[ReadFailure]]:
    items = list(read_pages(WorkUnit(str(path))))
    return [i for i in items if isinstance(i, RawPage)], [i for i in items if isinstance(i, ReadFailure)]


def ids(pages) -> list[int]:
    return [int(p.page_id) for p in pages]


def test_invalid_utf8_costs_only_its_page(tmp_path):
    pages = [page(i) for i in range(1, 121)]
    data = dump(pages)
    bad = data.index(b"<id>50</id>") + 40
    path = tmp_path / "badutf8.xml"
    path.write_bytes(data[:bad] + b"\xff\xfe\xc3" + data[bad:])
    kept, failures = read(path)
    assert ids(kept) == [i for i in range(1, 121) if i != 50]
    assert len(failures) == 1 and failures[0].record_id == "50" and failures[0].page_read
    assert str(path) in failures[0].detail and "Page 50" in failures[0].detail


def test_a_page_over_the_parser_limit_is_one_dead_letter(tmp_path):
    pages = [page(i) for i in range(1, 41)]
    pages.insert(30, page(999, "word " * (4 << 20)))  # 20 MB of text: libxml2 stops at 10 MB
    path = tmp_path / "bigpage.xml"
    path.write_bytes(dump(pages))
    kept, failures = read(path)
    assert ids(kept) == list(range(1, 41))
    assert [(f.reason, f.record_id) for f in failures] == [("page_too_large", "999")]


def test_bz2_cut_in_half_keeps_every_whole_block(tmp_path):
    pages = [page(i) for i in range(1, 2001)]
    data = dump(pages)
    compressed = bz2.compress(data, 9)
    assert find_magic(compressed, 80) is not None  # several 900k blocks
    path = tmp_path / "half.xml.bz2"
    path.write_bytes(compressed[: len(compressed) // 2])
    kept, failures = read(path)
    decodable = bz2.BZ2Decompressor().decompress(compressed[: len(compressed) // 2])
    whole_pages_in_prefix = decodable.count(b"</page>")
    assert whole_pages_in_prefix > 100 and ids(kept) == list(range(1, whole_pages_in_prefix + 1))
    assert failures and all(f.reason == "truncated" for f in failures)
    assert any(str(path) in f.detail and "byte" in f.detail for f in failures)


def test_corrupt_bz2_block_is_skipped_and_reading_resumes_at_the_next_block(tmp_path):
    pages = [page(i) for i in range(1, 3001)]
    data = dump(pages)
    compressed = bytearray(bz2.compress(data, 9))
    second = find_magic(bytes(compressed), 80)
    third = find_magic(bytes(compressed), second + 48)
    assert third is not None
    compressed[second // 8 + 1000: second // 8 + 1064] = bytes(64)  # damage inside the second block
    path = tmp_path / "corrupt.xml.bz2"
    path.write_bytes(bytes(compressed))
    kept, failures = read(path)
    got = ids(kept)
    assert got == sorted(got) and got[0] == 1 and got[-1] == 3000  # pages after the damaged block are back
    first_block = bz2.decompress(block_as_stream(bytes(compressed), 32, second))
    assert set(range(1, first_block.count(b"</page>") + 1)) <= set(got)
    lost = set(range(1, 3001)) - set(got)
    assert 0 < len(lost) < 3000 - len(got) + 1 and len(lost) < 1000  # one block's pages, no more
    reference = {p.page_id: p.text for p in read_pages_of(data, tmp_path)}
    assert all(p.text == reference[p.page_id] for p in kept)  # nothing spliced across the gap
    assert any(f.reason == "corrupt_stream" and str(path) in f.detail for f in failures)


def read_pages_of(data: bytes, tmp_path):
    path = tmp_path / "reference.xml"
    path.write_bytes(data)
    return read(path)[0]


def test_recovering_chunks_rebuilds_the_stream_of_an_intact_file(tmp_path):
    data = dump([page(i) for i in range(1, 400)])
    path = tmp_path / "ok.xml.bz2"
    path.write_bytes(bz2.compress(data, 1) + bz2.compress(data[:1000], 1))
    items = [item for _, item in recovering_chunks(str(path))]
    assert not any(isinstance(i, Gap) for i in items) and b"".join(items) == data + data[:1000]


def test_doctype_entity_declarations_are_refused(tmp_path):
    data = dump([page(1, "Anar&x;chism"), page(2)])
    path = tmp_path / "entity.xml"
    path.write_bytes(data.replace(b"<mediawiki", b'<!DOCTYPE mediawiki [<!ENTITY x "boo">]>\n<mediawiki', 1))
    kept, failures = read(path)
    assert kept == [] and [f.reason for f in failures] == ["unsafe_xml"]
    assert str(path) in failures[0].detail and "entit" in failures[0].detail


def test_entity_bomb_is_refused(tmp_path):
    bomb = ('<!DOCTYPE mediawiki [<!ENTITY a "aaaaaaaaaa">' + "".join(
        f'<!ENTITY {chr(98 + i)} "{("&" + chr(97 + i) + ";") * 10}">' for i in range(8)) + "]>\n")
    path = tmp_path / "bomb.xml"
    path.write_bytes(bomb.encode() + dump([page(1, "&i;")]))
    kept, failures = read(path)
    assert kept == [] and failures[0].reason == "unsafe_xml"


def test_a_pubmed_file_names_the_source_that_fits(tmp_path):
    path = tmp_path / "pubmed.xml"
    path.write_bytes(b'<?xml version="1.0"?>\n<!DOCTYPE PubmedArticleSet PUBLIC "-//NLM//DTD x//EN" "x.dtd">\n'
                     b"<PubmedArticleSet><PubmedArticle/></PubmedArticleSet>\n")
    kept, failures = read(path)
    assert kept == [] and [f.reason for f in failures] == ["wrong_format"]
    assert "<PubmedArticleSet>" in failures[0].detail and "--source pubmed" in failures[0].detail


@pytest.mark.parametrize("content, reason", [(b"", "empty_file"), (bz2.compress(b""), "empty_file"),
                                             (b"\x00" * 100, "bad_xml")])
def test_empty_and_junk_files_are_dead_letters(tmp_path, content, reason):
    path = tmp_path / "empty.xml.bz2"
    path.write_bytes(content)
    kept, failures = read(path)
    assert kept == [] and failures and failures[0].reason == reason and str(path) in failures[0].detail


def test_truncated_xml_keeps_the_pages_before_the_cut(tmp_path):
    data = dump([page(i) for i in range(1, 30)])
    path = tmp_path / "cut.xml"
    path.write_bytes(data[: data.index(b"<id>20</id>") + 50])
    kept, failures = read(path)
    assert ids(kept) == list(range(1, 20))
    assert [(f.reason, f.record_id) for f in failures] == [("truncated", "20")]


def test_utf16_without_bom_reads(tmp_path):
    data = dump([page(i) for i in range(1, 6)]).decode("utf-8")
    path = tmp_path / "utf16.xml"
    path.write_bytes(('<?xml version="1.0" encoding="UTF-16"?>\n' + data).encode("utf-16-le"))
    assert not path.read_bytes().startswith(codecs.BOM_UTF16_LE)
    kept, failures = read(path)
    assert ids(kept) == [1, 2, 3, 4, 5] and failures == []


def test_unclosed_link_brackets_never_reach_the_text():
    text = "Intro sentence about rivers. " + "[[" * 50000 + " Closing words with a [[River|real link]]."
    cleaned = clean_wikitext(text)
    assert "[" not in cleaned.text and "]" not in cleaned.text
    assert cleaned.text.startswith("Intro sentence about rivers.") and "real link" in cleaned.text
    assert cleaned.outlinks == ["River"]


# A fault must cost the same pages however the bytes reach the parser: after a parse error nothing the
# parser holds is trusted (libxml2 >= 2.13 ends the open elements, so a cut page looked complete).
def _damaged(kind: str) -> tuple[bytes, list[int], list[tuple[str, str | None]]]:
    """(file bytes, page ids kept, [(reason, record id)]) of a 30-page dump damaged in one way."""
    data = dump([page(i) for i in range(1, 31)])
    at = data.index(b"<id>12</id>")
    if kind == "bad_utf8":
        return data[:at + 60] + b"\xff" + data[at + 60:], [i for i in range(1, 31) if i != 12], [("bad_xml", "12")]
    if kind == "mismatched_tag":
        end = data.index(b"</text>", at)
        return data[:end] + b"</txt>" + data[end + 7:], [i for i in range(1, 31) if i != 12], [("bad_xml", "12")]
    if kind == "first_page":
        at = data.index(b"<id>1</id>")
        return data[:at + 60] + b"\xff" + data[at + 60:], list(range(2, 31)), [("bad_xml", "1")]
    if kind == "between_pages":
        end = data.index(b"</page>", at) + 7
        return data[:end] + b"<<junk" + data[end:], list(range(1, 31)), [("bad_xml", None)]
    assert kind == "truncated"
    return data[:at + 50], list(range(1, 12)), [("truncated", "12")]


@pytest.mark.parametrize("kind", ["bad_utf8", "mismatched_tag", "first_page", "between_pages", "truncated"])
@pytest.mark.parametrize("chunk", [1000, 1 << 16, 1 << 24])
def test_a_fault_costs_the_same_pages_however_the_bytes_are_chunked(tmp_path, monkeypatch, kind, chunk):
    import linkbert.pipeline.sources.compressed as compressed

    monkeypatch.setattr(compressed, "CHUNK_BYTES", chunk)
    data, kept_ids, expected = _damaged(kind)
    path = tmp_path / f"{kind}.xml"
    path.write_bytes(data)
    kept, failures = read(path)
    assert ids(kept) == kept_ids
    assert [(f.reason, f.record_id) for f in failures] == expected and all(str(path) in f.detail for f in failures)
    reference = {p.page_id: p.text for p in read_pages_of(dump([page(i) for i in range(1, 31)]), tmp_path)}
    assert all(p.text == reference[p.page_id] for p in kept)  # no page cut short


def test_a_page_over_the_parser_limit_in_one_large_chunk_is_one_dead_letter(tmp_path, monkeypatch):
    import linkbert.pipeline.sources.compressed as compressed

    monkeypatch.setattr(compressed, "CHUNK_BYTES", 1 << 26)  # the whole file in one feed
    pages = [page(i) for i in range(1, 11)]
    pages.insert(5, page(999, "word " * (11 << 18)))  # 14 MB: over libxml2's 10 MB text limit
    path = tmp_path / "bigpage.xml"
    path.write_bytes(dump(pages))
    kept, failures = read(path)
    assert ids(kept) == list(range(1, 11))
    assert [(f.reason, f.record_id) for f in failures] == [("page_too_large", "999")]


@pytest.mark.parametrize("suffix", ["xml", "xml.bz2"])
def test_utf16_faults_name_the_page_and_keep_the_others(tmp_path, suffix):
    text = ('<?xml version="1.0" encoding="UTF-16"?>\n' + dump([page(i) for i in range(1, 31)]).decode("utf-8"))
    text = text.replace("</text></revision></page>\n<page><title>Page 8<", "</txt></revision></page>\n<page><title>Page 8<")
    data = codecs.BOM_UTF16_LE + text.encode("utf-16-le")
    cut = data[:data.index("<id>25</id>".encode("utf-16-le")) + 51]  # odd: inside a character
    path = tmp_path / f"utf16.{suffix}"
    path.write_bytes(bz2.compress(cut, 1) if suffix.endswith("bz2") else cut)
    kept, failures = read(path)
    assert ids(kept) == [i for i in range(1, 25) if i != 7]
    assert [(f.reason, f.record_id) for f in failures] == [("bad_xml", "7"), ("truncated", "25")]
    assert "Page 7" in failures[0].detail and "Page 25" in failures[1].detail


def test_a_bad_page_in_a_multistream_stream_costs_only_itself(tmp_path):
    from test_wikipedia_read import repack_multistream

    from linkbert.pipeline.sources.multistream import plan_units

    data = dump([page(i) for i in range(1, 61)])
    end = data.index(b"</text>", data.index(b"<id>25</id>"))
    source = tmp_path / "source.xml.bz2"
    source.write_bytes(bz2.compress(data[:end] + b"</txt>" + data[end + 7:]))
    multistream, index, streams = repack_multistream(source, tmp_path, pages_per_stream=10)
    items = [item for unit in plan_units(str(multistream), str(index), range_bytes=1) for item in read_pages(unit)]
    kept = [item for item in items if isinstance(item, RawPage)]
    failures = [item for item in items if isinstance(item, ReadFailure)]
    assert ids(kept) == [i for i in range(1, 61) if i != 25]
    assert [(f.reason, f.record_id) for f in failures] == [("bad_xml", "25")] and str(multistream) in failures[0].detail


@pytest.mark.parametrize("encoding", ["utf-8", "utf-16-le"])
def test_a_corrupt_first_block_costs_only_its_pages(tmp_path, encoding):
    # the document's start (and <siteinfo>) is lost: the next block is a fragment read from its next <page>
    text = dump([page(i) for i in range(1, 3001)]).decode("utf-8")
    data = (codecs.BOM_UTF16_LE if encoding == "utf-16-le" else b"") + text.encode(encoding)
    compressed = bytearray(bz2.compress(data, 9))
    second = find_magic(bytes(compressed), 80)
    compressed[100:164] = bytes(64)
    path = tmp_path / "first.xml.bz2"
    path.write_bytes(bytes(compressed))
    kept, failures = read(path)
    first_block = bz2.decompress(block_as_stream(bytes(compressed[:4]) + bz2.compress(data, 9)[4:], 32, second))
    lost = first_block.count("</page>".encode(encoding)) + 1  # and the page the block boundary cuts
    assert ids(kept) == list(range(lost + 1, 3001))
    assert [f.reason for f in failures] == ["corrupt_stream"] and str(path) in failures[0].detail
