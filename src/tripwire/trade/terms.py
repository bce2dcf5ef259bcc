"""Operator term lists matched with Aho-Corasick over the normalised term view.

Term lists are operator data (for example the IWF Keywords List, received under agreement): tripwire ships
only a small starter list of generic trade/evasion words (``data/starter_terms.csv``, documented in
docs/trade.md). A list is either one term per line (category = the file's name) or CSV
``term,category,weight``. Categories are whatever the operator's rules refer to.

Every term goes through :func:`tripwire.trade.normalise.normalise`, the same pipeline as the text, so one
entry matches all its evasive spellings. Keys carry their own word boundaries (a leading/trailing space in
the padded term view), so ``alpha`` never fires inside ``alphabet`` in running text; in scripts written
without spaces (CJK, kana, Thai) a term matches anywhere.

Hashtags glue words together (``#alphabravo``), so each hashtag is also compared without spaces against the
terms' compact forms. There a match counts when it sits at the hashtag's start or end or touches another
accepted match (``edge`` mode, the default), or only when matches cover the whole hashtag (``whole``
mode, fewer false positives such as ``#alphabet`` for ``alpha``). Reviewed false positives go in an
allow-list: a term hit inside an allow-listed phrase is dropped.
"""

from __future__ import annotations

import csv
import io
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path
from typing import Iterable, Sequence

import ahocorasick

from ..errors import UsageError
from .normalise import (
    _RE_HASHTAG,
    compact,
    extend_span_end,
    is_spaceless_script,
    normalise,
    normalise_term,
    normalise_with_offsets,
)

__all__ = [
    "Term",
    "TermHit",
    "TermEngine",
    "load_terms",
    "load_allow_list",
    "starter_terms",
    "STARTER_TERMS_FILE",
]

STARTER_TERMS_FILE = "starter_terms.csv"
HASHTAG_MODES = ("edge", "whole")
_TAG_CACHE_SIZE = 100_000


@dataclass(frozen=True, slots=True)
class Term:
    """One entry of an operator list."""

    text: str
    category: str
    weight: float = 1.0
    #: where it came from (``file:line``), shown in flags so an operator can find and fix an entry
    source: str = ""


@dataclass(frozen=True, slots=True)
class TermHit:
    """A term found in a field: the span is in the field's original text (``text[start:end] == match``)."""

    term: str
    category: str
    weight: float
    field: str
    start: int
    end: int
    match: str
    #: ``text`` (running text, word boundaries) or ``hashtag`` (glued hashtag, compact comparison)
    via: str = "text"
    source: str = ""

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


# --- loading -------------------------------------------------------------------------------------------


def _parse_weight(value: str, where: str) -> float:
    try:
        weight = float(value)
    except ValueError as exc:
        raise UsageError(f"{where}: weight {value!r} is not a number") from exc
    if weight < 0:
        raise UsageError(f"{where}: weight must not be negative")
    return weight


def parse_terms(text: str, name: str, default_category: str, csv_format: bool) -> list[Term]:
    """Parse a term list given as text (see :func:`load_terms`)."""
    terms: list[Term] = []
    if not csv_format:
        for lineno, line in enumerate(text.splitlines(), 1):
            entry = line.strip()
            if not entry or entry.startswith("#"):
                continue
            terms.append(Term(entry, default_category, 1.0, f"{name}:{lineno}"))
        return terms
    rows = csv.reader(io.StringIO(text))
    columns: dict[str, int] = {"term": 0, "category": 1, "weight": 2}
    first = True
    for lineno, row in enumerate(rows, 1):
        if not row or not "".join(row).strip() or row[0].lstrip().startswith("#"):
            continue
        if first:
            first = False
            header = [c.strip().lower() for c in row]
            if "term" in header:
                columns = {k: header.index(k) for k in ("term", "category", "weight") if k in header}
                continue
        where = f"{name}:{lineno}"

        def cell(key: str) -> str:
            idx = columns.get(key)
            return row[idx].strip() if idx is not None and idx < len(row) else ""

        entry = cell("term")
        if not entry:
            continue
        category = cell("category") or default_category
        weight = _parse_weight(cell("weight"), where) if cell("weight") else 1.0
        terms.append(Term(entry, category, weight, where))
    return terms


