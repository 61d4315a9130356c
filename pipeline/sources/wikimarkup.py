"""The wikitext pre-pass: a linear scan of the raw page that removes what never becomes prose
(comments, dropped extension tags, templates found by brace matching, wiki tables), keeping the text
of the inline templates of ``KEPT_TEMPLATES`` and the link targets inside dropped markup (marked
with ``LINKS_MARK`` at their place in the page)."""

from __future__ import annotations

import bisect
import re
from collections import deque

HTML_COMMENT = re.compile(r"<!--.*?(?:-->|\Z)", re.S)


MAGIC_WORD = re.compile(r"__[A-Z]{2,}(?:_[A-Z]+)*__")


# Extension and HTML tags dropped with their content.
DROPPED_TAGS = (
    "ref", "references", "math", "chem", "ce", "score", "timeline", "gallery", "graph", "mapframe",
    "maplink", "syntaxhighlight", "source", "pre", "templatedata", "templatestyles", "imagemap",
    "inputbox", "hiero", "categorytree", "includeonly", "section", "indicator", "charinsert",
    "dynamicpagelist", "talkpage", "rss", "phonos",
)


_TAG_NAMES = "|".join(DROPPED_TAGS) + "|nowiki"


# As MediaWiki matches extension tags: attributes never contain ">", and a closing tag takes none
# ("</ref name=x>" does not close a <ref>).
_DROPPED_TAG = re.compile(
    rf"<(?:/(?P<close>{_TAG_NAMES})\s*|(?P<open>{_TAG_NAMES})(?=[\s/>])[^>]*?(?P<selfclose>/?))>", re.I
)


# Inside <nowiki>, markup is literal: escaped here, decoded again by the walk's entity handling.
_NOWIKI_ESCAPES = str.maketrans({c: f"&#{ord(c)};" for c in "[]{}|<>'=~*#:;_"})


def strip_dropped_tags(text: str) -> str:
    """Remove DROPPED_TAGS spans in one linear scan; ``<nowiki>`` content becomes literal text.

    An opening tag that is never closed is removed alone (MediaWiki then shows what follows).
    """
    matches = list(_DROPPED_TAG.finditer(text))
    if not matches:
        return text
    last_close: dict[str, int] = {}
    for m in matches:
        if m["close"]:
            last_close[m["close"].lower()] = m.start()
    out = []
    position = 0
    open_name = None
    open_start = 0
    for m in matches:
        if open_name is not None:
            if m["close"] and m["close"].lower() == open_name:
                if open_name == "nowiki":
                    out.append(text[open_start:m.start()].translate(_NOWIKI_ESCAPES))
                position = m.end()
                open_name = None
            continue
        out.append(text[position:m.start()])
        position = m.end()
        name = m["open"]
        if name and not m["selfclose"] and last_close.get(name.lower(), -1) > m.start():
            open_name = name.lower()
            open_start = m.end()
    out.append(text[position:])
    return "".join(out)


LINKS_MARK = "\x01"  # not an XML character: marks where a dropped template's or table's links were


HEADING_MARK = "\x02"  # not an XML character: starts a heading line in the walk's output


_BRACES = re.compile(r"\{\{|\}\}")


_LINK_IN_MARKUP = re.compile(r"\[\[([^\[\]|{}<>\n]+)(?:\|[^\[\]]*)?\]\]")


_NAMED_PARAM = re.compile(r"\s*([^=|\[\]{}]+?)\s*=(?!=)")


_RANGE_WORDS = frozenset({"-", "–", "to", "and", "or", "by", "x", "×", "+/-", "±"})


def _convert(positional: list[str], named: dict[str, str]) -> str:
    """{{convert|5|km|mi}} -> "5 km"; {{convert|5|to|10|km}} -> "5 to 10 km"."""
    if not positional:
        return ""
    words = [positional[0].strip()]
    rest = positional[1:]
    while len(rest) >= 2 and rest[0].strip() in _RANGE_WORDS:
        words += [rest[0].strip(), rest[1].strip()]
        rest = rest[2:]
    if rest:
        words.append(rest[0].strip())
    return " ".join(words)


def _fraction(positional: list[str], named: dict[str, str]) -> str:
    parts = [p.strip() for p in positional]
    if len(parts) == 3:
        return f"{parts[0]} {parts[1]}/{parts[2]}"
    return "/".join(parts)


# Inline templates whose argument is prose: name (lower case) -> what renders: "first", "second" or
# "last" positional argument (or text=), a constant string, or a function(positional, named).
# Every "lang-xx" and "ipa-xx" template keeps its first argument too. All other templates are dropped.
KEPT_TEMPLATES: dict[str, object] = {
    "lang": "second", "transl": "last", "transliteration": "last", "script": "second",
    "ipa": "first", "nihongo": "first", "nowrap": "first", "nobr": "first", "nobreak": "first",
    "small": "first", "smaller": "first", "big": "first", "larger": "first", "em": "first",
    "strong": "first", "var": "first", "mvar": "first", "math": "first", "sub": "first", "sup": "first",
    "abbr": "first", "visible anchor": "first", "vanchor": "first", "not a typo": "first",
    "proper name": "first", "sic": "last", "smallcaps": "first", "sc": "first", "flag": "first",
    "keypress": "first", "code": "first", "mono": "first", "quote": "first", "blockquote": "first",
    "respell": "first", "convert": _convert, "cvt": _convert, "frac": _fraction, "sfrac": _fraction,
    "'": "'", "'s": "'s", "snd": " – ", "sndash": " – ", "spnd": " – ", "spaced ndash": " – ",
    "spaced en dash": " – ", "ndash": "–", "endash": "–", "mdash": "—", "emdash": "—", "mdashb": "—",
    "spaced mdash": " — ", "nbsp": " ", "thinsp": " ", "ensp": " ", "emsp": " ", "circa": "c.",
    "c.": "c.", "=": "=", "!": "|",
}


