"""Write a synthetic PubMed/MEDLINE baseline (``PubmedArticleSet`` XML, gzip) with ground truth.

Article ``i`` (PMID ``pmid_of(i)``, ascending with ``i`` and with publication year) is about one key
entity with a made-up name: a protein ("Lobran kinase"), disease ("Taivard syndrome"), drug
("verolulib") or pathogen ("Regax virus"), with facts (the process it promotes or suppresses, the
tissue, a marker, the model studied). The abstract states those facts and names the entity in most
sentences; its BACKGROUND names the key entity of every cited in-set article, most with that
article's own finding, so text carries knowledge across citations. Citations point mostly to
earlier PMIDs, with a heavy-tailed in-degree; references also cite PMIDs outside the set and
works with no PMID at all, as real reference lists do. About 3% of articles have no abstract and a
few have short ones, as in real baselines.

Files written into ``out_dir``:

``pubmed26n0001.xml.gz`` ... (``num_files`` of them, named like the real baseline)
    ``<PubmedArticleSet>`` with the real DOCTYPE line (nothing needs the DTD: no entities beyond
    XML's own), ``MedlineCitation`` (PMID, dates, Article with Journal, ArticleTitle, Abstract,
    AuthorList, Language, PublicationTypeList; MeshHeadingList, KeywordList) and ``PubmedData``
    (History, ArticleIdList, ReferenceList).
``pubmed26n-truth.tsv.gz``
    the planted citation graph, header ``source_pmid  target_pmid  target_entity``: one row per
    distinct in-set citation; ``target_entity`` is how the citing abstract names the cited key
    entity. Citations of PMIDs outside the set are not rows.
``pubmed26n-articles.tsv.gz``
    one row per article: ``pmid  file  title  entity  entity_kind  abstract_words  in_set_refs
    out_of_set_refs  facts`` (``facts`` a JSON object; ``abstract_words`` 0 when there is none).

Same ``(num_docs, seed, num_files)``, byte-identical files.
"""

from __future__ import annotations

import functools
import gzip
import json
import os
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

from linkbert.pipeline.synth.graph import LinkGraph
from linkbert.pipeline.synth.names import GIVEN_NAMES, NameSpace
from linkbert.pipeline.synth.randomness import keyed_rng, lognormal_int
from linkbert.pipeline.synth.wiki import atomic_path, gzip_text_writer

FILE_PREFIX = "pubmed26n"
FIRST_PMID = 20_000_000
PMID_STRIDE = 3  # in-set PMIDs are FIRST_PMID + 3i; the PMIDs between are cited but absent
FIRST_YEAR, LAST_YEAR = 1990, 2025
DOCTYPE = ('<!DOCTYPE PubmedArticleSet PUBLIC "-//NLM//DTD PubMedArticle, 1st January 2025//EN" '
           '"https://dtd.nlm.nih.gov/ncbi/pubmed/out/pubmed_250101.dtd">')

KINDS = ("protein", "disease", "drug", "pathogen")
KIND_WEIGHTS = (0.4, 0.25, 0.2, 0.15)
PROTEIN_CLASSES = ("kinase", "receptor", "transporter", "phosphatase", "channel")
DISEASE_WORDS = ("syndrome", "disease")
PROCESSES = ("hepatic fibrosis", "insulin secretion", "T cell activation", "angiogenesis", "neuronal apoptosis",
             "bone remodelling", "mitochondrial biogenesis", "autophagy", "epithelial repair", "lipid storage",
             "cardiac hypertrophy", "B cell maturation", "axon regeneration", "mucus production", "glucose uptake")
TISSUES = ("liver", "pancreatic islets", "lung", "kidney", "hippocampus", "skeletal muscle", "adipose tissue",
           "colon", "retina", "bone marrow", "heart", "skin")
