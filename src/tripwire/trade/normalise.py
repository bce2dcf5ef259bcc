"""Text normalisation that defeats the usual evasions before terms are matched.

People who advertise traded material write terms so that a naive filter misses them: full-width letters
(``ａｌｐｈａ``), accents (``àlphá``), look-alike Cyrillic letters, leetspeak (``4lph4``, ``h@ck``), separators
between letters (``a.l.p.h.a``, ``a l p h a``), zero-width characters, and hashtags that glue words together
(``#AlphaBravo``). Terms and text go through the *same* pipeline, so whatever a term list says is matched
in every one of those spellings.

Two views are produced:

* :func:`fold_light` (NFKC, case folding, diacritics stripped): for age, price and link patterns, which
  need digits and punctuation intact.
* :func:`normalise` (the *term view*): the light fold, plus homoglyph and leetspeak folding, punctuation
  turned into single spaces, runs of single characters joined, padded with one space on each side so
  that term keys can carry their own word boundaries.

Speed matters (a feed has millions of posts), so the plain functions work on whole strings with C-level
operations. The ``*_with_offsets`` twins, used only when something matched, redo the same steps while
keeping, for every output character, the index of the input character it came from; matches are then
reported as spans of the text the analyst actually sees.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

__all__ = [
    "fold_light",
    "fold_light_with_offsets",
    "normalise",
    "normalise_with_offsets",
    "normalise_term",
    "compact",
    "extend_span_end",
    "is_spaceless_script",
]

# --- character tables ----------------------------------------------------------------------------------

#: format characters (zero-width space/joiners, bidi controls, soft hyphen, BOM, tag characters)
_CF_RANGES = [
    (0x00AD, 0x00AD), (0x061C, 0x061C), (0x180E, 0x180E), (0x200B, 0x200F), (0x202A, 0x202E),
    (0x2060, 0x2064), (0x2066, 0x206F), (0xFEFF, 0xFEFF), (0xE0000, 0xE007F),
]
#: Japanese voicing marks are kept (and recomposed by NFC): dropping them would merge different words
_KEEP_MARKS = {0x3099, 0x309A}


@lru_cache(maxsize=1)
def _drop_table() -> dict[int, None]:
    """Code points deleted by the fold: every combining mark (accents, Hebrew/Arabic points, variation
    selectors) except kana voicing marks, and every format character."""
    table: dict[int, None] = {}
    for cp in range(0x30000):
        if cp in _KEEP_MARKS:
            continue
        if unicodedata.category(chr(cp))[0] == "M":
            table[cp] = None
    for cp in range(0xE0100, 0xE01F0):  # variation selectors supplement
        table[cp] = None
    for lo, hi in _CF_RANGES:
        for cp in range(lo, hi + 1):
            table[cp] = None
    return table


def _mark_class() -> str:
    """A regex character class of every code point that attaches to the preceding character."""
    table = _drop_table()
    cps = sorted(set(table) | _KEEP_MARKS | {0xFF9E, 0xFF9F})
    ranges: list[tuple[int, int]] = []
    for cp in cps:
        if ranges and cp == ranges[-1][1] + 1:
            ranges[-1] = (ranges[-1][0], cp)
        else:
            ranges.append((cp, cp))
    parts = []
    for lo, hi in ranges:
        parts.append(re.escape(chr(lo)) if lo == hi else f"{re.escape(chr(lo))}-{re.escape(chr(hi))}")
    return "[" + "".join(parts) + "]"


#: letters from other scripts that look like Latin ones (after case folding), and the skeleton merge of
#: ``l`` into ``i`` (leetspeak writes both as ``1`` or ``|``, so the two cannot be told apart)
_CONFUSABLES = str.maketrans({
    # Cyrillic
    "а": "a", "е": "e", "о": "o", "р": "p", "с": "c", "у": "y", "х": "x", "і": "i", "ј": "j", "ѕ": "s",
    "һ": "h", "ԁ": "d", "ԛ": "q", "ԝ": "w", "ӏ": "i", "к": "k",
    # Greek
    "α": "a", "ο": "o", "ν": "v", "ι": "i", "κ": "k", "ρ": "p", "τ": "t", "υ": "u", "χ": "x", "ε": "e",
    # skeleton
    "l": "i",
})

#: leetspeak digits, folded only inside tokens that also contain a letter (``t3rm``, not ``2024``)
_LEET_DIGITS = str.maketrans({"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "8": "b", "9": "g"})
#: leetspeak symbols, folded only when they sit between letters (``h@ck``) or end a word (``alph@``)
_LEET_SYMBOLS = {"@": "a", "$": "s", "!": "i", "|": "i", "+": "t"}

_LETTER = r"[^\W\d_]"
_RE_SYMBOL_LEET = re.compile(rf"(?<={_LETTER})[@$!|+](?={_LETTER})|(?<={_LETTER})[@$](?!\w)")
_RE_PUNCT = re.compile(r"[\W_]+")
#: a letter of an alphabetic script (CJK and kana are left out: ``12歳`` is a number and a counter word)
_LATIN_LIKE = r"[^\W\d_\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af]"
_RE_MIXED_TOKEN = re.compile(rf"(?<!\w)(?=\w*\d)(?=\w*{_LATIN_LIKE})\w+")
#: three or more one-character tokens in a row: ``a l p h a`` (after punctuation became spaces)
_RE_SINGLES = re.compile(r"(?<![^ ])(?:[^ ] ){2,}[^ ](?![^ ])")
_RE_HASHTAG = re.compile(r"#[^\s#]+")
_RE_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
#: ideographic and full-width full stops used in place of dots (NFKC leaves 。 alone)
_DOTS = str.maketrans({"。": ".", "｡": ".", "．": "."})

_CLUSTER_RE: re.Pattern[str] | None = None


def _clusters() -> re.Pattern[str]:
    """Units that the fold may combine: a base character with its marks, or a Hangul jamo sequence.

    Folding cluster by cluster gives the same string as folding the whole text (composition never crosses
    a cluster), which is what lets the offset-keeping path agree with the fast path.
    """
    global _CLUSTER_RE
    if _CLUSTER_RE is None:
        marks = _mark_class()
        _CLUSTER_RE = re.compile(
            "(?:[\u1100-\u115f\ua960-\ua97f]+[\u1160-\u11a7\ud7b0-\ud7c6]*[\u11a8-\u11ff\ud7cb-\ud7fb]*"
            "|[\uac00-\ud7a3][\u11a8-\u11ff\ud7cb-\ud7fb]?"
            "|.)" + marks + "*",
            re.S,
        )
    return _CLUSTER_RE


def _fold(s: str) -> str:
    if s.isascii():
        return s.lower()
    s = unicodedata.normalize("NFKC", s).casefold()
    s = unicodedata.normalize("NFD", s).translate(_drop_table())
    return unicodedata.normalize("NFC", s).translate(_DOTS)


# --- light view ----------------------------------------------------------------------------------------


def fold_light(text: str) -> str:
    """NFKC + case folding + diacritics and zero-width characters removed; digits and punctuation kept."""
    return _fold(text)


def fold_light_with_offsets(text: str) -> tuple[str, list[int]]:
    """:func:`fold_light` plus, for each output character, the index of the input character it came from."""
    if text.isascii():
        return text.lower(), list(range(len(text)))
    out: list[str] = []
    offs: list[int] = []
    for m in _clusters().finditer(text):
        piece = _fold(m.group())
        out.append(piece)
        offs.extend([m.start()] * len(piece))
    return "".join(out), offs


# --- term view -----------------------------------------------------------------------------------------


def _camel(m: re.Match[str]) -> str:
    return _RE_CAMEL.sub(" ", m.group())


def _split_camel(text: str, hashtag: bool) -> str:
    if hashtag:
        return _RE_CAMEL.sub(" ", text)
    if "#" not in text:
        return text
    return _RE_HASHTAG.sub(_camel, text)


def _symbol(m: re.Match[str]) -> str:
    return _LEET_SYMBOLS[m.group()]


def _mixed(m: re.Match[str]) -> str:
    return m.group().translate(_LEET_DIGITS)


def _singles(m: re.Match[str]) -> str:
    return m.group().replace(" ", "")


def normalise(text: str, hashtag: bool = False) -> str:
    """The term view of ``text`` (see the module doc), padded with one space on each side.

    ``hashtag=True`` treats the whole string as one hashtag (the ``tags[]`` field of a post), so that
    CamelCase is split as it is after a ``#`` in running text.
    """
    s = _split_camel(text, hashtag)
    s = _fold(s).translate(_CONFUSABLES)
    if "@" in s or "$" in s or "!" in s or "|" in s or "+" in s:
        s = _RE_SYMBOL_LEET.sub(_symbol, s)
    s = _RE_PUNCT.sub(" ", s)
    s = _RE_SINGLES.sub(_singles, s)
    s = _RE_MIXED_TOKEN.sub(_mixed, s)
    return " " + s.strip(" ") + " "


def normalise_term(term: str) -> str:
    """A term list entry in the term view, without padding (empty if nothing matchable is left)."""
    return normalise(term).strip(" ")


def compact(normalised: str) -> str:
    """The term view without spaces: how glued-together hashtags are compared (``#alphabravo``)."""
    return normalised.replace(" ", "")


def normalise_with_offsets(text: str, hashtag: bool = False) -> tuple[str, list[int]]:
    """:func:`normalise` plus the index into ``text`` of every output character.

    The padding spaces map to 0 and ``len(text)``. Used only once a match is found, so it may be slower.
    """
    # 1. CamelCase split: an inserted space takes the index of the character after it
    if hashtag or "#" in text:
        chars: list[str] = []
        offs: list[int] = []
        spans = [(0, len(text))] if hashtag else [m.span() for m in _RE_HASHTAG.finditer(text)]
        pos = 0
        for a, b in spans:
            chars.append(text[pos:a])
            offs.extend(range(pos, a))
            seg = text[a:b]
            cuts = [m.start() for m in _RE_CAMEL.finditer(seg)]
            last = 0
            for c in cuts:
                chars.append(seg[last:c] + " ")
                offs.extend(range(a + last, a + c))
                offs.append(a + c)
                last = c
            chars.append(seg[last:])
            offs.extend(range(a + last, b))
            pos = b
        chars.append(text[pos:])
        offs.extend(range(pos, len(text)))
        s0 = "".join(chars)
    else:
        s0, offs = text, list(range(len(text)))
    # 2. fold cluster by cluster
    if s0.isascii():
        s = s0.lower()
    else:
        parts: list[str] = []
        new_offs: list[int] = []
        for m in _clusters().finditer(s0):
            piece = _fold(m.group())
            parts.append(piece)
            new_offs.extend([offs[m.start()]] * len(piece))
        s, offs = "".join(parts), new_offs
    s = s.translate(_CONFUSABLES)
    # 3. symbol leetspeak (same length)
    s = _RE_SYMBOL_LEET.sub(_symbol, s)
    # 4. punctuation runs -> one space (the space keeps the index of the run's first character)
    parts = []
    new_offs = []
    pos = 0
    for m in _RE_PUNCT.finditer(s):
        parts.append(s[pos:m.start()])
        new_offs.extend(offs[pos:m.start()])
        parts.append(" ")
        new_offs.append(offs[m.start()])
        pos = m.end()
    parts.append(s[pos:])
    new_offs.extend(offs[pos:])
    s, offs = "".join(parts), new_offs
    # 5. join runs of single characters
    parts = []
    new_offs = []
    pos = 0
    for m in _RE_SINGLES.finditer(s):
        parts.append(s[pos:m.start()])
        new_offs.extend(offs[pos:m.start()])
        for i in range(m.start(), m.end()):
            if s[i] != " ":
                parts.append(s[i])
                new_offs.append(offs[i])
        pos = m.end()
    parts.append(s[pos:])
    new_offs.extend(offs[pos:])
    s, offs = "".join(parts), new_offs
    # 6. leetspeak digits inside mixed tokens (same length)
    s = _RE_MIXED_TOKEN.sub(_mixed, s)
    # 7. strip and pad
    a = 0
    b = len(s)
    while a < b and s[a] == " ":
        a += 1
    while b > a and s[b - 1] == " ":
        b -= 1
    return " " + s[a:b] + " ", [0] + offs[a:b] + [len(text)]


def extend_span_end(text: str, end: int) -> int:
    """Grow a span's end over combining marks and invisible characters that belong to its last letter
    (offsets point at the first character of each folded cluster)."""
    table = _drop_table()
    while end < len(text) and (ord(text[end]) in table or text[end] in "\u3099\u309a\uff9e\uff9f"):
        end += 1
    return end


# --- scripts written without spaces -------------------------------------------------------------------

_SPACELESS_RANGES = (
    (0x0E00, 0x0EFF),   # Thai, Lao
    (0x1000, 0x109F),   # Myanmar
    (0x1780, 0x17FF),   # Khmer
    (0x3040, 0x30FF),   # Hiragana, Katakana
    (0x3100, 0x31FF),   # Bopomofo, Katakana ext.
    (0x3400, 0x4DBF),   # CJK ext. A
    (0x4E00, 0x9FFF),   # CJK unified
    (0xF900, 0xFAFF),   # CJK compatibility
    (0x20000, 0x3134F),  # CJK ext. B-G
)


def is_spaceless_script(ch: str) -> bool:
    """True for characters of scripts written without spaces between words (CJK, kana, Thai ...).

    Terms in those scripts match anywhere, not only between spaces.
    """
    cp = ord(ch)
    for lo, hi in _SPACELESS_RANGES:
        if lo <= cp <= hi:
            return True
    return False
