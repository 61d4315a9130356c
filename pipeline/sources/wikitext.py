"""Wikitext -> clean text + out-link titles, with MediaWiki title normalisation.

``WikitextCleaner(site).clean(wikitext)`` is the page-parse stage of the Wikipedia source. It works
in two steps:

1. A linear pre-pass over the raw string removes what never becomes prose and is expensive to
   tokenize: HTML comments, extension tags whose content is dropped (``<ref>``, ``<math>``, ...; see
   ``DROPPED_TAGS``), every template (``{{...}}``, nested, found by brace matching) except the inline
   ones of ``KEPT_TEMPLATES``, which are replaced by their text argument, and wiki tables
   (``{| ... |}``). The link targets inside a dropped template or table are kept for the out-links
   (an infobox value is a link on the rendered page), at the template's place in the page.
2. mwparserfromhell's tokenizer parses the rest, and its token stream is walked directly: the
   library's tree builder costs four times the tokenizer (profiled on the enwiki fragment) and the
   walk needs none of the tree. Wikilinks, headings, list items, HTML tags and entities are resolved
   from the tokens.

Policy, as it applies to the text:

* kept: paragraph text, section headings (own line), list item text, the anchor text of links
  (``[[target|anchor]]``), the text of ``KEPT_TEMPLATES`` (``{{lang|fr|texte}}`` -> ``texte``,
  ``{{convert|5|km|mi}}`` -> ``5 km``), the content of formatting tags (``<sup>``, ``<span>``, ...),
  ``<nowiki>`` content as literal text, the title of bracketed external links;
* dropped: all other templates (infoboxes, navboxes, citations, hatnotes, parser functions), tables,
  ``<ref>`` with its content, ``<math>`` (no placeholder: the formula is removed from the sentence),
  ``<gallery>``, ``<pre>`` and code blocks, File/Image/Media links with their captions (any localised
  or alias namespace name), Category links, interlanguage links, magic words (``__TOC__``), HTML
  comments, bare URLs, bold/italic quotes, and section headings whose section ends up empty.

Out-links: article wikilink targets in order of first appearance, deduplicated, normalised as
MediaWiki does (``normalize_title``): every link the rendered article shows (prose, lists, tables,
image captions, infoboxes and other templates' arguments) except footnotes (``<ref>``) and
galleries; never namespace, interwiki or language links.
"""

from __future__ import annotations

import bisect
import html
import re
from collections import deque
from dataclasses import dataclass, field
from urllib.parse import unquote

from mwparserfromhell.parser import ParserError
from mwparserfromhell.parser import tokens as T

try:  # the C tokenizer; the pure-Python one is the library's own fallback
    from mwparserfromhell.parser._tokenizer import CTokenizer as _Tokenizer
except ImportError:  # pragma: no cover - wheels ship the C extension
    from mwparserfromhell.parser.tokenizer import Tokenizer as _Tokenizer

__all__ = [
    "CleanPage",
    "DROPPED_TAGS",
    "KEPT_TEMPLATES",
    "SiteInfo",
    "WikitextCleaner",
    "WikitextError",
    "clean_wikitext",
    "is_disambiguation",
    "is_valid_title",
    "normalize_title",
]


class WikitextError(ValueError):
    """The page's wikitext could not be parsed (the tokenizer failed or recursed too deep)."""


# --------------------------------------------------------------------------------------------
# Site information: namespaces and case, from <siteinfo>, plus MediaWiki's built-in names.

# Canonical English namespace names and aliases that every MediaWiki accepts, whatever its language.
_CANONICAL_NAMESPACES = {
    "media": -2, "special": -1, "talk": 1, "user": 2, "user talk": 3, "project": 4, "project talk": 5,
    "file": 6, "file talk": 7, "image": 6, "image talk": 7, "mediawiki": 8, "mediawiki talk": 9,
    "template": 10, "template talk": 11, "help": 12, "help talk": 13, "category": 14, "category talk": 15,
    "portal": 100, "portal talk": 101, "book": 108, "book talk": 109, "draft": 118, "draft talk": 119,
    "timedtext": 710, "timedtext talk": 711, "module": 828, "module talk": 829,
}
# English Wikipedia's aliases; also the default when a dump has no <siteinfo>.
_ENWIKI_NAMESPACES = {"wikipedia": 4, "wikipedia talk": 5, "wp": 4, "wt": 5}
NS_MEDIA, NS_FILE, NS_CATEGORY = -2, 6, 14
_NOT_LINKS = (NS_FILE, NS_MEDIA, NS_CATEGORY)

