"""The synthetic corpora are valid dumps whose planted graph can be read back exactly."""

from __future__ import annotations

import bz2
import collections
import csv
import gzip
import io
import json
import re
import statistics
from pathlib import Path

import mwparserfromhell
import pubmed_parser
import pytest
from lxml import etree

from linkbert.cli import main as linkbert_main
from linkbert.pipeline.synth import write_pubmed_baseline, write_wiki_dump
from linkbert.pipeline.synth.graph import LinkGraph
from linkbert.pipeline.synth.names import (
    GIVEN_NAMES,
    RESERVED_WORDS,
    NameSpace,
    is_generated_name_shape,
)
from linkbert.pipeline.synth.randomness import KeyedPermutation

WIKI_DOCS = 300
PUBMED_DOCS = 400
EXPORT = "{http://www.mediawiki.org/xml/export-0.11/}"


def read_tsv(path: str) -> list[dict]:
    with gzip.open(path, "rt", encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))


def normalise_title(raw: str) -> str:
    """MediaWiki title normalisation for namespace-0 links on a first-letter wiki."""
    title = raw.strip().lstrip(":").split("#", 1)[0]
    title = re.sub(r"[ _]+", " ", title).strip()
    return title[:1].upper() + title[1:]


def read_dump_pages(dump: bytes) -> tuple[etree._Element, list[dict]]:
    """All pages of an export, with lxml iterparse (elements cleared as we go)."""
    pages, siteinfo = [], None
    for _, element in etree.iterparse(io.BytesIO(dump), events=("end",)):
        if element.tag == EXPORT + "siteinfo":
            siteinfo = element
        elif element.tag == EXPORT + "page":
            redirect = element.find(EXPORT + "redirect")
            text = element.find(f"{EXPORT}revision/{EXPORT}text")
            pages.append({
                "title": element.findtext(EXPORT + "title"),
                "ns": int(element.findtext(EXPORT + "ns")),
                "id": int(element.findtext(EXPORT + "id")),
                "redirect": None if redirect is None else redirect.get("title"),
                "text": text.text or "",
                "bytes": int(text.get("bytes")),
                "sha1": element.findtext(f"{EXPORT}revision/{EXPORT}sha1"),
            })
            element.clear()
    return siteinfo, pages


@pytest.fixture(scope="module")
def wiki(tmp_path_factory):
    out = tmp_path_factory.mktemp("wiki")
    paths = write_wiki_dump(out, WIKI_DOCS, seed=11)
    siteinfo, pages = read_dump_pages(bz2.decompress(Path(paths["dump"]).read_bytes()))
    for page in pages:
        page["wikicode"] = mwparserfromhell.parse(page["text"])
    return paths, siteinfo, pages


@pytest.fixture(scope="module")
def pubmed(tmp_path_factory):
    out = tmp_path_factory.mktemp("pubmed")
    return write_pubmed_baseline(out, PUBMED_DOCS, seed=5, num_files=2)


def file_bytes(paths) -> dict[str, bytes]:
    flat = [p for value in paths.values() for p in (value if isinstance(value, list) else [value])]
    return {Path(p).name: Path(p).read_bytes() for p in flat}


# ------------------------------------------------------------------------------ determinism
def test_same_seed_gives_byte_identical_files_and_another_seed_does_not(tmp_path):
    first = file_bytes(write_wiki_dump(tmp_path / "a", 120, seed=3, multistream=True, pages_per_stream=20))
    again = file_bytes(write_wiki_dump(tmp_path / "b", 120, seed=3, multistream=True, pages_per_stream=20))
    other = file_bytes(write_wiki_dump(tmp_path / "c", 120, seed=4, multistream=True, pages_per_stream=20))
    assert first == again
    assert all(first[name] != other[name] for name in first)

    first = file_bytes(write_pubmed_baseline(tmp_path / "d", 120, seed=3, num_files=2))
    again = file_bytes(write_pubmed_baseline(tmp_path / "e", 120, seed=3, num_files=2))
    other = file_bytes(write_pubmed_baseline(tmp_path / "f", 120, seed=4, num_files=2))
    assert first == again
    assert all(first[name] != other[name] for name in first)


