"""Policy: a TOML file that turns an item's facts into an action — ``allow``, ``review`` or ``block``.

The pipeline only *recommends*; what a platform does with an upload is the operator's decision, written
down where it can be read, reviewed and versioned. A policy is an ordered list of rules; the first rule
whose conditions all hold decides the item's action and whether it goes to the human review queue. When
no rule holds, ``[default]`` applies. Example (the shipped default is ``default_policy.toml`` next to
this module)::

    [default]
    action = "allow"

    [[rule]]
    name = "known-abuse"
    description = "matches a bank entry graded as abuse material"
    action = "block"               # allow | review | block
    queue = true                   # default: true for review and block, false for allow
    [rule.when]
    match_category = ["vics:1", "uk:A", "ncmec:A1"]

    [[rule]]
    name = "ai-generated-unmatched"
    action = "review"
    [rule.when]
    match = false
    provenance = ["ai_generated", "ai_edited"]

Conditions (every one given must hold; lists mean "any of"):

=====================  ===========================================================================
``match``              true: the item has at least one positive bank match (allow-list hits do not
                       count, and matches suppressed by an allow-list do not count); false: none
``match_bank``         a positive match in one of these banks (by name)
``match_category``     a positive match whose category is one of these, written ``scheme:code``
                       (``vics:1``, ``uk:A``, ``ncmec:B2``) or a bare code/free-text label
``match_signal``       a positive match by one of these signal types (md5, sha1, sha256, pdq, and the
                       model hashes model_sha256, model_autov3, model_autov1)
``match_signal_only``  at least one positive match, and every positive match is by one of these types
                       (``banked-model``: the image names a banked model and is not itself banked)
``max_distance``       the closest positive match is within this many bits (exact digests are 0)
``allow_listed``       true: an allow-list (negative bank) entry matched the item (a model allow-list
                       entry, such as a common base checkpoint, speaks for that model, not the item: it
                       does not count)
``provenance``         the provenance label is one of these (ai_generated, ai_edited,
                       camera_original, unknown)
``confidence``         the provenance confidence is one of these (definitive, strong, supporting)
``conflict``           true: the provenance evidence conflicts (AI and camera evidence, failed C2PA)
``generator``          the generator tool is one of these (case-insensitive)
``error``              true: the item could not be fully processed; false: it was
``error_code``         the item's error code is one of these
``media_type``         the sniffed media type matches one of these globs (``image/*``)
``min_priority``       the triage priority is at least this
``platform``           the upload context's platform is one of these
=====================  ===========================================================================

The file is validated when it is loaded: an unknown key, action or condition is an error, so a typo never
silently turns a ``block`` rule into a rule that never fires.
"""

from __future__ import annotations

import fnmatch
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

from ..errors import UsageError
from ..records import PolicyOutcome

ACTIONS: tuple[str, ...] = ("allow", "review", "block")
#: how strongly an action restricts the upload: the most severe item action decides a whole file
SEVERITY: dict[str, int] = {"allow": 0, "review": 1, "block": 2}
DEFAULT_POLICY = "default_policy.toml"

_LIST_CONDITIONS = ("match_bank", "match_category", "match_signal", "match_signal_only", "provenance", "confidence", "generator",
                    "error_code", "media_type", "platform")
_BOOL_CONDITIONS = ("match", "allow_listed", "conflict", "error")
_NUMBER_CONDITIONS = ("max_distance", "min_priority")
CONDITIONS: tuple[str, ...] = _BOOL_CONDITIONS + _LIST_CONDITIONS + _NUMBER_CONDITIONS
_RULE_KEYS = {"name", "description", "action", "queue", "when"}


@dataclass(frozen=True)
class Outcome:
    """What the policy decided for one item, and which rule decided it (None: the default)."""

    action: str
    queue: bool
    rule: str | None
    reason: str

    def as_dict(self) -> PolicyOutcome:
        return {"action": self.action, "queue": self.queue, "rule": self.rule, "reason": self.reason}


@dataclass(frozen=True)
class Rule:
    name: str
    action: str
    queue: bool
    when: dict[str, Any] = field(default_factory=dict)
    description: str = ""


def _default_queue(action: str) -> bool:
    return action != "allow"