# Wikimedia interwiki prefixes (visible links to other sites): anchor text kept, never an out-link.
_INTERWIKI_PREFIXES = frozenset(
    "w wikipedia wikt wiktionary q wikiquote b wikibooks s wikisource n wikinews v wikiversity voy "
    "wikivoyage species wikispecies c commons m meta metawikimedia metawikipedia mw mediawikiwiki d "
    "wikidata f wikifunctions foundation wmf wikimedia incubator outreach phab phabricator gerrit "
    "mail mailarchive testwiki betawikiversity wikitech toolforge translatewiki doi hdl rfc google "
    "arxiv bibcode issn jstor lccn oclc pmid imdbname imdbtitle iarchive oldwikisource sep11 wikia".split()
)

# Language editions of Wikipedia: ``[[fr:Titre]]`` is an interlanguage link, not shown in the text.
_LANGUAGE_CODES = frozenset(
    "aa ab ace ady af ak als alt am ami an ang anp ar arc ary arz as ast atj av avk awa ay az azb ba ban "
    "bar bat-smg bbc bcl bdr be be-tarask be-x-old bew bg bh bi bjn blk bm bn bo bpy br bs btm bug bxr "
    "ca cbk-zam cdo ce ceb ch cho chr chy ckb co cr crh cs csb cu cv cy da dag de dga din diq dsb dtp "
    "dty dv dz ee el eml en eo es et eu ext fa fat ff fi fiu-vro fj fo fon fr frp frr fur fy ga gag "
    "gan gcr gd gl glk gn gom gor got gpe gu guc gur guw gv ha hak haw he hi hif ho hr hsb ht hu hy "
    "hyw hz ia iba id ie ig igl ii ik ilo inh io is it iu ja jam jbo jv ka kaa kab kbd kbp kcg kg kge "
    "ki kj kk kl km kn knc ko koi kr krc ks ksh ku kus kv kw ky la lad lb lbe lez lfn lg li lij lld "
    "lmo ln lo lrc lt ltg lv mad mai map-bms mdf mg mh mhr mi min mk ml mn mni mnw mo mos mr mrj ms mt "
    "mus mwl my myv mzn na nah nan nap nds nds-nl ne new ng nia nl nn no nov nqo nr nrm nso nup nv ny "
    "oc olo om or os pa pag pam pap pcd pcm pdc pfl pi pih pl pms pnb pnt ps pt pwn qu rm rmy rn ro "
    "roa-rup roa-tara rsk ru rue rup rw sa sah sat sc scn sco sd se sg sh shi shn shy si simple sk skr "
    "sl sm smn sn so sq sr srn ss st stq su sv sw syl szl szy ta tay tcy tdd te tet tg th ti tig tk "
    "tl tly tn to tpi tr trv ts tt tum tw ty tyv udm ug uk ur uz ve vec vep vi vls vo vro wa war wo "
    "wuu xal xh xmf yi yo yue za zea zgh zh zh-classical zh-min-nan zh-yue zu".split()
)


