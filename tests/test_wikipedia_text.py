"""Wikitext cleaning and MediaWiki title normalisation (pipeline.sources.wikitext)."""

import re

import pytest

from linkbert.pipeline.edges.titles import SiteInfo, normalize_title
from linkbert.pipeline.sources.wikidump import RawPage, WorkUnit, read_pages
from linkbert.pipeline.sources.wikitext import WikitextCleaner, WikitextError, clean_wikitext, is_disambiguation

ENWIKI = "wikipedia/enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2"
TABLES = "wikipedia/enwiki-table-markup.xml.bz2"
BGWIKI = "wikipedia/bgwiki-latest-pages-articles-shortened.xml.bz2"
LEFTOVER_MARKUP = re.compile(r"\{\{|\}\}|\[\[|\]\]|<ref|\{\||\|\}")


def clean(wikitext, **kwargs):
    return clean_wikitext(wikitext, **kwargs)


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("foo_bar", "Foo bar"),
        ("  foo   bar  ", "Foo bar"),
        ("Foo#History", "Foo"),
        (":Foo", "Foo"),
        ("AT&amp;T", "AT&T"),
        ("Caf%C3%A9", "Café"),
        ("100%", "100%"),
        ("foo\u00a0bar", "Foo bar"),
        ("\u200efoo", "Foo"),
        ("ßeta", "ßeta"),  # upper case of ß is two letters: MediaWiki leaves it
        ("éclair", "Éclair"),
    ],
)
def test_normalize_title(raw, expected):
    assert normalize_title(raw) == expected


def test_normalize_title_keeps_case_on_case_sensitive_sites():
    assert normalize_title("iPhone_4", first_letter_case=False) == "iPhone 4"
    site = SiteInfo.from_namespaces([(0, "", "case-sensitive"), (4, "Wiktionary", "case-sensitive")], "case-sensitive")
    assert site.normalize("iPhone") == "iPhone"
    assert site.normalize("wiktionary:about") == "Wiktionary:about"


def test_site_normalize_canonicalises_namespace_prefix():
    site = SiteInfo.from_namespaces([(4, "Wikipedia", "first-letter"), (14, "Category", "first-letter")])
    assert site.normalize("wikipedia:village_pump") == "Wikipedia:Village pump"
    assert site.normalize("project: village pump") == "Wikipedia:Village pump"
    assert site.normalize("Star Wars: Episode IV") == "Star Wars: Episode IV"


def test_prose_headings_lists_and_empty_sections():
    page = clean(
        "Intro with '''bold''' and ''italic''.\n\n"
        "== History ==\nSome history.\n* first item\n# second item\n; term : definition\n"
        "== See also ==\n{{Portal|Science}}\n"
        "== References ==\n{{Reflist}}\n"
    )
    assert page.text == (
        "Intro with bold and italic.\n\nHistory\n\nSome history.\nfirst item\nsecond item\nterm definition"
    )


def test_links_anchor_text_and_outlinks():
    page = clean(
        "The [[Anarchism|anarchist]] movement and [[mutual aid]]s, see [[Mutual_aid#Biology|aid]] "
        "and [[:Category:Politics]], [[wikt:polity|polity]], [[Foo (bar)|]]."
        "[[Category:Political ideologies]][[de:Anarchismus]]"
        "[[File:Flag.svg|thumb|A [[flag]] caption]] [[Image:X.png]] [[Media:Sound.ogg]]"
    )
    assert page.text == "The anarchist movement and mutual aids, see aid and Category:Politics, polity, Foo."
    assert page.outlinks == ["Anarchism", "Mutual aid", "Foo (bar)", "Flag"]  # the caption's link counts


def test_link_targets_with_entities_and_unclosed_html():
    page = clean("<p>[[AT&amp;T|The company]] and [[Caf&#233;]]<li>item <b>bold")
    assert page.text == "The company and Café\nitem bold"
    assert page.outlinks == ["AT&T", "Café"]


def test_outlinks_from_tables_and_dropped_templates_keep_page_order():
    page = clean(
        "{{Infobox person|birth_place=[[Paris]]|spouse=[[Jane Doe]]}}\n"
        "Born in [[Lyon]].\n"
        "{| class=wikitable\n|-\n| [[Marseille]] || 3\n|}\n"
        "Later [[Paris]] again.<ref>[[Oxford University Press]]</ref>"
    )
    assert page.text == "Born in Lyon.\n\nLater Paris again."
    assert page.outlinks == ["Paris", "Jane Doe", "Lyon", "Marseille"]


def test_kept_and_dropped_templates():
    page = clean(
        "Anarchy ({{lang-grc|ἀναρχία}}, {{lang|fr|anarchie}}) is {{convert|5|km|mi}} long"
        "{{citation needed|date=May 2020}} and {{nowrap|{{lang|de|sehr}} lang}}{{snd}}really."
        "{{Infobox|name=X}}{{#if:a|b|c}}"
    )
    assert page.text == "Anarchy (ἀναρχία, anarchie) is 5 km long and sehr lang – really."


