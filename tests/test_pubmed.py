"""MEDLINE/PubMed source: the shared real files, versions and deletions, dead letters, streaming memory."""

import copy
import csv
import gzip
import json
import subprocess
import sys
import textwrap
from collections import Counter

import apache_beam as beam
import pubmed_parser
import pytest
from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline
from apache_beam.testing.util import assert_that
from lxml import etree

from linkbert import schemas
from linkbert.pipeline.records import collect_counters
from linkbert.pipeline.sources.medline_xml import (
    BadRecord,
    Deletion,
    MedlineArticle,
    iter_medline_records,
)
from linkbert.pipeline.sources.pubmed import ReadPubmed
from linkbert.pipeline.sources.versions import file_version_key, reconcile
from linkbert.pipeline.synth.pubmed import write_pubmed_baseline

MEDLINE = "pubmed/medline/"
UPDATE_2026 = MEDLINE + "pubmed26n1335.xml.gz"
CURRENT_4 = MEDLINE + "test_current_medline.xml.gz"
PLAIN_1 = MEDLINE + "pubmed-29768149.xml"
LEGACY_2016 = MEDLINE + "medline16n0902.xml.gz"
LONG_ABSTRACT = " ".join(f"word{i}" for i in range(150))


# ---------------------------------------------------------------- helpers


def records(path):
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rb") as stream:
        return list(iter_medline_records(stream, str(path)))


def articles_of(path):
    return [record for _, record in records(path) if isinstance(record, MedlineArticle)]


def real_elements(path, tag="PubmedArticle"):
    """Deep copies of the top-level records of a real file, to build update files from."""
    with gzip.open(path, "rb") as stream:
        root = etree.parse(stream).getroot()
    return [copy.deepcopy(element) for element in root if element.tag == tag]


def pmid_of(element):
    citation = element if element.tag == "MedlineCitation" else element.find("MedlineCitation")
    return citation.findtext("PMID")


def revised(element, *, pmid=None, title=None, abstract=None, cited=None):
    element = copy.deepcopy(element)
    citation = element if element.tag == "MedlineCitation" else element.find("MedlineCitation")
    article = citation.find("Article")
    if pmid is not None:
        citation.find("PMID").text = pmid
    if title is not None:
        article.find("ArticleTitle").text = title
    if abstract is not None:
        abstract_element = article.find("Abstract")
        abstract_element.clear()
        etree.SubElement(abstract_element, "AbstractText").text = abstract
    if cited is not None:
        for old in element.findall("PubmedData/ReferenceList"):
            old.getparent().remove(old)
        references = etree.SubElement(element.find("PubmedData"), "ReferenceList")
        for cited_pmid in cited:
            id_list = etree.SubElement(etree.SubElement(references, "Reference"), "ArticleIdList")
            etree.SubElement(id_list, "ArticleId", IdType="pubmed").text = cited_pmid
    return element


def write_medline(path, elements=(), deleted=(), root_tag="PubmedArticleSet"):
    root = etree.Element(root_tag)
    for element in elements:
        root.append(copy.deepcopy(element))
    if deleted:
        deletion = etree.SubElement(root, "DeleteCitation")
        for pmid in deleted:
            etree.SubElement(deletion, "PMID", Version="1").text = pmid
    data = etree.tostring(root, xml_declaration=True, encoding="UTF-8")
    with (gzip.open if str(path).endswith(".gz") else open)(path, "wb") as handle:
        handle.write(data)
    return str(path)


def run_source(transform, out_dir):
    """Run ``transform`` in a TestPipeline; -> (documents by doc_id, error records, counters)."""
    pipeline = BeamTestPipeline()
    outputs = pipeline | "Source" >> transform
    assert_that(
        outputs["documents"] | "DocIds" >> beam.Map(lambda d: d["doc_id"]) | "Count" >> beam.combiners.Count.PerElement()
        | "Duplicates" >> beam.Filter(lambda kv: kv[1] > 1),
        lambda duplicates: not duplicates or pytest.fail(f"duplicate doc_ids {duplicates}"),
        label="UniqueDocIds",
    )
    for name in ("documents", "errors"):
        outputs[name] | f"Json{name}" >> beam.Map(json.dumps) | f"Write{name}" >> beam.io.WriteToText(str(out_dir / name))
    result = pipeline.run()
    result.wait_until_finish()
    read = lambda name: [json.loads(line) for path in sorted(out_dir.glob(f"{name}-*")) for line in open(path)]
    documents = read("documents")
    schemas.to_table(documents, "documents", where="test output")  # exactly the schema's columns and types
    return {d["doc_id"]: d for d in documents}, read("errors"), collect_counters(result)