@dataclass(frozen=True)
class SiteInfo:
    """What title handling needs from a dump's ``<siteinfo>``.

    ``namespaces`` maps a lower-cased namespace name (localised, canonical English, or alias) to its
    key; ``names`` gives each key's local name as dump titles spell it; ``case_sensitive`` holds the
    keys whose titles keep a lower-case first letter (``case="case-sensitive"``, e.g. Wiktionary).
    """

    namespaces: dict[str, int] = field(default_factory=lambda: {**_CANONICAL_NAMESPACES, **_ENWIKI_NAMESPACES})
    names: dict[int, str] = field(default_factory=lambda: {4: "Wikipedia", 5: "Wikipedia talk"})
    case_sensitive: frozenset[int] = frozenset()

    @classmethod
    def from_namespaces(cls, entries: list[tuple[int, str, str]], site_case: str = "first-letter") -> "SiteInfo":
        """``entries``: (key, local name, case) of each ``<namespace>`` in ``<siteinfo>``;
        ``site_case``: the text of ``<case>``."""
        namespaces = dict(_CANONICAL_NAMESPACES)
        names: dict[int, str] = {}
        sensitive = set()
        for key, name, case in entries:
            name = _collapse_spaces(name)
            if name:
                namespaces[name.lower()] = key
                names[key] = name
            if (case or site_case) == "case-sensitive":
                sensitive.add(key)
        if site_case == "case-sensitive" and not any(key == 0 for key, _, _ in entries):
            sensitive.add(0)
        return cls(namespaces, names, frozenset(sensitive))

    def first_letter_case(self, namespace: int = 0) -> bool:
        return namespace not in self.case_sensitive

    def namespace_of(self, prefix: str) -> int | None:
        """The key of a namespace name as written before a ``:`` (any case, ``_`` or spaces)."""
        return self.namespaces.get(_collapse_spaces(prefix).lower())

    def normalize(self, title: str) -> str:
        """Normalise a full title, namespace prefix included (``"wikipedia:foo_bar"`` -> ``"Wikipedia:Foo bar"``)."""
        title = normalize_title(title, first_letter_case=False)
        prefix, colon, rest = title.partition(":")
        namespace = self.namespace_of(prefix) if colon else None
        if not namespace:  # None or 0: an article title
            return _upper_first(title) if self.first_letter_case(0) else title
        rest = rest.lstrip(" ")
        if self.first_letter_case(namespace):
            rest = _upper_first(rest)
        return f"{self.names.get(namespace) or _canonical_name(namespace)}:{rest}"


def _canonical_name(namespace: int) -> str:
    for name, key in _CANONICAL_NAMESPACES.items():
        if key == namespace:
            return name[0].upper() + name[1:]
    return str(namespace)


DEFAULT_SITE = SiteInfo()


# --------------------------------------------------------------------------------------------
# Titles

_TITLE_SPACE_CHARS = "_\u00a0\u1680\u180e\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
_TITLE_SPACES = re.compile(f"[ {_TITLE_SPACE_CHARS}]+")
_BIDI_MARKS = re.compile("[\u200e\u200f\u202a-\u202e]")
# Characters MediaWiki never allows in a title (plus C0 controls and the replacement character).
_INVALID_TITLE_CHARS = re.compile(r"[<>\[\]{}|\x00-\x1f\x7f\ufffd]")
# A title needs more than strip + first letter if it has any of these.
_NEEDS_NORMALIZING = re.compile(f"[&%#:{_TITLE_SPACE_CHARS}\u200e\u200f\u202a-\u202e]|  ")


def _collapse_spaces(text: str) -> str:
    return _TITLE_SPACES.sub(" ", text).strip()


def _upper_first(title: str) -> str:
    if not title:
        return title
    first = title[0].upper()
    # MediaWiki keeps a first character whose upper case is longer (e.g. "ß" -> "SS").
    return (first if len(first) == 1 else title[0]) + title[1:]


def normalize_title(title: str, first_letter_case: bool = True) -> str:
    """Normalise a page title or link target as MediaWiki does.

    HTML entities and %-escapes are decoded, the ``#fragment`` is removed, underscores and runs of
    whitespace become one space, bidi marks and one leading ``:`` are removed, and the first letter
    is upper-cased unless ``first_letter_case`` is False (``<case>case-sensitive</case>`` sites).
    A namespace prefix is left as written (``SiteInfo.normalize`` canonicalises it).
    """
    title = title.strip()
    if _NEEDS_NORMALIZING.search(title):
        if "&" in title:
            title = html.unescape(title)
        if "%" in title:
            try:
                title = unquote(title, errors="strict")
            except UnicodeDecodeError:
                pass
        title = _collapse_spaces(_BIDI_MARKS.sub("", title.partition("#")[0]))
        if title.startswith(":"):
            title = title[1:].lstrip(" ")
    return _upper_first(title) if first_letter_case else title


