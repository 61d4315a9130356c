"""A truncated last record is a dead letter, never a document with part of its text (issue 14), in the
PubMed, PMC and text readers as in the Wikipedia one: the records before the cut are kept whole."""

import gzip
import tarfile
from pathlib import Path

import pytest
from apache_beam.io.filesystem import FileMetadata
from apache_beam.pvalue import TaggedOutput

from linkbert.pipeline.sources.pmc import ExpandPackages, ParsePmcFile
from linkbert.pipeline.sources.pubmed import ParseMedlineFile
from linkbert.pipeline.sources.text import ReadTextFile
from linkbert.pipeline.sources.versions import ARTICLE

MEDLINE = "pubmed/medline/pubmed26n1335.xml.gz"


def _run(fn, element) -> tuple[dict, list[dict]]:
    """A DoFn on one element -> ({doc_id: document}, [error records])."""
    fn.setup()
    documents, errors = {}, []
    for item in fn.process(element):
        if isinstance(item, TaggedOutput):
            errors.append(item.value)
        elif isinstance(item, tuple) and isinstance(item[1], tuple) and item[1][1] == ARTICLE:
            documents[item[0]] = item[1][2]
        elif not isinstance(item, tuple):
            errors.append(item)
    return documents, errors


@pytest.mark.parametrize("cut", ["xml", "gzip"])
def test_a_pubmed_article_cut_short_is_a_dead_letter(real_data, tmp_path, cut):
    whole = real_data(MEDLINE).read_bytes()
    xml = gzip.decompress(whole)
    starts = [i for i in range(len(xml)) if xml.startswith(b"<PubmedArticle>", i)]
    at = xml.index(b"<AbstractText", starts[10]) + 300  # inside the 11th article's abstract
    path = tmp_path / "cut.xml.gz"
    path.write_bytes(gzip.compress(xml[:at]) if cut == "xml" else gzip.compress(xml)[: len(gzip.compress(xml[:at]))])
    reference = tmp_path / "whole.xml.gz"
    reference.write_bytes(whole)
    expected, _ = _run(ParseMedlineFile(min_abstract_words=0), (str(reference), reference.stat().st_size))
    documents, errors = _run(ParseMedlineFile(min_abstract_words=0), (str(path), path.stat().st_size))
    assert 0 < len(documents) <= 10
    assert all(documents[pmid] == {**expected[pmid], "source_file": str(path)} for pmid in documents)  # whole records
    cut_pmid = xml[starts[10]:at].split(b"<PMID", 1)[1].split(b">", 1)[1].split(b"<", 1)[0].decode()
    assert cut_pmid not in documents
    assert len(errors) == 1 and errors[0]["reason"] in ("xml_syntax", "io_error") and str(path) in errors[0]["detail"]


def test_a_pmc_article_cut_short_is_a_dead_letter(real_data, tmp_path):
    article = sorted(Path(real_data("pubmed/pmc")).glob("*.nxml"))[0].read_bytes()
    path = tmp_path / "cut.nxml"
    path.write_bytes(article[: len(article) * 3 // 5])
    documents, errors = _run(ParsePmcFile(include_body=True), (str(path), None))
    assert documents == {} and [e["reason"] for e in errors] == ["xml_syntax"] and str(path) in errors[0]["detail"]


def test_a_pmc_package_cut_inside_a_member_hands_over_only_whole_members(real_data, tmp_path):
    articles = sorted(Path(real_data("pubmed/pmc")).glob("*.nxml"))[:4]
    package = tmp_path / "package.tar.gz"
    with tarfile.open(package, "w:gz") as tar:
        for article in articles:
            tar.add(article, arcname=f"PMC/{article.name}")
    data = package.read_bytes()
    package.write_bytes(data[: len(data) * 3 // 4])
    fn = ExpandPackages()
    fn.setup()
    out = list(fn.process(str(package)))
    members = [item for item in out if isinstance(item, tuple)]
    errors = [item.value for item in out if isinstance(item, TaggedOutput)]
    originals = {f"{package}/PMC/{a.name}": a.read_bytes() for a in articles}
    assert 0 < len(members) < 4 and all(body == originals[name] for name, body in members)
    assert len(errors) == 1 and errors[0]["reason"] == "io_error" and str(package) in errors[0]["detail"]


def test_a_json_lines_file_cut_short_keeps_only_whole_lines(tmp_path):
    lines = [f'{{"id": "d{i}", "text": "Document {i} says something about rivers and lakes."}}\n' for i in range(200)]
    compressed = gzip.compress("".join(lines).encode("utf-8"))
    path = tmp_path / "cut.jsonl.gz"
    path.write_bytes(compressed[: len(compressed) * 2 // 3])
    documents, errors = _run(ReadTextFile(), FileMetadata(str(path), path.stat().st_size))
    kept = sorted(documents, key=lambda doc_id: int(doc_id[1:]))
    assert kept == [f"d{i}" for i in range(len(kept))] and 0 < len(kept) < 200
    assert all(documents[d]["text"] == f"Document {d[1:]} says something about rivers and lakes." for d in kept)
    assert len(errors) == 1 and errors[0]["reason"] == "io_error" and str(path) in errors[0]["detail"]
