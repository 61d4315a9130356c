"""PMC Open Access source: the 8 shared JATS articles, ids, references, body, versions, and pubmed+pmc merging."""

import re

import apache_beam as beam
import pubmed_parser
import pytest
from lxml import etree
from test_pubmed import UPDATE_2026, real_elements, revised, run_source, write_medline

from linkbert.pipeline.sources.merge import MergeDocuments
from linkbert.pipeline.sources.pmc import ReadPmc
from linkbert.pipeline.sources.pmc_jats import read_jats_article
from linkbert.pipeline.sources.pubmed import ReadPubmed
from linkbert.pipeline.sources.safe_xml import parse_bytes_safe
from linkbert.pipeline.sources.versions import reconcile

PMC = "pubmed/pmc/"
# file -> (PMID, PMC id, year, distinct cited PMIDs)
SHARED_ARTICLES = {
    "1471-2180-11-174.nxml": ("21810267", "PMC3166277", 2011, 56),
    "1472-6831-8-11.nxml": ("18405359", "PMC2329613", 2008, 25),
    "6605965a.nxml": ("21045829", "PMC2994229", 2010, 31),
    "ehp-116-1694.nxml": ("19079722", "PMC2599765", 2008, 52),
    "mds526.nxml": ("23149571", "PMC3574550", 2013, 30),
    "pntd.0002065.nxml": ("23469300", "PMC3585041", 2013, 21),
    "pone.0000217.nxml": ("17299597", "PMC1790863", 2007, 26),
    "pone.0046493.nxml": ("23029536", "PMC3460867", 2012, 44),
}


def read(path, include_body=False):
    return read_jats_article(parse_bytes_safe(path.read_bytes(), str(path)), str(path), include_body)


@pytest.mark.parametrize("name", sorted(SHARED_ARTICLES))
def test_shared_article(real_data, name):
    path = real_data(PMC + name)
    pmid, pmcid, year, cited = SHARED_ARTICLES[name]
    article = read(path)
    assert (article.doc_id, article.pmid, article.pmcid, article.pub_year) == (pmid, pmid, pmcid, year)
    assert article.title and article.abstract and article.body == []
    assert len(article.cited_pmids) == cited
    independent = etree.parse(str(path)).xpath("//ref-list//ref//pub-id[@pub-id-type='pmid']/text()")
    assert article.cited_pmids == list(dict.fromkeys(p.strip() for p in independent))
    assert article.doi == pubmed_parser.parse_pubmed_xml(str(path))["doi"]


def test_references_where_pubmed_parser_loses_pmids(real_data):
    """pubmed_parser keeps only a reference's last pub-id: a PMID followed by a DOI is lost."""
    path = real_data(PMC + "1472-6831-8-11.nxml")
    theirs = {r["pmid_cited"] for r in pubmed_parser.parse_pubmed_references(str(path)) if r["pmid_cited"]}
    ours = set(read(path).cited_pmids)
    assert len(theirs) == 11 and len(ours) == 25 and theirs < ours


def test_structured_abstract_and_body_sections(real_data):
    article = read(real_data(PMC + "6605965a.nxml"), include_body=True)
    assert [p.split(":")[0] for p in article.abstract] == ["Background", "Methods", "Results", "Conclusion"]
    assert any(p.startswith("Materials and Methods\nStudy participants included") for p in article.body)
    summary = read(real_data(PMC + "pntd.0002065.nxml")).abstract
    assert len(summary) == 2 and summary[1].startswith("Author Summary\nRift Valley fever (RVF) is a mosquito-borne")


def test_current_jats_dates_where_pubmed_parser_raises(real_data, tmp_path):
    text = real_data(PMC + "pone.0000217.nxml").read_text()
    modern = re.sub(r'pub-type="(collection|epub)"', 'date-type="pub" publication-format="electronic"', text)
    path = tmp_path / "modern.nxml"
    path.write_text(modern)
    with pytest.raises(KeyError):
        pubmed_parser.parse_pubmed_xml(str(path))
    assert read(path).pub_year == 2007