def is_valid_title(title: str) -> bool:
    return bool(title) and not _INVALID_TITLE_CHARS.search(title)


# --------------------------------------------------------------------------------------------
# Pre-pass: comments, dropped extension tags, templates, tables

_COMMENT = re.compile(r"<!--.*?(?:-->|\Z)", re.S)
_MAGIC_WORD = re.compile(r"__[A-Z]{2,}(?:_[A-Z]+)*__")

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


def _strip_dropped_tags(text: str) -> str:
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
_HEADING_MARK = "\x02"  # not an XML character: starts a heading line in the walk's output
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


def _strip_templates(text: str, harvested: deque) -> str:
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
        return _strip_templates(kept, harvested)
    return _harvest_links(body, harvested)


def _harvest_links(markup: str, harvested: deque) -> str:
    if "[[" in markup:
        links = _LINK_IN_MARKUP.findall(markup)
        if links:
            harvested.append(links)
            return LINKS_MARK
    return ""


_TABLE_EDGE = re.compile(r"^[ \t]*:*[ \t]*(\{\||\|\})", re.M)


def _strip_tables(text: str, harvested: deque) -> str:
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


# --------------------------------------------------------------------------------------------
# Token walk

_Text = T.Text
_WikilinkOpen, _WikilinkSeparator, _WikilinkClose = T.WikilinkOpen, T.WikilinkSeparator, T.WikilinkClose
_TagOpenOpen, _TagCloseOpen, _TagCloseSelfclose = T.TagOpenOpen, T.TagCloseOpen, T.TagCloseSelfclose
_TagOpenClose, _TagCloseClose = T.TagOpenClose, T.TagCloseClose
_HeadingStart, _HeadingEnd = T.HeadingStart, T.HeadingEnd
_ExternalLinkOpen, _ExternalLinkSeparator, _ExternalLinkClose = (
    T.ExternalLinkOpen, T.ExternalLinkSeparator, T.ExternalLinkClose,
)
_HTMLEntityStart, _HTMLEntityEnd, _HTMLEntityNumeric = T.HTMLEntityStart, T.HTMLEntityEnd, T.HTMLEntityNumeric
_ENTITY_TOKENS = frozenset({T.HTMLEntityStart, T.HTMLEntityNumeric, T.HTMLEntityHex, T.HTMLEntityEnd})
# Constructs skipped whole (left over when the pre-pass met broken markup).
_SKIPPED = {T.TemplateOpen: T.TemplateClose, T.ArgumentOpen: T.ArgumentClose, T.CommentStart: T.CommentEnd}

# Tags whose content is not prose; an HTML <table> still gives its links.
_SKIPPED_TAGS = frozenset({"table", "style", "script", "caption", "noscript"} | set(DROPPED_TAGS))
_LINE_BREAK_TAGS = frozenset({"br", "p", "div", "li", "dd", "dt", "blockquote", "poem", "center", "tr", "ul", "ol", "dl"})
_PIPE_TRICK = re.compile(r"\s*\([^()]*\)\s*$")

# Link kinds
_ARTICLE, _VISIBLE, _HIDDEN, _FILE = 0, 1, 2, 3  # _FILE: hidden, but its caption's links count
_MEDIA_FILE = re.compile(r"\.(?:jpe?g|png|gif|svg|tiff?|webp|xcf|ogg|oga|ogv|webm|mp3|wav|flac|mid|pdf|djvu|stl)\s*$", re.I)


