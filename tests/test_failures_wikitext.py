"""Wikipedia text quality on other wikis (issue 14): title magic words, local inline templates that
carry prose, the debris dropped templates leave, and local disambiguation pages."""

import re

from test_failures_wiki import HEADER, FOOTER, page
from test_wikipedia_read import run_read

from linkbert.pipeline.edges.titles import SiteInfo
from linkbert.pipeline.sources.wikidump import RawPage
from linkbert.pipeline.sources.wikipedia import page_outcome
from linkbert.pipeline.sources.wikitext import WikitextCleaner, clean_wikitext

DEBRIS = re.compile(r"\(\s*[;,]|[;,]\s*\)|\(\s*\)|,\s*,|(?:^|\s)'+(?:\s|$)")
SITE = SiteInfo.from_namespaces([(0, "", ""), (10, "Veidne", "")], "first-letter")


def outcome(title: str, text: str, templates=frozenset()):
    raw = RawPage("7", title, 0, text, None, "gen.xml", SITE)
    return page_outcome(raw, WikitextCleaner(SITE, {0}), {0}, False, templates)


def test_pagename_becomes_the_title():
    kind, document, _ = outcome("Baraks Obama", "'''{{PAGENAME}}''' ir [[ASV]] politiķis. {{FULLPAGENAME}} dzimis Havaju salās.")
    assert kind == "document"
    assert document["text"] == "Baraks Obama ir ASV politiķis. Baraks Obama dzimis Havaju salās."


def test_local_inline_template_keeps_its_prose_and_leaves_no_debris():
    text = ("'''Baraks Obama''' ({{Vol-en|Barack Obama}}; {{dzimšanas datums|1961|8|4}}) ir politiķis"
            "{{efn|Piezīme}}{{sfn|Autors|2001|p=4}}, ,{{cn}} un jurists ({{Vol-de|}}).\n"
            "{{Infobox cilvēks|vārds=Baraks}}\n{{Vol-en|Line start}} is not inside a sentence.")
    cleaned = clean_wikitext(text).text
    assert cleaned.startswith("Baraks Obama (Barack Obama) ir politiķis, un jurists.")
    assert "Piezīme" not in cleaned and "Autors" not in cleaned and "Line start" not in cleaned
    assert not [line for line in cleaned.splitlines() if DEBRIS.search(line)]


def test_disambiguation_by_magic_word_and_by_the_templates_the_dump_marks(tmp_path):
    assert outcome("Merkurs", "'''Merkurs''' var būt:\n* [[Merkurs (planēta)]]\n__DISAMBIG__")[2] == "disambiguation"
    pages = [
        page(1, "''Nozīmju atdalīšanas lapa.'' __DISAMBIG__", title="Veidne:Nozīmju atdalīšana", ns=10),
        page(2, "'''Venēra''' var būt:\n* [[Venēra (planēta)]]\n* [[Venēra (dieve)]]\n{{nozīmju atdalīšana}}",
             title="Venēra"),
        page(3, "'''Venēra (planēta)''' ir otrā planēta no Saules. " * 20, title="Venēra (planēta)"),
    ]
    dump = tmp_path / "lvwiki.xml"
    dump.write_text(HEADER + "".join(pages) + FOOTER, encoding="utf-8")
    result = run_read(tmp_path / "out", str(dump))
    assert [d["title"] for d in result["documents"]] == ["Venēra (planēta)"]
    assert result["counters"]["wikipedia.filtered.disambiguation"] == 1


def test_separators_left_by_several_dropped_templates_go_with_them():
    # the enwiki fragment's Asphalt and Adobe: pronunciations dropped one after another left "(, occasionally"
    text = ("'''Asphalt''' ({{IPAc-en|US|ˈ|æ|s}}, {{IPAc-en|UK|ˈ|æ}},<ref>Dictionary</ref> occasionally), also "
            "known as '''bitumen'''. '''Adobe''' ({{IPAc-en|US|ə}}, {{IPAc-en|UK|ə}};<ref>x</ref> {{IPA-es|aˈðoβe|lang}},"
            " from [[Spanish language|Spanish]]) is a material.")
    cleaned = clean_wikitext(text)
    assert cleaned.text == ("Asphalt (occasionally), also known as bitumen. Adobe (aˈðoβe, from Spanish) is a material.")
    assert [cleaned.text[start:end] for start, end, _ in cleaned.links] == ["Spanish"]