def _kept_template_text(name: str, body: str) -> str | None:
    """What a kept template renders as, or None when ``name`` is not kept."""
    rule = KEPT_TEMPLATES.get(name)
    if rule is None:
        if not (name.startswith("lang-") or name.startswith("ipa-")):
            return None
        rule = "first"
    if isinstance(rule, str) and rule not in ("first", "second", "last"):
        return rule
    params = _split_params(body)[1:]
    positional = []
    named = {}
    for param in params:
        m = _NAMED_PARAM.match(param)
        if m:
            named[m.group(1).lower()] = param[m.end():]
        else:
            positional.append(param)
    if callable(rule):
        return rule(positional, named)
    if rule == "first":
        return named.get("text", positional[0] if positional else "")
    if rule == "second":
        return named.get("text", positional[1] if len(positional) > 1 else "")
    return positional[-1] if positional else ""


_PARAM_SPLIT = re.compile(r"\[\[|\]\]|\{\{|\}\}|\|")


def _split_params(body: str) -> list[str]:
    """Split a template body on ``|`` outside nested ``[[...]]`` and ``{{...}}``."""
    parts = []
    depth = 0
    start = 0
    for m in _PARAM_SPLIT.finditer(body):
        token = m.group()
        if token == "|":
            if depth == 0:
                parts.append(body[start:m.start()])
                start = m.end()
        elif token[0] in "[{":
            depth += 1
        elif depth:
            depth -= 1
    parts.append(body[start:])
    return parts


def _outermost_pairs(opens_and_closes) -> tuple[list[tuple[int, int]], list[int]]:
    """Match (position, is_open) brackets with a stack -> (outermost (open, close) pairs in order,
    positions of unmatched openers outside every pair)."""
    stack: list[int] = []
    pairs: list[tuple[int, int]] = []
    for position, is_open in opens_and_closes:
        if is_open:
            stack.append(position)
        elif stack:
            pairs.append((stack.pop(), position))
    pairs.sort()
    outermost: list[tuple[int, int]] = []
    for start, end in pairs:
        if not outermost or start > outermost[-1][1]:
            outermost.append((start, end))
    starts = [start for start, _ in outermost]
    unmatched = []
    for position in stack:
        k = bisect.bisect_right(starts, position) - 1
        if k < 0 or position > outermost[k][1]:
            unmatched.append(position)
    return outermost, unmatched


def strip_templates(text: str, harvested: deque) -> str:
    """Remove ``{{...}}`` (nested). A kept template is replaced by its text; the link targets of a
    dropped one go to ``harvested`` and its place is marked by LINKS_MARK. An unclosed ``{{`` is
    literal text in MediaWiki; its two braces are dropped."""
    if "{{" not in text:
        return text
    pairs, unmatched = _outermost_pairs((m.start(), m.group() == "{{") for m in _BRACES.finditer(text))
    cuts = sorted([(start, end + 2, True) for start, end in pairs] + [(p, p + 2, False) for p in unmatched])
    out = []
    position = 0
    for start, end, is_template in cuts:
        out.append(text[position:start])
        if is_template:
            out.append(_replace_template(text[start + 2:end - 2], harvested))
        position = end
    out.append(text[position:])
    return "".join(out)


def _replace_template(body: str, harvested: deque) -> str:
    bar = body.find("|")
    name = (body if bar < 0 else body[:bar]).strip().replace("_", " ").lower()
    if name.startswith("template:"):
        name = name[9:].strip()
    kept = _kept_template_text(name, body)
    if kept is not None:
        return strip_templates(kept, harvested)
    return _harvest_links(body, harvested)


def _harvest_links(markup: str, harvested: deque) -> str:
    if "[[" in markup:
        links = _LINK_IN_MARKUP.findall(markup)
        if links:
            harvested.append(links)
            return LINKS_MARK
    return ""


_TABLE_EDGE = re.compile(r"^[ \t]*:*[ \t]*(\{\||\|\})", re.M)


def strip_tables(text: str, harvested: deque) -> str:
    """Remove wiki tables ``{| ... |}`` (nested; opened and closed at line starts), keeping their
    links. An unclosed ``{|`` loses its line only; stray cell lines are dropped on assembly."""
    pairs, unmatched = _outermost_pairs((m.start(1), m.group(1) == "{|") for m in _TABLE_EDGE.finditer(text))
    if not pairs and not unmatched:
        return text
    cuts = [(start, end + 2, True) for start, end in pairs]
    for p in unmatched:
        line_end = text.find("\n", p)
        cuts.append((p, len(text) if line_end < 0 else line_end, False))
    cuts.sort()
    out = []
    position = 0
    for start, end, is_table in cuts:
        out.append(text[position:start])
        if is_table:
            out.append(_harvest_links(text[start:end], harvested))
        position = end
    out.append(text[position:])
    return "".join(out)