class _Walk:
    """One page's walk over the token list: text pieces out, out-link titles collected."""

    __slots__ = ("tokens", "classify", "out", "links", "harvested")

    def __init__(self, tokens, classify, harvested: deque):
        self.tokens = tokens
        self.classify = classify
        self.out: list[str] = []
        self.links: list[str] = []
        self.harvested = harvested

    def text(self, value: str) -> None:
        if LINKS_MARK in value:
            for _ in range(value.count(LINKS_MARK)):
                self.add_harvested()
            value = value.replace(LINKS_MARK, "")
        self.out.append(value)

    def add_harvested(self) -> None:
        if self.harvested:
            for target in self.harvested.popleft():
                self.link_target(target)

    def link_target(self, raw: str) -> None:
        kind, title = self.classify(raw)
        if kind == _ARTICLE:
            self.links.append(title)

    def wikilink(self, i: int, end: int) -> int:
        """Handle the wikilink opening at ``i``; returns the index after its close."""
        tokens = self.tokens
        depth = 1
        j = i + 1
        separator = -1
        simple_title = True
        entities = False
        while j < end:
            cls = tokens[j].__class__
            if cls is _WikilinkClose:
                depth -= 1
                if depth == 0:
                    break
            elif cls is _WikilinkOpen:
                depth += 1
            elif cls is _WikilinkSeparator:
                if depth == 1 and separator < 0:
                    separator = j
            elif cls is not _Text and separator < 0:
                if cls in _ENTITY_TOKENS:
                    entities = True
                else:
                    simple_title = False
            j += 1
        close = j
        title_end = separator if separator >= 0 else close
        if simple_title:
            if entities:  # [[AT&amp;T]]
                raw = self.plain(i + 1, title_end)
            else:
                raw = "".join([tok["text"] for tok in tokens[i + 1:title_end]])
            kind, title = self.classify(raw)
        else:  # a target built from other markup (a leftover template): shown, not followed
            raw = self.plain(i + 1, title_end)
            kind, title = _VISIBLE, ""
        if kind == _HIDDEN:
            return close + 1
        if kind == _FILE:
            if separator >= 0:
                self.links_only(separator + 1, close)
            return close + 1
        if kind == _ARTICLE:
            self.links.append(title)
        if separator < 0:
            self.text(raw.lstrip().removeprefix(":"))
        elif separator + 1 < close:
            self.walk(separator + 1, close)
        else:  # the pipe trick: [[Foo (bar)|]] shows "Foo"
            self.text(_PIPE_TRICK.sub("", raw.split(":", 1)[-1]).strip())
        return close + 1

    def plain(self, start: int, end: int) -> str:
        sub = _Walk(self.tokens, self.classify, deque())
        sub.walk(start, end)
        return "".join(sub.out)

    def tag(self, i: int, end: int) -> int:
        """Handle the tag opening at ``i``; returns the index after it and its content."""
        tokens = self.tokens
        name_token = tokens[i + 1] if i + 1 < end else None
        name = name_token["text"].strip().lower() if name_token.__class__ is _Text else ""
        j = i + 2
        while j < end:
            cls = tokens[j].__class__
            if cls is _TagCloseSelfclose:
                if name in _LINE_BREAK_TAGS and not tokens[i].get("wiki_markup"):
                    self.out.append("\n")
                return j + 1
            if cls is _TagCloseOpen:
                break
            j += 1
        content_start = j + 1
        content_end = end
        depth = 1
        k = content_start
        while k < end:
            cls = tokens[k].__class__
            if cls is _TagCloseOpen:
                depth += 1
            elif cls is _TagOpenClose and depth == 1:
                content_end = k
            elif cls is _TagCloseClose:
                depth -= 1
                if depth == 0:
                    break
            k += 1
        if name in _SKIPPED_TAGS:
            if name == "table":
                self.links_only(content_start, content_end)
        elif name in _LINE_BREAK_TAGS:
            self.out.append("\n")
            self.walk(content_start, content_end)
            self.out.append("\n")
        else:
            self.walk(content_start, content_end)
        return k + 1

    def links_only(self, start: int, end: int) -> None:
        """Collect the out-links of a range whose text is dropped (a table, a file caption)."""
        tokens = self.tokens
        for j in range(start, end):
            tok = tokens[j]
            cls = tok.__class__
            if cls is _WikilinkOpen:
                k = j + 1
                parts = []
                while k < end and tokens[k].__class__ is _Text:
                    parts.append(tokens[k]["text"])
                    k += 1
                if parts and k < end and tokens[k].__class__ in (_WikilinkSeparator, _WikilinkClose):
                    kind, title = self.classify("".join(parts))
                    if kind == _ARTICLE:
                        self.links.append(title)
            elif cls is _Text and LINKS_MARK in tok["text"]:
                for _ in range(tok["text"].count(LINKS_MARK)):
                    self.add_harvested()

    def walk(self, start: int, end: int) -> None:
        tokens = self.tokens
        out = self.out
        i = start
        while i < end:
            tok = tokens[i]
            cls = tok.__class__
            if cls is _Text:
                value = tok["text"]
                if LINKS_MARK in value:
                    self.text(value)
                else:
                    out.append(value)
                i += 1
            elif cls is _WikilinkOpen:
                i = self.wikilink(i, end)
            elif cls is _TagOpenOpen:
                i = self.tag(i, end)
            elif cls is _HTMLEntityStart:
                j = i + 1
                entity = ["&"]
                while j < end and tokens[j].__class__ is not _HTMLEntityEnd:
                    part = tokens[j]
                    if part.__class__ is _Text:
                        entity.append(part["text"])
                    elif part.__class__ is _HTMLEntityNumeric:
                        entity.append("#")
                    else:  # HTMLEntityHex
                        entity.append(part.get("char") or "x")
                    j += 1
                entity.append(";")
                out.append(html.unescape("".join(entity)))
                i = j + 1
            elif cls is _HeadingStart:
                j = i + 1
                while j < end and tokens[j].__class__ is not _HeadingEnd:
                    j += 1
                heading = _Walk(tokens, self.classify, self.harvested)
                heading.walk(i + 1, j)
                self.links.extend(heading.links)
                title = "".join(heading.out).replace("\n", " ").strip()
                out.append(f"\n{_HEADING_MARK}{tok.get('level') or 2} {title}\n")
                i = j + 1
            elif cls is _ExternalLinkOpen:
                j = i + 1
                separator = -1
                while j < end and tokens[j].__class__ is not _ExternalLinkClose:
                    if separator < 0 and tokens[j].__class__ is _ExternalLinkSeparator:
                        separator = j
                    j += 1
                if separator >= 0:  # [url title] shows the title; [url] and bare URLs are dropped
                    self.walk(separator + 1, j)
                i = j + 1
            elif cls in _SKIPPED:
                closer = _SKIPPED[cls]
                depth = 1
                j = i + 1
                while j < end:
                    c = tokens[j].__class__
                    if c is cls:
                        depth += 1
                    elif c is closer:
                        depth -= 1
                        if depth == 0:
                            break
                    j += 1
                i = j + 1
            else:  # a stray separator or closer shows nothing
                i += 1