@pytest.mark.slow
def test_pmc_source_through_beam(real_data, tmp_path):
    inputs = tmp_path / "in"
    inputs.mkdir()
    for name in SHARED_ARTICLES:
        (inputs / name).write_bytes(real_data(PMC + name).read_bytes())
    plos = real_data(PMC + "pone.0000217.nxml").read_text()
    (inputs / "no_pmid.nxml").write_text(re.sub(r'<article-id pub-id-type="pmid">\d+</article-id>', "", plos))
    bjc = real_data(PMC + "6605965a.nxml").read_text()
    (inputs / "zz_reissue.nxml").write_text(bjc.replace("<article-title>Oral contraceptives", "<article-title>REISSUED Oral contraceptives"))
    stripped = re.sub(r"<abstract.*?</abstract>", "", re.sub(r"<body>.*</body>", "", plos, flags=re.S), flags=re.S)
    (inputs / "no_text.nxml").write_text(re.sub(r'pub-id-type="pmid">\d+<', 'pub-id-type="pmid">99<', stripped))
    (inputs / "empty.nxml").write_text("")
    (inputs / "broken.nxml").write_text(plos[: len(plos) // 2])
    (inputs / "medline.nxml").write_bytes(real_data("pubmed/medline/pubmed-29768149.xml").read_bytes())

    documents, errors, counters = run_source(ReadPmc(str(inputs / "*.nxml"), include_body=True), tmp_path / "out")

    expected_ids = {pmid for pmid, *_ in SHARED_ARTICLES.values()} | {"PMC1790863"}
    assert set(documents) == expected_ids
    assert documents["PMC1790863"]["outlinks"] == documents["17299597"]["outlinks"]
    assert documents["21045829"]["title"].startswith("REISSUED")  # the file that sorts last wins
    for pmid, pmcid, year, cited in SHARED_ARTICLES.values():
        document = documents[pmid]
        assert (document["source"], document["pub_year"], len(document["outlinks"])) == ("pmc", year, cited)
    assert "\n\nIntroduction\n" in documents["23469300"]["text"]  # body section headings on their own line
    assert {e["source_file"].rsplit("/", 1)[-1]: e["reason"] for e in errors} == {
        "empty.nxml": "not_jats", "broken.nxml": "xml_syntax", "medline.nxml": "not_jats"}
    assert counters["pmc.records_read"] == 14 and counters["pmc.written"] == 9
    assert counters["pmc.superseded"] == 1 and counters["pmc.filtered.no_text"] == 1 and counters["pmc.failed"] == 3
    ok, lines = reconcile(counters)
    assert ok, lines


@pytest.mark.slow
def test_pubmed_and_pmc_merge_into_one_document_per_article(real_data, tmp_path):
    """PMID 21045829 is in PMC and (as a generated update) in MEDLINE: one document, union of outlinks."""
    template = real_elements(real_data(UPDATE_2026))[0]
    medline_copy = revised(template, pmid="21045829", title="Oral contraceptives (MEDLINE record)",
                           abstract="A shorter abstract.", cited=["18941373", "11111111"])
    medline = write_medline(tmp_path / "pubmed26n2000.xml", [medline_copy])
    pmc_file = real_data(PMC + "6605965a.nxml")

    class ReadBoth(beam.PTransform):
        """``--source pubmed,pmc``: both sources and the merge, shaped like one source."""

        def expand(self, pbegin):
            pubmed = pbegin | "Pubmed" >> ReadPubmed(medline, min_abstract_words=0)
            pmc = pbegin | "Pmc" >> ReadPmc(str(pmc_file))
            return {
                "documents": (pubmed["documents"], pmc["documents"]) | MergeDocuments(),
                "errors": (pubmed["errors"], pmc["errors"]) | beam.Flatten(),
            }

    documents, errors, counters = run_source(ReadBoth(), tmp_path / "out")
    assert errors == [] and list(documents) == ["21045829"]
    merged = documents["21045829"]
    pmc_only = read(pmc_file)
    assert merged["outlinks"][: len(pmc_only.cited_pmids)] == pmc_only.cited_pmids  # longer text (PMC) first
    assert merged["outlinks"][len(pmc_only.cited_pmids):] == ["11111111"]  # 18941373 was already cited
    assert merged["source"] == "pmc" and merged["mesh_terms"]  # MeSH filled in from the MEDLINE record
    assert counters["documents.merged"] == 1
    assert reconcile(counters)[0]


def test_pmc_bulk_packages_are_read_as_a_stream_one_article_an_element(real_data, tmp_path):
    import io
    import tarfile

    names = sorted(SHARED_ARTICLES)
    package = tmp_path / "oa_comm_xml.PMC000xxxxxx.baseline.2026-01-01.tar.gz"
    with tarfile.open(package, "w:gz") as tar:
        for name in names[:6]:
            tar.add(real_data(PMC + name), arcname=f"PMC/{name}")
        readme = b"not an article"
        info = tarfile.TarInfo("PMC/README.txt")
        info.size = len(readme)
        tar.addfile(info, io.BytesIO(readme))
    loose = tmp_path / "loose"
    loose.mkdir()
    for name in names[6:]:
        (loose / name).write_bytes(real_data(PMC + name).read_bytes())
    whole = package.read_bytes()
    broken = tmp_path / "broken.tar.gz"
    broken.write_bytes(whole[: len(whole) * 2 // 3])  # truncated mid-stream: the members before are kept

    pattern = f"{package},{loose}/*.nxml,{tmp_path}/*.tar.gz"  # the package matched twice: read once
    documents, errors, counters = run_source(ReadPmc(pattern), tmp_path / "out")
    assert set(documents) == {SHARED_ARTICLES[name][0] for name in names}
    assert documents["21810267"]["source_file"] == f"{package}/PMC/1471-2180-11-174.nxml"
    assert [(e["stage"], e["reason"], e["source_file"]) for e in errors] == [("pmc.package", "io_error", str(broken))]
    assert counters["pmc.files_read"] == 4 and counters["pmc.packages_read"] == 2 and counters["pmc.files_failed"] == 1
    assert counters["pmc.superseded"] == counters["pmc.records_read"] - 8  # the broken package's copies lose to the whole one
    ok, lines = reconcile(counters)
    assert not ok and "1 input file(s) failed as a whole" in lines[-1]


def test_pmc_pattern_matching_nothing_is_an_error_naming_it(tmp_path):
    with pytest.raises(Exception, match="nothing-here"):
        run_source(ReadPmc(str(tmp_path / "nothing-here*.nxml")), tmp_path / "out")
