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

import html
import re
from collections import deque
from dataclasses import dataclass

from mwparserfromhell.parser import ParserError
from mwparserfromhell.parser import tokens as T

from linkbert.pipeline.edges.titles import (
    DEFAULT_SITE,
    INTERWIKI_PREFIXES,
    LANGUAGE_CODES,
    NOT_LINK_NAMESPACES,
    NS_CATEGORY,
    SiteInfo,
    collapse_spaces,
    is_valid_title,
    normalize_title,
)
from linkbert.pipeline.sources.wikianchors import ANCHOR_BASE, ANCHOR_CLOSE, ANCHOR_LIMIT, ANCHOR_OPEN, extract_anchors
from linkbert.pipeline.sources.wikimarkup import (
    DROPPED_TAGS,
    HEADING_MARK,
    HTML_COMMENT,
    LINKS_MARK,
    MAGIC_WORD,
    strip_dropped_tags,
    strip_tables,
    strip_templates,
)

try:  # the C tokenizer; the pure-Python one is the library's own fallback
    from mwparserfromhell.parser._tokenizer import CTokenizer as _Tokenizer
except ImportError:  # pragma: no cover - wheels ship the C extension
    from mwparserfromhell.parser.tokenizer import Tokenizer as _Tokenizer

__all__ = [
    "CleanPage",
    "WikitextCleaner",
    "WikitextError",
    "clean_wikitext",
    "is_disambiguation",
]


class WikitextError(ValueError):
    """The page's wikitext could not be parsed (the tokenizer failed or recursed too deep)."""


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
    """One page's walk over the token list: text pieces out, out-link titles collected; the targets
    of links whose anchor text is shown go to ``anchors`` (shared with sub-walks), the anchor marked."""

    __slots__ = ("tokens", "classify", "out", "links", "harvested", "anchors")

    def __init__(self, tokens, classify, harvested: deque, anchors: list | None = None):
        self.tokens = tokens
        self.classify = classify
        self.out: list[str] = []
        self.links: list[str] = []
        self.harvested = harvested
        self.anchors = anchors  # None: no marks (titles computed from markup)

    def open_anchor(self, title: str) -> bool:
        anchors = self.anchors
        if anchors is None or len(anchors) >= ANCHOR_LIMIT:
            return False
        self.out.append(ANCHOR_OPEN + chr(ANCHOR_BASE + len(anchors)))
        anchors.append(title)
        return True

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
        marked = False
        if kind == _ARTICLE:
            self.links.append(title)
            marked = self.open_anchor(title)
        if separator < 0:
            self.text(raw.lstrip().removeprefix(":"))
        elif separator + 1 < close:
            self.walk(separator + 1, close)
        else:  # the pipe trick: [[Foo (bar)|]] shows "Foo"
            self.text(_PIPE_TRICK.sub("", raw.split(":", 1)[-1]).strip())
        if marked:
            self.out.append(ANCHOR_CLOSE)
        return close + 1

    def plain(self, start: int, end: int) -> str:
        sub = _Walk(self.tokens, self.classify, deque(), None)
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
                heading = _Walk(tokens, self.classify, self.harvested, self.anchors)
                heading.walk(i + 1, j)
                self.links.extend(heading.links)
                title = "".join(heading.out).replace("\n", " ").strip()
                out.append(f"\n{HEADING_MARK}{tok.get('level') or 2} {title}\n")
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
        raw = MAGIC_WORD.sub("", raw)
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
        elif line[0] == HEADING_MARK:
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
    # (start, end, target) of every link whose anchor text is in ``text``, in text order; the other
    # out-links (templates, tables, captions) have no position
    links: list[tuple[int, int, str]] = ()


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
        if LINKS_MARK in wikitext or HEADING_MARK in wikitext:  # not XML characters, but be sure
            wikitext = wikitext.replace(LINKS_MARK, "").replace(HEADING_MARK, "")
        if ANCHOR_OPEN in wikitext or ANCHOR_CLOSE in wikitext:  # private-use characters a page may hold
            wikitext = wikitext.replace(ANCHOR_OPEN, "").replace(ANCHOR_CLOSE, "")
        harvested: deque = deque()
        text = HTML_COMMENT.sub("", wikitext) if "<!--" in wikitext else wikitext
        if "<" in text:
            text = strip_dropped_tags(text)
        text = strip_templates(text, harvested)
        if "{|" in text:
            text = strip_tables(text, harvested)
        try:
            tokens = self._tokenizer.tokenize(text, 0, True)
        except (ParserError, SystemError, MemoryError) as exc:
            raise WikitextError(f"tokenizer failed: {type(exc).__name__}: {exc}") from exc
        anchors: list[str] = []
        walk = _Walk(tokens, self.classify, harvested, anchors)
        walk.walk(0, len(tokens))
        while harvested:  # marks lost inside dropped markup: their links still count, at the end
            walk.add_harvested()
        text, spans = extract_anchors(_assemble(walk.out), anchors)
        return CleanPage(text, list(dict.fromkeys(walk.links)), spans)

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
            key = collapse_spaces(prefix).lower()
            namespace = self.site.namespaces.get(key)
            if namespace:  # a namespace other than articles
                if namespace in NOT_LINK_NAMESPACES:
                    if colon:
                        return _VISIBLE, ""
                    return (_HIDDEN, "") if namespace == NS_CATEGORY else (_FILE, "")
                if namespace in self.namespaces:
                    title = self.site.normalize(target)
                    return (_ARTICLE, title) if is_valid_title(title) else (_VISIBLE, "")
                return _VISIBLE, ""
            if namespace is None:
                if key in LANGUAGE_CODES:
                    return (_VISIBLE, "") if colon else (_HIDDEN, "")
                if key in INTERWIKI_PREFIXES:
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