# ---------------------------------------------------------------- the shared real files, parser level


def test_current_format_article_fields(real_data):
    article = next(a for a in articles_of(real_data(UPDATE_2026)) if a.pmid == "26228458")
    assert article.title == "Obesity risk in rural, urban and rural-to-urban migrants: prospective results of the PERU MIGRANT study."
    assert [label for label, _ in article.abstract] == ["BACKGROUND", "METHODS", "RESULTS", "CONCLUSIONS"]
    assert article.abstract_text().startswith("BACKGROUND: Although migration and urbanization")
    assert "\n\nMETHODS: Prospective data" in article.abstract_text()
    assert (article.language, article.pub_year, article.doi) == ("eng", 2016, "10.1038/ijo.2015.140")
    assert article.mesh_terms[:2] == ["Body Mass Index", "Cardiovascular Diseases"]
    assert article.cited_pmids[:3] == ["21074973", "20497567", "21731604"]
    assert len(article.cited_pmids) == len(set(article.cited_pmids))


def test_update_file_has_30_articles_reference_lists_and_deletions(real_data):
    parsed = records(real_data(UPDATE_2026))
    articles = [r for _, r in parsed if isinstance(r, MedlineArticle)]
    deletions = [r.pmid for _, r in parsed if isinstance(r, Deletion)]
    assert len(articles) == 30 and len({a.pmid for a in articles}) == 30
    assert deletions == ["41456105", "41557076", "41616784", "41618748", "41618749", "41618779"]
    assert [position for position, _ in parsed] == list(range(36))
    # every ReferenceList PMID of the file, as a plain XPath count sees it, and no other
    root = etree.parse(gzip.open(real_data(UPDATE_2026))).getroot()
    expected = sum(
        len(dict.fromkeys(a.xpath(".//ReferenceList/Reference/ArticleIdList/ArticleId[@IdType='pubmed']/text()")))
        for a in root.iter("PubmedArticle")
    )
    assert sum(len(a.cited_pmids) for a in articles) == expected == 1063


def test_legacy_medline_citation_set_is_read(real_data):
    path = real_data(LEGACY_2016)
    assert list(pubmed_parser.parse_medline_xml(str(path), reference_list=True)) == []  # why we have our own reader
    parsed = records(path)
    articles = [r for _, r in parsed if isinstance(r, MedlineArticle)]
    assert len(articles) == 604
    assert [r.pmid for _, r in parsed if isinstance(r, Deletion)] == ["26432306"]
    assert sum(len(a.cited_pmids) for a in articles) == 3547  # CommentsCorrections RefType="Cites"
    first = articles[0]
    assert first.pmid == "17942999" and first.pub_year == 2007 and first.language == "eng"
    assert first.abstract_text().startswith("PURPOSE: An auditory electrophysiological study")
    assert "Acoustic Stimulation" in first.mesh_terms
    assert sum(1 for a in articles if a.language == "ita") == 18


def test_four_article_file_and_plain_xml_file(real_data):
    four = articles_of(real_data(CURRENT_4))
    assert [a.pmid for a in four] == ["36400559", "2930949", "11446611", "28786991"]
    assert [len(a.cited_pmids) for a in four] == [0, 91, 0, 36]
    (one,) = articles_of(real_data(PLAIN_1))
    assert one.pmid == "29768149" and one.doi == "10.1056/NEJMoa1715274" and one.pub_year == 2018
    assert one.cited_pmids == []  # its CommentsCorrections are CommentIn, not Cites


def test_file_order_follows_sequence_numbers():
    names = ["gs://b/pubmed26n1335.xml.gz", "/x/pubmed26n1334.xml.gz", "pubmed25n1274.xml.gz",
             "medline16n0902.xml.gz", "test_current_medline.xml.gz", "pubmed26n0001.xml"]
    ordered = sorted(names, key=file_version_key)
    assert ordered == ["test_current_medline.xml.gz", "medline16n0902.xml.gz", "pubmed25n1274.xml.gz",
                       "pubmed26n0001.xml", "/x/pubmed26n1334.xml.gz", "gs://b/pubmed26n1335.xml.gz"]


