"""Made-up, pronounceable, *unique* entity names ("Brelomath", "Tharisendal").

A name is ``onset nucleus (onset nucleus)+ coda``: onsets are consonant clusters, nuclei vowel runs,
and only the last syllable has a coda. Because onsets and codas hold no vowels and nuclei hold only
vowels, a name splits back into its syllables in exactly one way, so distinct syllable tuples give
distinct strings. Index ``i`` picks a tuple through keyed permutations, which makes ``name(i)`` a
bijection on ``range(capacity)`` with O(1) memory.

Letters j, q, w, y, c never occur in a name; given names (see ``GIVEN_NAMES``) each contain one of
them, and the fixed title words (River, Mount, The, ...) do not fit the grammar, so titles built as
"Mount <name>", "<given> <name>", "<name> River" never collide.
"""

from __future__ import annotations

import re

from linkbert.pipeline.synth.randomness import KeyedPermutation

ONSETS = (
    "b", "d", "f", "g", "h", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z", "sh", "th", "br", "dr",
    "tr",
)
NUCLEI = ("a", "e", "i", "o", "u", "ai", "ia")
# No plain "r" coda: it would let "River" parse as a name.
CODAS = ("", "n", "l", "s", "th", "m", "nd", "rn", "x", "rd")

GIVEN_NAMES = (
    "Jory", "Wendel", "Yara", "Quill", "Cyra", "Joss", "Wynne", "Maja", "Tobyn", "Kwame", "Elwyn",
    "Josette", "Marcy", "Quentin", "Sylva", "Jarek", "Owena", "Tycho", "Carys", "Jovan", "Winifred",
    "Yusra", "Ciaran", "Aja", "Bryn", "Cosmo", "Janek", "Lwazi", "Rhys", "Dacey",
)

# Words that appear beside a name in titles and redirect titles; none may parse as a name.
RESERVED_WORDS = (
    "River", "Mount", "The", "City", "Peak", "Holdings", "Works", "Group", "Foundry", "Co",
    "Moth", "Finch", "Orchid", "Beetle", "Trout",
)

_NAME_GRAMMAR = re.compile(
    "(?:(?:%s)(?:%s)){2,}(?:%s)"
    % tuple("|".join(sorted(map(re.escape, part), key=len, reverse=True)) for part in (ONSETS, NUCLEI, CODAS))
)


def is_generated_name_shape(word: str) -> bool:
    """True when ``word`` (case-insensitive) could be produced by ``NameSpace.name``."""
    return _NAME_GRAMMAR.fullmatch(word.lower()) is not None


for _word in RESERVED_WORDS + GIVEN_NAMES:
    if is_generated_name_shape(_word):
        raise AssertionError(f"{_word!r} fits the name grammar; titles could collide")


class NameSpace:
    """``name(i)`` for ``i`` in ``range(capacity)``: distinct, pronounceable, capitalised names.

    About ``share_two_syllables`` of the names have two syllables and the rest three; two-syllable
    names run out near 200,000 and three-syllable ones near 27 million, after which names get four.
    """

    _TIERS = tuple(
        (syllables, (len(ONSETS) * len(NUCLEI)) ** syllables * len(CODAS)) for syllables in (2, 3, 4)
    )

    def __init__(self, capacity: int, *keys: object, share_two_syllables: float = 0.4) -> None:
        if capacity > sum(size for _, size in self._TIERS):
            raise ValueError(f"at most {sum(size for _, size in self._TIERS)} distinct names, asked for {capacity}")
        self.capacity = capacity
        self._order = KeyedPermutation(capacity, *keys, "order")
        # (first slot, syllables, permutation of that tier's codes), in slot order.
        self._tiers = []
        first_slot, wanted = 0, int(capacity * share_two_syllables)
        for syllables, size in self._TIERS:
            count = min(size, wanted, capacity - first_slot)
            if count > 0:
                self._tiers.append((first_slot, syllables, KeyedPermutation(size, *keys, "tier", syllables)))
            first_slot += count
            wanted = capacity - first_slot

    def name(self, index: int) -> str:
        slot = self._order(index)
        for first_slot, syllables, pick in reversed(self._tiers):
            if slot >= first_slot:
                code = pick(slot - first_slot)
                break
        code, coda = divmod(code, len(CODAS))
        parts = []
        for _ in range(syllables):
            code, nucleus = divmod(code, len(NUCLEI))
            code, onset = divmod(code, len(ONSETS))
            parts.append(ONSETS[onset] + NUCLEI[nucleus])
        return ("".join(parts) + CODAS[coda]).capitalize()
