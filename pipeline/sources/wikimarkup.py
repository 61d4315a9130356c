"""The wikitext pre-pass: a linear scan of the raw page that removes what never becomes prose
(comments, dropped extension tags, templates found by brace matching, wiki tables), keeping the text
of the inline templates of ``KEPT_TEMPLATES`` and the link targets inside dropped markup (marked
with ``LINKS_MARK`` at their place in the page).

Rules for wikis whose local templates this module cannot know:

* an unknown template *inside a sentence* (words before it on its line, no line break in it) with a
  single short prose argument renders that argument ("Baraks Obama ({{Vol-en|Barack Obama}}; ...)" ->
  "Baraks Obama (Barack Obama)"); footnote, citation, anchor and maintenance templates
  (``_NOT_PROSE_PREFIXES``, names ending in ``fn``/``note``) never do;
* what dropped templates leave is cleaned: "(; " -> "(", "( )" and "; )" go, ", ," -> ",", and empty
  bold/italic quote runs go;
* ``[[`` and ``]]`` that pair with nothing are dropped (markup debris, never prose);
* ``{{PAGENAME}}`` and its kin become the page title (``expand_title_magic_words``);
* disambiguation pages are recognised by ``__DISAMBIG__`` and by the templates the dump itself marks:
  a Template-namespace page holding ``__DISAMBIG__`` (as the Disambiguator extension has each wiki's
  disambiguation templates do) names a disambiguation template (``disambiguation_template_name``).
"""


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
    if "{{" in text:
        pairs, unmatched = _outermost_pairs((m.start(), m.group() == "{{") for m in _BRACES.finditer(text))
        cuts = sorted([(start, end + 2, True) for start, end in pairs] + [(p, p + 2, False) for p in unmatched])
        out = []
        position = 0
        for start, end, is_template in cuts:
            out.append(text[position:start])
            if is_template:
                out.append(_replace_template(text[start + 2:end - 2], harvested, _in_sentence(text, start, end)))
            position = end
        out.append(text[position:])
        text = _clean_debris("".join(out))
    if "[[" in text or "]]" in text:
        text = strip_unmatched_link_brackets(text)
    return text


def _in_sentence(text: str, start: int, end: int) -> bool:
    """Whether the template at [start, end) sits inside a line of prose: words before it on its line,
    no line break inside it, and not in a table cell, a parameter or another template."""
    line_start = text.rfind("\n", 0, start) + 1
    before = text[line_start:start].rstrip()
    return bool(before) and before[-1] not in "|=!{}*#:;" and "\n" not in text[start:end] and before[0] not in "|!{"


# Templates that sit inside sentences but render no prose of their argument (footnotes, anchors,
# citations, maintenance tags); an unknown one with a single prose argument renders that argument.
_NOT_PROSE_PREFIXES = ("cite", "citation", "sfn", "harv", "efn", "refn", "ref", "note", "anchor", "cn", "fact",
                       "clarify", "dead link", "flagicon", "audio", "listen", "coord", "abbrlink", "rp", "r",
                       "main", "see", "further", "portal", "commons", "wikt", "defaultsort", "dts", "sort",
                       "as of", "isbn", "doi", "pmid", "issn", "oclc", "update", "dubious", "verify", "failed",
                       "better source", "page needed", "when", "who", "which", "according to whom", "by whom")
_PROSE_ARGUMENT = re.compile(r"^[^=<>{}\[\]|]{1,80}$")
_LETTER = re.compile(r"[^\W\d_]")


def _inline_template_text(name: str, body: str) -> str | None:
    """The text of an unknown template inside a sentence: its only argument, when that is short prose."""
    if name.endswith(("fn", "note", "notes")) or any(name == p or name.startswith((p + " ", p + "-"))
                                                     for p in _NOT_PROSE_PREFIXES):
        return None
    params = _split_params(body)[1:]
    if len(params) != 1 or _NAMED_PARAM.match(params[0]):
        return None
    argument = params[0].strip()
    if not _PROSE_ARGUMENT.match(argument) or not _LETTER.search(argument) or "://" in argument:
        return None
    return argument