# --------------------------------------------------------------------------------------------
# Assembly

_EMPTY_PARENTHESES = re.compile(r"\([ ,;:.]*\)")
_SPACE_BEFORE_PUNCT = ((" ,", ","), (" .", "."), (" ;", ";"), (" )", ")"))
_MARKUP_LINE = re.compile(r"\{\||\|\}|\|-|!|\|")
_WORD = re.compile(r"\w")
_BLOCK_TAGS = "p|li|ul|ol|dl|dt|dd|div|br|hr|blockquote|center|table|tr|td|th|caption|tbody|thead|tfoot"
_INLINE_TAGS = "span|small|big|font|b|i|u|s|strike|sup|sub|code|tt|kbd|samp|var|abbr|cite|em|strong|del|ins|mark|q|wbr|bdi|bdo|ruby|rb|rt|rp|time|data"
_LEFTOVER_TAG = re.compile(rf"</?(?:({_BLOCK_TAGS})|{_INLINE_TAGS})\b(?:[^<>\"']|\"[^\"]*\"|'[^']*')*>", re.I)


def _leftover_tag_replacement(m: re.Match) -> str:
    return "\n" if m.group(1) else ""


def _assemble(pieces: list[str]) -> str:
    """Join the walk's output into paragraphs (separated by a blank line; list items one per line)
    and heading lines; a section left empty is dropped with its heading."""
    raw = "".join(pieces)
    if "<" in raw:  # HTML tags the tokenizer left as text (unclosed <p>, <li>, ...)
        raw = _LEFTOVER_TAG.sub(_leftover_tag_replacement, raw)
    if "''" in raw:  # bold and italic: ''''' ''' '' (four quotes are a literal one plus bold)
        raw = raw.replace("'''''", "").replace("'''", "").replace("''", "")
    if "__" in raw:
        raw = _MAGIC_WORD.sub("", raw)
    raw = raw.replace("\t", " ").replace("\u00a0", " ")
    while "  " in raw:
        raw = raw.replace("   ", " ").replace("  ", " ")
    if "(" in raw:  # brackets emptied by the removal of templates and references
        raw = _EMPTY_PARENTHESES.sub("", raw).replace("( ", "(")
    if "[ ]" in raw or "[]" in raw:
        raw = raw.replace("[ ]", "").replace("[]", "")
    for before, after in _SPACE_BEFORE_PUNCT:
        raw = raw.replace(before, after)
    blocks: list[str] = []
    levels: list[int] = []  # heading level per block, 0 for a paragraph
    current: list[str] = []
    for line in raw.split("\n"):
        line = line.strip()
        if not line:
            if current:
                blocks.append("\n".join(current))
                levels.append(0)
                current = []
        elif line[0] == _HEADING_MARK:
            if current:
                blocks.append("\n".join(current))
                levels.append(0)
                current = []
            level, _, title = line[1:].partition(" ")
            title = title.strip()
            if title:
                blocks.append(title)
                levels.append(int(level))
        elif _WORD.search(line) and not _MARKUP_LINE.match(line):
            # (a line of punctuation only is what was left of a removed list item or citation; a
            # line of table markup is what broken wikitext left of a table)
            current.append(line)
    if current:
        blocks.append("\n".join(current))
        levels.append(0)
    # Walking backwards: a heading stays if a paragraph, or a kept deeper heading, follows it
    # before the next heading of the same or higher rank.
    kept = []
    content_below: dict[int, bool] = {}
    paragraph_follows = False
    for block, level in zip(reversed(blocks), reversed(levels)):
        if level == 0:
            paragraph_follows = True
            kept.append(block)
            continue
        keep = paragraph_follows or any(v for lv, v in content_below.items() if lv > level)
        content_below = {lv: v for lv, v in content_below.items() if lv < level}
        content_below[level] = keep
        paragraph_follows = False
        if keep:
            kept.append(block)
    kept.reverse()
    return "\n\n".join(kept)