def load_terms(path: str | Path, default_category: str | None = None) -> list[Term]:
    """Read a term list: ``*.csv`` as ``term,category,weight`` (header optional, category and weight may
    be empty), anything else as one term per line. ``#`` starts a comment line in both.

    The category of a plain list (or an empty CSV category) is ``default_category`` or the file's stem.
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise UsageError(f"cannot read term list {p}: {exc}") from exc
    except UnicodeDecodeError as exc:
        raise UsageError(f"term list {p} is not UTF-8: {exc}") from exc
    return parse_terms(text, p.name, default_category or p.stem, p.suffix.lower() == ".csv")


def starter_terms() -> list[Term]:
    """The shipped starter list: generic, non-graphic trade and evasion indicators (docs/trade.md)."""
    text = resources.files("tripwire.trade").joinpath("data").joinpath(STARTER_TERMS_FILE).read_text(encoding="utf-8")
    return parse_terms(text, STARTER_TERMS_FILE, "starter", True)


def load_allow_list(path: str | Path) -> list[str]:
    """Phrases reviewed as false positives, one per line (``#`` comments)."""
    p = Path(path)
    try:
        lines = p.read_text(encoding="utf-8-sig").splitlines()
    except OSError as exc:
        raise UsageError(f"cannot read allow-list {p}: {exc}") from exc
    return [ln.strip() for ln in lines if ln.strip() and not ln.lstrip().startswith("#")]


# --- engine --------------------------------------------------------------------------------------------

def _padded_key(norm: str) -> tuple[str, int, int]:
    lpad = 0 if is_spaceless_script(norm[0]) else 1
    rpad = 0 if is_spaceless_script(norm[-1]) else 1
    return " " * lpad + norm + " " * rpad, lpad, rpad


class TermEngine:
    """Finds operator terms in text, robust to the evasions listed in :mod:`tripwire.trade.normalise`.

    Build once (compiling the automaton is the expensive part) and call :meth:`find` per field.
    """

    def __init__(
        self,
        terms: Sequence[Term],
        allow: Iterable[str] = (),
        hashtag_mode: str = "edge",
        min_hashtag_term: int = 4,
    ) -> None:
        if hashtag_mode not in HASHTAG_MODES:
            raise UsageError(f"hashtag_mode must be one of {', '.join(HASHTAG_MODES)}, not {hashtag_mode!r}")
        self.terms: list[Term] = list(terms)
        self.hashtag_mode = hashtag_mode
        self.min_hashtag_term = min_hashtag_term
        #: entries that normalise to nothing (only punctuation): reported, never matched
        self.skipped: list[Term] = []
        self.categories: set[str] = set()
        keys: dict[str, tuple[int, int, int, list[int]]] = {}
        ckeys: dict[str, list[int]] = {}
        for idx, term in enumerate(self.terms):
            norm = normalise_term(term.text)
            if not norm:
                self.skipped.append(term)
                continue
            self.categories.add(term.category)
            key, lpad, rpad = _padded_key(norm)
            keys.setdefault(key, (len(key), lpad, rpad, []))[3].append(idx)
            c = compact(norm)
            if len(c) >= min_hashtag_term:
                ckeys.setdefault(c, []).append(idx)
        self._auto = self._build(keys)
        self._cauto = self._build({k: (len(k), 0, 0, v) for k, v in ckeys.items()})
        allow_keys: dict[str, tuple[int, int, int, list[int]]] = {}
        self.allow: list[str] = []
        for phrase in allow:
            norm = normalise_term(phrase)
            if norm:
                key, lpad, rpad = _padded_key(norm)
                allow_keys.setdefault(key, (len(key), lpad, rpad, []))[3].append(len(self.allow))
                self.allow.append(phrase)
        self._allow_auto = self._build(allow_keys)
        #: hashtag body -> accepted compact matches (hashtags repeat a lot in real feeds)
        self._tag_cache: dict[str, list[tuple[int, int, tuple[int, ...]]]] = {}

    @staticmethod
    def _build(keys: dict[str, tuple[int, int, int, list[int]]]) -> ahocorasick.Automaton | None:
        if not keys:
            return None
        auto = ahocorasick.Automaton()
        for key, (length, lpad, rpad, ids) in keys.items():
            auto.add_word(key, (length, lpad, rpad, tuple(ids)))
        auto.make_automaton()
        return auto

    def __len__(self) -> int:
        return len(self.terms)

    # -- matching ---------------------------------------------------------------------------------------

    def find(self, text: str, field: str = "text", hashtag: bool = False) -> list[TermHit]:
        """All term hits in ``text`` (one field of a post or a prompt), spans in ``text``'s coordinates.

        ``hashtag=True`` treats the whole string as a hashtag (entries of a post's ``tags[]``).
        """
        if not text or self._auto is None:
            return []
        s = normalise(text, hashtag)
        raw = list(self._auto.iter(s))
        tag_spans: list[tuple[int, int]] = []
        if self._cauto is not None:
            if hashtag:
                tag_spans = [(0, len(text))]
            elif "#" in text:
                tag_spans = [(a + 1, b) for a, b in _hashtag_spans(text)]
        compact_hits = self._compact_hits(text, tag_spans, s if hashtag else None) if tag_spans else []
        if not raw and not compact_hits:
            return []
        hits: list[TermHit] = []
        seen: set[tuple[int, int]] = set()
        if raw:
            s2, offs = normalise_with_offsets(text, hashtag)
            if s2 != s:  # pragma: no cover - the two paths are tested to agree; stay correct if not
                raw = list(self._auto.iter(s2))
            for end_idx, (length, lpad, rpad, ids) in raw:
                start_idx = end_idx - length + 1
                a = offs[start_idx + lpad]
                b = extend_span_end(text, offs[end_idx - rpad] + 1)
                for tid in ids:
                    if (tid, a) in seen:
                        continue
                    seen.add((tid, a))
                    t = self.terms[tid]
                    hits.append(TermHit(t.text, t.category, t.weight, field, a, b, text[a:b], "text", t.source))
        for tid, a, b in compact_hits:
            if (tid, a) in seen:
                continue
            seen.add((tid, a))
            t = self.terms[tid]
            hits.append(TermHit(t.text, t.category, t.weight, field, a, b, text[a:b], "hashtag", t.source))
        if self._allow_auto is not None and hits:
            allowed = self._allowed_spans(text, hashtag)
            if allowed:
                hits = [h for h in hits if not any(x <= h.start and h.end <= y for x, y in allowed)]
        hits.sort(key=lambda h: (h.start, -h.end, h.term))
        if len(hits) > 1:
            hits = _drop_contained(hits)
        return hits

    def find_tags(self, tags: Iterable[str], field: str = "tags") -> list[TermHit]:
        """Hits in each entry of a list field (hashtags, group names); ``field`` becomes ``tags[i]``."""
        out: list[TermHit] = []
        for i, tag in enumerate(tags):
            if isinstance(tag, str) and tag:
                out.extend(self.find(tag.lstrip("#"), f"{field}[{i}]", hashtag=True))
        return out

    def _compact_hits(self, text: str, spans: list[tuple[int, int]],
                      whole: str | None = None) -> list[tuple[int, int, int]]:
        """Term hits inside glued hashtags. ``whole`` is the term view of ``text`` when ``text`` is itself
        one hashtag (already computed by the caller)."""
        assert self._cauto is not None
        out: list[tuple[int, int, int]] = []
        cache = self._tag_cache
        for a, b in spans:
            body = text[a:b]
            found = cache.get(body)
            if found is None:
                c = compact(whole if whole is not None else normalise(body, hashtag=True))
                found = [(end - length + 1, end + 1, ids) for end, (length, _l, _r, ids) in self._cauto.iter(c)]
                found = _accept_compact(found, len(c), self.hashtag_mode) if found else []
                if len(cache) >= _TAG_CACHE_SIZE:
                    cache.clear()
                cache[body] = found
            if not found:
                continue
            s2, offs = normalise_with_offsets(body, hashtag=True)
            coffs = [offs[i] for i, ch in enumerate(s2) if ch != " "]
            for cs, ce, ids in found:
                if ce > len(coffs):  # pragma: no cover - defensive, see find()
                    continue
                x = a + coffs[cs]
                y = extend_span_end(text, a + coffs[ce - 1] + 1)
                for tid in ids:
                    out.append((tid, x, y))
        return out

    def _allowed_spans(self, text: str, hashtag: bool) -> list[tuple[int, int]]:
        assert self._allow_auto is not None
        s, offs = normalise_with_offsets(text, hashtag)
        spans = []
        for end_idx, (length, lpad, rpad, _ids) in self._allow_auto.iter(s):
            start_idx = end_idx - length + 1
            spans.append((offs[start_idx + lpad], extend_span_end(text, offs[end_idx - rpad] + 1)))
        return spans


def _drop_contained(hits: list[TermHit]) -> list[TermHit]:
    """Keep the longest of nested hits of one category ("uncensored version" over "uncensored")."""
    out: list[TermHit] = []
    for h in hits:
        if any(o.category == h.category and o.start <= h.start and h.end <= o.end
               and (o.end - o.start) > (h.end - h.start) for o in out):
            continue
        out.append(h)
    return out


def _hashtag_spans(text: str) -> list[tuple[int, int]]:
    return [m.span() for m in _RE_HASHTAG.finditer(text)]


def _accept_compact(
    found: list[tuple[int, int, tuple[int, ...]]], length: int, mode: str
) -> list[tuple[int, int, tuple[int, ...]]]:
    """Which compact matches inside one hashtag count (see the module doc for the two modes)."""
    if mode == "whole":
        reach = {0}
        for s, e, _ in sorted(found):
            if s in reach:
                reach.add(e)
        coreach = {length}
        for s, e, _ in sorted(found, key=lambda m: -m[1]):
            if e in coreach:
                coreach.add(s)
        return [m for m in found if m[0] in reach and m[1] in coreach]
    accepted: list[tuple[int, int, tuple[int, ...]]] = []
    pending = list(found)
    starts: set[int] = set()
    ends: set[int] = set()
    changed = True
    while changed and pending:
        changed = False
        rest = []
        for m in pending:
            s, e, _ = m
            if s == 0 or e == length or s in ends or e in starts:
                accepted.append(m)
                starts.add(s)
                ends.add(e)
                changed = True
            else:
                rest.append(m)
        pending = rest
    return accepted
