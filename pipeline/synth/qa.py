"""``linkbert synth qa``: extractive QA sets from the synthetic world's known facts, in the fine-tuning
harness's ``qa`` format (JSON lines ``{id, question, context, answers: {answer_start, text}}``).

Questions that need two linked documents, as HotpotQA's bridge questions do:

* **multi-hop**: the question names entity X and describes Y only through the planted link X -> Y
  ("In what year was the river that drains Lobran first surveyed?"); the answer is a fact of Y that
  appears in Y's article and nowhere in X's article (the sentence of X that links to Y often
  restates one of Y's facts as an appositive: such facts are never asked). The context is X's
  passage (its lead and the sentence that names Y) followed by Y's passage (its lead and the
  sentence that states the fact).
* **single-hop** (control): the same context and fact, but the question names Y itself.
* **distractor** (the paper's Table 3): the multi-hop questions with 1-2 passages of unrelated documents
  (neither X nor Y, nor naming either) from other questions of the same split, placed before or after
  the context (seeded), answer offsets shifted.
* **few-shot** (Table 4): 10% of the multi-hop training questions (seeded), same dev and test.

Entities are split, not questions: the question entity (X for multi-hop, Y for single-hop) of a test
question is never the question entity of a train or dev question. With ``heldout_ids`` (the
held-out documents of a pipeline output), test questions are asked about held-out documents: their
text was never pretrained on, their link neighbours were. A test document's text appears in test
contexts only (never in what the model is fine-tuned on), and the Y of every multi-hop question is a
document outside the test split, so a test question's answer document was pretrained on.
"""

from __future__ import annotations

import glob
import gzip
import json
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from linkbert.pipeline.synth.randomness import keyed_rng

KIND_NOUNS = {"city": "city", "river": "river", "mountain": "mountain", "person": "person", "company": "company",
              "band": "band", "species": "species"}

# How X's article describes the target of each planted link relation ({X}: X's title).
RELATION_DESCRIPTIONS = {
    "near": "the {k} near {X}", "road_to": "the {k} that a road connects with {X}",
    "based_in": "the {k} where {X} spent several years", "worked_in": "the {k} where {X} opened a workshop",
    "found_near": "the {k} around which {X} is common", "drained_by": "the {k} that drains {X}",
    "visited": "the {k} whose banks {X} often visited", "worked_on": "the {k} along which {X} worked on a project",
    "lives_in": "the {k} along which {X} breeds", "overlooked_by": "the {k} in whose shadow {X} lies",
    "view_of": "the {k} that {X} has a view of", "climbed": "the {k} that {X} climbed",
    "inspired_by": "the {k} that inspired {X}", "lives_on": "the {k} on whose slopes {X} is found",
    "visited_by": "the {k} who visited {X}", "described_by": "the {k} who described {X}",
    "worked_with": "the {k} who worked with {X}", "influenced_by": "the {k} who influenced {X}",
    "has_site": "the {k} that operates a large site in {X}", "supplied_by": "the {k} that supplied equipment to {X}",
    "partner_of": "the {k} that {X} signed a contract with", "sponsored_by": "the {k} that sponsored {X}",
    "monitored_by": "the {k} that monitors {X}", "concert_in": "the {k} that gave a celebrated concert in {X}",
    "song_about": "the {k} that recorded a song about {X}", "toured_with": "the {k} that {X} toured with",
    "admired": "the {k} whose music {X} admired", "home_to": "the {k} that {X} is home to",
    "emblem": "the {k} shown on the emblem of {X}", "studied": "the {k} that {X} studied",
    "protected": "the {k} that {X} helped to protect", "competes_with": "the {k} that {X} competes with for food",
    "shares_habitat": "the {k} that shares its habitat with {X}",
}

