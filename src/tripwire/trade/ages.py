"""Numeric age patterns (``<n> yo``, ``<n>-year-old``, ``<n>歳``, ``<n> años`` ...), digits and number words.

An age on its own means nothing (people state their own age, a car's age, a band's anniversary); rules use
age hits only together with operator term categories, inside a window (``tripwire.trade.rules``). Patterns
run on the light fold (:func:`tripwire.trade.normalise.fold_light`): full-width digits, accents and case are
already folded, so ``１２歳`` and ``12 AÑOS`` are found like ``12歳`` and ``12 anos``.

Languages: English, Spanish, Portuguese, French, German, Italian, Dutch, Russian (digits), Japanese and
Chinese (digits and kanji numerals), Korean (digits and native numbers). Ages above 120 are ignored.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass

from .normalise import extend_span_end, fold_light, fold_light_with_offsets

__all__ = ["AgeHit", "find_ages", "parse_kanji_number"]

MAX_AGE = 120


@dataclass(frozen=True, slots=True)
class AgeHit:
    """An age mention; ``start``/``end`` index the original text, ``match`` is that text."""

    age: int
    start: int
    end: int
    match: str
    lang: str
    #: which pattern family fired (``en-yo``, ``en-aged``, ``ja``, ...), for the explanation
    form: str

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def _word_numbers() -> dict[str, int]:
    words: dict[str, int] = {}
    units = "one two three four five six seven eight nine".split()
    teens = "ten eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen nineteen".split()
    tens = "twenty thirty forty fifty sixty seventy eighty ninety".split()
    for i, w in enumerate(units, 1):
        words[w] = i
    for i, w in enumerate(teens, 10):
        words[w] = i
    for i, t in enumerate(tens, 2):
        words[t] = i * 10
        for j, u in enumerate(units, 1):
            words[f"{t}-{u}"] = i * 10 + j
            words[f"{t} {u}"] = i * 10 + j
    # accents are folded away before matching, so the keys are written without them
    lists = {
        "es": "uno dos tres cuatro cinco seis siete ocho nueve diez once doce trece catorce quince dieciseis "
        "diecisiete dieciocho diecinueve veinte",
        "pt": "um dois tres quatro cinco seis sete oito nove dez onze doze treze catorze quinze dezesseis "
        "dezessete dezoito dezenove vinte",
        "fr": "un deux trois quatre cinq six sept huit neuf dix onze douze treize quatorze quinze seize "
        "dix-sept dix-huit dix-neuf vingt",
        "de": "eins zwei drei vier funf sechs sieben acht neun zehn elf zwolf dreizehn vierzehn funfzehn "
        "sechzehn siebzehn achtzehn neunzehn zwanzig",
        "it": "uno due tre quattro cinque sei sette otto nove dieci undici dodici tredici quattordici quindici "
        "sedici diciassette diciotto diciannove venti",
        "nl": "een twee drie vier vijf zes zeven acht negen tien elf twaalf dertien veertien vijftien zestien "
        "zeventien achttien negentien twintig",
    }
    for text in lists.values():
        for i, w in enumerate(text.split(), 1):
            words.setdefault(w, i)
    words.update({"quatorze": 14, "dezasseis": 16, "dezassete": 17, "dezanove": 19, "ein": 1, "un": 1})
    return words


_WORDS = _word_numbers()
_KOREAN = {
    "한": 1, "하나": 1, "두": 2, "세": 3, "네": 4, "다섯": 5, "여섯": 6, "일곱": 7, "여덟": 8, "아홉": 9,
    "열": 10, "열한": 11, "열두": 12, "열세": 13, "열네": 14, "열다섯": 15, "열여섯": 16, "열일곱": 17,
    "열여덟": 18, "열아홉": 19, "스무": 20,
}
_KANJI_DIGITS = {"〇": 0, "零": 0, "一": 1, "二": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9,
                 "两": 2, "兩": 2}


def parse_kanji_number(s: str) -> int | None:
    """Parse a kanji numeral below 100 (``十二`` = 12, ``二十`` = 20, ``十`` = 10, ``一二`` = 12)."""
    if not s:
        return None
    if "十" in s:
        left, _, right = s.partition("十")
        if "十" in right:
            return None
        tens = 1 if not left else _KANJI_DIGITS.get(left)
        ones = 0 if not right else _KANJI_DIGITS.get(right)
        if tens is None or ones is None or len(left) > 1 or len(right) > 1:
            return None
        return tens * 10 + ones
    value = 0
    for ch in s:
        d = _KANJI_DIGITS.get(ch)
        if d is None:
            return None
        value = value * 10 + d
    return value


def _alt(words: list[str]) -> str:
    return "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))


_NUM = rf"(?P<num>\d{{1,3}}|{_alt(list(_WORDS))})"
_NUM_CJK = r"(?P<num>\d{1,3}|[〇零一二三四五六七八九十两兩]{1,3})"
_NUM_KO = rf"(?P<num>\d{{1,3}}|{_alt(list(_KOREAN))})"
_B = r"(?<![\w.,])"  # not glued to a longer number or word
_E = r"(?!\w)"

_PATTERNS: list[tuple[str, str, re.Pattern[str]]] = [
    ("en", "en-yo", re.compile(
        rf"{_B}{_NUM}\s*-?\s*(?:yo|y/o|y\.o\.?|yrs?\s*-?\s*old|years?\s*-?\s*old){_E}")),
    ("en", "en-aged", re.compile(rf"(?<!\w)(?:aged?|age\s+of)\s*[:=]?\s*{_NUM}{_E}"
        r"(?!\s*(?:months?|weeks?|days?|hours?|minutes?|mins?|seconds?)(?!\w))")),
    ("es-pt", "es-anos", re.compile(rf"{_B}{_NUM}\s*(?:anos|anitos)(?:\s+de\s+edad)?{_E}")),
    ("pt", "pt-anos", re.compile(rf"{_B}{_NUM}\s*aninhos{_E}")),
    ("fr", "fr-ans", re.compile(rf"{_B}{_NUM}\s*ans{_E}")),
    ("de", "de-jahre", re.compile(rf"{_B}{_NUM}\s*(?:-\s*)?(?:jahre(?:\s+alt)?|jahrige?[nmrs]?){_E}")),
    ("it", "it-anni", re.compile(rf"{_B}{_NUM}\s*anni{_E}")),
    ("nl", "nl-jaar", re.compile(rf"{_B}{_NUM}\s*(?:-\s*)?(?:jaar(?:\s+oud)?|jarige?){_E}")),
    ("ru", "ru-let", re.compile(rf"{_B}(?P<num>\d{{1,3}})\s*(?:лет|года?){_E}")),
    ("ja", "ja-sai", re.compile(rf"{_B}{_NUM_CJK}\s*(?:歳|才|さい)")),
    ("zh", "zh-sui", re.compile(rf"{_B}(?:周|週)?{_NUM_CJK}\s*(?:岁|歲)")),
    ("ko", "ko-sal", re.compile(rf"{_B}{_NUM_KO}\s*(?:살|세)")),
]
#: a cheap pre-check: every pattern needs one of these unit words or counters
_HINT = re.compile(
    r"(?:yo|y/o|y\.o|yrs?|years?|anos|anitos|aninhos|ans|jahre|jahrige?[nmrs]?|anni|jaar|jarige?|лет|года?)(?!\w)"
    r"|(?<!\w)(?:aged?|age\s+of)(?!\w)|[歳才岁歲살세]|さい"
)


def _value(raw: str) -> int | None:
    if raw.isdigit():
        return int(raw)
    if raw in _WORDS:
        return _WORDS[raw]
    if raw in _KOREAN:
        return _KOREAN[raw]
    return parse_kanji_number(raw)


def find_ages(text: str) -> list[AgeHit]:
    """Every age mention in ``text`` (spans in ``text``), earliest first, one per span."""
    if not text:
        return []
    folded = fold_light(text)
    if not _HINT.search(folded):
        return []
    found: dict[tuple[int, int], tuple[int, str, str]] = {}
    for lang, form, pattern in _PATTERNS:
        for m in pattern.finditer(folded):
            age = _value(m.group("num"))
            if age is None or age > MAX_AGE:
                continue
            found.setdefault(m.span(), (age, lang, form))
    if not found:
        return []
    if text.isascii():
        offs = None
    else:
        folded2, offs = fold_light_with_offsets(text)
        if folded2 != folded:  # pragma: no cover - the two paths are tested to agree
            return []
    hits = []
    for (a, b), (age, lang, form) in sorted(found.items()):
        if offs is not None:
            a, b = offs[a], extend_span_end(text, offs[b - 1] + 1)
        hits.append(AgeHit(age, a, b, text[a:b], lang, form))
    return hits