# --------------------------------------------------------------------------------------------
# Entry points

_DISAMBIGUATION = re.compile(
    r"\{\{\s*(?:template\s*:\s*)?(?:disambiguation|disambig|disamb|dab|dbig|"
    r"(?:hn|geo|number|letter-number|school|mil|given ?name ?|surname ?)dis(?:ambig)?|"
    r"[a-z ]*disambiguation)\s*(?:\||\}\})",
    re.I,
)


def is_disambiguation(title: str, wikitext: str) -> bool:
    """A disambiguation page: titled "... (disambiguation)" or using a disambiguation template
    (``{{disambiguation}}``, ``{{dab}}``, ``{{hndis}}``, ``{{geodis}}``, ``{{... disambiguation}}``)."""
    return title.endswith("(disambiguation)") or bool(_DISAMBIGUATION.search(wikitext))


@dataclass(frozen=True)
class CleanPage:
    text: str
    outlinks: list[str]


class WikitextCleaner:
    """Cleans pages of one site. Not thread-safe (one tokenizer); build one per DoFn instance.

    ``namespaces``: link targets in these namespaces are out-links (default: articles only; File,
    Media and Category links never are).
    """

    _CACHE_LIMIT = 20_000

    def __init__(self, site: SiteInfo = DEFAULT_SITE, namespaces=frozenset({0})):
        self.site = site
        self.namespaces = frozenset(namespaces)
        self._tokenizer = _Tokenizer()
        self._link_kinds: dict[str, tuple[int, str]] = {}

    def clean(self, wikitext: str) -> CleanPage:
        """Clean one page's wikitext. Raises ``WikitextError`` when the tokenizer fails on it."""
        try:
            return self._clean(wikitext)
        except RecursionError as exc:
            raise WikitextError("markup nested too deeply") from exc

    def _clean(self, wikitext: str) -> CleanPage:
        if LINKS_MARK in wikitext or _HEADING_MARK in wikitext:  # not XML characters, but be sure
            wikitext = wikitext.replace(LINKS_MARK, "").replace(_HEADING_MARK, "")
        harvested: deque = deque()
        text = _COMMENT.sub("", wikitext) if "<!--" in wikitext else wikitext
        if "<" in text:
            text = _strip_dropped_tags(text)
        text = _strip_templates(text, harvested)
        if "{|" in text:
            text = _strip_tables(text, harvested)
        try:
            tokens = self._tokenizer.tokenize(text, 0, True)
        except (ParserError, SystemError, MemoryError) as exc:
            raise WikitextError(f"tokenizer failed: {type(exc).__name__}: {exc}") from exc
        walk = _Walk(tokens, self.classify, harvested)
        walk.walk(0, len(tokens))
        while harvested:  # marks lost inside dropped markup: their links still count, at the end
            walk.add_harvested()
        return CleanPage(_assemble(walk.out), list(dict.fromkeys(walk.links)))

    def classify(self, raw: str) -> tuple[int, str]:
        """(kind, normalised title) of a wikilink target as written; cached."""
        result = self._link_kinds.get(raw)
        if result is None:
            result = self._classify(raw)
            if len(self._link_kinds) >= self._CACHE_LIMIT:
                self._link_kinds.clear()
            self._link_kinds[raw] = result
        return result

    def _classify(self, raw: str) -> tuple[int, str]:
        target = raw.strip()
        colon = target.startswith(":")
        if colon:
            target = target[1:].lstrip()
        prefix, sep, _ = target.partition(":")
        if sep:
            key = _collapse_spaces(prefix).lower()
            namespace = self.site.namespaces.get(key)
            if namespace:  # a namespace other than articles
                if namespace in _NOT_LINKS:
                    if colon:
                        return _VISIBLE, ""
                    return (_HIDDEN, "") if namespace == NS_CATEGORY else (_FILE, "")
                if namespace in self.namespaces:
                    title = self.site.normalize(target)
                    return (_ARTICLE, title) if is_valid_title(title) else (_VISIBLE, "")
                return _VISIBLE, ""
            if namespace is None:
                if key in _LANGUAGE_CODES:
                    return (_VISIBLE, "") if colon else (_HIDDEN, "")
                if key in _INTERWIKI_PREFIXES:
                    return _VISIBLE, ""
                if not colon and _MEDIA_FILE.search(target):
                    # a localised File alias missing from <siteinfo> (e.g. bg "Картинка:")
                    return _FILE, ""
        if 0 not in self.namespaces:
            return _VISIBLE, ""
        title = normalize_title(target, self.site.first_letter_case(0))
        return (_ARTICLE, title) if is_valid_title(title) else (_VISIBLE, "")


_default_cleaner: WikitextCleaner | None = None


def clean_wikitext(wikitext: str, site: SiteInfo = DEFAULT_SITE, namespaces=frozenset({0})) -> CleanPage:
    """``WikitextCleaner(site, namespaces).clean(wikitext)``, reusing the last cleaner when it fits.
    A convenience for scripts and tests: one shared tokenizer, so not for concurrent threads."""
    global _default_cleaner
    cleaner = _default_cleaner
    if cleaner is None or cleaner.site != site or cleaner.namespaces != frozenset(namespaces):
        cleaner = _default_cleaner = WikitextCleaner(site, namespaces)
    return cleaner.clean(wikitext)
