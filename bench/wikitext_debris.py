"""Benchmark: markup debris in cleaned Wikipedia text, this checkout vs an earlier commit, same dumps, same run.

Every page of each dump is read (``read_pages``) and cleaned as ``ReadWikipedia`` cleans it
(``page_outcome``, with the disambiguation templates the dump marks when the code knows them); each
line of each document's text is then checked for the debris that dropped markup leaves:

* ``(;`` an opening parenthesis followed by ``;`` or ``,`` (``Baraks Obama (; 1961)``),
* ``( )`` empty parentheses,
* ``, ,`` doubled separators,
* ``'`` apostrophes standing alone (``'''{{PAGENAME}}'''`` read as ``'  — …``),
* ``[[``/``{{``/``]]``/``}}`` markup brackets left in the text.

The dumps: the shared enwiki fragment, enwiki-table-markup and bgwiki (UTF-16), and a generated
Latvian-style dump (seeded) with what other wikis do that enwiki does not: a local transliteration
template inside sentences (``({{Vol-en|Barack Obama}}; {{dzimšanas datums|1961|8|4}})``), articles
that open with ``'''{{PAGENAME}}'''``, and disambiguation pages marked by a local template whose own
page holds ``__DISAMBIG__`` (plus some with the magic word itself). For the generated dump it also
counts the disambiguation pages kept as documents and the documents that do not start with their
title.

The earlier commit (``--before``, default the main line before the issue-14 merge) is exported with
``git archive`` into a temporary directory and imported from there in its own interpreter; this
checkout is imported as installed. Last line:
``wikitext_debris: after=<debris lines> before=<debris lines> ratio=<after/before>`` (over all dumps).

    .venv/bin/python bench/wikitext_debris.py [--before e3d086e^1] [--data ../shared/data] [--docs 200]
"""

from __future__ import annotations

import argparse
import bz2
import inspect
import json
import os
import random
import re
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = {
    "enwiki": "wikipedia/enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2",
    "enwiki-tables": "wikipedia/enwiki-table-markup.xml.bz2",
    "bgwiki-utf16": "wikipedia/bgwiki-latest-pages-articles-shortened.xml.bz2",
}
DEBRIS = {
    "(;": re.compile(r"\(\s*[;,]"),
    "( )": re.compile(r"\(\s*\)"),
    ", ,": re.compile(r",\s*[,;]"),
    "dangling '": re.compile(r"(?:^|\s)'+(?=\s|$)"),
    "brackets": re.compile(r"\[\[|\]\]|\{\{|\}\}"),
}

GENERATED = "lvwiki-generated"
VOL_ARGUMENT = re.compile(r"\{\{Vol-\w+\|([^{}|]+)\}\}")

# --------------------------------------------------------------------------------------------
# The generated dump

NAMES = ["Baraks Obama", "Rīga", "Daugava", "Krišjānis Barons", "Gauja", "Venta", "Ventspils", "Liepāja", "Jelgava",
         "Rainis", "Aspazija", "Kuldīga", "Sigulda", "Cēsis", "Valmiera", "Talsi", "Tukums", "Bauska", "Dobele", "Madona"]
WORDS = ("upe pilsēta novads ezers mežs kalns ciems baznīca pils skola tilts iela muzejs teātris dzelzceļš osta "
         "lauks pļava dārzs valsts").split()
ENGLISH = ["Barack Obama", "Riga", "Daugava river", "Krisjanis Barons", "Gauja river", "Venta river", "Windau",
           "Libau", "Mitau", "Rainis", "Aspazija", "Goldingen", "Segewold", "Wenden", "Wolmar"]


def _sentence(rng: random.Random, links: list[str]) -> str:
    words = [rng.choice(WORDS) for _ in range(rng.randint(6, 14))]
    words[0] = words[0].capitalize()
    if rng.random() < 0.5:
        words.insert(rng.randint(1, len(words)), f"[[{rng.choice(links)}]]")
    if rng.random() < 0.45:  # the local transliteration template inside a sentence
        words.insert(rng.randint(1, len(words)), f"({{{{Vol-{rng.choice(['en', 'de'])}|{rng.choice(ENGLISH)}}}}})")
    if rng.random() < 0.2:
        words.append("{{sfn|Autors|2001|p=4}}")
    if rng.random() < 0.1:
        words.append("{{cn}}")
    return " ".join(words) + "."


