"""MediaWiki titles: a site's namespaces and case rules (from the dump's <siteinfo> plus MediaWiki's
built-in names), and title normalisation as MediaWiki does it, so that link targets and page titles
meet in link resolution."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from urllib.parse import unquote

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


NOT_LINK_NAMESPACES = (NS_FILE, NS_MEDIA, NS_CATEGORY)


# Wikimedia interwiki prefixes (visible links to other sites): anchor text kept, never an out-link.
INTERWIKI_PREFIXES = frozenset(
    "w wikipedia wikt wiktionary q wikiquote b wikibooks s wikisource n wikinews v wikiversity voy "
    "wikivoyage species wikispecies c commons m meta metawikimedia metawikipedia mw mediawikiwiki d "
    "wikidata f wikifunctions foundation wmf wikimedia incubator outreach phab phabricator gerrit "
    "mail mailarchive testwiki betawikiversity wikitech toolforge translatewiki doi hdl rfc google "
    "arxiv bibcode issn jstor lccn oclc pmid imdbname imdbtitle iarchive oldwikisource sep11 wikia".split()
)


# Language editions of Wikipedia: ``[[fr:Titre]]`` is an interlanguage link, not shown in the text.
LANGUAGE_CODES = frozenset(
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
            name = collapse_spaces(name)
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
        return self.namespaces.get(collapse_spaces(prefix).lower())

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


_TITLE_SPACE_CHARS = "_\u00a0\u1680\u180e\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"


_TITLE_SPACES = re.compile(f"[ {_TITLE_SPACE_CHARS}]+")


_BIDI_MARKS = re.compile("[\u200e\u200f\u202a-\u202e]")


# Characters MediaWiki never allows in a title (plus C0 controls and the replacement character).
_INVALID_TITLE_CHARS = re.compile(r"[<>\[\]{}|\x00-\x1f\x7f\ufffd]")


# A title needs more than strip + first letter if it has any of these.
_NEEDS_NORMALIZING = re.compile(f"[&%#:{_TITLE_SPACE_CHARS}\u200e\u200f\u202a-\u202e]|  ")


def collapse_spaces(text: str) -> str:
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
        title = collapse_spaces(_BIDI_MARKS.sub("", title.partition("#")[0]))
        if title.startswith(":"):
            title = title[1:].lstrip(" ")
    return _upper_first(title) if first_letter_case else title


def is_valid_title(title: str) -> bool:
    return bool(title) and not _INVALID_TITLE_CHARS.search(title)
