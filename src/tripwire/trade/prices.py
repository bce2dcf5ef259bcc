"""Price and tier mentions: ``$5/month``, ``€3 per month``, ``5 USD monthly``, ``月額500円``, ``500円/月``,
``1万円``, ``Tier 2``, ``Gold tier``, ``支援プラン``.

Paid access is what separates a creator who draws from one who sells: a monthly price next to a link to a
subscription platform is one of the strongest trade indicators. Amounts are parsed to numbers (``1,000`` and
``1.000`` as thousands, ``4,99``/``4.99`` as decimals, ``万``/``千``/``k`` multipliers), currencies to ISO
codes where the symbol is unambiguous (``$`` alone is recorded as ``USD`` with ``currency_symbol='$'``
kept), periods to ``month``/``year``/``week``/``once``. Patterns run on the light fold, so full-width
digits and ``￥`` are handled.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass

from .normalise import extend_span_end, fold_light, fold_light_with_offsets

__all__ = ["Price", "Tier", "find_prices", "find_tiers"]


@dataclass(frozen=True, slots=True)
class Price:
    amount: float
    currency: str | None
    period: str | None
    start: int
    end: int
    match: str

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class Tier:
    label: str
    start: int
    end: int
    match: str

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


_PREFIX_CUR = {
    "us$": "USD", "usd": "USD", "$": "USD", "ca$": "CAD", "c$": "CAD", "cad": "CAD", "a$": "AUD", "au$": "AUD",
    "aud": "AUD", "nz$": "NZD", "hk$": "HKD", "r$": "BRL", "€": "EUR", "eur": "EUR", "£": "GBP", "gbp": "GBP",
    "¥": "JPY", "jpy": "JPY", "₩": "KRW", "₽": "RUB", "₹": "INR", "cn¥": "CNY", "rmb": "CNY",
}
_SUFFIX_CUR = {
    "usd": "USD", "dollars": "USD", "dollar": "USD", "bucks": "USD", "ドル": "USD", "eur": "EUR", "euro": "EUR",
    "euros": "EUR", "ユーロ": "EUR", "€": "EUR", "gbp": "GBP", "pounds": "GBP", "pound": "GBP", "£": "GBP",
    "jpy": "JPY", "yen": "JPY", "円": "JPY", "えん": "JPY", "cny": "CNY", "rmb": "CNY", "元": "CNY",
    "krw": "KRW", "원": "KRW", "rub": "RUB", "руб": "RUB", "рублей": "RUB", "cad": "CAD", "aud": "AUD",
    "brl": "BRL", "reais": "BRL", "$": "USD",
}


def _alt(keys: list[str]) -> str:
    return "|".join(re.escape(k) for k in sorted(keys, key=len, reverse=True))


_AMOUNT = r"\d{1,3}(?:[,.\u00a0 ]\d{3})+(?:[.,]\d{1,2})?|\d+(?:[.,]\d{1,2})?"
_PRICE_RE = re.compile(
    rf"(?<![0-9a-z$€£¥₩₽₹])(?P<pcur>{_alt(list(_PREFIX_CUR))})\s?(?P<pamt>{_AMOUNT})(?:\s?(?P<pmul>k|万|千)(?!\w))?"
    rf"|(?<![0-9a-z.,])(?P<samt>{_AMOUNT})\s?(?P<smul>k(?=\s?[a-z]{{3}})|万|千)?\s?(?P<scur>{_alt(list(_SUFFIX_CUR))})"
    r"(?![a-z])",
)
_PERIOD_WORDS = {
    "month": "month", "months": "month", "mo": "month", "mth": "month", "mon": "month", "月": "month",
    "mes": "month", "mois": "month", "monat": "month", "mese": "month", "year": "year", "yr": "year",
    "annum": "year", "年": "year", "ano": "year", "an": "year", "jahr": "year", "week": "week", "wk": "week",
    "週": "week", "semana": "week", "semaine": "week", "woche": "week",
}
_AFTER_RE = re.compile(
    r"\s*(?:/|per\s+|a\s+|an\s+|each\s+|every\s+|por\s+|al\s+|par\s+|pro\s+|\bp/?)\s*"
    rf"(?P<unit>{_alt(list(_PERIOD_WORDS))})(?![a-z])"
    r"|\s*(?P<adv>monthly|a month|yearly|annually|weekly|mensual|mensuel|monatlich|mensile|/月|毎月|月額|年額)"
    r"|\s*(?P<once>one[- ]time|once|lifetime|買い切り|単品)"
)
_BEFORE_RE = re.compile(r"(?P<adv>月額|毎月|月|年額|年|週|monthly|yearly|weekly|one[- ]time)\s*[:：]?\s*$")
_ADV = {"monthly": "month", "a month": "month", "mensual": "month", "mensuel": "month", "monatlich": "month",
        "mensile": "month", "/月": "month", "毎月": "month", "月額": "month", "月": "month", "yearly": "year",
        "annually": "year", "年額": "year", "年": "year", "weekly": "week", "週": "week"}

_TIER_RE = re.compile(
    r"(?<!\w)(?P<a>(?:tier|plan)\s*[:#-]?\s*(?:\d{1,2}|[ivx]{1,4}))(?!\w)"
    r"|(?<!\w)(?P<b>(?:[a-z]+)[ -](?:tier|plan|membership))(?!\w)"
    r"|(?P<c>[\u30a0-\u30ff\u3040-\u309f\u4e00-\u9fff\w]{1,12}?(?:プラン|コース))"
)
_TIER_STOP = {"a", "an", "the", "my", "our", "your", "this", "that", "each", "every", "any", "free", "paid",
              "no", "which", "what", "one"}


_DIGIT = re.compile(r"\d")


def _amount(raw: str, mult: str | None) -> float | None:
    s = raw.replace("\u00a0", " ")
    m = re.fullmatch(r"(\d{1,3}(?:[,. ]\d{3})+|\d+)(?:[.,](\d{1,2}))?", s)
    if not m:
        return None
    whole = re.sub(r"[,. ]", "", m.group(1))
    value = float(whole + ("." + m.group(2) if m.group(2) else ""))
    if mult in ("k", "千"):
        value *= 1000
    elif mult == "万":
        value *= 10000
    return value


def _period(folded: str, start: int, end: int) -> tuple[str | None, int, int]:
    after = _AFTER_RE.match(folded, end)
    if after:
        if after.group("unit"):
            return _PERIOD_WORDS[after.group("unit")], start, after.end()
        if after.group("adv"):
            return _ADV[after.group("adv")], start, after.end()
        return "once", start, after.end()
    before = _BEFORE_RE.search(folded, max(0, start - 12), start)
    if before:
        adv = before.group("adv")
        return ("once" if adv.startswith("one") else _ADV[adv]), before.start(), end
    return None, start, end


def _span(text: str, offs: list[int] | None, a: int, b: int) -> tuple[int, int]:
    if offs is None:
        return a, b
    return offs[a], extend_span_end(text, offs[b - 1] + 1)


def find_prices(text: str) -> list[Price]:
    """Every price mention, with the period it is quoted for when one is written next to it."""
    if not text:
        return []
    folded = fold_light(text)
    if not _DIGIT.search(folded):
        return []
    matches = list(_PRICE_RE.finditer(folded))
    if not matches:
        return []
    offs = None if text.isascii() else fold_light_with_offsets(text)[1]
    out = []
    for m in matches:
        if m.group("pcur"):
            cur_raw, amt_raw, mult = m.group("pcur"), m.group("pamt"), m.group("pmul")
            currency = _PREFIX_CUR[cur_raw]
        else:
            cur_raw, amt_raw, mult = m.group("scur"), m.group("samt"), m.group("smul")
            currency = _SUFFIX_CUR[cur_raw]
        amount = _amount(amt_raw, mult)
        if amount is None:
            continue
        period, a, b = _period(folded, m.start(), m.end())
        a, b = _span(text, offs, a, b)
        out.append(Price(amount, currency, period, a, b, text[a:b]))
    return out


def find_tiers(text: str) -> list[Tier]:
    """Tier and plan mentions (``Tier 2``, ``Gold tier``, ``支援プラン``)."""
    if not text:
        return []
    folded = fold_light(text)
    if not ("tier" in folded or "plan" in folded or "membership" in folded or "プラン" in folded
            or "コース" in folded):
        return []
    offs = None if text.isascii() else fold_light_with_offsets(text)[1]
    out = []
    for m in _TIER_RE.finditer(folded):
        label = m.group("a") or m.group("b") or m.group("c")
        if m.group("b") and label.split()[0].split("-")[0] in _TIER_STOP:
            continue
        a, b = _span(text, offs, m.start(), m.end())
        out.append(Tier(label, a, b, text[a:b]))
    return out
