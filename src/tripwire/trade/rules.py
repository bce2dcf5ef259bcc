"""Rules in TOML: which combinations of term categories, ages, prices, links and bank matches flag a post
(or a prompt), with what weight, and why.

A post's *features* are everything the extractors found: term hits (by category), age mentions, prices,
tiers, classified links and media bank matches, each with the field and span it came from. A rule names
conditions over those features::

    [settings]
    threshold = 1.0          # a post is flagged when its score reaches this
    warn = 0.5               # prompt guard: warn at this score ...
    block = 1.0              # ... block at this one

    [[rule]]
    id = "alpha-near-bravo"
    description = "both categories within eight words"
    all = ["alpha", "bravo"]         # every one must be present
    any = ["link:monetisation", "price"]   # and at least `min_any` (default 1) of these
    window = 8               # words; 0 (default) = anywhere in the post
    weight = 2.0

Conditions: a term category name (``term:NAME`` if the name clashes with a keyword below), ``*`` (any term
category), ``age`` (an age mention within ``age_min``..``age_max``, default 0..17), ``price``, ``tier``,
``link:CLASS`` (``monetisation``, ``aggregator``, ``messaging``, ``locker``, ``shortener``, ``social``,
``other`` or ``*``), ``platform:ID`` (a catalogue id such as ``patreon``), ``bank`` (a media hash
matched a bank). Optional keys: ``min_hits`` (hits of the rule's conditions in the whole post),
``fields`` (only features from these fields: ``text``, ``tags``, ``groups``, ``account.bio`` ...; a
name matches itself and its list entries ``tags[3]``), ``action`` (``warn`` or ``block``: the least the
prompt guard does when the rule fires).

Score: every rule that fires adds ``weight`` x the largest term weight among the term hits that satisfied
it (x 1 when the rule uses no term condition). The flag lists the rule and the spans that satisfied it, so
every decision can be explained and every false positive traced to a rule or a term.
"""

from __future__ import annotations

import bisect
import re
import tomllib
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Iterable, Sequence

from ..errors import UsageError
from .links import LINK_CLASSES

__all__ = [
    "Feature",
    "Rule",
    "RuleSet",
    "Flag",
    "Evaluation",
    "load_rules",
    "default_rules",
    "token_starts",
]

KEYWORD_CONDITIONS = ("age", "price", "tier", "bank")
ACTIONS = ("warn", "block")


@dataclass(frozen=True, slots=True)
class Feature:
    """One thing found in a post: what (kind/name), how strong (weight), where (field/start/end)."""

    kind: str  # term | age | price | tier | link | bank
    name: str  # term category, link class, bank name ...
    field: str
    start: int | None = None
    end: int | None = None
    match: str = ""
    weight: float = 1.0
    #: kind-specific facts: the term, the age, the amount, the platform, the hash ...
    detail: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        d = {"kind": self.kind, "name": self.name, "field": self.field, "start": self.start, "end": self.end,
             "match": self.match}
        if self.detail:
            d.update(self.detail)
        return d


@dataclass(frozen=True)
class Rule:
    id: str
    all: tuple[str, ...] = ()
    any: tuple[str, ...] = ()
    min_any: int = 1
    window: int = 0
    min_hits: int = 1
    weight: float = 1.0
    age_min: int = 0
    age_max: int = 17
    fields: tuple[str, ...] = ()
    action: str | None = None
    description: str = ""

    def conditions(self) -> tuple[str, ...]:
        return self.all + self.any


@dataclass(frozen=True)
class Flag:
    """A rule that fired on a post: its contribution to the score and the evidence."""

    rule: str
    score: float
    description: str
    evidence: list[dict[str, Any]]
    action: str | None = None

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        if d["action"] is None:
            del d["action"]
        return d


@dataclass(frozen=True)
class Evaluation:
    score: float
    flagged: bool
    flags: list[Flag] = field(default_factory=list)


def _matches(cond: str, f: Feature, rule: Rule) -> bool:
    if cond == "*":
        return f.kind == "term"
    if cond.startswith("term:"):
        return f.kind == "term" and f.name == cond[5:]
    if cond == "age":
        if f.kind != "age":
            return False
        age = (f.detail or {}).get("age")
        return isinstance(age, int) and rule.age_min <= age <= rule.age_max
    if cond in ("price", "tier", "bank"):
        return f.kind == cond
    if cond.startswith("link:"):
        return f.kind == "link" and (cond[5:] == "*" or f.name == cond[5:])
    if cond.startswith("platform:"):
        return f.kind == "link" and (f.detail or {}).get("platform") == cond[9:]
    return f.kind == "term" and f.name == cond


