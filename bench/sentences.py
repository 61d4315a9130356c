"""Benchmark: the sentence segmenter of ``pipeline/instances/segment.py`` (``sentencex``) vs ``pysbd``
and ``blingfire``, quality and speed, in the same run.

Quality: a set of tricky cases (abbreviations, initials, decimals, quotes and brackets after a full
stop, Latvian, Latgalian, Bulgarian, Russian and German abbreviations) with the expected sentences;
per tool, the cases segmented exactly and the precision / recall of its sentence boundaries.

Real text: the cleaned text of the shared enwiki fragment (the 106 articles the pipeline keeps),
segmented line by line as ``segment.sentence_spans`` does. Per tool: sentences, and *suspect
boundaries* — a boundary after a known abbreviation or a single-letter initial, or before a
lower-case letter — which are almost always false splits in encyclopedic English.

Speed: each tool segments every line of that text ``--runs`` times (alternating tools); the median
wall time gives MB/s and a ratio to sentencex. pysbd and blingfire are not dependencies of the
project: install them into the venv for this bench only (``.venv/bin/pip install pysbd blingfire``).

Last line: ``sentences: sentencex=<MB/s> pysbd=<MB/s> blingfire=<MB/s> exact=<a>/<b>/<c> of <n>``.

    .venv/bin/python bench/sentences.py [--dump PATH] [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("LINKBERT_REAL_DATA") or REPO.parent / "shared/data")
DEFAULT_DUMP = DATA / "wikipedia/enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2"

# (language, text, expected sentences)
CASES = [
    ("en", "Dr. Smith joined the U.S. Army in 1990. He left in 1995.",
     ["Dr. Smith joined the U.S. Army in 1990.", "He left in 1995."]),
    ("en", "J. R. R. Tolkien wrote The Hobbit. It was published in 1937.",
     ["J. R. R. Tolkien wrote The Hobbit.", "It was published in 1937."]),
    ("en", "The theory of A. Einstein changed physics. It is still taught.",
     ["The theory of A. Einstein changed physics.", "It is still taught."]),
    ("en", "The price rose by 3.5 percent in 2010. Analysts were surprised.",
     ["The price rose by 3.5 percent in 2010.", "Analysts were surprised."]),
    ("en", "The river is 5.5 km long. It then turns north.",
     ["The river is 5.5 km long.", "It then turns north."]),
    ("en", "She said “it is over.” The end came soon after.",
     ["She said “it is over.”", "The end came soon after."]),
    ("en", "He served abroad (mostly in France.) Then he left.",
     ["He served abroad (mostly in France.)", "Then he left."]),
    ("en", "\"Where are you?\" she asked. Nobody answered.",
     ["\"Where are you?\" she asked.", "Nobody answered."]),
    ("en", "Large cities, e.g. Paris and Rome, grew fast. Small towns did not.",
     ["Large cities, e.g. Paris and Rome, grew fast.", "Small towns did not."]),
    ("en", "See pp. 12–14 of vol. 3 for details. The rest is lost.",
     ["See pp. 12–14 of vol. 3 for details.", "The rest is lost."]),
    ("en", "Mr. and Mrs. Jones arrived on Monday. They stayed a week.",
     ["Mr. and Mrs. Jones arrived on Monday.", "They stayed a week."]),
    ("en", "The 2nd ed. appeared in 1999. It sold well.",
     ["The 2nd ed. appeared in 1999.", "It sold well."]),
    ("en", "Albedo (from Latin albedo, 'whiteness') is the fraction of light reflected. It ranges from 0 to 1.",
     ["Albedo (from Latin albedo, 'whiteness') is the fraction of light reflected.", "It ranges from 0 to 1."]),
    ("en", "St. Petersburg was founded c. 1703 by Peter I. It became the capital.",
     ["St. Petersburg was founded c. 1703 by Peter I.", "It became the capital."]),
    ("de", "Das ist z. B. ein Test. Er endet hier.", ["Das ist z. B. ein Test.", "Er endet hier."]),
    ("de", "Die Stadt hat ca. 5000 Einwohner. Sie liegt am Rhein.",
     ["Die Stadt hat ca. 5000 Einwohner.", "Sie liegt am Rhein."]),
    ("lv", "Rīga ir Latvijas galvaspilsēta. Tā atrodas pie Daugavas.",
     ["Rīga ir Latvijas galvaspilsēta.", "Tā atrodas pie Daugavas."]),
    ("lv", "Pilsētā ir daudz upju, piem. Daugava un Gauja. Tās ir garas.",
     ["Pilsētā ir daudz upju, piem. Daugava un Gauja.", "Tās ir garas."]),
    ("lv", "Kārlis Ulmanis dzimis 1877. g. Bērzmuižā. Viņš studēja Cīrihē.",
     ["Kārlis Ulmanis dzimis 1877. g. Bērzmuižā.", "Viņš studēja Cīrihē."]),
    ("ltg", "Rēzekne ir Latgolys golvysmīsts. Tymā dzeivoj daudzi ļaudis.",
     ["Rēzekne ir Latgolys golvysmīsts.", "Tymā dzeivoj daudzi ļaudis."]),
    ("ltg", "Ontons Kūrpnīks dzims 1900. g. Ludzā. Jis beja dzejnīks.",
     ["Ontons Kūrpnīks dzims 1900. g. Ludzā.", "Jis beja dzejnīks."]),
    ("bg", "София е столицата на България. Тя е най-големият град в страната.",
     ["София е столицата на България.", "Тя е най-големият град в страната."]),
    ("bg", "Градът е основан през 1879 г. от княз Александър. Той расте бързо.",
     ["Градът е основан през 1879 г. от княз Александър.", "Той расте бързо."]),
    ("bg", "Проф. Иванов е роден в Пловдив. Той е химик.",
     ["Проф. Иванов е роден в Пловдив.", "Той е химик."]),
    ("ru", "Население составляет 13 млн. человек. Город растёт.",
     ["Население составляет 13 млн. человек.", "Город растёт."]),
    ("ru", "А. С. Пушкин родился в Москве. Он был поэтом.",
     ["А. С. Пушкин родился в Москве.", "Он был поэтом."]),
]

_ABBREVIATIONS = {"dr", "mr", "mrs", "ms", "st", "jr", "sr", "no", "vol", "pp", "p", "ed", "eds", "inc", "ltd", "co",
                  "corp", "c", "ca", "e.g", "i.e", "vs", "etc", "approx", "fig", "u.s", "u.k", "gen", "col", "lt",
                  "prof", "rev", "jan", "feb", "mar", "apr", "aug", "sept", "oct", "nov", "dec", "mt", "ft"}
_LAST_WORD = re.compile(r"(\S+)\.\s*$")


def _pysbd_languages():
    import pysbd.languages

    return set(pysbd.languages.LANGUAGE_CODES)


def segmenters() -> dict:
    """name -> function(language, text) -> list of sentences."""
    import blingfire
    import pysbd
    import sentencex

    pysbd_codes = _pysbd_languages()
    cache = {}

    def with_pysbd(language, text):
        code = language if language in pysbd_codes else "en"
        if code not in cache:
            cache[code] = pysbd.Segmenter(language=code, clean=False)
        return cache[code].segment(text)

    return {
        "sentencex": lambda language, text: list(sentencex.segment(language, text)),
        "pysbd": with_pysbd,
        "blingfire": lambda language, text: blingfire.text_to_sentences(text).split("\n"),
    }


def _boundaries(sentences: list[str], text: str) -> set[int]:
    """Character offsets in ``text`` where a sentence after the first starts."""
    found, position = set(), 0
    for index, sentence in enumerate(s.strip() for s in sentences if s.strip()):
        start = text.find(sentence, position)
        if start < 0:  # the tool rewrote the text: locate by its first word
            start = text.find(sentence.split()[0], position)
        if start < 0:
            continue
        if index:
            found.add(start)
        position = start + 1
    return found


def quality(segment) -> dict:
    exact, true_positive, predicted, expected_total, failures = 0, 0, 0, 0, []
    for language, text, expected in CASES:
        got = [s.strip() for s in segment(language, text) if s.strip()]
        exact += got == expected
        if got != expected:
            failures.append(f"[{language}] {got}")
        predicted_set, expected_set = _boundaries(got, text), _boundaries(expected, text)
        true_positive += len(predicted_set & expected_set)
        predicted += len(predicted_set)
        expected_total += len(expected_set)
    return {"exact": exact, "cases": len(CASES), "precision": true_positive / max(predicted, 1),
            "recall": true_positive / max(expected_total, 1), "failures": failures}


def enwiki_lines(dump: str) -> list[str]:
    sys.path.insert(0, str(REPO))
    from linkbert.pipeline.sources.wikidump import RawPage, WorkUnit, read_pages
    from linkbert.pipeline.sources.wikipedia import page_outcome
    from linkbert.pipeline.sources.wikitext import WikitextCleaner

    lines, cleaner = [], None
    for page in read_pages(WorkUnit(dump)):
        if not isinstance(page, RawPage):
            raise SystemExit(f"unreadable part of {dump}: {page.detail}")
        if cleaner is None or cleaner.site is not page.site:
            cleaner = WikitextCleaner(page.site)
        kind, record, _ = page_outcome(page, cleaner, {0})
        if kind == "document":
            lines += [line for line in record["text"].split("\n") if line.strip()]
    return lines


def suspect_boundaries(sentences: list[str]) -> int:
    """Boundaries after an abbreviation or an initial, or before a lower-case letter."""
    suspects = 0
    for before, after in zip(sentences, sentences[1:]):
        before, after = before.strip(), after.strip()
        match = _LAST_WORD.search(before)
        word = match.group(1).lower().lstrip("(\"'“") if match else ""
        if word in _ABBREVIATIONS or (len(word) == 1 and word.isalpha()) or (after[:1].islower()):
            suspects += 1
    return suspects


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dump", default=str(DEFAULT_DUMP))
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    tools = segmenters()
    lines = enwiki_lines(args.dump)
    megabytes = sum(len(line.encode("utf-8")) for line in lines) / 1e6
    print(f"enwiki fragment: {len(lines):,} non-empty lines, {megabytes:.2f} MB of cleaned text")

    times = {name: [] for name in tools}
    for _ in range(args.runs):
        for name, segment in tools.items():
            started = time.perf_counter()
            for line in lines:
                segment("en", line)
            times[name].append(time.perf_counter() - started)
    speed = {name: megabytes / statistics.median(values) for name, values in times.items()}

    results = {}
    for name, segment in tools.items():
        sentences = 0
        suspects = 0
        for line in lines:
            parts = [s for s in segment("en", line) if s.strip()]
            sentences += len(parts)
            suspects += suspect_boundaries(parts)
        results[name] = {**quality(segment), "sentences": sentences, "suspects": suspects}

    print(f"{'tool':10s} {'exact':>8s} {'prec':>6s} {'recall':>6s} {'enwiki sentences':>17s} {'suspect':>8s} "
          f"{'MB/s':>7s} {'vs sentencex':>12s}")
    for name, result in results.items():
        print(f"{name:10s} {result['exact']:>3d}/{result['cases']:<4d} {result['precision']:6.3f} {result['recall']:6.3f} "
              f"{result['sentences']:17,d} {result['suspects']:8,d} {speed[name]:7.2f} "
              f"{speed[name] / speed['sentencex']:12.3f}")
    for name, result in results.items():
        for failure in result["failures"]:
            print(f"  {name} missed: {failure}")
    print("sentences: " + " ".join(f"{name}={speed[name]:.2f}" for name in tools)
          + " exact=" + "/".join(str(results[name]["exact"]) for name in tools) + f" of {len(CASES)}")


if __name__ == "__main__":
    main()