def _as_list(name: str, value: Any, where: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value or not all(isinstance(v, (str, int)) for v in value):
        raise UsageError(f"{where}: {name} must be a non-empty list of strings")
    return tuple(str(v) for v in value)


def _check_when(when: Any, where: str) -> dict[str, Any]:
    if not isinstance(when, dict):
        raise UsageError(f"{where}: 'when' must be a table of conditions")
    out: dict[str, Any] = {}
    for key, value in when.items():
        if key in _BOOL_CONDITIONS:
            if not isinstance(value, bool):
                raise UsageError(f"{where}: {key} must be true or false")
            out[key] = value
        elif key in _LIST_CONDITIONS:
            values = _as_list(key, value, where)
            out[key] = tuple(v.lower() for v in values) if key in ("generator", "media_type") else values
        elif key in _NUMBER_CONDITIONS:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise UsageError(f"{where}: {key} must be a number")
            out[key] = float(value)
        else:
            raise UsageError(f"{where}: unknown condition {key!r} (known: {', '.join(CONDITIONS)})")
    return out


def _check_action(action: Any, where: str) -> str:
    if action not in ACTIONS:
        raise UsageError(f"{where}: action must be one of {', '.join(ACTIONS)}, not {action!r}")
    return str(action)


class Policy:
    """An ordered rule list plus a default; :meth:`evaluate` is pure and cheap (called per item)."""

    def __init__(self, rules: Iterable[Rule], default: Outcome, source: str = "") -> None:
        self.rules = list(rules)
        self.default = default
        self.source = source

    # -- loading ---------------------------------------------------------------------------------------

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "") -> "Policy":
        where = source or "policy"
        unknown = set(data) - {"default", "rule", "version", "description"}
        if unknown:
            raise UsageError(f"{where}: unknown top-level key(s) {', '.join(sorted(unknown))} (expected [default] and [[rule]])")
        default_table = data.get("default") or {}
        if not isinstance(default_table, dict) or set(default_table) - {"action", "queue"}:
            raise UsageError(f"{where}: [default] takes only 'action' and 'queue'")
        default_action = _check_action(default_table.get("action", "allow"), f"{where} [default]")
        default = Outcome(default_action, bool(default_table.get("queue", _default_queue(default_action))), None,
                          "no rule applied: the policy's default")
        rules: list[Rule] = []
        names: set[str] = set()
        raw_rules = data.get("rule") or []
        if not isinstance(raw_rules, list):
            raise UsageError(f"{where}: rules are written [[rule]] (an array of tables)")
        for n, raw in enumerate(raw_rules, 1):
            rw = f"{where} rule {n}"
            if not isinstance(raw, dict):
                raise UsageError(f"{rw}: must be a table")
            extra = set(raw) - _RULE_KEYS
            if extra:
                raise UsageError(f"{rw}: unknown key(s) {', '.join(sorted(extra))} (expected {', '.join(sorted(_RULE_KEYS))})")
            name = str(raw.get("name") or f"rule-{n}")
            if name in names:
                raise UsageError(f"{rw}: duplicate rule name {name!r}")
            names.add(name)
            action = _check_action(raw.get("action"), f"{rw} ({name})")
            queue = raw.get("queue", _default_queue(action))
            if not isinstance(queue, bool):
                raise UsageError(f"{rw} ({name}): queue must be true or false")
            when = _check_when(raw.get("when") or {}, f"{rw} ({name})")
            rules.append(Rule(name, action, queue, when, str(raw.get("description") or "")))
        return cls(rules, default, source)

    @classmethod
    def load(cls, path: str | Path | None = None) -> "Policy":
        """The policy in ``path``, or the shipped default policy when ``path`` is None."""
        if path is None:
            text = resources.files(__package__).joinpath(DEFAULT_POLICY).read_text(encoding="utf-8")
            source = f"(built-in) {DEFAULT_POLICY}"
        else:
            try:
                text = Path(path).read_text(encoding="utf-8")
            except OSError as exc:
                raise UsageError(f"cannot read policy file {path}: {exc}") from exc
            source = str(path)
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise UsageError(f"invalid TOML in policy {source}: {exc}") from exc
        return cls.from_dict(data, source)

    # -- evaluation --------------------------------------------------------------------------------------

    def evaluate(self, record: Mapping[str, Any], context: Mapping[str, Any] | None = None,
                 bank_scheme: Callable[[str], str | None] | None = None) -> Outcome:
        """The outcome for one item record (as the pipeline and stages left it).

        ``bank_scheme(bank_name)`` gives a bank's category scheme so that ``vics:1`` and ``uk:1`` are told
        apart; without it a category condition compares bare codes.
        """
        facts = _Facts(record, context or {}, bank_scheme)
        for rule in self.rules:
            if all(facts.holds(key, value) for key, value in rule.when.items()):
                reason = rule.description or f"rule {rule.name}"
                return Outcome(rule.action, rule.queue, rule.name, reason)
        return self.default

    def describe(self) -> list[dict[str, Any]]:
        """The rules as data (what ``GET /v1/policy`` shows)."""
        out = [{"name": r.name, "description": r.description, "action": r.action, "queue": r.queue,
                "when": {k: list(v) if isinstance(v, tuple) else v for k, v in r.when.items()}} for r in self.rules]
        out.append({"name": "(default)", "action": self.default.action, "queue": self.default.queue, "when": {}})
        return out