def _field_ok(rule: Rule, f: Feature) -> bool:
    if not rule.fields:
        return True
    base = f.field.split("[", 1)[0]
    return f.field in rule.fields or base in rule.fields


_TOKEN = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af]|[^\s\u3040-\u30ff\u3400-\u4dbf"
                    r"\u4e00-\u9fff\uac00-\ud7af]+")


def token_starts(text: str) -> list[int]:
    """Start offsets of the words of ``text`` (each CJK/kana/Hangul character counts as a word)."""
    return [m.start() for m in _TOKEN.finditer(text)]


class RuleSet:
    """Compiled rules plus thresholds; :meth:`evaluate` scores one post's features."""

    def __init__(self, rules: Sequence[Rule], threshold: float = 1.0, warn: float = 0.5, block: float = 1.0,
                 source: str = "") -> None:
        ids = [r.id for r in rules]
        dupes = {i for i in ids if ids.count(i) > 1}
        if dupes:
            raise UsageError(f"{source}: duplicate rule ids: {', '.join(sorted(dupes))}")
        self.rules = list(rules)
        self.threshold = threshold
        self.warn = warn
        self.block = block
        self.source = source

    def categories(self) -> set[str]:
        """Term categories the rules refer to (to warn about names no term list defines)."""
        out = set()
        for r in self.rules:
            for c in r.conditions():
                if c.startswith("term:"):
                    out.add(c[5:])
                elif c != "*" and c not in KEYWORD_CONDITIONS and ":" not in c:
                    out.add(c)
        return out

    def check_categories(self, known: Iterable[str]) -> list[str]:
        """Warnings for categories that no loaded term list defines (usually a typo)."""
        known = set(known)
        return [f"rules {self.source}: category {c!r} is not defined by any term list"
                for c in sorted(self.categories() - known)]

    def evaluate(self, features: Sequence[Feature], texts: dict[str, str] | None = None) -> Evaluation:
        """Score a post. ``texts`` maps field names to their text, for word positions (windows)."""
        flags: list[Flag] = []
        positions: dict[str, list[int]] = {}
        for rule in self.rules:
            flag = self._apply(rule, features, texts or {}, positions)
            if flag is not None:
                flags.append(flag)
        score = round(float(sum(f.score for f in flags)), 6)
        return Evaluation(score, score >= self.threshold, flags)

    # -- one rule -------------------------------------------------------------------------------------

    def _apply(self, rule: Rule, features: Sequence[Feature], texts: dict[str, str],
               positions: dict[str, list[int]]) -> Flag | None:
        conds = rule.conditions()
        n_all = len(rule.all)
        relevant: list[tuple[Feature, frozenset[int]]] = []
        for f in features:
            if not _field_ok(rule, f):
                continue
            sat = frozenset(i for i, c in enumerate(conds) if _matches(c, f, rule))
            if sat:
                relevant.append((f, sat))
        if len(relevant) < rule.min_hits:
            return None
        need_any = min(rule.min_any, len(rule.any)) if rule.any else 0

        def satisfied(counts: list[int]) -> bool:
            if any(counts[i] == 0 for i in range(n_all)):
                return False
            return sum(1 for i in range(n_all, len(conds)) if counts[i] > 0) >= need_any

        chosen: list[tuple[Feature, frozenset[int]]] | None = None
        if rule.window <= 0:
            counts = [0] * len(conds)
            for _f, sat in relevant:
                for i in sat:
                    counts[i] += 1
            if satisfied(counts):
                chosen = relevant
        else:
            chosen = self._window(rule, relevant, texts, positions, satisfied, len(conds))
        if not chosen:
            return None
        term_weights = [f.weight for f, _ in chosen if f.kind == "term"]
        score = rule.weight * (max(term_weights) if term_weights else 1.0)
        evidence = [f.as_dict() for f, _ in chosen]
        return Flag(rule.id, round(score, 6), rule.description, evidence, rule.action)

    @staticmethod
    def _window(rule: Rule, relevant: list[tuple[Feature, frozenset[int]]], texts: dict[str, str],
                positions: dict[str, list[int]], satisfied: Any, n: int) -> list[tuple[Feature, frozenset[int]]] | None:
        by_field: dict[str, list[tuple[int, Feature, frozenset[int]]]] = {}
        for f, sat in relevant:
            if f.start is None or f.field not in texts:
                continue
            starts = positions.get(f.field)
            if starts is None:
                starts = positions[f.field] = token_starts(texts[f.field])
            pos = max(0, bisect.bisect_right(starts, f.start) - 1)
            by_field.setdefault(f.field, []).append((pos, f, sat))
        for items in by_field.values():
            items.sort(key=lambda x: (x[0], x[1].start or 0))
            counts = [0] * n
            left = 0
            for right, (pos_r, _f, sat_r) in enumerate(items):
                for i in sat_r:
                    counts[i] += 1
                while left <= right and items[right][0] - items[left][0] > rule.window:
                    for i in items[left][2]:
                        counts[i] -= 1
                    left += 1
                if satisfied(counts):
                    return [(f, s) for _p, f, s in items[left:right + 1]]
        return None