# Per kind: fact -> question about {D} (a description of the entity, or its title).
FACT_QUESTIONS = {
    "city": {"founded": "In what year was {D} founded?", "elevation_m": "At what elevation in metres does {D} lie?",
             "industry": "Which industry is {D} known for?", "climate": "What is the climate of {D}?",
             "festival": "Which annual festival does {D} hold?", "mayor": "Who is the mayor of {D}?",
             "rain": "How many millimetres of rain does {D} get a year?"},
    "river": {"length_km": "How many kilometres long is {D}?", "fish": "Which fish is {D} known for?",
              "source_elevation_m": "At what elevation in metres does {D} rise?",
              "gorges": "How many gorges does {D} pass through?", "discharge": "What is the discharge of {D}?"},
    "mountain": {"elevation_m": "How many metres does {D} rise to?", "first_ascent": "In what year was {D} first climbed?",
                 "first_climber": "Who first climbed {D}?", "rock": "What rock is {D} made of?",
                 "forest": "Which trees grow in the forests of {D}?"},
    "person": {"born": "In what year was {D} born?", "occupation": "What was the occupation of {D}?",
               "known_for": "Which work is {D} known for?", "subject": "What did {D} study?"},
    "company": {"founded": "In what year was {D} founded?", "founder": "Who founded {D}?",
                "product": "What does {D} make?", "employees": "How many people does {D} employ?"},
    "band": {"formed": "In what year was {D} formed?", "genre": "What kind of music does {D} play?",
             "debut_album": "What was the debut album of {D}?", "members": "How many members does {D} have?"},
    "species": {"family": "To which family does {D} belong?", "discovered": "In what year was {D} first described?",
                "describer": "Who first described {D}?", "diet": "What does {D} feed on?",
                "status": "What is the conservation status of {D}?", "length_cm": "How many centimetres long is {D}?"},
}

SPLITS = ("train", "dev", "test")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z\"'(])")


@dataclass(frozen=True)
class Article:
    doc_id: str
    title: str
    kind: str
    name: str
    facts: dict
    text: str  # the cleaned text the pipeline reads


@dataclass(frozen=True)
class Link:
    source: str
    target: str
    relation: str


@dataclass(frozen=True)
class LinkQuestions:
    """The two questions asked about one planted link, and the two passages of their shared context."""
    multi: dict
    single: dict
    x_passage: str
    y_passage: str


def sentences(text: str) -> list[str]:
    return [s.strip() for paragraph in text.split("\n") for s in _SENTENCE_END.split(paragraph) if s.strip()]


def _contains_word(text: str, phrase: str) -> bool:
    return re.search(rf"(?<!\w){re.escape(phrase)}(?!\w)", text) is not None


def answer_surface(value) -> str | None:
    if isinstance(value, bool) or value is None or isinstance(value, (list, tuple, dict)):
        return None
    return str(value)


# ------------------------------------------------------------------------------------ the world
def world_from_seed(num_docs: int, seed: int) -> tuple[dict[str, Article], list[Link]]:
    """Generate the world in memory and clean each article as the pipeline does."""
    from linkbert.pipeline.sources.wikitext import WikitextCleaner
    from linkbert.pipeline.synth.wikiworld import WikiWorld, article_page_id

    world, cleaner = WikiWorld(num_docs, seed), WikitextCleaner()
    articles, links = {}, []
    for index in range(num_docs):
        page = world.article(index)
        entity = page.entity
        doc_id = str(page.page_id)
        articles[doc_id] = Article(doc_id, entity.title, entity.kind, entity.name, dict(entity.facts),
                                   cleaner.clean(page.text).text)
        links += [Link(doc_id, str(article_page_id(target)), relation) for target, relation in page.links]
    return articles, links


def _tsv_rows(path: str) -> Iterator[dict]:
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        header = handle.readline().rstrip("\n").split("\t")
        for line in handle:
            yield dict(zip(header, line.rstrip("\n").split("\t")))