def generated_dump(path: Path, docs: int, seed: int = 0) -> tuple[Path, set[str]]:
    """A Latvian-style dump with local templates; returns (path, titles of its disambiguation pages)."""
    rng = random.Random(seed)
    titles = [f"{rng.choice(NAMES)} {i}" for i in range(docs)]
    pages = [("Veidne:Nozīmju atdalīšana", 10, "''Šī ir nozīmju atdalīšanas lapa.'' __DISAMBIG__"),
             ("Veidne:Vol-en", 10, "<includeonly>{{{1}}}</includeonly>"),
             ("Veidne:Vol-de", 10, "<includeonly>{{{1}}}</includeonly>")]
    disambiguation = set()
    for i, title in enumerate(titles):
        if i % 10 == 9:
            disambiguation.add(title)
            marker = "{{nozīmju atdalīšana}}" if i % 20 == 9 else "__DISAMBIG__"
            body = f"'''{title}''' var būt:\n" + "".join(f"* [[{rng.choice(titles)}]]\n" for _ in range(3)) + marker
        else:
            born = (f"{{{{dzimšanas datums|19{rng.randint(10, 99)}|{rng.randint(1, 12)}|{rng.randint(1, 28)}}}}}"
                    if rng.random() < 0.5 else f"19{rng.randint(10, 99)}")  # a date template, or the year as text
            opening = f"'''{{{{PAGENAME}}}}''' ({{{{Vol-en|{rng.choice(ENGLISH)}}}}}; {born}) ir {rng.choice(WORDS)}."
            infobox = "{{Infobox cilvēks|vārds={{PAGENAME}}|attēls=x.jpg}}\n" if rng.random() < 0.5 else ""
            body = infobox + opening + " " + " ".join(_sentence(rng, titles) for _ in range(rng.randint(4, 10)))
            body += "\n\n== Vēsture ==\n" + " ".join(_sentence(rng, titles) for _ in range(rng.randint(3, 8)))
        pages.append((title, 0, body))
    xml = ['<mediawiki xmlns="http://www.mediawiki.org/xml/export-0.11/" version="0.11" xml:lang="lv">\n'
           "<siteinfo><sitename>Vikipēdija</sitename><case>first-letter</case><namespaces>"
           '<namespace key="0" case="first-letter" /><namespace key="10" case="first-letter">Veidne</namespace>'
           "</namespaces></siteinfo>\n"]
    escape = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
    for page_id, (title, ns, text) in enumerate(pages, start=1):
        text = "".join(escape.get(c, c) for c in text)
        xml.append(f"<page><title>{title}</title><ns>{ns}</ns><id>{page_id}</id><revision><id>{page_id + 1000}</id>"
                   f'<text xml:space="preserve">{text}</text></revision></page>\n')
    xml.append("</mediawiki>\n")
    path.write_bytes(bz2.compress("".join(xml).encode("utf-8")))
    return path, disambiguation


# --------------------------------------------------------------------------------------------
# One code version, in its own interpreter


