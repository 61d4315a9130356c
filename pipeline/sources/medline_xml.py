"""Streaming reader for MEDLINE/PubMed XML: the current ``PubmedArticleSet`` format and the legacy
(up to 2016) ``MedlineCitationSet`` format.

Why not ``pubmed_parser.parse_medline_xml``: it only opens local gzip files (``gzip.open(path)``, so
no plain ``.xml``, no ``gs://``); it yields nothing for ``MedlineCitationSet`` files and drops
``DeleteCitation`` and ``CommentsCorrections RefType="Cites"``; one malformed article raises out of
its generator and loses the rest of the file; it clears each article but keeps the emptied
elements under the root, so memory grows with the file; its DOI is the *last* ``ELocationID``
(empty when that one is a ``pii``); structured-abstract labels become separate lines. This module
is one ``iterparse`` pass (with the safe options of ``safe_xml``) that clears each record and deletes
its earlier siblings, and turns every record into a plain value: ``MedlineArticle``, ``Deletion`` or
``BadRecord``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from lxml import etree

from linkbert.pipeline.sources.safe_xml import iterparse_safe

ROOT_TAGS = ("PubmedArticleSet", "MedlineCitationSet")
ARTICLE_TAGS = ("PubmedArticle", "MedlineCitation", "PubmedBookArticle")
DELETE_TAG = "DeleteCitation"
_TAGS = ROOT_TAGS + ARTICLE_TAGS + (DELETE_TAG,)
_YEAR = re.compile(r"\b(1[6-9]\d\d|20\d\d)\b")


class MedlineFileError(ValueError):
    """The file as a whole is not a MEDLINE/PubMed file (wrong root, no records)."""


@dataclass
class MedlineArticle:
    pmid: str
    title: str
    abstract: list[tuple[str, str]]  # (label or "", section text)
    language: str | None = None
    pub_year: int | None = None
    mesh_terms: list[str] = field(default_factory=list)
    doi: str | None = None
    cited_pmids: list[str] = field(default_factory=list)

    @property
    def abstract_words(self) -> int:
        return sum(len(text.split()) for _label, text in self.abstract)

    def abstract_text(self) -> str:
        """Sections separated by a blank line, each prefixed by its label: ``BACKGROUND: ...``."""
        return "\n\n".join(f"{label}: {text}" if label else text for label, text in self.abstract)


@dataclass
class Deletion:
    pmid: str


@dataclass
class BadRecord:
    pmid: str | None
    reason: str
    detail: str
    deletion: bool = False  # an entry of a DeleteCitation, not an article


def clean_text(element: etree._Element | None) -> str:
    """All text under ``element`` (inline markup flattened), whitespace collapsed."""
    if element is None:
        return ""
    return " ".join("".join(element.itertext()).split())


def _stripped(text: str | None) -> str:
    return text.strip() if text else ""


def _valid_pmid(text: str | None) -> str | None:
    pmid = _stripped(text)
    return pmid if pmid.isdigit() else None


def _dedup(values) -> list[str]:
    return list(dict.fromkeys(values))


def iter_medline_records(stream, source_file: str) -> Iterator[tuple[int, MedlineArticle | Deletion | BadRecord]]:
    """Yield ``(position, record)`` for every top-level record of a MEDLINE XML stream, in file order.

    ``position`` counts records from 0 (each PMID of a ``DeleteCitation`` is one record), so a later
    record of the same file has a larger position. A record that cannot be read becomes a
    ``BadRecord`` and the file goes on. Raises ``MedlineFileError`` for a file that is not MEDLINE
    XML or holds no records, ``safe_xml.UnsafeXmlError`` for a file that declares entities, and
    ``lxml.etree.XMLSyntaxError`` where the XML itself breaks (records before that point have
    already been yielded).
    """
    root = None
    position = 0
    for event, element in iterparse_safe(stream, source_file, _TAGS):
        if event == "start":
            if root is None:
                if element.tag not in ROOT_TAGS or element.getparent() is not None:
                    raise MedlineFileError(
                        f"{source_file}: not MEDLINE XML: <{element.tag}> found outside a"
                        f" {' or '.join(ROOT_TAGS)} root element"
                    )
                root = element
            continue
        parent = element.getparent()
        if parent is None or parent.tag not in ROOT_TAGS:
            continue  # MedlineCitation inside PubmedArticle: handled with its article
        if element.tag == DELETE_TAG:
            for pmid_element in element.iterfind("PMID"):
                pmid = _valid_pmid(pmid_element.text)
                if pmid is None:
                    yield position, BadRecord(
                        None, "invalid_pmid", f"DeleteCitation PMID {pmid_element.text!r}", deletion=True
                    )
                else:
                    yield position, Deletion(pmid)
                position += 1
        else:
            yield position, parse_article_element(element)
            position += 1
        element.clear(keep_tail=False)
        while element.getprevious() is not None:
            del parent[0]
    if root is None:
        raise MedlineFileError(f"{source_file}: not MEDLINE XML: no {' or '.join(ROOT_TAGS)} root element")
    if position == 0:
        raise MedlineFileError(
            f"{source_file}: <{root.tag}> holds no PubmedArticle, MedlineCitation or DeleteCitation records"
        )


def parse_article_element(element: etree._Element) -> MedlineArticle | BadRecord:
    """One ``PubmedArticle``, legacy top-level ``MedlineCitation`` or ``PubmedBookArticle``."""
    pmid = None
    try:
        if element.tag == "PubmedBookArticle":
            return _parse_book_article(element)
        citation = element if element.tag == "MedlineCitation" else element.find("MedlineCitation")
        if citation is None:
            return BadRecord(None, "missing_element", "PubmedArticle without MedlineCitation")
        pmid_text = citation.findtext("PMID")
        pmid = _valid_pmid(pmid_text)
        if pmid is None:
            return BadRecord(_stripped(pmid_text) or None, "invalid_pmid", f"PMID {pmid_text!r}")
        article = citation.find("Article")
        if article is None:
            return BadRecord(pmid, "missing_element", "MedlineCitation without Article")
        pubmed_data = element.find("PubmedData")
        cited = [
            _stripped(aid.text)
            for aid in (pubmed_data.iterfind(".//Reference/ArticleIdList/ArticleId") if pubmed_data is not None else ())
            if aid.get("IdType") == "pubmed"
        ]
        cited += [
            _stripped(cc.findtext("PMID"))
            for cc in citation.iterfind("CommentsCorrectionsList/CommentsCorrections")
            if cc.get("RefType") == "Cites"
        ]
        return MedlineArticle(
            pmid=pmid,
            title=clean_text(article.find("ArticleTitle")) or clean_text(article.find("VernacularTitle")),
            abstract=_abstract_sections(article.find("Abstract")),
            language=_stripped(article.findtext("Language")) or None,
            pub_year=_publication_year(article),
            mesh_terms=_dedup(
                t for t in (clean_text(d) for d in citation.iterfind("MeshHeadingList/MeshHeading/DescriptorName")) if t
            ),
            doi=_doi(article, pubmed_data),
            cited_pmids=_dedup(p for p in cited if p.isdigit()),
        )
    except Exception as exc:  # one malformed article never ends the file
        return BadRecord(pmid, "parse_error", f"{type(exc).__name__}: {exc}")


def _parse_book_article(element: etree._Element) -> MedlineArticle | BadRecord:
    document = element.find("BookDocument")
    if document is None:
        return BadRecord(None, "missing_element", "PubmedBookArticle without BookDocument")
    pmid_text = document.findtext("PMID")
    pmid = _valid_pmid(pmid_text)
    if pmid is None:
        return BadRecord(_stripped(pmid_text) or None, "invalid_pmid", f"PMID {pmid_text!r}")
    year = _YEAR.search(document.findtext("Book/PubDate/Year") or "")
    cited = [
        _stripped(aid.text)
        for aid in document.iterfind(".//Reference/ArticleIdList/ArticleId")
        if aid.get("IdType") == "pubmed"
    ]
    doi = next(
        (_stripped(aid.text) for aid in element.iterfind("PubmedBookData/ArticleIdList/ArticleId") if aid.get("IdType") == "doi"),
        "",
    )
    return MedlineArticle(
        pmid=pmid,
        title=clean_text(document.find("ArticleTitle")) or clean_text(document.find("Book/BookTitle")),
        abstract=_abstract_sections(document.find("Abstract")),
        language=_stripped(document.findtext("Language")) or None,
        pub_year=int(year.group(1)) if year else None,
        doi=doi or None,
        cited_pmids=_dedup(p for p in cited if p.isdigit()),
    )


def _abstract_sections(abstract: etree._Element | None) -> list[tuple[str, str]]:
    if abstract is None:
        return []
    sections = []
    for part in abstract.iterfind("AbstractText"):
        text = clean_text(part)
        if text:
            sections.append((_stripped(part.get("Label")).rstrip(":").rstrip(), text))
    return sections


def _publication_year(article: etree._Element) -> int | None:
    pub_date = article.find("Journal/JournalIssue/PubDate")
    candidates = []
    if pub_date is not None:
        candidates += [pub_date.findtext("Year"), pub_date.findtext("MedlineDate")]
    candidates.append(article.findtext("ArticleDate/Year"))
    for text in candidates:
        match = _YEAR.search(text or "")
        if match:
            return int(match.group(1))
    return None


def _doi(article: etree._Element, pubmed_data: etree._Element | None) -> str | None:
    for location in article.iterfind("ELocationID"):
        if location.get("EIdType") == "doi" and location.get("ValidYN", "Y") == "Y" and _stripped(location.text):
            return _stripped(location.text)
    if pubmed_data is not None:
        for aid in pubmed_data.iterfind("ArticleIdList/ArticleId"):
            if aid.get("IdType") == "doi" and _stripped(aid.text):
                return _stripped(aid.text)
    return None