def test_a_pattern_matching_nothing_is_an_error_naming_it(tmp_path):
    pattern = str(tmp_path / "nothing-*.xml.gz")
    with pytest.raises(FileNotFoundError, match="nothing-"):
        beam.Pipeline() | ReadPubmed(f"{pattern}")
    with pytest.raises(ValueError, match="min_abstract_words"):
        ReadPubmed(pattern, min_abstract_words=-1)


def test_reconcile_reports_balance_mismatch_and_failed_files():
    counters = {"pubmed.records_read": 10, "pubmed.written": 5, "pubmed.superseded": 1, "pubmed.deleted": 1,
                "pubmed.filtered.short_abstract": 2, "pubmed.failed": 1, "pmc.records_read": 3, "pmc.written": 3}
    ok, lines = reconcile(counters)
    assert ok and lines[0] == ("pmc: read 3 = written 3 + superseded 0 + deleted 0 + filtered 0 + failed 0")
    assert lines[1].startswith("pubmed: read 10 = written 5 + superseded 1 + deleted 1 + filtered 2 (short_abstract 2)")
    ok, lines = reconcile({**counters, "pubmed.written": 4})
    assert not ok and "MISMATCH: +1" in lines[1]
    ok, lines = reconcile({**counters, "pubmed.files_failed": 2})
    assert not ok and any("2 input file(s) failed" in line for line in lines)


# ---------------------------------------------------------------- the Beam source on the shared files


@pytest.mark.slow
def test_all_shared_medline_files_through_beam(real_data, tmp_path):
    paths = [real_data(p) for p in (UPDATE_2026, CURRENT_4, PLAIN_1, LEGACY_2016)]
    documents, errors, counters = run_source(ReadPubmed(",".join(map(str, paths))), tmp_path)
    assert errors == []
    assert counters["pubmed.files_read"] == 4
    assert counters["pubmed.records_read"] == 30 + 4 + 1 + 604
    assert counters["pubmed.deletions_read"] == 7
    # default --min-abstract-words 128: 80 records have no abstract, 84 a shorter one
    assert counters["pubmed.filtered.no_abstract"] == 80 and counters["pubmed.filtered.short_abstract"] == 84
    assert counters["pubmed.written"] == len(documents) == 475
    assert counters["pubmed.records_without_abstract"] == 80
    ok, lines = reconcile(counters)
    assert ok, lines
    document = documents["26228458"]
    assert document["source"] == "pubmed" and document["source_file"] == str(paths[0])
    assert document["text"].startswith(document["title"] + "\n\nBACKGROUND: Although migration")
    assert document["outlinks"][:2] == ["21074973", "20497567"]
    legacy = documents["17942999"]
    assert legacy["source_file"] == str(paths[3]) and legacy["pub_year"] == 2007
    assert all(len(d["text"].split()) >= 128 for d in documents.values())


@pytest.mark.slow
def test_synthetic_baseline_citation_graph_is_recovered(tmp_path):
    """``linkbert synth pubmed`` plants a citation graph and per-article abstract lengths; the source
    must return every planted citation and filter exactly the short and missing abstracts."""
    written = write_pubmed_baseline(tmp_path / "synth", 300, seed=1, num_files=2)
    table = list(csv.DictReader(gzip.open(written["articles"], "rt"), delimiter="\t"))
    truth = list(csv.DictReader(gzip.open(written["truth"], "rt"), delimiter="\t"))

    documents, errors, counters = run_source(ReadPubmed(",".join(written["files"])), tmp_path / "out")

    words = {row["pmid"]: int(row["abstract_words"]) for row in table}
    assert errors == [] and set(documents) == {pmid for pmid, n in words.items() if n >= 128}
    assert counters["pubmed.filtered.no_abstract"] == sum(1 for n in words.values() if n == 0)
    assert counters["pubmed.filtered.short_abstract"] == sum(1 for n in words.values() if 0 < n < 128)
    kept_truth = [row for row in truth if row["source_pmid"] in documents]
    assert kept_truth and all(row["target_pmid"] in documents[row["source_pmid"]]["outlinks"] for row in kept_truth)
    assert reconcile(counters)[0]


