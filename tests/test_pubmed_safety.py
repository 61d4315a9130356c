"""Untrusted XML: entity-expansion bombs and external entities (XXE) in MEDLINE and PMC inputs."""

import subprocess
import sys
import textwrap

import pytest
from test_pubmed import run_source

from linkbert.pipeline.sources.pmc import ReadPmc
from linkbert.pipeline.sources.pubmed import ReadPubmed
from linkbert.pipeline.sources.safe_xml import UnsafeXmlError, parse_bytes_safe
from linkbert.pipeline.sources.versions import reconcile

LAUGHS = "\n".join(
    [' <!ENTITY lol0 "lol">']
    + [f' <!ENTITY lol{i} "{("&lol" + str(i - 1) + ";") * 10}">' for i in range(1, 10)]
)
MEDLINE_BODY = (
    "<PubmedArticleSet><PubmedArticle><MedlineCitation><PMID>1</PMID><Article>"
    "<ArticleTitle>t {ref}</ArticleTitle><Abstract><AbstractText>a {ref} b</AbstractText></Abstract>"
    "</Article></MedlineCitation></PubmedArticle></PubmedArticleSet>"
)
JATS_BODY = (
    '<article><front><article-meta><article-id pub-id-type="pmid">2</article-id>'
    "<title-group><article-title>t {ref}</article-title></title-group>"
    "<abstract><p>a {ref} b</p></abstract></article-meta></front></article>"
)


def billion_laughs(root: str, body: str) -> str:
    return f'<?xml version="1.0"?>\n<!DOCTYPE {root} [\n{LAUGHS}\n]>\n' + body.format(ref="&lol9;")


def small_entity(root: str, body: str) -> str:
    """Declares one harmless entity: libxml2 alone would accept it; we refuse any declaration."""
    return f'<?xml version="1.0"?>\n<!DOCTYPE {root} [ <!ENTITY x "expanded"> ]>\n' + body.format(ref="&x;")


def external_entity(root: str, body: str, secret_url: str) -> str:
    return f'<?xml version="1.0"?>\n<!DOCTYPE {root} [ <!ENTITY xxe SYSTEM "{secret_url}"> ]>\n' + body.format(ref="&xxe;")


def external_dtd(root: str, body: str, dtd_url: str) -> str:
    """XXE through an external DTD, which must never be loaded: the reference stays unexpanded."""
    return f'<?xml version="1.0"?>\n<!DOCTYPE {root} SYSTEM "{dtd_url}">\n' + body.format(ref="&xxe;")


@pytest.fixture
def secret(tmp_path):
    token = "SECRET-7f3a9c-DO-NOT-LEAK"
    path = tmp_path / "secret.txt"
    path.write_text(token)
    dtd = tmp_path / "evil.dtd"
    dtd.write_text(f'<!ENTITY xxe SYSTEM "{path.as_uri()}">\n')
    return token, path.as_uri(), dtd.as_uri()


def test_billion_laughs_fails_fast_with_bounded_memory(tmp_path):
    """Under a 1 GiB address-space limit (the expanded bomb is ~3 GB) the reader refuses the file."""
    for name, text in [("bomb.xml", billion_laughs("PubmedArticleSet", MEDLINE_BODY)),
                       ("bomb.nxml", billion_laughs("article", JATS_BODY))]:
        (tmp_path / name).write_text(text)
    script = textwrap.dedent(
        """
        import resource, sys
        resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
        from linkbert.pipeline.sources.medline_xml import iter_medline_records
        from linkbert.pipeline.sources.safe_xml import UnsafeXmlError, parse_bytes_safe
        try:
            with open(sys.argv[1], "rb") as stream:
                list(iter_medline_records(stream, sys.argv[1]))
        except UnsafeXmlError as exc:
            print("medline:", exc)
        try:
            parse_bytes_safe(open(sys.argv[2], "rb").read(), sys.argv[2])
        except UnsafeXmlError as exc:
            print("jats:", exc)
        """
    )
    run = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "bomb.xml"), str(tmp_path / "bomb.nxml")],
        capture_output=True, text=True, timeout=60,
    )
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[0].startswith(f"medline: {tmp_path / 'bomb.xml'}: refused")
    assert lines[1].startswith(f"jats: {tmp_path / 'bomb.nxml'}: refused")


def test_any_entity_declaration_is_refused_and_external_dtd_is_never_loaded(tmp_path, secret):
    token, secret_url, dtd_url = secret
    with pytest.raises(UnsafeXmlError, match=r"x\.nxml: refused: the DTD declares 1 entity \(x\)"):
        parse_bytes_safe(small_entity("article", JATS_BODY).encode(), "x.nxml")
    with pytest.raises(UnsafeXmlError, match=r"y\.nxml: refused"):
        parse_bytes_safe(external_entity("article", JATS_BODY, secret_url).encode(), "y.nxml")
    tree = parse_bytes_safe(external_dtd("article", JATS_BODY, dtd_url).encode(), "z.nxml")
    assert token not in "".join(tree.getroot().itertext())


@pytest.mark.slow
def test_bombs_and_xxe_in_the_beam_sources(tmp_path, secret):
    token, secret_url, dtd_url = secret
    inputs = tmp_path / "in"
    inputs.mkdir()
    files = {
        "bomb.xml": billion_laughs("PubmedArticleSet", MEDLINE_BODY),
        "entity.xml": small_entity("PubmedArticleSet", MEDLINE_BODY),
        "xxe.xml": external_entity("PubmedArticleSet", MEDLINE_BODY, secret_url),
        "xxe_dtd.xml": external_dtd("PubmedArticleSet", MEDLINE_BODY, dtd_url),
        "bomb.nxml": billion_laughs("article", JATS_BODY),
        "xxe.nxml": external_entity("article", JATS_BODY, secret_url),
        "xxe_dtd.nxml": external_dtd("article", JATS_BODY, dtd_url),
    }
    for name, text in files.items():
        (inputs / name).write_text(text)

    documents, errors, counters = run_source(ReadPubmed(str(inputs / "*.xml"), min_abstract_words=0), tmp_path / "pubmed")
    pmc_documents, pmc_errors, pmc_counters = run_source(ReadPmc(str(inputs / "*.nxml")), tmp_path / "pmc")

    everything = repr((documents, errors, pmc_documents, pmc_errors))
    assert token not in everything  # no local file was read
    refused = {e["source_file"].rsplit("/", 1)[-1]: e for e in errors + pmc_errors}
    assert set(refused) == {"bomb.xml", "entity.xml", "xxe.xml", "bomb.nxml", "xxe.nxml"}
    for name, error in refused.items():
        assert error["reason"] == "unsafe_xml" and str(inputs / name) in error["detail"]
    # the external-DTD variants parse, with the reference left unexpanded
    assert list(documents) == ["1"] and "&xxe;" in documents["1"]["text"]
    assert list(pmc_documents) == ["2"]
    assert counters["pubmed.files_failed"] == 3 and not reconcile(counters)[0]
    assert pmc_counters["pmc.failed"] == 2 and reconcile(pmc_counters)[0]
