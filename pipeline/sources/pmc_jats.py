"""Reading one PMC Open Access article (JATS ``.nxml``) from a safely parsed tree.

pubmed_parser is used where it holds up: ``pubmed_parser.utils.remove_namespace`` and the ``article-id``
lookups of ``parse_article_meta``. Its higher-level readers fall short on real files, so the rest is
read here from the one tree ``safe_xml.parse_bytes_safe`` built (they would each re-parse the file with
lxml's default parser):

- ``parse_pubmed_references`` keeps only the *last* ``pub-id`` of a reference as ``pmid_cited``, so a
  PMID followed by a DOI is lost (14 of 25 cited PMIDs in the shared ``1472-6831-8-11.nxml``), and it
  skips references without a ``citation-type``/``publication-type`` attribute;
- ``parse_pubmed_xml`` raises ``KeyError: 'year'`` on current JATS that dates articles with
  ``date-type="pub"`` instead of ``pub-type="ppub"``/``"collection"``, and flattens structured
  abstracts (section titles run into the text);
- ``parse_pubmed_paragraph`` reads only one level of inline markup.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from lxml import etree
from pubmed_parser.pubmed_oa_parser import parse_article_meta
from pubmed_parser.utils import remove_namespace

from linkbert.pipeline.sources.medline_xml import clean_text

XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
# Not running text: left out of abstracts and bodies.
_NON_TEXT_TAGS = ("fig", "table-wrap", "disp-formula", "supplementary-material", "graphic", "media", "tex-math", "object-id")
_TEXT_BLOCK_TAGS = ("p", "list", "disp-quote", "def-list", "statement")
_SECTION_TAGS = ("sec", "boxed-text")
# pub-date preference: print issue, then electronic, then the collection.
_PUB_DATE_PATHS = (
    'pub-date[@pub-type="ppub"]',
    'pub-date[@date-type="pub"][@publication-format="print"]',
    'pub-date[@pub-type="epub"]',
    'pub-date[@date-type="pub"][@publication-format="electronic"]',
    'pub-date[@date-type="pub"]',
    'pub-date[@pub-type="collection"]',
    'pub-date[@date-type="collection"]',
    "pub-date",
)


class NotJatsError(ValueError):
    """The document is not a JATS ``<article>``."""


@dataclass
class JatsArticle:
    pmid: str | None
    pmcid: str | None  # "PMC123"
    title: str
    abstract: list[str]  # paragraphs
    body: list[str] = field(default_factory=list)
    language: str | None = None
    pub_year: int | None = None
    doi: str | None = None
    cited_pmids: list[str] = field(default_factory=list)

    @property
    def doc_id(self) -> str | None:
        return self.pmid or self.pmcid


def read_jats_article(tree: etree._ElementTree, source_file: str, include_body: bool = False) -> JatsArticle:
    root = tree.getroot()
    remove_namespace(tree)
    if root.tag != "article":
        raise NotJatsError(f"{source_file}: not a JATS article: root element is <{root.tag}>")
    meta = root.find("front/article-meta")
    if meta is None:
        raise NotJatsError(f"{source_file}: JATS article without front/article-meta")
    for unwanted in list(root.iter(*_NON_TEXT_TAGS)):
        unwanted.text = None
        del unwanted[:]
    ids = parse_article_meta(root)
    pmid = (ids["pmid"] or "").strip()
    pmc = (ids["pmc"] or _article_id(meta, "pmcid") or "").strip().removeprefix("PMC")
    title = clean_text(meta.find("title-group/article-title"))
    subtitle = clean_text(meta.find("title-group/subtitle"))
    abstract = []
    for element in meta.iterfind("abstract"):
        if element.get("abstract-type") not in ("graphical", "teaser"):
            abstract += _abstract_paragraphs(element)
    body = root.find("body")
    return JatsArticle(
        pmid=pmid if pmid.isdigit() else None,
        pmcid=f"PMC{pmc}" if pmc.isdigit() else None,
        title=f"{title}: {subtitle}" if title and subtitle else title or subtitle,
        abstract=abstract,
        body=_paragraphs(body, inline_headings=False) if include_body and body is not None else [],
        language=(root.get(XML_LANG) or "").strip() or None,
        pub_year=_pub_year(meta),
        doi=(ids["doi"] or "").strip() or None,
        cited_pmids=_cited_pmids(root),
    )


def _article_id(meta: etree._Element, id_type: str) -> str | None:
    for element in meta.iterfind("article-id"):
        if element.get("pub-id-type") == id_type:
            return element.text
    return None


def _paragraphs(block: etree._Element, inline_headings: bool) -> list[str]:
    """Paragraphs of a block in order. A section's title leads its first paragraph: on its own line
    (bodies), or as ``Title: text`` (abstracts, like MEDLINE's labelled sections)."""
    separator = ": " if inline_headings else "\n"
    paragraphs = []
    for child in block:
        if child.tag in _TEXT_BLOCK_TAGS:
            text = clean_text(child)
            if text:
                paragraphs.append(text)
        elif child.tag in _SECTION_TAGS:
            inner = _paragraphs(child, inline_headings)
            heading = clean_text(child.find("title"))
            if inline_headings:
                heading = heading.rstrip(":").rstrip()
            if inner and heading:
                inner[0] = f"{heading}{separator}{inner[0]}"
            paragraphs += inner
    return paragraphs


def _abstract_paragraphs(abstract: etree._Element) -> list[str]:
    paragraphs = _paragraphs(abstract, inline_headings=True)
    if not paragraphs:
        text = clean_text(abstract)
        return [text] if text else []
    title = clean_text(abstract.find("title"))
    if title:
        paragraphs[0] = f"{title}\n{paragraphs[0]}"
    return paragraphs


def _pub_year(meta: etree._Element) -> int | None:
    for path in _PUB_DATE_PATHS:
        for date in meta.iterfind(path):
            year = (date.findtext("year") or "").strip()
            if year.isdigit() and len(year) == 4:
                return int(year)
    return None


def _cited_pmids(root: etree._Element) -> list[str]:
    cited = []
    for ref in root.iterfind(".//ref-list//ref"):
        for pub_id in ref.iter("pub-id"):
            if pub_id.get("pub-id-type") == "pmid":
                pmid = (pub_id.text or "").strip()
                if pmid.isdigit():
                    cited.append(pmid)
    return list(dict.fromkeys(cited))