# ------------------------------------------------------------------------------- Wikipedia
def test_wiki_dump_is_a_valid_export(wiki):
    paths, siteinfo, pages = wiki
    assert siteinfo.findtext(EXPORT + "case") == "first-letter"
    namespaces = {int(ns.get("key")): (ns.text or "") for ns in siteinfo.iter(EXPORT + "namespace")}
    assert {0, 4, 6, 10, 14} <= namespaces.keys() and namespaces[14] == "Category"
    assert {page["ns"] for page in pages} >= {0, 4, 10, 14}
    ids = [page["id"] for page in pages]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    titles = [page["title"] for page in pages]
    assert len(set(titles)) == len(titles), "page titles must be unique"
    for page in pages:
        assert page["bytes"] == len(page["text"].encode("utf-8")), page["title"]
        assert str(page["wikicode"]) == page["text"]
    # The real wikitext constructs are all there.
    everything = "\n".join(page["text"] for page in pages)
    for construct in ("== ", "=== ", "[[Category:", "[[File:", "{{cite web", "{{cite book", "<ref name=", "/>",
                      "{| class=\"wikitable", "{{lang|", "<!--", "'''", "''", "\n* ", "{{disambiguation}}",
                      "#REDIRECT [[", "&nbsp;", "[[fr:", "{{Infobox", "|thumb|", "<nowiki>", "[[:Category:"):
        assert construct in everything, construct


def test_wiki_links_give_back_exactly_the_planted_graph(wiki):
    paths, _, pages = wiki
    redirects = {page["title"]: page["redirect"] for page in pages if page["redirect"]}
    for page in pages:
        if page["redirect"]:
            assert re.match(r"#redirect \[\[" + re.escape(page["redirect"]) + r"\]\]", page["text"], re.I)
    articles = {page["title"]: page["id"] for page in pages
                if page["ns"] == 0 and not page["redirect"] and "{{disambiguation}}" not in page["text"]}
    assert len(articles) == WIKI_DOCS
    assert any("{{disambiguation}}" in page["text"] for page in pages) and redirects

    all_titles = {page["title"] for page in pages}
    recovered, through_redirect, red_links, variants = set(), 0, 0, collections.Counter()
    for page in pages:
        if page["title"] not in articles:
            continue
        for link in page["wikicode"].filter_wikilinks():
            raw = str(link.title)
            title = normalise_title(raw)
            if not title:
                continue
            variants.update(kind for kind, present in (("fragment", "#" in raw), ("underscore", "_" in raw),
                                                        ("lower", raw.strip()[:1].islower())) if present)
            if title in redirects:
                through_redirect += 1
                title = redirects[title]
            if title in articles and title != page["title"]:
                recovered.add((page["id"], articles[title]))
            elif title not in articles and ":" not in title and title not in all_titles:
                red_links += 1
    truth = read_tsv(paths["truth"])
    planted = {(int(row["source_id"]), int(row["target_id"])) for row in truth}
    assert recovered == planted
    assert all(articles[row["target_title"]] == int(row["target_id"]) for row in truth)
    assert through_redirect > 0 and red_links > 0 and min(variants[k] for k in ("fragment", "underscore", "lower")) > 0

    in_degree = collections.Counter(target for _, target in planted)
    degrees = [in_degree.get(page_id, 0) for page_id in articles.values()]
    assert max(degrees) >= 8 * max(1, statistics.median(degrees)), "in-degree should be heavy-tailed"
    out_degree = collections.Counter(source for source, _ in planted)
    assert 2 <= min(out_degree.values()) and max(out_degree.values()) <= 40


def test_wiki_text_carries_knowledge_across_links(wiki):
    paths, _, pages = wiki
    table = read_tsv(paths["pages"])
    entity_by_title = {row["title"]: json.loads(row["facts"]) for row in table if row["kind"] == "article"}
    plain_by_title = {page["title"]: page["wikicode"].strip_code() for page in pages
                      if page["title"] in entity_by_title}
    words = [int(row["prose_words"]) for row in table if row["kind"] == "article"]
    assert min(words) >= 250 and statistics.median(words) >= 450 and max(words) >= 1000

    for title, facts in entity_by_title.items():
        sentences = [s for s in re.split(r"(?<=\.)\s+", plain_by_title[title]) if len(s.split()) > 4]
        naming = sum(facts["name"] in s for s in sentences)
        assert naming >= 0.6 * len(sentences), title

    stated = 0
    truth = read_tsv(paths["truth"])
    for row in truth:
        target = entity_by_title[row["target_title"]]
        carrying = [s for s in re.split(r"(?<=\.)\s+", plain_by_title[row["source_title"]]) if target["name"] in s]
        assert carrying, (row["source_title"], row["target_title"])
        values = {str(v) for k, v in target.items() if k not in ("name",) and v is not None}
        stated += any(value in s for s in carrying for value in values)
    assert stated >= 0.6 * len(truth), "most link sentences should state a fact about the target"