@pytest.mark.slow
def test_updates_supersede_and_deletions_remove(real_data, tmp_path):
    update_path, legacy_path = real_data(UPDATE_2026), real_data(LEGACY_2016)
    long_ones = {a.pmid for a in articles_of(update_path) if a.abstract_words >= 128}
    real = [e for e in real_elements(update_path) if pmid_of(e) in long_ones]
    x, y, z, v, n_source, p, w, t = real[:8]
    legacy_long = {a.pmid for a in articles_of(legacy_path) if a.abstract_words >= 128}
    legacy = [e for e in real_elements(legacy_path, "MedlineCitation") if pmid_of(e) in legacy_long]
    legacy_updated, legacy_deleted = legacy[0], legacy[1]

    inputs = tmp_path / "in"
    inputs.mkdir()
    older = write_medline(inputs / "pubmed26n1334.xml.gz", [revised(x, title="STALE")], deleted=[pmid_of(y)])
    newer = write_medline(
        inputs / "pubmed26n1336.xml.gz",
        [
            revised(z, title="UPDATED", abstract=LONG_ABSTRACT, cited=["99999999", "1"]),
            revised(v, abstract="now a short abstract"),
            revised(n_source, pmid="90000001"),
            revised(p, title="FIRST"),
            revised(p, title="SECOND"),
        ],
        deleted=[pmid_of(w), pmid_of(t), "12345"],
    )
    newest = write_medline(inputs / "pubmed26n1337.xml", [revised(w, title="RESURRECTED")])
    legacy_update = write_medline(
        inputs / "medline16n0903.xml.gz", [revised(legacy_updated, title="LEGACY UPDATE")],
        deleted=[pmid_of(legacy_deleted)], root_tag="MedlineCitationSet",
    )
    pattern = ",".join([newest, older, str(update_path), newer, str(legacy_path), legacy_update])  # input order is irrelevant

    documents, errors, counters = run_source(ReadPubmed(pattern), tmp_path / "out")

    assert errors == []
    assert documents[pmid_of(x)]["title"] != "STALE" and documents[pmid_of(x)]["source_file"] == str(update_path)
    assert pmid_of(y) in documents  # deleted in an older file, present in a newer one
    assert documents[pmid_of(z)]["title"] == "UPDATED"
    assert documents[pmid_of(z)]["outlinks"] == ["99999999", "1"] and documents[pmid_of(z)]["source_file"] == newer
    assert pmid_of(v) not in documents  # the latest version is filtered, the older long one does not come back
    assert documents["90000001"]["source_file"] == newer and pmid_of(n_source) in documents
    assert documents[pmid_of(p)]["title"] == "SECOND"  # later in the same file wins
    assert documents[pmid_of(w)]["title"] == "RESURRECTED"
    assert pmid_of(t) not in documents and pmid_of(legacy_deleted) not in documents
    assert documents[pmid_of(legacy_updated)]["title"] == "LEGACY UPDATE"
    assert counters["pubmed.superseded"] == 7  # x, z, v, p twice, w, legacy_updated
    assert counters["pubmed.deleted"] == 2  # t, legacy_deleted
    assert counters["pubmed.records_read"] == 30 + 604 + 1 + 5 + 1 + 1
    ok, lines = reconcile(counters)
    assert ok, lines


