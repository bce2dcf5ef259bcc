"""Confirmed trade signals: what a posts scan surfaced *and* a reviewer confirmed.

Trade detection finds candidate accounts, destination URLs, keywords and media hashes; a reviewer decides.
Only items that were *both* surfaced by a scan (a flagged post, a flagged network) *and* confirmed by a
recorded human decision become :class:`Signal` objects. Sharing them goes through the sharing package:
:meth:`Signal.shared` turns one into a :class:`tripwire.sharing.indicators.SharedSignal` (the reviewer's
name stays home) and :func:`tripwire.sharing.indicators.write_signals` writes it, so ``tripwire posts
signals`` and ``tripwire signals export`` write the same formats and columns. Nothing is shared on the
strength of automation alone.

Reviewer decisions are JSONL, one decision per line (docs/trade.md)::

    {"subject": "account", "platform": "pixiv", "id": "42", "decision": "confirmed",
     "reviewer": "analyst-7", "decided_at": "2025-02-01T10:00:00Z", "category": "trade", "note": "..."}
    {"subject": "url", "value": "https://patreon.com/placeholder-creator-1", "decision": "confirmed", ...}
    {"subject": "keyword", "value": "term-1", "decision": "confirmed", "category": "alpha", ...}
    {"subject": "media", "signal_type": "pdq", "value": "<64 hex>", "decision": "rejected", ...}

``decision`` is ``confirmed`` or ``rejected``; for the same subject the last line wins. Confirmed accounts
are also risk seeds for ``tripwire posts scan --decisions``; rejected ones lose the risk their own posts
gave them (a reviewed false positive).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterator, TypedDict

from ..errors import UsageError
from ..jsonl import JsonlError, read_jsonl, strict
from ..sharing.indicators import SharedSignal
from .links import classify_url, extract_links

__all__ = [
    "SIGNAL_TYPES",
    "Signal",
    "Decision",
    "load_decisions",
    "signals_from_scan",
]

SIGNAL_TYPES = ("url", "account", "keyword", "sha256", "md5", "pdq")
SUBJECTS = ("account", "url", "keyword", "media")
DECISIONS = ("confirmed", "rejected")


@dataclass(frozen=True)
class Signal:
    """One shareable indicator. ``value`` is normalised: canonical URL, ``platform:id`` for an account,
    the keyword as listed, lower-case hex for hashes."""

    type: str
    value: str
    category: str
    confidence: float
    #: provenance label: which tool/run/network surfaced it
    source: str
    #: the reviewer whose recorded decision confirmed it
    confirmed_by: str
    confirmed_at: str | None = None
    platform: str | None = None
    handle: str | None = None
    note: str = ""
    evidence: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.type not in SIGNAL_TYPES:
            raise ValueError(f"signal type must be one of {SIGNAL_TYPES}, not {self.type!r}")
        if not self.confirmed_by:
            raise ValueError("a signal needs the reviewer who confirmed it")
        if not 0.0 <= self.confidence <= 1.0:
            raise ValueError("confidence must be between 0 and 1")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def shared(self) -> SharedSignal:
        """This signal as peers receive it: the same indicator without the reviewer's name or the evidence."""
        return SharedSignal(self.type, self.value, self.category, float(self.confidence), provenance="",
                            source=self.source, confirmed_at=self.confirmed_at, platform=self.platform,
                            handle=self.handle, note=self.note)


class _Confirmation(TypedDict):
    """The fields every signal of one reviewer decision shares."""

    confirmed_by: str
    confirmed_at: str | None
    note: str


@dataclass(frozen=True)
class Decision:
    subject: str
    decision: str
    reviewer: str
    value: str = ""
    platform: str = ""
    id: str = ""
    signal_type: str = ""
    category: str = ""
    decided_at: str | None = None
    note: str = ""
    confidence: float | None = None
    line: int = 0

    @property
    def key(self) -> tuple[str, str]:
        if self.subject == "account":
            return ("account", f"{self.platform}:{self.id}")
        if self.subject == "media":
            return ("media", f"{self.signal_type}:{self.value}")
        return (self.subject, self.value)


def _norm_value(subject: str, value: str, signal_type: str = "") -> str:
    if subject == "url":
        found = extract_links(value.strip(), "decision")  # reviewers may paste the disguised form
        link = found[0] if len(found) == 1 else classify_url(value.strip())
        if link is None:
            return value.strip()
        return link.destination or link.url
    if subject == "media":
        return value.strip().lower()
    return value.strip()


def parse_decision(obj: Any, line: int, where: str) -> Decision:
    if not isinstance(obj, dict):
        raise UsageError(f"{where}:{line}: a decision must be a JSON object")
    subject = obj.get("subject")
    decision = obj.get("decision")
    reviewer = obj.get("reviewer") or obj.get("confirmed_by")
    if subject not in SUBJECTS:
        raise UsageError(f"{where}:{line}: subject must be one of {', '.join(SUBJECTS)}")
    if decision not in DECISIONS:
        raise UsageError(f"{where}:{line}: decision must be one of {', '.join(DECISIONS)}")
    if not isinstance(reviewer, str) or not reviewer:
        raise UsageError(f"{where}:{line}: a decision needs the reviewer who made it")
    conf = obj.get("confidence")
    if conf is not None and not (isinstance(conf, (int, float)) and 0 <= conf <= 1):
        raise UsageError(f"{where}:{line}: confidence must be a number between 0 and 1")
    st = str(obj.get("signal_type", "")).lower()
    if subject == "account":
        if not obj.get("platform") or obj.get("id") in (None, ""):
            raise UsageError(f"{where}:{line}: an account decision needs platform and id")
    elif not obj.get("value"):
        raise UsageError(f"{where}:{line}: a {subject} decision needs a value")
    if subject == "media" and st not in ("sha256", "md5", "pdq"):
        raise UsageError(f"{where}:{line}: a media decision needs signal_type sha256, md5 or pdq")
    return Decision(
        subject=subject, decision=decision, reviewer=reviewer,
        value=_norm_value(subject, str(obj.get("value", "")), st),
        platform=str(obj.get("platform", "")).strip().lower(), id=str(obj.get("id", "")),
        signal_type=st, category=str(obj.get("category", "")), decided_at=obj.get("decided_at"),
        note=str(obj.get("note", "")), confidence=float(conf) if conf is not None else None, line=line,
    )