def test_multistream_offsets_point_at_independent_streams(tmp_path, wiki):
    paths = write_wiki_dump(tmp_path / "multi", WIKI_DOCS, seed=11, multistream=True, pages_per_stream=25)
    assert paths["dump"].endswith("-multistream.xml.bz2") and paths["index"].endswith("-multistream-index.txt.bz2")
    data = Path(paths["dump"]).read_bytes()
    entries = [line.split(":", 2) for line in bz2.decompress(Path(paths["index"]).read_bytes()).decode("utf-8").splitlines()]
    by_offset: dict[int, list[tuple[int, str]]] = collections.defaultdict(list)
    for offset, page_id, title in entries:
        by_offset[int(offset)].append((int(page_id), title))

    def stream_at(offset: int) -> tuple[bytes, int]:
        decompressor = bz2.BZ2Decompressor()
        content = decompressor.decompress(data[offset:])
        assert decompressor.eof
        return content, len(data) - len(decompressor.unused_data)

    header, position = stream_at(0)
    assert header.decode().rstrip().endswith("</siteinfo>") and 0 not in by_offset
    contents = [header]
    for offset in sorted(by_offset):
        assert offset == position, "streams must be contiguous and the index must name each one's start"
        content, position = stream_at(offset)
        contents.append(content)
        assert content.startswith(b"  <page>") and content.endswith(b"</page>\n")
        wrapped = b'<mediawiki xmlns="http://www.mediawiki.org/xml/export-0.11/">' + content + b"</mediawiki>"
        page_elements = etree.fromstring(wrapped).findall(EXPORT + "page")
        assert [(int(p.findtext(EXPORT + "id")), p.findtext(EXPORT + "title")) for p in page_elements] == by_offset[offset]
        assert len(page_elements) <= 25
    footer, position = stream_at(position)
    assert footer == b"</mediawiki>\n" and position == len(data)
    assert b"".join(contents + [footer]) == bz2.decompress(Path(wiki[0]["dump"]).read_bytes())
    assert sum(len(v) for v in by_offset.values()) == len(wiki[2])


# ---------------------------------------------------------------------------------- PubMed
def test_pubmed_parser_reads_back_articles_and_citation_graph(pubmed):
    assert [Path(p).name for p in pubmed["files"]] == ["pubmed26n0001.xml.gz", "pubmed26n0002.xml.gz"]
    with gzip.open(pubmed["files"][0], "rt", encoding="utf-8") as handle:
        head = handle.read(400)
    assert "<!DOCTYPE PubmedArticleSet" in head and "<PubmedArticleSet>" in head
    parsed = {}
    for path in pubmed["files"]:
        for article in pubmed_parser.parse_medline_xml(path, reference_list=True):
            parsed[article["pmid"]] = article
    table = {row["pmid"]: row for row in read_tsv(pubmed["articles"])}
    assert parsed.keys() == table.keys() and len(parsed) == PUBMED_DOCS

    truth = collections.defaultdict(set)
    for row in read_tsv(pubmed["truth"]):
        truth[row["source_pmid"]].add(row["target_pmid"])
        if int(table[row["source_pmid"]]["abstract_words"]):
            cited_name = row["target_entity"].lower()
            assert cited_name in parsed[row["source_pmid"]]["abstract"].lower(), "citing abstract names the cited entity"
    outside = 0
    for pmid, article in parsed.items():
        row = table[pmid]
        assert article["title"] and row["entity"].lower() in article["title"].lower()
        assert bool(article["abstract"]) == (int(row["abstract_words"]) > 0)
        if article["abstract"]:
            assert article["abstract"].lower().count(row["entity"].lower()) >= 3
        cited = {ref["pmid"] for ref in article["references"] if ref["pmid"]}
        assert cited & table.keys() == truth.get(pmid, set())
        assert len(cited - table.keys()) == int(row["out_of_set_refs"])
        outside += len(cited - table.keys())
    assert outside > 0

    lengths = [int(row["abstract_words"]) for row in table.values()]
    kept = sum(length >= 128 for length in lengths)
    assert 0.8 * len(lengths) <= kept < len(lengths), "most but not all abstracts pass a 128-word filter"
    in_degree = collections.Counter(target for targets in truth.values() for target in targets)
    degrees = [in_degree.get(pmid, 0) for pmid in table]
    assert max(degrees) >= 8 * max(1, statistics.median(degrees))
    earlier = sum(int(t) < int(s) for s, targets in truth.items() for t in targets)
    assert earlier >= 0.7 * sum(len(t) for t in truth.values()), "citations point mostly to older articles"