def test_refs_math_comments_gallery_nowiki_magic_words_entities():
    page = clean(
        "__NOTOC__A claim.<ref name=\"a\">{{cite web|url=http://x}}</ref> Another<ref name=b/>."
        " Euler: <math>e^{i\\pi}+1=0</math>.<!-- hidden [[Link]] -->"
        "<gallery>\nFile:A.jpg|[[Caption]]\n</gallery>"
        " Literal <nowiki>[[not a link]] {{nor this}}</nowiki>; AT&amp;T &#8211; x&nbsp;y."
        " Bare http://example.com url and [http://example.com the title] and [http://example.com]."
    )
    assert page.text == (
        "A claim. Another. Euler:. Literal [[not a link]] {{nor this}}; AT&T – x y."
        " Bare url and the title and."
    )
    assert page.outlinks == []


def test_closing_tag_with_attributes_does_not_close_a_ref():
    # As in MediaWiki: "</ref name=...>" is not a closing tag, the ref runs on to the next "</ref>".
    page = clean('Text.<ref>{{Cite web|title = A</ref name"x"> b|url=http://x}}</ref> More.')
    assert page.text == "Text. More."


def test_unclosed_markup_degrades_to_text():
    page = clean("Before {{unclosed template [[Link]] after.\n\n{| broken table\nText below.")
    assert "Before" in page.text and "after." in page.text and "Text below." in page.text
    assert "{{" not in page.text and "{|" not in page.text
    assert page.outlinks == ["Link"]


def test_localised_namespaces_from_siteinfo():
    site = SiteInfo.from_namespaces([(6, "Файл", "first-letter"), (14, "Категория", "first-letter")])
    page = clean(
        "Текст [[Файл:Карта.png|мини|[[Надпис]]]] [[Картинка:Б.jpg|мини]] за [[София|града]]."
        "[[Категория:Градове]][[en:Sofia]]",
        site=site,
    )
    assert page.text == "Текст за града."
    assert page.outlinks == ["Надпис", "София"]


def test_namespaces_option_makes_project_links_outlinks():
    text = "See [[Wikipedia:village_pump|the pump]] and [[Paris]]."
    assert clean(text).outlinks == ["Paris"]
    assert clean(text, namespaces={0, 4}).outlinks == ["Wikipedia:Village pump", "Paris"]


def test_pathological_nesting_is_a_wikitext_error():
    deep = "{{nowrap|" * 1200 + "x" + "}}" * 1200
    with pytest.raises(WikitextError, match="nested too deeply"):
        WikitextCleaner().clean(deep)


def test_disambiguation_detection():
    assert is_disambiguation("Mercury", "'''Mercury''' may refer to:\n* ...\n{{disambiguation|geo}}")
    assert is_disambiguation("Aa River", "{{geodis}}")
    assert is_disambiguation("Foo (disambiguation)", "")
    assert not is_disambiguation("Mercury (planet)", "{{Infobox planet}} Mercury is a planet.")


def _pages(path):
    return [page for page in read_pages(WorkUnit(str(path))) if isinstance(page, RawPage)]


def _quality(pages):
    lines = []
    for page in pages:
        if page.namespace == 0 and page.redirect is None:
            lines += [line for line in WikitextCleaner(page.site).clean(page.text).text.split("\n") if line.strip()]
    bad = [line for line in lines if LEFTOVER_MARKUP.search(line)]
    return lines, bad


def test_quality_bar_on_enwiki_fragment(real_data):
    pages = _pages(real_data(ENWIKI))
    lines, bad = _quality(pages)
    assert len(lines) > 5000
    assert len(bad) / len(lines) < 0.002, bad[:10]
    anarchism = next(page for page in pages if page.title == "Anarchism")
    cleaned = WikitextCleaner(anarchism.site).clean(anarchism.text)
    assert cleaned.text.startswith("Anarchism is a political philosophy that advocates self-governed societies")
    assert "\n\nHistory\n\nOrigins\n\n" in cleaned.text
    assert cleaned.outlinks[:4] == ["Political philosophy", "Self-governance", "Stateless society", "Hierarchy"]
    assert len(cleaned.outlinks) == len(set(cleaned.outlinks))


def test_quality_bar_on_table_markup_pages(real_data):
    pages = _pages(real_data(TABLES))
    lines, bad = _quality(pages)
    assert len(pages) == 5 and len(lines) > 100
    assert len(bad) / len(lines) < 0.002, bad[:10]
    estonia = next(page for page in pages if page.title == "Economy of Estonia")
    cleaned = WikitextCleaner(estonia.site).clean(estonia.text)
    assert not re.search(r"^\s*[|!]", cleaned.text, re.M)  # no table rows or cells left


def test_utf16_bgwiki_article_is_clean_cyrillic(real_data):
    pages = _pages(real_data(BGWIKI))
    assert [(page.title, page.namespace) for page in pages][0] == ("Григориански календар", 0)
    article = pages[0]
    cleaned = WikitextCleaner(article.site).clean(article.text)
    assert cleaned.text.startswith("Григорианският календар")
    assert "Ð" not in cleaned.text and "\ufffd" not in cleaned.text  # no mojibake
    assert "Юлиански календар" in cleaned.outlinks
    assert not [link for link in cleaned.outlinks if ":" in link]