MODELS = ("mice", "rats", "zebrafish", "human cohorts", "organoids", "primary cell cultures")
MARKERS = ("IL-6", "TNF-α", "VEGF", "p53", "NF-κB", "TGF-β", "mTOR", "AMPK", "HIF-1α", "STAT3")
METHODS = ("RNA sequencing", "flow cytometry", "mass spectrometry", "CRISPR knockout", "immunohistochemistry",
           "a randomised controlled design", "single-cell profiling", "western blotting")
JOURNALS = (
    ("Journal of Cellular Signalling", "J Cell Signal", "1931-0420"),
    ("Annals of Experimental Medicine", "Ann Exp Med", "0273-1180"),
    ("Clinical and Molecular Research", "Clin Mol Res", "1552-3006"),
    ("Archives of Translational Biology", "Arch Transl Biol", "2045-7723"),
    ("International Journal of Molecular Pathology", "Int J Mol Pathol", "1098-5514"),
    ("Frontiers in Comparative Physiology", "Front Comp Physiol", "1664-0901"),
)
MESH = (("D006801", "Humans"), ("D000818", "Animals"), ("D051379", "Mice"), ("D008297", "Male"),
        ("D005260", "Female"), ("D000328", "Adult"), ("D008875", "Middle Aged"), ("D000368", "Aged"),
        ("D051381", "Rats"), ("D015398", "Signal Transduction"), ("D002460", "Cell Line"),
        ("D012307", "Risk Factors"), ("D011446", "Prospective Studies"), ("D012189", "Retrospective Studies"))
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
LABELS = ("BACKGROUND", "METHODS", "RESULTS", "CONCLUSIONS")


def pmid_of(index: int) -> int:
    return FIRST_PMID + PMID_STRIDE * index


def _x(text: str) -> str:
    return escape(text)


@dataclass(frozen=True, slots=True)
class BioEntity:
    index: int
    kind: str
    mention: str  # how text names it, e.g. "Lobran kinase" or "verolulib"
    facts: dict = field(hash=False, compare=False)

    @property
    def finding(self) -> str:
        """The entity's main finding, in the words every article about or citing it uses."""
        f = self.facts
        return f"{self.mention} {f['effect']} {f['process']} in the {f['tissue']}"


@dataclass(slots=True)
class Article:
    index: int
    pmid: int
    xml: str
    title: str
    entity: BioEntity
    citations: list[int]  # in-set cited entity indices
    out_of_set: int
    abstract_words: int


def _sentence_case(text: str) -> str:
    return text[0].upper() + text[1:] if text and text[0].islower() else text