@pytest.mark.slow
def test_bad_records_and_bad_files_go_to_dead_letters(real_data, tmp_path):
    good = real_elements(real_data(UPDATE_2026))
    no_pmid, bad_pmid, no_article = (copy.deepcopy(good[1]) for _ in range(3))
    no_pmid.find("MedlineCitation").remove(no_pmid.find("MedlineCitation/PMID"))
    bad_pmid.find("MedlineCitation/PMID").text = "abc"
    no_article.find("MedlineCitation").remove(no_article.find("MedlineCitation/Article"))
    inputs = tmp_path / "in"
    inputs.mkdir()
    malformed = write_medline(inputs / "malformed.xml", [good[0], no_pmid, bad_pmid, no_article, good[2]], deleted=["x1"])
    compressed = real_data(UPDATE_2026).read_bytes()
    (inputs / "truncated.xml.gz").write_bytes(compressed[: len(compressed) // 2])
    (inputs / "empty.xml").write_bytes(b"")
    (inputs / "no_records.xml").write_bytes(b"<?xml version='1.0'?><PubmedArticleSet>\n</PubmedArticleSet>\n")
    (inputs / "article.nxml").write_bytes(real_data("pubmed/pmc/pone.0000217.nxml").read_bytes())

    documents, errors, counters = run_source(ReadPubmed(str(inputs / "*"), min_abstract_words=0), tmp_path / "out")

    by_file = {}
    for error in errors:
        by_file.setdefault(error["source_file"].rsplit("/", 1)[-1], []).append(error)
    assert Counter((e["record_id"], e["reason"]) for e in by_file["malformed.xml"]) == Counter(
        [(None, "invalid_pmid"), ("abc", "invalid_pmid"), (pmid_of(good[1]), "missing_element"), (None, "invalid_pmid")]
    )
    assert all(malformed in e["detail"] for e in by_file["malformed.xml"])
    assert {pmid_of(good[0]), pmid_of(good[2])} <= set(documents)  # the rest of the file is kept
    assert [e["reason"] for e in by_file["empty.xml"]] == ["empty_file"]
    assert [e["reason"] for e in by_file["no_records.xml"]] == ["not_medline"]
    assert "holds no PubmedArticle" in by_file["no_records.xml"][0]["detail"]
    assert [e["reason"] for e in by_file["article.nxml"]] == ["not_medline"]
    assert [e["reason"] for e in by_file["truncated.xml.gz"]] in (["xml_syntax"], ["io_error"])
    from_truncated = [d for d in documents.values() if d["source_file"].endswith("truncated.xml.gz")]
    assert 0 < len(from_truncated) < 30  # records before the break are kept
    assert all(e["stage"] == "pubmed.read" and e["source_file"] in e["detail"] for e in errors)
    assert counters["pubmed.failed"] == 3 and counters["pubmed.deletions_failed"] == 1
    assert "pubmed.filtered.no_abstract" not in counters  # --min-abstract-words 0 keeps everything
    assert counters["pubmed.files_failed"] == 4
    ok, lines = reconcile(counters)
    assert not ok and lines[0].startswith("pubmed: read") and " = " in lines[0]  # records balance, files failed
    assert "4 input file(s) failed" in lines[1]


def test_memory_is_flat_in_file_size(real_data, tmp_path):
    """Peak memory reading a gzip file 8x as large stays within a few MB of the 1x file: the stream is
    decompressed in small pieces, and records are cleared with their earlier siblings deleted."""
    elements = real_elements(real_data(UPDATE_2026))

    def build(copies, name):
        grown = [revised(e, pmid=str(60000000 + i * 100 + k)) for i in range(copies) for k, e in enumerate(elements)]
        return write_medline(tmp_path / name, grown)

    script = textwrap.dedent(
        """
        import re, sys
        from linkbert.pipeline.sources.medline_xml import iter_medline_records
        from linkbert.pipeline.sources.files import open_decompressed
        with open_decompressed(sys.argv[1]) as stream:
            count = sum(1 for _ in iter_medline_records(stream, sys.argv[1]))
        # VmHWM, not ru_maxrss: the latter keeps the forking parent's peak across exec
        print(count, re.search(r"VmHWM:\\s+(\\d+) kB", open("/proc/self/status").read()).group(1))
        """
    )
    peaks = {}
    for copies in (4, 32):
        path = build(copies, f"x{copies}.xml.gz")
        out = subprocess.run([sys.executable, "-c", script, path], capture_output=True, text=True, check=True).stdout
        count, peak_kib = map(int, out.split())
        assert count == 30 * copies
        peaks[copies] = peak_kib
    # the 32x file is ~19 MB of XML; holding its text or its tree would add far more than 8 MB
    assert peaks[32] - peaks[4] < 8 * 1024, peaks


def test_one_bad_article_does_not_end_the_stream(real_data, tmp_path):
    good = real_elements(real_data(CURRENT_4))
    broken = copy.deepcopy(good[1])
    broken.find("MedlineCitation/PMID").text = " "
    path = write_medline(tmp_path / "f.xml", [good[0], broken, good[2]])
    kinds = [type(record).__name__ for _, record in records(path)]
    assert kinds == ["MedlineArticle", "BadRecord", "MedlineArticle"]
    bad = records(path)[1][1]
    assert isinstance(bad, BadRecord) and bad.reason == "invalid_pmid"