def most_severe(actions: Iterable[str]) -> str:
    """The most restrictive of ``actions`` (an archive is blocked when one member is)."""
    best = "allow"
    for action in actions:
        if SEVERITY.get(action, 0) > SEVERITY[best]:
            best = action
    return best


def _about_media(signal_type: Any) -> bool:
    """Does a match by this type speak about the item itself (not about a model named in its metadata)?"""
    from ..signals.registry import registry

    name = str(signal_type or "")
    return name not in registry or registry.get(name).describes != "model"


class _Facts:
    """Lazily computed facts of one record that conditions test."""

    def __init__(self, record: Mapping[str, Any], context: Mapping[str, Any],
                 bank_scheme: Callable[[str], str | None] | None) -> None:
        self.record = record
        self.context = context
        self.bank_scheme = bank_scheme
        matches = record.get("matches") or []
        self.matches = [m for m in matches if isinstance(m, dict) and not m.get("negative")] if isinstance(matches, list) else []
        prov = record.get("provenance")
        self.provenance = prov if isinstance(prov, dict) else {}

    def _categories(self, match: Mapping[str, Any]) -> set[str]:
        code = match.get("category")
        if code is None:
            return set()
        code = str(code)
        out = {code.lower()}
        if match.get("category_label"):
            out.add(str(match["category_label"]).lower())
        scheme = self.bank_scheme(str(match.get("bank"))) if self.bank_scheme else None
        if scheme:
            out.add(f"{scheme}:{code}".lower())
        return out

    def holds(self, key: str, value: Any) -> bool:  # noqa: C901 - one branch per condition, kept flat on purpose
        r = self.record
        if key == "match":
            return bool(self.matches) == bool(value)
        if key == "match_bank":
            return any(str(m.get("bank")) in value for m in self.matches)
        if key == "match_category":
            wanted = {v.lower() for v in value}
            return any(self._categories(m) & wanted for m in self.matches)
        if key == "match_signal":
            return any(str(m.get("signal_type")) in value for m in self.matches)
        if key == "match_signal_only":
            return bool(self.matches) and all(str(m.get("signal_type")) in value for m in self.matches)
        if key == "max_distance":
            return any(int(m.get("distance") or 0) <= value for m in self.matches)
        if key == "allow_listed":
            allowed = any(isinstance(m, dict) and _about_media((m.get("suppressed_by") or {}).get("signal_type"))
                          for m in (r.get("matches_suppressed") or [])) or any(
                isinstance(m, dict) and m.get("negative") and _about_media(m.get("signal_type"))
                for m in (r.get("matches") or []))
            return allowed == bool(value)
        if key == "provenance":
            return str(self.provenance.get("label") or "unknown") in value
        if key == "confidence":
            return str(self.provenance.get("confidence")) in value
        if key == "conflict":
            return bool(self.provenance.get("conflicts")) == bool(value)
        if key == "generator":
            tool = self.provenance.get("tool") or ((r.get("generator") or {}).get("tool") if isinstance(r.get("generator"), dict) else None)
            return bool(tool) and str(tool).lower() in value
        if key == "error":
            return bool(r.get("error")) == bool(value)
        if key == "error_code":
            err = r.get("error")
            return isinstance(err, dict) and err.get("code") in value
        if key == "media_type":
            media_type = str(r.get("media_type") or "").lower()
            return any(fnmatch.fnmatchcase(media_type, pattern) for pattern in value)
        if key == "min_priority":
            priority = r.get("priority")
            return priority is not None and float(priority) >= value
        if key == "platform":
            return str(self.context.get("platform") or "") in value
        raise UsageError(f"unknown condition {key!r}")  # unreachable: checked on load