class PubMedWorld:
    def __init__(self, num_docs: int, seed: int) -> None:
        if num_docs < 2:
            raise ValueError(f"need at least 2 documents, got {num_docs}")
        self.num_docs, self.seed = num_docs, seed
        num_places = min(2000, max(5, num_docs // 40))
        # Names [0, N) are key entities, [N, 2N) authors, [2N, 2N + places) affiliations.
        self._names = NameSpace(2 * num_docs + num_places, seed, "pubmed-names")
        self._places = [self._names.name(2 * num_docs + k) for k in range(num_places)]
        self._surnames = [self._names.name(num_docs + k) for k in range(min(num_docs, 5000))]
        self.graph = LinkGraph(num_docs, seed, "pubmed", median_out=7.0, min_out=1, max_out=30, earlier_share=0.9)
        self.entity = functools.lru_cache(maxsize=16384)(self._build_entity)

    def year_of(self, index: int) -> int:
        return FIRST_YEAR + (LAST_YEAR - FIRST_YEAR) * index // self.num_docs

    def _build_entity(self, index: int) -> BioEntity:
        rng = keyed_rng(self.seed, "pubmed-entity", index)
        kind = rng.choices(KINDS, KIND_WEIGHTS)[0]
        name = self._names.name(index)
        mention = {
            "protein": lambda: f"{name} {rng.choice(PROTEIN_CLASSES)}",
            "disease": lambda: f"{name} {rng.choice(DISEASE_WORDS)}",
            "drug": lambda: f"{name.lower()}ib",
            "pathogen": lambda: f"{name} virus",
        }[kind]()
        promotes = rng.random() < 0.5
        facts = {
            "kind": kind, "name": name, "process": rng.choice(PROCESSES), "tissue": rng.choice(TISSUES),
            "effect": "promotes" if promotes else "suppresses", "effect_past": "increased" if promotes else "reduced",
            "marker": rng.choice(MARKERS), "marker_change": rng.choice(("higher", "lower")),
            "model": rng.choice(MODELS), "method": rng.choice(METHODS), "year": self.year_of(index),
        }
        return BioEntity(index, kind, mention, facts)

    def author(self, rng) -> tuple[str, str]:
        return rng.choice(self._surnames), rng.choice(GIVEN_NAMES)

    def place(self, rng) -> str:
        return rng.choice(self._places)

    # -------------------------------------------------------------------------- text
    def title(self, entity: BioEntity, rng) -> str:
        f = entity.facts
        template = rng.choice((
            "{M} {effect} {process} in the {tissue}: evidence from {model}.",
            "Role of {M} in {process}.",
            "{M} and {marker} signalling in {process}.",
            "{M} {effect} {process} through {marker} in <i>{model}</i>.",
        ))
        return _sentence_case(template.format(M=entity.mention, **f))

    def abstract(self, entity: BioEntity, cited: list[BioEntity], rng) -> list[tuple[str, str]]:
        """[(label, text)] sections; the labels are dropped for unstructured abstracts."""
        f, m = entity.facts, entity.mention
        background = [f"The mechanisms that control {f['process']} in the {f['tissue']} remain poorly understood."]
        for other in cited[:3]:
            opener = rng.choice(("previous work showed that", "it has been reported that", "earlier studies found that",
                                 "others have shown that"))
            background.append(_sentence_case(f"{opener} {other.finding}."))
        rest = cited[3:]
        for start in range(0, len(rest), 3):
            group = rest[start:start + 3]
            named = [f"{o.mention} ({o.facts['process']})" for o in group]
            listed = named[0] if len(named) == 1 else ", ".join(named[:-1]) + " and " + named[-1]
            verb = "has" if len(group) == 1 else "have"
            background.append(_sentence_case(rng.choice((
                f"{listed} {verb} also been studied in this context.",
                f"related work examined {listed}.",
                f"{listed} {verb} been linked to {f['process']} as well.",
            ))))
        background.append(_sentence_case(f"whether {m} affects {f['process']} was unknown."))
        methods = [
            f"We studied {rng.randint(12, 900)} {f['model']} using {f['method']}.",
            _sentence_case(f"{m} activity was measured in the {f['tissue']} at {rng.randint(2, 24)} time points."),
        ]
        pct, p = rng.randint(18, 85), rng.choice(("0.001", "0.01", "0.05"))
        results = [
            _sentence_case(f"{m} {f['effect_past']} {f['process']} by {pct}% (p < {p})."),
            _sentence_case(f"levels of {f['marker']} were {f['marker_change']} when {m} was blocked."),
        ]
        conclusions = [_sentence_case(f"{entity.finding}, and may be a target for therapy.")]
        extra = [
            _sentence_case(f"the effect of {m} was stronger in older {f['model']}."),
            _sentence_case(f"{m} was detected in {rng.randint(40, 99)}% of samples from the {f['tissue']}."),
            _sentence_case(f"blocking {m} <i>in vivo</i> changed {f['process']} within {rng.randint(2, 30)} days."),
            _sentence_case(f"{m} also altered the expression of {rng.randint(3, 400)} genes."),
            _sentence_case(f"no adverse effects of {m} were seen over {rng.randint(2, 52)} weeks."),
            _sentence_case(f"the response to {m} depended on {f['marker']} signalling."),
        ]
        rng.shuffle(extra)
        target = lognormal_int(rng, 210, 0.3, 90, 380)
        sections = [["BACKGROUND", background], ["METHODS", methods], ["RESULTS", results], ["CONCLUSIONS", conclusions]]
        words = lambda: sum(len(s.split()) for _, body in sections for s in body)  # noqa: E731
        while extra and words() < target:
            sections[rng.choice((1, 2, 2))][1].append(extra.pop())
        return [(label, " ".join(body)) for label, body in sections]

    def article(self, index: int) -> Article:
        rng = keyed_rng(self.seed, "pubmed-article", index)
        entity = self.entity(index)
        f = entity.facts
        pmid = pmid_of(index)
        cited_indices = self.graph.out_links(index)
        cited = [self.entity(j) for j in cited_indices]
        title = self.title(entity, rng)
        journal, abbreviation, issn = rng.choice(JOURNALS)
        year = f["year"]
        month = rng.randrange(12)

        parts = [f'<PubmedArticle><MedlineCitation Status="MEDLINE" Owner="NLM" IndexingMethod="Automated">'
                 f'<PMID Version="1">{pmid}</PMID>',
                 f"<DateCompleted><Year>{min(LAST_YEAR, year + 1)}</Year><Month>{month + 1:02d}</Month><Day>{rng.randint(1, 28):02d}</Day></DateCompleted>",
                 f"<DateRevised><Year>{LAST_YEAR}</Year><Month>{rng.randint(1, 12):02d}</Month><Day>{rng.randint(1, 28):02d}</Day></DateRevised>",
                 '<Article PubModel="Print-Electronic">',
                 f'<Journal><ISSN IssnType="Electronic">{issn}</ISSN><JournalIssue CitedMedium="Internet">'
                 f"<Volume>{year - 1960}</Volume><Issue>{rng.randint(1, 12)}</Issue>"
                 f"<PubDate><Year>{year}</Year><Month>{MONTHS[month]}</Month></PubDate></JournalIssue>"
                 f"<Title>{_x(journal)}</Title><ISOAbbreviation>{_x(abbreviation)}</ISOAbbreviation></Journal>",
                 f"<ArticleTitle>{self._inline(title)}</ArticleTitle>",
                 f"<Pagination><MedlinePgn>{(first := rng.randint(1, 900))}-{first + rng.randint(3, 14)}</MedlinePgn></Pagination>",
                 f'<ELocationID EIdType="doi" ValidYN="Y">10.5555/synth.{pmid}</ELocationID>']
        abstract_words = 0
        if rng.random() >= 0.03:
            sections = self.abstract(entity, cited, rng)
            abstract_words = sum(len(text.split()) for _, text in sections)
            if rng.random() < 0.6:
                body = "".join(f"<AbstractText Label={quoteattr(label)} NlmCategory={quoteattr(label)}>{self._inline(text)}</AbstractText>"
                               for label, text in sections)
            else:
                body = f"<AbstractText>{self._inline(' '.join(text for _, text in sections))}</AbstractText>"
            copyright_line = f"<CopyrightInformation>© {year} The Authors.</CopyrightInformation>" if rng.random() < 0.3 else ""
            parts.append(f"<Abstract>{body}{copyright_line}</Abstract>")
        parts.append(self._authors(rng))
        parts.append("<Language>eng</Language>")
        types = ['<PublicationType UI="D016428">Journal Article</PublicationType>']
        if rng.random() < 0.4:
            types.append("<PublicationType UI=\"D013485\">Research Support, Non-U.S. Gov't</PublicationType>")
        parts.append(f"<PublicationTypeList>{''.join(types)}</PublicationTypeList>")
        parts.append(f'<ArticleDate DateType="Electronic"><Year>{year}</Year><Month>{month + 1:02d}</Month><Day>{rng.randint(1, 28):02d}</Day></ArticleDate></Article>')
        parts.append(f"<MedlineJournalInfo><Country>United States</Country><MedlineTA>{_x(abbreviation)}</MedlineTA>"
                     f"<NlmUniqueID>{100_000_000 + JOURNALS.index((journal, abbreviation, issn))}</NlmUniqueID>"
                     f"<ISSNLinking>{issn}</ISSNLinking></MedlineJournalInfo>")
        parts.append("<CitationSubset>IM</CitationSubset>")
        mesh = sorted(rng.sample(MESH, k=rng.randint(3, 7)), key=lambda item: item[1])
        parts.append("<MeshHeadingList>" + "".join(
            f'<MeshHeading><DescriptorName UI="{ui}" MajorTopicYN="N">{_x(label)}</DescriptorName></MeshHeading>'
            for ui, label in mesh) + "</MeshHeadingList>")
        parts.append('<KeywordList Owner="NOTNLM">' + "".join(
            f'<Keyword MajorTopicYN="N">{_x(k)}</Keyword>' for k in (entity.mention, f["process"], f["marker"])) + "</KeywordList>")
        parts.append("</MedlineCitation>")

        references, out_of_set = self._references(index, cited, rng)
        pmc = f'<ArticleId IdType="pmc">PMC{1_000_000 + index}</ArticleId>' if rng.random() < 0.4 else ""
        parts.append(
            "<PubmedData><History>"
            f'<PubMedPubDate PubStatus="received"><Year>{year - 1 if month < 3 else year}</Year><Month>{(month - 3) % 12 + 1}</Month><Day>{rng.randint(1, 28)}</Day></PubMedPubDate>'
            f'<PubMedPubDate PubStatus="pubmed"><Year>{year}</Year><Month>{month + 1}</Month><Day>{rng.randint(1, 28)}</Day><Hour>6</Hour><Minute>0</Minute></PubMedPubDate>'
            "</History><PublicationStatus>ppublish</PublicationStatus>"
            f'<ArticleIdList><ArticleId IdType="pubmed">{pmid}</ArticleId><ArticleId IdType="doi">10.5555/synth.{pmid}</ArticleId>{pmc}</ArticleIdList>'
            f"{references}</PubmedData></PubmedArticle>"
        )
        return Article(index, pmid, "".join(parts), title, entity, cited_indices, out_of_set, abstract_words)

    @staticmethod
    def _inline(text: str) -> str:
        """Escape text but keep the ``<i>`` markup PubMed allows inside titles and abstracts."""
        return _x(text).replace("&lt;i&gt;", "<i>").replace("&lt;/i&gt;", "</i>")

    def _authors(self, rng) -> str:
        authors = []
        for _ in range(rng.randint(1, 8)):
            last, fore = self.author(rng)
            place = self.place(rng)
            authors.append(f'<Author ValidYN="Y"><LastName>{last}</LastName><ForeName>{fore}</ForeName><Initials>{fore[0]}</Initials>'
                           f"<AffiliationInfo><Affiliation>Department of {rng.choice(('Medicine', 'Biochemistry', 'Physiology', 'Pathology'))}, "
                           f"University of {place}, {place}.</Affiliation></AffiliationInfo></Author>")
        return f'<AuthorList CompleteYN="Y">{"".join(authors)}</AuthorList>'

    def _citation_text(self, rng, subject: str, year: int) -> str:
        last, fore = self.author(rng)
        journal = rng.choice(JOURNALS)[1]
        return f"{last} {fore[0]}, et al. {_sentence_case(subject)}. {journal}. {year};{rng.randint(1, 60)}:{rng.randint(1, 900)}."

    def _references(self, index: int, cited: list[BioEntity], rng) -> tuple[str, int]:
        refs = []
        for other in cited:
            text = self._citation_text(rng, f"{other.mention} in {other.facts['process']}", other.facts["year"])
            refs.append(f"<Reference><Citation>{_x(text)}</Citation><ArticleIdList>"
                        f'<ArticleId IdType="pubmed">{pmid_of(other.index)}</ArticleId></ArticleIdList></Reference>')
        out_of_set = rng.randint(0, 8)
        for _ in range(out_of_set):
            pmid = (rng.randint(1_000_000, FIRST_PMID - 1) if rng.random() < 0.5
                    else pmid_of(rng.randrange(self.num_docs)) + rng.randint(1, PMID_STRIDE - 1))
            text = self._citation_text(rng, f"{rng.choice(PROCESSES)} in {rng.choice(MODELS)}", rng.randint(1970, self.year_of(index)))
            doi = f'<ArticleId IdType="doi">10.5555/ext.{pmid}</ArticleId>' if rng.random() < 0.5 else ""
            refs.append(f"<Reference><Citation>{_x(text)}</Citation><ArticleIdList>"
                        f'<ArticleId IdType="pubmed">{pmid}</ArticleId>{doi}</ArticleIdList></Reference>')
        for _ in range(rng.randint(0, 3)):
            refs.append(f"<Reference><Citation>{_x(self._citation_text(rng, 'a technical report', rng.randint(1990, LAST_YEAR)))}</Citation></Reference>")
        rng.shuffle(refs)
        return (f"<ReferenceList>{''.join(refs)}</ReferenceList>" if refs else ""), out_of_set


def write_pubmed_baseline(
    out_dir: str | os.PathLike, num_docs: int, seed: int, num_files: int = 1, prefix: str = FILE_PREFIX
) -> dict:
    """Write ``num_files`` baseline files and the ground truth; returns ``{"files": [...],
    "truth": path, "articles": path}`` (path strings)."""
    if num_docs < 2:
        raise ValueError(f"--docs must be at least 2, got {num_docs}")
    if not 1 <= num_files <= min(num_docs, 9999):
        raise ValueError(f"--files must be between 1 and min(--docs, 9999), got {num_files}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    world = PubMedWorld(num_docs, seed)
    files = [out / f"{prefix}{number:04d}.xml.gz" for number in range(1, num_files + 1)]
    truth_path, articles_path = out / f"{prefix}-truth.tsv.gz", out / f"{prefix}-articles.tsv.gz"
    bounds = [num_docs * k // num_files for k in range(num_files + 1)]

    with ExitStack() as stack:
        truth = stack.enter_context(gzip_text_writer(stack.enter_context(atomic_path(truth_path))))
        table = stack.enter_context(gzip_text_writer(stack.enter_context(atomic_path(articles_path))))
        truth.write("source_pmid\ttarget_pmid\ttarget_entity\n")
        table.write("pmid\tfile\ttitle\tentity\tentity_kind\tabstract_words\tin_set_refs\tout_of_set_refs\tfacts\n")
        for number, path in enumerate(files):
            with ExitStack() as file_stack:
                temporary = file_stack.enter_context(atomic_path(path))
                raw = file_stack.enter_context(open(temporary, "wb"))
                packed = file_stack.enter_context(gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=6, mtime=0))
                packed.write(f'<?xml version="1.0" encoding="utf-8"?>\n{DOCTYPE}\n<PubmedArticleSet>\n'.encode("utf-8"))
                for index in range(bounds[number], bounds[number + 1]):
                    article = world.article(index)
                    packed.write(article.xml.encode("utf-8") + b"\n")
                    for target in article.citations:
                        truth.write(f"{article.pmid}\t{pmid_of(target)}\t{world.entity(target).mention}\n")
                    facts = {k: v for k, v in article.entity.facts.items() if k not in ("effect_past",)}
                    table.write("\t".join(map(str, (
                        article.pmid, path.name, article.title.replace("<i>", "").replace("</i>", ""), article.entity.mention, article.entity.kind,
                        article.abstract_words, len(article.citations), article.out_of_set,
                        json.dumps(facts, sort_keys=True, ensure_ascii=False)))) + "\n")
                packed.write(b"</PubmedArticleSet>\n")
    return {"files": [str(p) for p in files], "truth": str(truth_path), "articles": str(articles_path)}