def world_from_corpus(directory: str) -> tuple[dict[str, Article], list[Link]]:
    """Read a ``linkbert synth wiki`` output: facts from ``*-pages.tsv.gz``, planted links from
    ``*-truth.tsv.gz``, text from the dump itself through the pipeline's own reader and cleaner."""
    from linkbert.pipeline.sources.multistream import find_index, plan_units
    from linkbert.pipeline.sources.wikidump import RawPage, read_pages
    from linkbert.pipeline.sources.wikitext import WikitextCleaner

    def one(pattern: str) -> str:
        found = sorted(glob.glob(os.path.join(directory, pattern)))
        if not found:
            raise FileNotFoundError(f"{directory}: no {pattern} (is it a 'linkbert synth wiki' output?)")
        return found[0]

    facts = {}
    for row in _tsv_rows(one("*-pages.tsv.gz")):
        if row["kind"] == "article" and row["facts"]:
            facts[row["page_id"]] = (row["title"], row["entity_kind"], json.loads(row["facts"]))
    links = [Link(row["source_id"], row["target_id"], row["relation"]) for row in _tsv_rows(one("*-truth.tsv.gz"))]
    dump = one("*.xml.bz2")
    cleaner, articles = WikitextCleaner(), {}
    for unit in plan_units(dump, find_index(dump)):
        for page in read_pages(unit):
            if isinstance(page, RawPage) and page.page_id in facts:
                title, kind, page_facts = facts[page.page_id]
                articles[page.page_id] = Article(page.page_id, title, kind, page_facts["name"], page_facts,
                                                 cleaner.clean(page.text).text)
    return articles, links


# ---------------------------------------------------------------------------------- questions
def _lead(article: Article, count: int = 2) -> list[str]:
    return sentences(article.text)[:count]


def _first_sentence_with(article: Article, phrase: str) -> str | None:
    return next((s for s in sentences(article.text) if _contains_word(s, phrase)), None)


def _example(qid: str, question: str, passages: list[str], answer: str, answer_passage: int) -> dict:
    context, starts = "", []
    for passage in passages:
        starts.append(len(context) + (1 if context else 0))
        context = f"{context} {passage}" if context else passage
    offset = context.index(answer, starts[answer_passage])
    return {"id": qid, "question": question, "context": context,
            "answers": {"answer_start": [offset], "text": [answer]}}


def _relation_phrases(relation: str) -> tuple[str, ...]:
    """The literal words of the link sentences that plant ``relation`` ("is drained by")."""
    from linkbert.pipeline.synth.wiki_templates import LINKS

    phrases = set()
    for by_category in LINKS.values():
        for templates in by_category.values():
            for name, template in templates:
                if name == relation:
                    phrases.add(max((chunk.strip() for chunk in re.split(r"\{[^}]+\}", template)), key=len))
    return tuple(sorted(phrases))


def _bridge_sentence(x: Article, y: Article, relation: str) -> str | None:
    """The sentence of x that plants the link to y: it names y and has the relation's words."""
    phrases = _relation_phrases(relation)
    return next((s for s in sentences(x.text) if _contains_word(s, y.name) and any(p in s for p in phrases)), None)


def link_questions(x: Article, y: Article, relation: str, seed: int) -> LinkQuestions | None:
    """The multi-hop and single-hop questions for the planted link x -> y, or None when no fact of y
    can be asked honestly (stated in y's text, absent from x's) or the link sentence is not found."""
    bridge = _bridge_sentence(x, y, relation)
    description = RELATION_DESCRIPTIONS.get(relation)
    if bridge is None or description is None:
        return None
    rng = keyed_rng(seed, "synth-qa", x.doc_id, y.doc_id)
    candidates = sorted(FACT_QUESTIONS.get(y.kind, {}).items())
    rng.shuffle(candidates)
    for fact, template in candidates:
        answer = answer_surface(y.facts.get(fact))
        if not answer or _contains_word(x.text, answer):
            continue
        evidence = _first_sentence_with(y, answer)
        if evidence is None:
            continue
        x_passage = " ".join(dict.fromkeys(_lead(x) + [bridge]))
        y_passage = " ".join(dict.fromkeys(_lead(y) + [evidence]))
        if _contains_word(x_passage, answer):
            continue
        described = description.format(k=KIND_NOUNS[y.kind], X=x.title)
        qid = f"{x.doc_id}-{y.doc_id}-{fact}"  # parse_question_id reads it back
        multi = _example(f"multi-{qid}", template.format(D=described), [x_passage, y_passage], answer, 1)
        single = _example(f"single-{qid}", template.format(D=y.title), [x_passage, y_passage], answer, 1)
        return LinkQuestions(multi, single, x_passage, y_passage)
    return None


