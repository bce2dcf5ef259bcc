"""Prompt guard for generation services: refuse the prompts that would produce abuse material.

The same term engine and age patterns as post scanning look at each prompt; the same TOML rules score it.
The score maps to an action -- ``allow``, ``warn`` (tell the user, let it through or ask to rephrase) or
``block`` -- with the rule thresholds ``warn`` and ``block`` (rules may also force ``block``, as the default
``age-near-term`` rule does). Every decision carries its reasons: the rules that fired and the spans.

Users who keep trying are the real risk, so each user has a counter of non-allowed prompts over a sliding
window (default one hour): from ``warn_after`` such prompts every prompt is at least warned, from
``review_after`` the decision asks for human review, from ``block_after`` everything is blocked until the
window clears. Reviewed false positives go in an allow-list (phrases whose term hits are ignored).

Library use::

    guard = PromptGuard(TermEngine(load_terms("operator.csv"), allow=load_allow_list("allow.txt")))
    decision = guard.check("some prompt", user="user-123")
    decision.action   # "allow" | "warn" | "block"
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict, deque
from dataclasses import asdict, dataclass, field
from typing import Any, Iterator, TextIO

from ..errors import UsageError
from ..jsonl import JsonlError, read_jsonl
from .ages import find_ages
from .rules import Feature, RuleSet, default_rules
from .terms import TermEngine, starter_terms

__all__ = ["GuardConfig", "GuardDecision", "PromptGuard", "ACTIONS"]

ACTIONS = ("allow", "warn", "block")
MAX_PROMPT = 20_000


@dataclass
class GuardConfig:
    """Escalation settings (``[trade.prompt]`` in the configuration)."""

    window_seconds: float = 3600.0
    warn_after: int = 3
    review_after: int = 5
    block_after: int = 10
    #: a prompt blocked on its content always asks for human review
    review_on_block: bool = True
    #: users tracked at once (least recently seen are forgotten first)
    max_users: int = 100_000

    @classmethod
    def from_section(cls, section: dict[str, Any]) -> "GuardConfig":

        cfg = cls()
        for key, value in section.items():
            if not hasattr(cfg, key):
                raise UsageError(f"unknown setting trade.prompt.{key}")
            setattr(cfg, key, type(getattr(cfg, key))(value))
        if not (0 < cfg.warn_after <= cfg.block_after and cfg.review_after <= cfg.block_after):
            raise UsageError("trade.prompt: need 0 < warn_after <= block_after and review_after <= block_after")
        return cfg


@dataclass
class GuardDecision:
    action: str
    score: float
    #: the rules that fired, each with its evidence spans
    reasons: list[dict[str, Any]] = field(default_factory=list)
    #: True when a person should look at this user's recent prompts
    review: bool = False
    user: str | None = None
    #: non-allowed prompts by this user inside the window (this one included)
    recent: int = 0
    #: why the action is stricter than the content alone, if it is
    escalation: str | None = None
    content_action: str = "allow"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _stricter(a: str, b: str) -> str:
    return a if ACTIONS.index(a) >= ACTIONS.index(b) else b


class PromptGuard:
    """Decides allow/warn/block for prompts, per user, with reasons. Thread-safe."""

    def __init__(self, engine: TermEngine | None = None, rules: RuleSet | None = None,
                 config: GuardConfig | None = None) -> None:
        self.engine = engine if engine is not None else TermEngine(starter_terms())
        self.rules = rules if rules is not None else default_rules()
        self.config = config or GuardConfig()
        self._events: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def content_decision(self, text: str) -> tuple[str, float, list[dict[str, Any]]]:
        """(action, score, reasons) from the prompt text alone."""
        text = text[:MAX_PROMPT]
        feats = [Feature("term", h.category, "prompt", h.start, h.end, h.match, h.weight,
                         {"term": h.term, "via": h.via, "source": h.source})
                 for h in self.engine.find(text, "prompt")]
        feats += [Feature("age", "age", "prompt", a.start, a.end, a.match, 1.0,
                          {"age": a.age, "lang": a.lang, "form": a.form}) for a in find_ages(text)]
        ev = self.rules.evaluate(feats, {"prompt": text})
        action = "allow"
        if ev.score >= self.rules.block:
            action = "block"
        elif ev.score >= self.rules.warn:
            action = "warn"
        for f in ev.flags:
            if f.action:
                action = _stricter(action, f.action)
        return action, ev.score, [f.as_dict() for f in ev.flags]

    def _count(self, user: str, now: float, hit: bool) -> int:
        cfg = self.config
        with self._lock:
            q = self._events.get(user)
            if q is None:
                if not hit:
                    return 0
                q = self._events[user] = deque()
            self._events.move_to_end(user)
            while q and q[0] <= now - cfg.window_seconds:
                q.popleft()
            if hit:
                q.append(now)
            n = len(q)
            if not q:
                del self._events[user]
            while len(self._events) > cfg.max_users:
                self._events.popitem(last=False)
            return n

    def check(self, text: str, user: str | None = None, now: float | None = None) -> GuardDecision:
        """Decide on one prompt. ``now`` (seconds) lets callers replay logs with their own timestamps."""
        action, score, reasons = self.content_decision(text)
        decision = GuardDecision(action, score, reasons, user=user, content_action=action)
        cfg = self.config
        if action == "block" and cfg.review_on_block:
            decision.review = True
        if user is None:
            return decision
        t = time.time() if now is None else now
        n = self._count(user, t, action != "allow")
        decision.recent = n
        if n >= cfg.block_after:
            decision.action = "block"
            decision.escalation = f"{n} refused or warned prompts within {cfg.window_seconds:g}s (block at {cfg.block_after})"
        elif n >= cfg.warn_after:
            decision.action = _stricter(action, "warn")
            if decision.action != action:
                decision.escalation = f"{n} refused or warned prompts within {cfg.window_seconds:g}s (warn at {cfg.warn_after})"
        if n >= cfg.review_after:
            decision.review = True
        return decision

    def reset(self, user: str | None = None) -> None:
        """Forget one user's history (after a review) or everyone's."""
        with self._lock:
            if user is None:
                self._events.clear()
            else:
                self._events.pop(user, None)


def prompt_time(value: Any) -> float | None:
    """A batch line's ``time``: Unix seconds or ISO 8601 (``Z`` allowed), as Unix seconds."""
    if value is None:
        return None
    if isinstance(value, (int, float)):
        return float(value)
    import datetime as _dt

    try:
        return _dt.datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()
    except ValueError as exc:
        raise UsageError(f"time {value!r} is neither Unix seconds nor ISO 8601") from exc


def check_batch(guard: PromptGuard, stream: TextIO) -> Iterator[dict[str, Any]]:
    """Decide every line of a JSONL batch of ``{text, user?, time?, id?}`` in order.

    Yields one record per non-blank line: the decision (with ``line`` and the input's ``id``) or
    ``{"line", "error"}`` for a line that cannot be checked; a bad line never stops the batch.
    """
    for lineno, obj in read_jsonl(stream):
        try:
            if isinstance(obj, JsonlError):
                raise obj
            if not isinstance(obj, dict) or not isinstance(obj.get("text"), str):
                raise UsageError("needs a string field 'text'")
            d = guard.check(obj["text"], user=str(obj["user"]) if obj.get("user") is not None else None,
                            now=prompt_time(obj.get("time")))
        except (JsonlError, UsageError) as exc:
            yield {"line": lineno, "error": str(exc)}
            continue
        rec = d.as_dict()
        rec["line"] = lineno
        if "id" in obj:
            rec["id"] = obj["id"]
        yield rec