# ----------------------------------------------------------------------- building blocks
@pytest.mark.parametrize("size", [1, 2, 3, 17, 64, 1000, 4099])
def test_keyed_permutation_is_a_bijection(size):
    permutation = KeyedPermutation(size, 9, "test")
    assert sorted(permutation(i) for i in range(size)) == list(range(size))


def test_names_are_unique_pronounceable_and_never_title_words():
    space = NameSpace(600_000, 1, "names")
    names = [space.name(i) for i in range(0, 600_000, 23)]
    assert len(set(names)) == len(names)
    assert all(is_generated_name_shape(name) and name[0].isupper() and 4 <= len(name) <= 16 for name in names)
    assert not any(is_generated_name_shape(word) for word in RESERVED_WORDS + GIVEN_NAMES)
    assert {len(re.findall("[aeiou]+", name)) for name in names} == {2, 3}


def test_graph_out_links_are_distinct_and_never_self():
    graph = LinkGraph(2000, 4, "unit")
    for index in range(0, 2000, 13):
        targets = graph.out_links(index)
        assert index not in targets and len(set(targets)) == len(targets) and 2 <= len(targets) <= 40
        assert graph.out_links(index) == targets


def test_cli_prints_the_paths_it_wrote(tmp_path, capsys):
    assert linkbert_main(["synth", "pubmed", "--docs", "40", "--seed", "2", "--out", str(tmp_path), "--files", "2"]) == 0
    printed = capsys.readouterr().out.split()
    assert len(printed) == 4 and all(Path(p).is_file() for p in printed)
    assert linkbert_main(["synth", "wiki", "--docs", "30", "--out", str(tmp_path / "w"), "--multistream"]) == 0
    printed = capsys.readouterr().out.split()
    assert {Path(p).name for p in printed} >= {"synthwiki-20240101-pages-articles-multistream-index.txt.bz2"}
    assert all(Path(p).is_file() for p in printed)
    with pytest.raises(SystemExit):
        linkbert_main(["synth", "wiki", "--docs", "1", "--out", str(tmp_path)])


def test_any_document_of_a_million_document_corpus_renders_alone():
    """Nothing is built per document up front, so a page deep in a huge corpus renders directly."""
    from linkbert.pipeline.synth.pubmed import PubMedWorld
    from linkbert.pipeline.synth.wikiworld import WikiWorld

    world = WikiWorld(2_000_000, seed=1)
    page = world.article(1_999_999)
    assert page.links and page.words >= 250 and page.entity.name in page.text
    titles = {world.entity(i).title for i in range(0, 2_000_000, 4_001)}
    assert len(titles) == len(range(0, 2_000_000, 4_001))
    article = PubMedWorld(2_000_000, seed=1).article(1_234_567)
    assert article.pmid == 20_000_000 + 3 * 1_234_567 and article.citations


def test_short_articles_keep_their_links_and_the_default_is_unchanged(tmp_path):
    """``article_words`` gives a short-article corpus (issue 11's second kind of corpus) over the same
    graph; the default value is the default world, byte for byte."""
    default = write_wiki_dump(tmp_path / "default", 80, seed=2)
    explicit = write_wiki_dump(tmp_path / "explicit", 80, seed=2, article_words=620)
    assert file_bytes(default) == {name: data for name, data in file_bytes(explicit).items()}
    short = write_wiki_dump(tmp_path / "short", 80, seed=2, article_words=120)
    words = {kind: [int(row["prose_words"]) for row in read_tsv(paths["pages"]) if row["kind"] == "article"]
             for kind, paths in (("default", default), ("short", short))}
    assert statistics.median(words["short"]) < statistics.median(words["default"]) / 2
    assert read_tsv(short["truth"]) == read_tsv(default["truth"])  # the same planted graph
    with pytest.raises(ValueError):
        write_wiki_dump(tmp_path / "bad", 10, seed=2, article_words=5)