def parse_question_id(qid: str) -> tuple[str, str, str]:
    """``multi-X-Y-fact`` / ``single-X-Y-fact`` (optionally ``-distractor``) -> (x doc_id, y doc_id, fact)."""
    _, x, y, fact = qid.removesuffix("-distractor").split("-", 3)
    return x, y, fact


def split_of_entity(doc_id: str, seed: int, heldout_ids: set[str] | None, dev_fraction: float, test_fraction: float) -> str:
    uniform = keyed_rng(seed, "synth-qa-split", doc_id).random()
    if heldout_ids is not None:
        if doc_id in heldout_ids:
            return "test"
        return "dev" if uniform < dev_fraction else "train"
    return "test" if uniform < test_fraction else "dev" if uniform < test_fraction + dev_fraction else "train"


def with_distractors(examples: list[dict], pool: list[tuple[str, str]], names: dict[str, str], seed: int) -> list[dict]:
    """Each question's context with 1-2 passages of unrelated documents placed before or after it (seeded);
    answer offsets are shifted by what was prepended. ``pool``: (doc_id, passage) of the split's questions;
    a passage is unrelated when its document is neither X nor Y and it names neither (``names``: doc_id ->
    name)."""
    out = []
    for example in examples:
        x, y, _ = parse_question_id(example["id"])
        rng = keyed_rng(seed, "synth-qa-distractor", example["id"])
        wanted, chosen, docs = rng.choice((1, 2)), [], {x, y}
        for index in rng.sample(range(len(pool)), min(len(pool), 16)):
            doc, passage = pool[index]
            if doc in docs or _contains_word(passage, names[x]) or _contains_word(passage, names[y]):
                continue
            chosen.append(passage)
            docs.add(doc)
            if len(chosen) == wanted:
                break
        before = [passage for passage in chosen if rng.random() < 0.5]
        after = [passage for passage in chosen if passage not in before]
        prefix = " ".join(before) + (" " if before else "")
        context = prefix + example["context"] + ("".join(" " + passage for passage in after))
        answers = {"answer_start": [start + len(prefix) for start in example["answers"]["answer_start"]],
                   "text": list(example["answers"]["text"])}
        out.append({**example, "id": f"{example['id']}-distractor", "context": context, "answers": answers})
    return out


def few_shot(examples: list[dict], fraction: float, seed: int) -> list[dict]:
    kept = [e for e in examples if keyed_rng(seed, "synth-qa-fewshot", e["id"]).random() < fraction]
    return kept or examples[:1]