def measure(dumps: dict[str, str], disambiguation: set[str]) -> dict:
    from linkbert.pipeline.sources import wikipedia, wikitext
    from linkbert.pipeline.sources.wikidump import RawPage, WorkUnit, read_pages

    try:
        from linkbert.pipeline.sources.wikimarkup import disambiguation_template_name
    except ImportError:  # code before the local-template rules
        disambiguation_template_name = None
    takes_templates = "disambiguation_templates" in inspect.signature(wikipedia.page_outcome).parameters
    results = {}
    for name, path in dumps.items():
        pages = [p for p in read_pages(WorkUnit(path)) if isinstance(p, RawPage)]
        templates = frozenset(t for p in pages if disambiguation_template_name
                              and (t := disambiguation_template_name(p.namespace, p.title, p.text)))
        counts = {kind: 0 for kind in DEBRIS} | {"documents": 0, "lines": 0, "debris_lines": 0,
                                                  "disambiguation_kept": 0, "not_starting_with_title": 0,
                                                  "vol_args": 0, "vol_args_kept": 0}
        examples = []
        for page in pages:
            cleaner = wikitext.WikitextCleaner(page.site, frozenset({0}))
            extra = {"disambiguation_templates": templates} if takes_templates else {}
            kind, record, _ = wikipedia.page_outcome(page, cleaner, frozenset({0}), False, **extra)
            if kind != "document":
                continue
            counts["documents"] += 1
            if name == GENERATED:  # its pages are known: disambiguation pages, and articles that open with the title
                counts["disambiguation_kept"] += page.title in disambiguation
                counts["not_starting_with_title"] += not record["text"].startswith(page.title)
            for argument in VOL_ARGUMENT.findall(page.text):  # the prose the local template carries
                counts["vol_args"] += 1
                counts["vol_args_kept"] += argument in record["text"]
            for line in record["text"].splitlines():
                if not line.strip():
                    continue
                counts["lines"] += 1
                found = [kind for kind, pattern in DEBRIS.items() if pattern.search(line)]
                for kind in found:
                    counts[kind] += 1
                if found:
                    counts["debris_lines"] += 1
                    if len(examples) < 3:
                        examples.append(line[:160])
        results[name] = {"counts": counts, "examples": examples}
    return results


def _run_version(tree: str | None, dumps: dict[str, str], disambiguation: set[str]) -> dict:
    env = dict(os.environ)
    if tree:
        env["PYTHONPATH"] = tree
    job = json.dumps({"dumps": dumps, "disambiguation": sorted(disambiguation)})
    result = subprocess.run([sys.executable, __file__, "--worker"], input=job, env=env, capture_output=True,
                            text=True, cwd=tempfile.gettempdir(), check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def _export(revision: str, directory: Path) -> str:
    """The package of ``revision`` importable as ``linkbert`` from the returned path."""
    source = directory / "src"
    source.mkdir()
    archive = subprocess.run(["git", "-C", str(REPO), "archive", revision, "linkbert", "pipeline", "schemas"],
                             capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(source)], input=archive, check=True)
    package = directory / "pkg" / "linkbert"
    package.parent.mkdir()
    (source / "linkbert").rename(package)
    for name in ("pipeline", "schemas"):
        (package / name).symlink_to(source / name)
    return str(package.parent)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", default="e3d086e^1", help="git revision to compare with (default: before the issue-14 merge)")
    parser.add_argument("--data", default=os.environ.get("LINKBERT_REAL_DATA", str(REPO.parent / "shared" / "data")),
                        help="the shared real data (default: $LINKBERT_REAL_DATA, else ../shared/data)")
    parser.add_argument("--docs", type=int, default=200, help="articles of the generated dump")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        job = json.loads(sys.stdin.read())
        print(json.dumps(measure(job["dumps"], set(job["disambiguation"]))))
        return
    with tempfile.TemporaryDirectory() as tmp:
        dumps = {name: str(Path(args.data) / relative) for name, relative in SHARED.items() if (Path(args.data) / relative).exists()}
        generated, disambiguation = generated_dump(Path(tmp) / "lvwiki-local-templates.xml.bz2", args.docs)
        dumps[GENERATED] = str(generated)
        before = _run_version(_export(args.before, Path(tmp)), dumps, disambiguation)
        after = _run_version(None, dumps, disambiguation)
    keys = ["documents", "lines", "debris_lines", *DEBRIS, "disambiguation_kept", "not_starting_with_title", "vol_args",
            "vol_args_kept"]
    print(f"{'dump':18} {'version':7} " + " ".join(f"{k:>12}" for k in keys))
    for name in dumps:
        for label, result in (("before", before), ("after", after)):
            counts = result[name]["counts"]
            print(f"{name:18} {label:7} " + " ".join(f"{counts[k]:>12}" for k in keys))
    for name in dumps:
        for label, result in (("before", before), ("after", after)):
            for line in result[name]["examples"]:
                print(f"  e.g. {name} {label}: {line!r}")
    total_before = sum(r["counts"]["debris_lines"] for r in before.values())
    total_after = sum(r["counts"]["debris_lines"] for r in after.values())
    ratio = total_after / total_before if total_before else float("nan")
    print(f"wikitext_debris: after={total_after} before={total_before} ratio={ratio:.3f}")


if __name__ == "__main__":
    main()
