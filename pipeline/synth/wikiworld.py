"""A made-up encyclopedic world and its pages in real MediaWiki wikitext.

Entity ``i`` (a city, river, mountain, person, company, band or species with a unique made-up name)
and its facts are a pure function of ``(seed, i)``. Its article states those facts, names the entity
in most sentences, and links to each out-link target in a sentence that names the target and states
one of the target's own facts (an appositive), so text carries knowledge across links.

Every planted link appears at least once in plain prose. Copies of planted links also appear inside
infoboxes, tables, image captions and "See also" lists, so a reader that drops those keeps the same
graph. Things that must *not* become edges: links inside HTML comments and ``<nowiki>``, red links
(titles with no page), links to disambiguation pages, ``[[#Section|...]]`` self-links,
interlanguage links (``[[fr:...]]``), ``[[Category:...]]``/``[[:Category:...]]`` and
``[[File:...]]`` themselves.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field

from linkbert.pipeline.stablehash import stable_uniform
from linkbert.pipeline.synth import wiki_templates as T
from linkbert.pipeline.synth.graph import LinkGraph
from linkbert.pipeline.synth.names import GIVEN_NAMES, NameSpace
from linkbert.pipeline.synth.randomness import keyed_rng, log_uniform_int, lognormal_int

LAST_YEAR = 2023
# Regions and the surnames of people without pages come from bounded pools, built once.
MAX_REGIONS = 2000
MAX_SURNAMES = 5000
SITE_NAME = "Synthpedia"
PROJECT_PAGE_TITLE = f"{SITE_NAME}:About"

# Page ids: entity i owns ids 10 + 4i (article), +1 and +2 (redirects), +3 (disambiguation page).
FIRST_ARTICLE_ID = 10
IDS_PER_ENTITY = 4


def article_page_id(index: int) -> int:
    return FIRST_ARTICLE_ID + IDS_PER_ENTITY * index


@dataclass(frozen=True, slots=True)
class Entity:
    index: int
    kind: str
    name: str  # the unique made-up word, e.g. "Lobran"
    title: str  # page title, e.g. "Lobran River"
    mention: str  # mid-sentence reference, e.g. "the Lobran"
    determiner: str  # written before a link to it ("the " for rivers)
    link_texts: tuple[str, ...]  # what a link to it may display; each contains ``name``
    aliases: tuple[str, ...]  # redirect titles
    facts: dict = field(hash=False, compare=False)


@dataclass(slots=True)
class Page:
    page_id: int
    ns: int
    title: str
    text: str
    kind: str  # article | redirect | disambiguation | project | template | category
    redirect: str | None = None
    entity: Entity | None = None
    links: list[tuple[int, str]] = field(default_factory=list)  # (target entity index, relation)
    words: int = 0


_LINK_MARKUP = re.compile(r"\[\[(?:[^\]|]*\|)?([^\]]*)\]\]")
_NON_PROSE = re.compile(r"'''?|<ref[^>]*/>|<ref[^>]*>.*?</ref>|\{\{[^{}]*\}\}|&nbsp;", re.S)


def prose_word_count(wikitext: str) -> int:
    """Approximate words of reader-visible prose: link targets, refs and small templates removed."""
    return len(_NON_PROSE.sub(" ", _LINK_MARKUP.sub(r"\1", wikitext)).split())


_A_BEFORE_VOWEL = re.compile(r"\b([Aa]) (?=(?:''|\[\[)?[AEIOUaeiou])")


def _capitalize(sentence: str) -> str:
    """Sentence case, and "an" where "a" stands before a vowel ("an orchid", "an amber finch")."""
    sentence = _A_BEFORE_VOWEL.sub(r"\1n ", sentence)
    return sentence[0].upper() + sentence[1:] if sentence and sentence[0].islower() else sentence


def _ordinal(number: int) -> str:
    suffix = "th" if 10 <= number % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(number % 10, "th")
    return f"{number}{suffix}"


class _Fields(dict):
    """Template fields; per-sentence random values are drawn only when a template asks for them."""

    def __init__(self, base: dict, generators: dict) -> None:
        super().__init__(base)
        self._generators = generators

    def __missing__(self, key: str):
        if key not in self._generators:
            raise KeyError(f"template field {{{key}}} is not defined")
        value = self[key] = self._generators[key]()
        return value


DEFAULT_ARTICLE_WORDS = 620  # median prose words; another value keeps ~1 section per 150 words (short articles)


class WikiWorld:
    def __init__(self, num_docs: int, seed: int, article_words: int = DEFAULT_ARTICLE_WORDS) -> None:
        if num_docs < 2 or article_words < 20:
            raise ValueError(f"need at least 2 documents and 20 article words, got {num_docs} and {article_words}")
        self.num_docs, self.seed, self.article_words = num_docs, seed, article_words
        num_regions = min(MAX_REGIONS, max(5, num_docs // 30))
        # Names [0, N) are entities, [N, 2N) people and red links, [2N, 2N + regions) regions.
        self._names = NameSpace(2 * num_docs + num_regions, seed, "wiki-names")
        self._regions = [self._names.name(2 * num_docs + k) for k in range(num_regions)]
        self._surnames = [self._names.name(num_docs + k) for k in range(min(num_docs, MAX_SURNAMES))]
        self.graph = LinkGraph(num_docs, seed, "wiki")
        # Popular entities are rebuilt for every page that links to them: keep recent ones.
        self.entity = functools.lru_cache(maxsize=16384)(self._build_entity)

    # ----------------------------------------------------------------- entities and their facts
    def side_person(self, rng) -> str:
        """Someone mentioned in passing (a mayor, a founder, an author), who has no page."""
        return f"{rng.choice(GIVEN_NAMES)} {rng.choice(self._surnames)}"

    def unused_name(self, rng) -> str:
        """A name no entity has: red links point at titles built from it."""
        return self._names.name(self.num_docs + rng.randrange(self.num_docs))

    def region(self, rng) -> str:
        return rng.choice(self._regions)

    def organisation(self, rng) -> str:
        return f"{rng.choice(self._regions)} {rng.choice(T.ORG_NOUNS)}"

    def has_disambiguation(self, index: int) -> bool:
        return index == 0 or stable_uniform(self.seed, "wiki-disambiguation", index) < 0.02

    def _build_entity(self, index: int) -> Entity:
        rng = keyed_rng(self.seed, "wiki-entity", index)
        kind = rng.choices(T.KINDS, T.KIND_WEIGHTS)[0]
        name = self._names.name(index)
        facts = self._make_facts(kind, name, rng)
        if kind == "city":
            title, mention, determiner, texts = name, name, "", (name,)
            aliases = (f"{name} (city)", f"City of {name}")
        elif kind == "river":
            title, mention, determiner, texts = f"{name} River", f"the {name}", "the ", (f"{name} River", name)
            aliases = (f"{name} (river)", f"River {name}")
        elif kind == "mountain":
            title = mention = f"Mount {name}"
            determiner, texts = "", (title,)
            aliases = (f"{name} (mountain)", f"{name} Peak")
        elif kind == "person":
            title, mention, determiner, texts = f"{facts['given']} {name}", name, "", (f"{facts['given']} {name}", name)
            aliases = (f"{facts['given'][0]}. {name}", f"{title} ({facts['occupation']})")
        elif kind == "company":
            title, mention, determiner, texts = f"{name} {facts['suffix']}", name, "", (f"{name} {facts['suffix']}", name)
            aliases = (f"{name} (company)", f"{name} Co")
        elif kind == "band":
            title, mention, determiner, texts = f"The {name}", f"the {name}", "", (f"the {name}",)
            aliases = (f"{name} (band)", f"The {name} (band)")
        else:  # species
            title, mention, determiner = f"{name} {facts['taxon']}", f"the {name} {facts['taxon']}", "the "
            texts = (title,)
            plural = {"moth": "moths", "finch": "finches", "orchid": "orchids", "beetle": "beetles"}
            aliases = (f"{name} (species)",) + ((f"{name} {plural[facts['taxon']]}",) if facts["taxon"] in plural else ())
        roll = rng.random()
        aliases = aliases[:2] if roll < 0.12 else aliases[:1] if roll < 0.35 else ()
        facts["title"] = title
        facts["N"] = mention
        facts["P"] = facts.get("pronoun", "It")
        if kind == "person":
            facts["late_life"] = (f"{name} died in {facts['died']}." if facts["died"] else f"{name} lives and works in {facts['region']}.")
        return Entity(index, kind, name, title, mention, determiner, texts, aliases, facts)

    def _make_facts(self, kind: str, name: str, rng) -> dict:
        facts: dict = {"kind": kind, "name": name, "region": self.region(rng), "colour": rng.choice(T.COLOURS)}
        if kind == "city":
            founded = rng.randint(600, 1950)
            facts.update(founded=founded, population=log_uniform_int(rng, 2_000, 3_000_000),
                         elevation_m=rng.randint(2, 2400), industry=rng.choice(T.INDUSTRIES),
                         climate=rng.choice(T.CLIMATES), rain=rng.randint(250, 2200),
                         festival=rng.choice(T.FESTIVALS), festival_month=rng.choice(T.MONTHS),
                         mayor=self.side_person(rng), rank=rng.choice(("second", "third", "fourth", "fifth", "sixth")),
                         century=_ordinal(founded // 100 + 1), era=(founded, LAST_YEAR))
        elif kind == "river":
            facts.update(length_km=log_uniform_int(rng, 30, 3500), discharge=log_uniform_int(rng, 2, 9000),
                         source_elevation_m=rng.randint(200, 4000), fish=rng.choice(T.FISH),
                         gorges=rng.randint(2, 12), era=(1500, LAST_YEAR))
        elif kind == "mountain":
            first_ascent = rng.randint(1760, 1990)
            facts.update(elevation_m=rng.randint(1200, 8200), first_ascent=first_ascent,
                         first_climber=self.side_person(rng), rock=rng.choice(T.ROCKS),
                         forest=rng.choice(T.FORESTS), era=(first_ascent - 50, LAST_YEAR))
        elif kind == "person":
            born = rng.randint(1600, 1995)
            died = born + rng.randint(35, 95)
            died = died if died <= LAST_YEAR and born < 1950 else None
            end = died or LAST_YEAR
            female = rng.random() < 0.5
            facts.update(given=rng.choice(GIVEN_NAMES), born=born, died=died, occupation=rng.choice(T.OCCUPATIONS),
                         subject=rng.choice(T.SUBJECTS),
                         known_for=f"The {rng.choice(T.WORK_ADJECTIVES)} {rng.choice(T.WORK_NOUNS)}",
                         known_for_year=rng.randint(min(born + 25, end), end),
                         pronoun="She" if female else "He", poss="her" if female else "his",
                         born_text=f"{born}–{died}" if died else f"born {born}", was_is="was" if died else "is",
                         era=(min(born + 15, end), end))
            facts["occupation_plural"] = facts["occupation"].capitalize() + "s"
        elif kind == "company":
            founded = rng.randint(1780, 2015)
            founder = self.side_person(rng)
            facts.update(founded=founded, founder=founder, founder_surname=founder.split()[-1],
                         industry=rng.choice(T.INDUSTRIES), employees=log_uniform_int(rng, 20, 200_000),
                         product=rng.choice(T.PRODUCTS), suffix=rng.choice(T.COMPANY_SUFFIXES),
                         era=(founded, LAST_YEAR))
            facts["industry_cap"] = facts["industry"].capitalize()
        elif kind == "band":
            formed = rng.randint(1960, 2018)
            facts.update(formed=formed, genre=rng.choice(T.GENRES), members=rng.randint(3, 7),
                         debut_album=f"{rng.choice(T.WORK_ADJECTIVES)} {rng.choice(T.WORK_NOUNS)}",
                         debut_year=min(LAST_YEAR, formed + rng.randint(1, 4)), pronoun="They",
                         era=(formed, LAST_YEAR))
        else:
            discovered = rng.randint(1758, 2015)
            facts.update(taxon=rng.choice(T.TAXA), family=f"{self.unused_name(rng)}idae", discovered=discovered,
                         describer=self.side_person(rng), length_cm=round(rng.uniform(0.5, 60.0), 1),
                         diet=rng.choice(T.DIETS), status=rng.choice(T.STATUSES), era=(discovered, LAST_YEAR))
        return facts

    # ----------------------------------------------------------------------------- sentences
    def _generators(self, entity: Entity, rng) -> dict:
        start, end = entity.facts["era"]
        return {
            "year": lambda: rng.randint(start, max(start, end)),
            "num": lambda: rng.randint(2, 60),
            "dist": lambda: rng.randint(3, 400),
            "adj": lambda: rng.choice(T.ADJECTIVES),
            "org": lambda: self.organisation(rng),
            "person": lambda: self.side_person(rng),
            "month": lambda: rng.choice(T.MONTHS),
        }

    def _sentence(self, template: str, entity: Entity, generators: dict) -> str:
        return _capitalize(template.format_map(_Fields(entity.facts, generators)))

    def link_markup(self, target: Entity, rng) -> str:
        """A wikilink to ``target`` written as real pages write them: plain, piped, via a redirect,
        with underscores, a lower-case first letter, surrounding spaces or a #section fragment."""
        display = rng.choice(target.link_texts)
        roll = rng.random()
        if target.aliases and roll < 0.2:
            page = rng.choice(target.aliases)
        elif roll < 0.27:
            page = target.title[0].lower() + target.title[1:]
        elif roll < 0.34:
            page = f"{target.title}#{rng.choice(T.SECTIONS[target.kind])}"
        else:
            page = target.title
        if " " in page and rng.random() < 0.08:
            page = page.replace(" ", "_")
        if rng.random() < 0.02:
            page = f" {page} "
        return target.determiner + (f"[[{page}]]" if page == display else f"[[{page}|{display}]]")

    def link_sentence(self, source: Entity, target: Entity, rng, generators: dict) -> tuple[str, str]:
        """(sentence, relation): names the target in a link and, most of the time, states one of its facts."""
        relation, template = rng.choice(T.LINKS[target.kind][T.CATEGORY[source.kind]])
        link = self.link_markup(target, rng)
        if rng.random() < 0.75:
            appositive = rng.choice(T.APPOSITIVES[target.kind]).format_map(target.facts)
            if template.endswith("{T}"):
                template = template + ", " + appositive.replace("{", "{{").replace("}", "}}")
            else:
                template = template.replace("{T}", "{T}, " + appositive.replace("{", "{{").replace("}", "}}") + ",")
        fields = _Fields(source.facts, generators)
        fields["S"] = source.mention
        fields["T"] = link
        return _capitalize(template.format_map(fields)) + ".", relation

    # ------------------------------------------------------------------------------- articles
    def article(self, index: int) -> Page:
        entity = self.entity(index)
        rng = keyed_rng(self.seed, "wiki-text", index)
        generators = self._generators(entity, rng)
        targets = [self.entity(j) for j in self.graph.out_links(index)]
        links: list[tuple[int, str]] = []
        link_sentences: list[str] = []
        for target in targets:
            sentence, relation = self.link_sentence(entity, target, rng, generators)
            link_sentences.append(sentence)
            links.append((target.index, relation))

        sections = list(T.SECTIONS[entity.kind])
        words = self.article_words
        target_words = lognormal_int(rng, words, 0.45, 300, 1500) if words == DEFAULT_ARTICLE_WORDS else 0
        if not target_words:  # short articles (the default world stays byte for byte the same)
            target_words = lognormal_int(rng, words, 0.45, max(20, words // 3), 3 * words)
            sections = sections[:max(1, min(len(sections), round(target_words / 150)))]
        refs = _RefMaker(self, entity, rng)

        # Lead: defining facts plus up to two of the link sentences.
        lead_links = min(len(link_sentences), rng.randint(0, 2))
        lead_sentences = [self._lead_first(entity, rng)] + [
            self._sentence(s, entity, generators) for s in T.LEAD[entity.kind][1:]
        ] + link_sentences[:lead_links]
        body_links = link_sentences[lead_links:]
        rng.shuffle(body_links)
        per_section: list[list[str]] = [[] for _ in sections]
        for position, sentence in enumerate(body_links):
            per_section[position % len(sections)].append(sentence)
        for target in targets:
            if rng.random() < 0.5:
                fields = _Fields(entity.facts, generators)
                fields["S"], fields["Tm"] = entity.mention, target.mention
                per_section[rng.randrange(len(sections))].append(_capitalize(rng.choice(T.ECHOES).format_map(fields)))

        if rng.random() < 0.1:
            lead_sentences.append(f"Its history is described [[#{sections[0]}|below]].")
        lead_words = sum(len(s.split()) for s in lead_sentences)
        section_budget = max(40, (target_words - lead_words) // len(sections))

        prose = [refs.sprinkle(lead_sentences, paragraph_size=(4, 7))]
        body: list[str] = []
        for number, section in enumerate(sections):
            facts = list(T.FACTS[entity.kind][section])
            rng.shuffle(facts)
            sentences = per_section[number] + [self._sentence(s, entity, generators) for s in facts]
            rng.shuffle(sentences)
            # Open the section with a fact about the subject rather than a link.
            opener = next((i for i, s in enumerate(sentences) if "[[" not in s), 0)
            sentences.insert(0, sentences.pop(opener))
            section_words = sum(len(s.split()) for s in sentences)
            while section_words < section_budget:
                roll = rng.random()
                pool = T.FILLERS if roll < 0.1 else T.EVENTS["any"] if roll < 0.5 else T.EVENTS[T.CATEGORY[entity.kind]]
                sentence = self._sentence(rng.choice(pool), entity, generators)
                sentences.insert(rng.randint(1, len(sentences)), sentence)
                section_words += len(sentence.split())
            text = refs.sprinkle(sentences, paragraph_size=(3, 6), subheadings=rng.random() < 0.25)
            prose.append(text)
            body.append(f"== {section} ==")
            if number == 0 and rng.random() < 0.6:
                body.append(self._image(entity, targets, rng, generators))
            body.append(text)
            if number == 1 and rng.random() < 0.5:
                body.append(self._table(entity, targets, rng, generators))
            if rng.random() < 0.2:
                body.append(self._comment_trap(entity, targets, rng))
        body.append(self._extras(entity, targets, rng))
        parts = self._header(entity, targets, rng) + prose[:1] + body + self._footer(entity, targets, refs, rng)
        text = "\n\n".join(p for p in parts if p)
        return Page(article_page_id(index), 0, entity.title, text, "article", entity=entity, links=links,
                    words=sum(prose_word_count(p) for p in prose))

    def _lead_first(self, entity: Entity, rng) -> str:
        bold = f"'''{entity.title}'''"
        if entity.kind in ("river", "species"):
            bold = "The " + bold
        if rng.random() < 0.3:
            code, ending = rng.choice(T.LANGUAGES)
            bold += f" ({{{{lang|{code}|{entity.name}{ending}}}}})"
        fields = _Fields(entity.facts, {})
        fields["lead"] = bold
        return _capitalize(T.LEAD[entity.kind][0].format_map(fields))

    def _header(self, entity: Entity, targets: list[Entity], rng) -> list[str]:
        facts = entity.facts
        lines = [f"{{{{Short description|{entity.kind.capitalize()} in {facts['region']}}}}}"]
        if self.has_disambiguation(entity.index):
            lines.append("{{Other uses}}")
        if rng.random() < 0.5:
            lines.append(f"{{{{Use dmy dates|date={rng.choice(T.MONTHS)} {rng.randint(2012, LAST_YEAR)}}}}}")
        header = ["\n".join(lines)]
        if rng.random() < 0.85:
            fields = [f"| {key} = {value.format_map(facts)}" for key, value in T.INFOBOX_FIELDS[entity.kind]]
            fields.insert(2, f"| image = {entity.name} {rng.choice(('view', 'panorama', 'photo'))}.jpg")
            if targets and rng.random() < 0.5:
                fields.append(f"| related = {self.link_markup(rng.choice(targets), rng)}")
            header.append("{{" + T.INFOBOX_NAMES[entity.kind] + "\n" + "\n".join(fields) + "\n}}")
        return header

    def _image(self, entity: Entity, targets: list[Entity], rng, generators: dict) -> str:
        caption = self._sentence("{N} in {year}", entity, generators)
        if targets and rng.random() < 0.4:
            caption += f", seen from {self.link_markup(rng.choice(targets), rng)}"
        return f"[[File:{entity.name} {rng.choice(('view', 'panorama', 'photo'))}.jpg|thumb|upright=1.2|{caption}]]"

    def _table(self, entity: Entity, targets: list[Entity], rng, generators: dict) -> str:
        start, end = entity.facts["era"]
        years = sorted(rng.sample(range(start, max(start + 8, end + 1)), k=min(6, max(1, end - start + 1))))
        heading, value_name, make_value = {
            "city": ("Population history of {N}", "Population", lambda: f"{log_uniform_int(rng, 500, 3_000_000):,}"),
            "river": ("Measured discharge of {N}", "Discharge (m³/s)", lambda: str(log_uniform_int(rng, 2, 9000))),
            "mountain": ("Recorded ascents of {N}", "Ascents", lambda: str(rng.randint(1, 900))),
            "person": ("Works by {N}", "Work", lambda: f"''{rng.choice(T.WORK_ADJECTIVES)} {rng.choice(T.WORK_NOUNS)}''"),
            "company": ("Revenue of {N}", "Revenue (millions)", lambda: str(rng.randint(1, 9000))),
            "band": ("Albums by {N}", "Album", lambda: f"''{rng.choice(T.WORK_ADJECTIVES)} {rng.choice(T.WORK_NOUNS)}''"),
            "species": ("Population surveys of {N}", "Colonies counted", lambda: str(rng.randint(3, 400))),
        }[entity.kind]
        rows = ["{| class=\"wikitable sortable\"", "|+ " + self._sentence(heading, entity, generators),
                f"! Year !! {value_name}"]
        for year in years:
            rows += ["|-", f"| {year} || {make_value()}"]
        if targets and rng.random() < 0.4:
            rows += ["|-", f"| colspan=\"2\" | See also {self.link_markup(rng.choice(targets), rng)}"]
        rows.append("|}")
        return "\n".join(rows)

    def _other_entity(self, entity: Entity, targets: list[Entity], rng) -> Entity | None:
        excluded = {entity.index} | {t.index for t in targets}
        for _ in range(10):
            candidate = rng.randrange(self.num_docs)
            if candidate not in excluded:
                return self.entity(candidate)
        return None

    def _comment_trap(self, entity: Entity, targets: list[Entity], rng) -> str:
        other = self._other_entity(entity, targets, rng)
        if other is None:
            return "<!-- Please keep this section short. -->"
        return f"<!-- Do not link [[{other.title}]] here without discussing it on the talk page first.\n     Thanks! -->"

    def _extras(self, entity: Entity, targets: list[Entity], rng) -> str:
        """Red links and <nowiki> text, which look like links to naive extractors but are not edges."""
        sentences = []
        if rng.random() < 0.35:
            red = self.unused_name(rng)
            red_title = rng.choice((red, f"{red} River", f"Mount {red}"))
            sentences.append(_capitalize(f"{entity.mention} is sometimes confused with [[{red_title}]], about which little is known."))
        if rng.random() < 0.05:
            other = self._other_entity(entity, targets, rng)
            if other is not None:
                sentences.append(f"Old catalogues write the name as <nowiki>[[{other.title}]]</nowiki> by mistake.")
        return " ".join(sentences)

    def _footer(self, entity: Entity, targets: list[Entity], refs: "_RefMaker", rng) -> list[str]:
        facts = entity.facts
        footer = []
        see_also = [f"* {self.link_markup(t, rng)}" for t in rng.sample(targets, k=min(len(targets), rng.randint(0, 3)))]
        if self.has_disambiguation(entity.index) and rng.random() < 0.7:
            see_also.append(f"* [[{entity.name} (disambiguation)]]")
        if rng.random() < 0.1:
            see_also.append(f"* [[:Category:{T.CATEGORY_PATTERNS[entity.kind][0].format_map(facts)}]]")
        if see_also:
            footer.append("== See also ==\n" + "\n".join(see_also))
        footer.append("== References ==\n{{Reflist}}" + ("\n\n== Further reading ==\n" + refs.further_reading() if rng.random() < 0.3 else ""))
        if rng.random() < 0.5:
            footer.append(f"== External links ==\n* [https://www.example.org/wiki/{entity.title.replace(' ', '_')} Official website]\n* {{{{Commons category|{entity.title}}}}}")
        tail = []
        if entity.kind == "person":
            tail.append(f"{{{{DEFAULTSORT:{entity.name}, {facts['given']}}}}}")
        tail += [f"[[Category:{c.format_map(facts)}]]" for c in T.CATEGORY_PATTERNS[entity.kind]]
        tail += [f"[[{code}:{entity.name}{ending}]]" for code, ending in rng.sample(T.LANGUAGES, k=rng.randint(0, 3))]
        footer.append("\n".join(tail))
        return footer

    # ---------------------------------------------------------------------- the other pages
    def redirects(self, index: int) -> list[Page]:
        entity = self.entity(index)
        pages = []
        for offset, alias in enumerate(entity.aliases, start=1):
            rng = keyed_rng(self.seed, "wiki-redirect", index, offset)
            keyword = rng.choice(("#REDIRECT", "#REDIRECT", "#redirect"))
            reason = rng.choice(("R from alternative name", "R from short name", "R from modification"))
            text = f"{keyword} [[{entity.title}]]\n\n{{{{Redirect category shell|\n{{{{{reason}}}}}\n}}}}"
            pages.append(Page(article_page_id(index) + offset, 0, alias, text, "redirect", redirect=entity.title, entity=entity))
        return pages

    def disambiguation(self, index: int) -> Page | None:
        if not self.has_disambiguation(index):
            return None
        entity = self.entity(index)
        rng = keyed_rng(self.seed, "wiki-disambiguation-text", index)
        entries = [f"* [[{entity.title}]], {rng.choice(T.APPOSITIVES[entity.kind]).format_map(entity.facts)}"]
        for _ in range(rng.randint(1, 3)):
            other = self.entity(rng.randrange(self.num_docs))
            if other.index != index:
                entries.append(f"* [[{other.title}]], {rng.choice(T.APPOSITIVES[other.kind]).format_map(other.facts)}, sometimes called {entity.name}")
        entries.append(f"* [[{entity.name} Foundry (1850s)]], a defunct workshop")
        entries = [_A_BEFORE_VOWEL.sub(r"\1n ", entry) for entry in entries]
        text = (f"'''{entity.name}''' may refer to:\n\n" + "\n".join(entries)
                + f"\n\n== See also ==\n* {{{{lookfrom|{entity.name}}}}}\n\n{{{{disambiguation}}}}")
        return Page(article_page_id(index) + IDS_PER_ENTITY - 1, 0, f"{entity.name} (disambiguation)", text,
                    "disambiguation", entity=entity)

    def special_pages(self) -> list[Page]:
        """Pages outside the main namespace, as every real dump has."""
        popular = [self.entity(self.graph.popular(rank)) for rank in range(min(3, self.num_docs))]
        about = (f"'''{SITE_NAME}''' is a synthetic encyclopedia generated for testing.\n\n"
                 "Popular articles include " + ", ".join(f"[[{e.title}]]" for e in popular) + ".\n\n"
                 "[[Category:Project pages]]")
        template = ("{| class=\"infobox\"\n|-\n! {{{name|{{PAGENAME}}}}}\n|-\n| Length || {{{length|}}}\n|}"
                    "<noinclude>\n{{Documentation}}\n[[Category:Infobox templates]]\n</noinclude>")
        category = "Rivers of the synthetic world.\n\n{{Commons category|Rivers}}\n[[Category:Geography]]"
        return [Page(1, 4, PROJECT_PAGE_TITLE, about, "project"),
                Page(2, 10, "Template:Infobox river", template, "template"),
                Page(3, 14, "Category:Rivers", category, "category")]


class _RefMaker:
    """Footnotes: named ``<ref>`` with ``{{cite web}}``/``{{cite book}}``, reused as ``<ref name=x/>``."""

    def __init__(self, world: WikiWorld, entity: Entity, rng) -> None:
        self.world, self.entity, self.rng = world, entity, rng
        self.names: list[str] = []

    def _citation(self) -> str:
        rng, entity = self.rng, self.entity
        start, end = entity.facts["era"]
        year = rng.randint(max(1900, start), max(max(1900, start), end))
        slug = entity.title.replace(" ", "_")
        if rng.random() < 0.6:
            return (f"{{{{cite web |url=https://www.example.org/{slug}?page={rng.randint(1, 99)}&lang=en "
                    f"|title={entity.title}: a survey |website={self.world.organisation(rng)} "
                    f"|access-date={rng.randint(1, 28)} {rng.choice(T.MONTHS)} {rng.randint(2012, LAST_YEAR)}}}}}")
        author = self.world.side_person(rng).split()
        return (f"{{{{cite book |last={author[-1]} |first={author[0]} |title=A History of {entity.name} "
                f"|publisher={self.world.organisation(rng)} Press |year={year} |page={rng.randint(3, 400)}}}}}")

    def ref(self) -> str:
        rng = self.rng
        quoted = rng.random() < 0.6  # real pages write both name="x" and name=x
        if self.names and rng.random() < 0.3:
            name = rng.choice(self.names)
            return f"<ref name=\"{name}\" />" if quoted else f"<ref name={name}/>"
        if rng.random() < 0.5:
            name = f"{self.entity.name.lower()}{len(self.names) + 1}"
            self.names.append(name)
            return f"<ref name=\"{name}\">{self._citation()}</ref>" if quoted else f"<ref name={name}>{self._citation()}</ref>"
        return f"<ref>{self._citation()}</ref>"

    def further_reading(self) -> str:
        return "\n".join(f"* {self._citation()}" for _ in range(self.rng.randint(1, 3)))

    def sprinkle(self, sentences: list[str], paragraph_size: tuple[int, int], subheadings: bool = False) -> str:
        """Group sentences into paragraphs, with footnotes, the odd maintenance template, an
        occasional bulleted list and level-3 subheading."""
        rng = self.rng
        paragraphs: list[list[str]] = [[]]
        size = rng.randint(*paragraph_size)
        for sentence in sentences:
            if rng.random() < 0.18:
                sentence += self.ref()
            elif rng.random() < 0.02:
                sentence += f"{{{{citation needed|date={rng.choice(T.MONTHS)} {rng.randint(2012, LAST_YEAR)}}}}}"
            if len(paragraphs[-1]) >= size:
                paragraphs.append([])
                size = rng.randint(*paragraph_size)
            paragraphs[-1].append(sentence)
        blocks = [" ".join(p) for p in paragraphs]
        if len(paragraphs) > 2 and rng.random() < 0.15:
            blocks[-1] = "\n".join(("* " if rng.random() < 0.7 else "# ") + s for s in paragraphs[-1])
        if subheadings and len(blocks) > 1:
            blocks.insert(1, f"=== {rng.choice(('Early period', 'Modern period', 'Recent developments', 'Overview'))} ===")
        return "\n\n".join(blocks)