def build_sets(articles: dict[str, Article], links: Iterable[Link], seed: int, heldout_ids: set[str] | None = None,
               dev_fraction: float = 0.1, test_fraction: float = 0.2, fewshot_fraction: float = 0.1) -> dict:
    """{setting: {split: examples}} for multihop, singlehop, multihop-distractor, multihop-fewshot.

    A test document's text is kept out of train and dev contexts, and no multi-hop Y is a test document
    (with ``heldout_ids``: a test question's answer document was pretrained on)."""
    def split_of(doc_id: str) -> str:
        return split_of_entity(doc_id, seed, heldout_ids, dev_fraction, test_fraction)

    multi = {split: [] for split in SPLITS}
    single = {split: [] for split in SPLITS}
    pools = {split: {} for split in SPLITS}  # (doc_id, passage) -> None: the distractor passages, in order
    asked_single = set()
    for link in sorted(links, key=lambda link: (link.source, link.target)):
        x, y = articles.get(link.source), articles.get(link.target)
        if x is None or y is None or x.doc_id == y.doc_id:
            continue
        x_split, y_split = split_of(x.doc_id), split_of(y.doc_id)
        ask_multi = y_split != "test"
        # One single-hop question per entity, split by that entity; X's passage is in its context too.
        ask_single = y.doc_id not in asked_single and (y_split == "test" or x_split != "test")
        if not ask_multi and not ask_single:
            continue
        made = link_questions(x, y, link.relation, seed)
        if made is None:
            continue
        if ask_multi:
            multi[x_split].append(made.multi)
            pools[x_split].update({(x.doc_id, made.x_passage): None, (y.doc_id, made.y_passage): None})
        if ask_single:
            asked_single.add(y.doc_id)
            single[y_split].append(made.single)
    names = {doc_id: article.name for doc_id, article in articles.items()}
    return {
        "multihop": multi,
        "singlehop": single,
        "multihop-distractor": {split: with_distractors(multi[split], list(pools[split]), names, seed) for split in SPLITS},
        "multihop-fewshot": {"train": few_shot(multi["train"], fewshot_fraction, seed), "dev": multi["dev"],
                             "test": multi["test"]},
    }


def heldout_doc_ids(pipeline_output: str) -> set[str]:
    """Every document a pipeline output held out (its seed and fraction, applied to its documents table), also
    those that gave no held-out instance."""
    import pyarrow.parquet as pq
    from apache_beam.io.filesystems import FileSystems

    from linkbert.pipeline.instances.pairing import is_heldout

    manifest_path = FileSystems.join(pipeline_output, "manifest.json")
    if not FileSystems.exists(manifest_path):
        raise FileNotFoundError(f"{pipeline_output}: no manifest.json (is it a 'linkbert pipeline' output?)")
    with FileSystems.open(manifest_path) as handle:
        options = json.load(handle)["options"]
    pattern = FileSystems.join(pipeline_output, "documents", "*.parquet")
    files = sorted(metadata.path for metadata in FileSystems.match([pattern])[0].metadata_list)
    if not files:
        raise FileNotFoundError(f"{pipeline_output}: no documents/*.parquet")
    doc_ids = []
    for path in files:
        with FileSystems.open(path) as handle:
            doc_ids += pq.read_table(handle, columns=["doc_id"]).column("doc_id").to_pylist()
    return {doc_id for doc_id in doc_ids if is_heldout(options["seed"], doc_id, options["heldout_fraction"])}


def write_sets(sets: dict, out: str) -> dict[str, dict[str, int]]:
    counts = {}
    for setting, splits in sets.items():
        directory = os.path.join(out, setting)
        os.makedirs(directory, exist_ok=True)
        counts[setting] = {}
        for split, examples in splits.items():
            with open(os.path.join(directory, f"{split}.json"), "w", encoding="utf-8") as handle:
                for example in examples:
                    handle.write(json.dumps(example, ensure_ascii=False) + "\n")
            counts[setting][split] = len(examples)
    with open(os.path.join(out, "samples.md"), "w", encoding="utf-8") as handle:
        handle.write(samples_markdown(sets))
    with open(os.path.join(out, "counts.json"), "w", encoding="utf-8") as handle:
        json.dump(counts, handle, indent=2, sort_keys=True)
    return counts


def samples_markdown(sets: dict, per_setting: int = 3) -> str:
    lines = ["# Sample questions", "", "Generated by `linkbert synth qa` (see `linkbert.pipeline.synth.qa`).", ""]
    for setting in ("multihop", "singlehop", "multihop-distractor"):
        lines += [f"## {setting}", ""]
        for example in sets[setting]["test"][:per_setting] or sets[setting]["train"][:per_setting]:
            lines += [f"- **Q:** {example['question']}", f"  **A:** {example['answers']['text'][0]}",
                      f"  **context:** {example['context']}", ""]
    return "\n".join(lines)