def load_decisions(path: str | Path) -> dict[tuple[str, str], Decision]:
    """Reviewer decisions keyed by subject; for the same subject the last line wins."""
    p = Path(path)
    out: dict[tuple[str, str], Decision] = {}
    try:
        with p.open(encoding="utf-8") as fh:
            for lineno, obj in strict(read_jsonl(fh)):
                d = parse_decision(obj, lineno, p.name)
                out[d.key] = d
    except JsonlError as exc:
        raise UsageError(f"{p.name}:{exc.line}: {exc}") from exc
    except OSError as exc:
        raise UsageError(f"cannot read decisions {p}: {exc}") from exc
    return out


def _read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    """The records of a scan output file this tool wrote itself: any bad line means the folder is damaged."""
    try:
        with path.open(encoding="utf-8") as fh:
            for _, rec in strict(read_jsonl(fh)):
                yield rec
    except JsonlError as exc:
        raise UsageError(f"{path}:{exc.line}: {exc}") from exc


def signals_from_scan(out_dir: str | Path, decisions: dict[tuple[str, str], Decision],
                      source: str | None = None) -> list[Signal]:
    """Signals for every confirmed decision whose subject a scan surfaced as risky.

    ``out_dir`` is a ``tripwire posts scan`` output folder (accounts.jsonl, networks.json, posts.jsonl).
    Surfaced means: an account with flagged posts, a bank match, a seed or risk > 0; a destination or
    media hash in a flagged network; a keyword that matched in a flagged post.
    """
    d = Path(out_dir)
    try:
        networks = json.loads((d / "networks.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise UsageError(f"cannot read {d / 'networks.json'}: {exc}") from exc
    label = source or f"tripwire posts scan ({d.name})"
    flagged_nets = [n for n in networks.get("networks", []) if n.get("flagged")]
    dest_net: dict[str, str] = {}
    media_net: dict[str, str] = {}
    for n in flagged_nets:
        for dest in n.get("destinations", []):
            dest_net.setdefault(dest["url"], n["id"])
        for m in n.get("media", []):
            media_net.setdefault(m["key"], n["id"])
    accounts: dict[str, dict[str, Any]] = {}
    if (d / "accounts.jsonl").exists():
        for rec in _read_jsonl(d / "accounts.jsonl"):
            if rec.get("flagged_posts") or rec.get("risk", 0) > 0 or rec.get("bank_matches") or rec.get("seeds"):
                accounts[f"{rec['platform']}:{rec['id']}"] = rec
    want_keywords = {k[1] for k, dec in decisions.items() if k[0] == "keyword" and dec.decision == "confirmed"}
    keyword_posts: dict[str, list[str]] = {}
    if want_keywords and (d / "posts.jsonl").exists():
        for rec in _read_jsonl(d / "posts.jsonl"):
            if not rec.get("flagged"):
                continue
            for t in rec.get("terms", []):
                if t["term"] in want_keywords:
                    lst = keyword_posts.setdefault(t["term"], [])
                    if len(lst) < 10:
                        lst.append(f"post {rec['platform']}:{rec['post_id']}")
    out: list[Signal] = []
    for (subject, value), dec in decisions.items():
        if dec.decision != "confirmed":
            continue
        conf = dec.confidence if dec.confidence is not None else 1.0
        common: _Confirmation = {"confirmed_by": dec.reviewer, "confirmed_at": dec.decided_at, "note": dec.note}
        if subject == "account":
            acc = accounts.get(value)
            if acc is None:
                continue
            ev = [f"risk {acc.get('risk', 0):.2f}", f"{acc.get('flagged_posts', 0)} flagged posts"]
            if acc.get("network"):
                ev.append(f"network {acc['network']}")
            out.append(Signal("account", value, dec.category or "trade", conf, label, platform=acc["platform"],
                              handle=acc.get("handle") or None, evidence=ev, **common))
        elif subject == "url":
            net = dest_net.get(value)
            if net is None:
                continue
            out.append(Signal("url", value, dec.category or "trade", conf, label, evidence=[f"network {net}"],
                              **common))
        elif subject == "keyword":
            posts = keyword_posts.get(value)
            if not posts:
                continue
            out.append(Signal("keyword", value, dec.category or "trade", conf, label, evidence=posts, **common))
        elif subject == "media":
            key = f"{dec.signal_type}:{dec.value}"
            net = media_net.get(key)
            if net is None:
                continue
            out.append(Signal(dec.signal_type, dec.value, dec.category or "trade", conf, label,
                              evidence=[f"network {net}"], **common))
    out.sort(key=lambda s: (s.type, s.value))
    return out