# What dropped templates leave behind: "(; 1961)", "( )", ", ," and empty bold/italic quotes. LINKS_MARK
# characters (where dropped links were) stay in place.
_NOT_MARKS = str.maketrans("", "", " ;,(")
_DEBRIS = (
    (re.compile(r"\([ \x01]*(?:[;,][ \x01]*)+"), lambda m: "(" + m.group().translate(_NOT_MARKS)),
    (re.compile(r" ?\((?P<marks>[ \x01]*)\)"), lambda m: m.group("marks").replace(" ", "")),
    (re.compile(r"(?P<marks>[\x01]*), *(?=[,;.])"), r"\g<marks>"),
    (re.compile(r" *[;,](?P<marks>[ \x01]*)\)"), lambda m: m.group("marks").replace(" ", "") + ")"),
)
_EMPTY_QUOTES = re.compile(r"(?<!')(?:'{6}|'{4}|'{10})(?!')")


def _clean_debris(text: str) -> str:
    if "(" in text or "," in text:
        for pattern, replacement in _DEBRIS:
            text = pattern.sub(replacement, text)
    return _EMPTY_QUOTES.sub("", text) if "''''" in text else text


_LINK_BRACKETS = re.compile(r"\[\[|\]\]")


def strip_unmatched_link_brackets(text: str) -> str:
    """Drop ``[[`` and ``]]`` that pair with nothing: MediaWiki shows them literally, but they are markup
    debris, never prose (50,000 unclosed ``[[`` once made 30% of a corpus's segments)."""
    stack: list[int] = []
    unmatched: list[int] = []
    for m in _LINK_BRACKETS.finditer(text):
        if m.group() == "[[":
            stack.append(m.start())
        elif stack:
            stack.pop()
        else:
            unmatched.append(m.start())
    unmatched += stack
    if not unmatched:
        return text
    out = []
    position = 0
    for start in sorted(unmatched):
        out.append(text[position:start])
        position = start + 2
    out.append(text[position:])
    return "".join(out)


# Magic words that render the page's own title (on an article, FULLPAGENAME is the title too).
_TITLE_MAGIC = re.compile(r"\{\{\s*(?:FULL|BASE|SUB|ROOT|ARTICLE)?PAGENAMEE?\s*(?::[^{}]*)?\}\}")
DISAMBIGUATION_MAGIC = "__DISAMBIG__"


def expand_title_magic_words(wikitext: str, title: str) -> str:
    """``{{PAGENAME}}`` and its kin -> ``title`` (dropped, ``'''{{PAGENAME}}'''`` left a dangling quote)."""
    if "PAGENAME" not in wikitext:
        return wikitext
    return _TITLE_MAGIC.sub(lambda _: title, wikitext)


_TEMPLATE_NAME = re.compile(r"\{\{\s*(?:[Tt]emplate\s*:\s*)?([^{}|#:\n]+?)\s*(?:\||\}\})")


def template_names_used(wikitext: str) -> set[str]:
    """Names of the templates a page uses, normalised as titles (first letter upper case, ``_`` = space)."""
    names = set()
    for m in _TEMPLATE_NAME.finditer(wikitext):
        name = " ".join(m.group(1).replace("_", " ").split())
        if name:
            names.add(name[0].upper() + name[1:])
    return names


def _replace_template(body: str, harvested: deque, in_sentence: bool = False) -> str:
    bar = body.find("|")
    name = (body if bar < 0 else body[:bar]).strip().replace("_", " ").lower()
    if name.startswith("template:"):
        name = name[9:].strip()
    kept = _kept_template_text(name, body)
    if kept is None and in_sentence:
        kept = _inline_template_text(name, body)
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


NS_TEMPLATE = 10


def disambiguation_template_name(namespace: int, title: str, wikitext: str) -> str | None:
    """A template page that marks its pages as disambiguation pages (it holds ``__DISAMBIG__``, as the
    Disambiguator extension has each wiki's disambiguation templates do) -> its name without namespace."""
    if namespace != NS_TEMPLATE or DISAMBIGUATION_MAGIC not in wikitext:
        return None
    name = " ".join(title.partition(":")[2].replace("_", " ").split())
    return name[0].upper() + name[1:] if name else None


def marks_disambiguation(wikitext: str, templates: frozenset[str] = frozenset()) -> bool:
    """``__DISAMBIG__`` on the page, or a template the dump marks as disambiguation."""
    return DISAMBIGUATION_MAGIC in wikitext or bool(templates and template_names_used(wikitext) & templates)