# --- loading -------------------------------------------------------------------------------------------

_RULE_KEYS = {"id", "all", "any", "min_any", "window", "min_hits", "weight", "age_min", "age_max", "fields",
              "action", "description"}


def _check_condition(cond: str, where: str) -> None:
    if cond.startswith("link:"):
        cls = cond[5:]
        if cls != "*" and cls not in LINK_CLASSES:
            raise UsageError(f"{where}: unknown link class in {cond!r} (one of {', '.join(LINK_CLASSES)}, *)")
    elif cond.startswith("platform:") and not cond[9:]:
        raise UsageError(f"{where}: {cond!r} needs a platform id")
    elif not cond:
        raise UsageError(f"{where}: empty condition")


def parse_rules(data: dict[str, Any], source: str) -> RuleSet:
    settings = data.get("settings", {})
    unknown = set(settings) - {"threshold", "warn", "block"}
    if unknown:
        raise UsageError(f"{source}: unknown settings {', '.join(sorted(unknown))}")
    rules = []
    for n, entry in enumerate(data.get("rule", []), 1):
        where = f"{source}: rule {entry.get('id', n)!s}"
        bad = set(entry) - _RULE_KEYS
        if bad:
            raise UsageError(f"{where}: unknown keys {', '.join(sorted(bad))}")
        if "id" not in entry:
            raise UsageError(f"{source}: rule #{n} has no id")
        all_ = tuple(str(c) for c in entry.get("all", []))
        any_ = tuple(str(c) for c in entry.get("any", []))
        if not all_ and not any_:
            raise UsageError(f"{where}: needs `all` or `any` conditions")
        for c in all_ + any_:
            _check_condition(c, where)
        action = entry.get("action")
        if action is not None and action not in ACTIONS:
            raise UsageError(f"{where}: action must be one of {', '.join(ACTIONS)}")
        try:
            rule = Rule(
                id=str(entry["id"]), all=all_, any=any_, min_any=int(entry.get("min_any", 1)),
                window=int(entry.get("window", 0)), min_hits=int(entry.get("min_hits", 1)),
                weight=float(entry.get("weight", 1.0)), age_min=int(entry.get("age_min", 0)),
                age_max=int(entry.get("age_max", 17)), fields=tuple(entry.get("fields", ())),
                action=action, description=str(entry.get("description", "")),
            )
        except (TypeError, ValueError) as exc:
            raise UsageError(f"{where}: {exc}") from exc
        rules.append(rule)
    try:
        return RuleSet(rules, float(settings.get("threshold", 1.0)), float(settings.get("warn", 0.5)),
                       float(settings.get("block", 1.0)), source)
    except (TypeError, ValueError) as exc:
        raise UsageError(f"{source}: settings: {exc}") from exc


def load_rules(path: str | Path) -> RuleSet:
    """Read a rules TOML file (schema in the module doc and docs/trade.md)."""
    p = Path(path)
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UsageError(f"cannot read rules {p}: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"invalid TOML in rules {p}: {exc}") from exc
    return parse_rules(data, p.name)


def default_rules() -> RuleSet:
    """The shipped rules (``data/default_rules.toml``): every term counts by its weight, more with a paid
    link or a price nearby; an age next to any term counts double and blocks prompts."""
    text = resources.files("tripwire.trade").joinpath("data").joinpath("default_rules.toml").read_text(
        encoding="utf-8")
    return parse_rules(tomllib.loads(text), "default_rules.toml")
