"""Reviewed items: what reporting, VICS export and signal sharing are allowed to see.

Automated output only recommends; a report or a shared signal about a person needs a recorded human decision
(../shared/SAFETY.md, rule 8). Every output module gets its items from here, and this module hands out only
items whose *latest* decision (decisions are append-only; a newer one supersedes) is one of the allowed
values. Asking for a specific item that has no such decision is an error, not a silent skip, so a command
never appears to have reported something it did not.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Mapping, Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..errors import UsageError
from ..records import PDQ_DRAFT, PDQ_DRAFT_NOTE, ItemRecord, flatten
from ..review.decisions import latest_decisions
from ..review.models import DECISIONS, Decision, ItemContext
from ..store.models import Case, Fact, ItemRow

#: decisions that support a report or a shared signal (AI-generated abuse material is reported too)
REPORTABLE: tuple[str, ...] = ("confirmed_abuse", "ai_generated")
_CHUNK = 500


def draft_pdq_warning(count: int) -> str | None:
    """What a command that wrote ``count`` draft-decode PDQ hashes says about them (None: it wrote none)."""
    if not count:
        return None
    return (f"{count} PDQ hash(es) in this output come from the draft decode ([scan] pdq_decode = \"draft\"): {PDQ_DRAFT_NOTE}; "
            "a scan with the exact decode gives the hash partners compute")


class NotDecided(UsageError):
    """Items were named for an output that needs a recorded human decision they do not have."""

    def __init__(self, message: str, item_ids: Sequence[int]) -> None:
        super().__init__(message)
        self.item_ids = list(item_ids)


@dataclass(frozen=True)
class DecisionInfo:
    id: int
    decision: str
    reviewer: str
    note: str | None
    bank: str | None
    created_at: datetime | None

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "decision": self.decision, "reviewer": self.reviewer, "note": self.note,
                "bank": self.bank, "created_at": self.created_at.isoformat() if self.created_at else None}


@dataclass
class ReviewedItem:
    """One item with its rebuilt record, its platform context and its latest human decision."""

    item_id: int
    case_id: int
    case_name: str
    path: str
    sha256: str | None
    size: int | None
    media_type: str | None
    scanned_at: datetime | None
    record: ItemRecord
    decision: DecisionInfo
    context: dict[str, Any] = field(default_factory=dict)
    #: the exact bytes of ``path`` when it is not UTF-8 (items.path_raw); ``path`` is then the display form
    path_raw: bytes | None = None

    @property
    def md5(self) -> str | None:
        return _hex(self.record.get("md5"))

    @property
    def sha1(self) -> str | None:
        return _hex(self.record.get("sha1"))

    @property
    def pdq(self) -> str | None:
        return _hex(self.record.get("pdq"))

    @property
    def pdq_quality(self) -> int | None:
        q = self.record.get("pdq_quality")
        return int(q) if isinstance(q, (int, float)) else None

    @property
    def pdq_draft(self) -> bool:
        """Whether ``pdq`` comes from the draft decode (not the hash partners compute): outputs say so."""
        return self.record.get("pdq_decode") == PDQ_DRAFT

    @property
    def video_details(self) -> str | None:
        """``video 12.0 s, h264, 1280x720; matched 0-9 s (bank hotline)``: a video's facts and the time ranges
        that matched a bank (vPDQ, or a frame in an image bank), for the reports; None for other items."""
        video = self.record.get("video")
        if not isinstance(video, dict):
            return None
        parts = [f"video {float(video['duration']):.1f} s" if isinstance(video.get("duration"), (int, float)) else "video"]
        parts += [str(video[k]) for k in ("codec",) if video.get(k)]
        if video.get("width") and video.get("height"):
            parts.append(f"{video['width']}x{video['height']}")
        text = ", ".join(parts)
        ranges = []
        for m in self.record.get("matches") or []:
            if not isinstance(m, dict) or m.get("negative"):
                continue
            spans = [f"{a:g}-{b:g} s" for a, b in (m.get("matched_ranges") or [])[:5]]
            if not spans and str(m.get("variant") or "").startswith("frame@"):
                spans = [f"{str(m['variant'])[6:]} s"]
            if spans:
                ranges.append(f"{', '.join(spans)} (bank {m.get('bank')})")
        return text + (f"; matched {'; '.join(ranges[:5])}" if ranges else "")

    @property
    def provenance(self) -> Mapping[str, Any]:
        p = self.record.get("provenance")
        return p if isinstance(p, dict) else {}

    @property
    def provenance_label(self) -> str:
        return str(self.provenance.get("label") or "unknown")

    @property
    def provenance_tool(self) -> str | None:
        tool = self.provenance.get("tool")
        return str(tool) if tool else None

    @property
    def extra(self) -> dict[str, Any]:
        extra = self.context.get("extra")
        return extra if isinstance(extra, dict) else {}

    @property
    def is_ai_generated(self) -> bool:
        """Provenance evidence or the reviewer says generative AI made it."""
        return self.provenance_label == "ai_generated" or self.decision.decision == "ai_generated"


def _hex(value: Any) -> str | None:
    return value.lower() if isinstance(value, str) and value else None


def _context(row: ItemContext | None) -> dict[str, Any]:
    if row is None:
        return {}
    return {"platform": row.platform, "post_id": row.post_id, "url": row.url, "account_id": row.account_id,
            "account_handle": row.account_handle, "profile_url": row.profile_url,
            "ip_events": list(row.ip_events or []), "extra": dict(row.extra or {})}


def load_items(session: Session, item_ids: Sequence[int], decisions: dict[int, Decision]) -> list[ReviewedItem]:
    """Rebuild the records (items + facts, as ``iter_records`` does) of items that have a decision."""
    out: list[ReviewedItem] = []
    ids = [i for i in item_ids if i in decisions]
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start : start + _CHUNK]
        rows = {r.id: r for r in session.scalars(select(ItemRow).where(ItemRow.id.in_(chunk)))}
        cases = dict(session.execute(select(Case.id, Case.name).where(Case.id.in_({r.case_id for r in rows.values()}))).all())
        contexts = {c.item_id: c for c in session.scalars(select(ItemContext).where(ItemContext.item_id.in_(chunk)))}
        shas = {r.sha256 for r in rows.values() if r.sha256}
        facts: dict[str, dict[str, dict]] = {}
        if shas:
            for f in session.scalars(select(Fact).where(Fact.sha256.in_(shas)).order_by(Fact.extractor)):
                error = {"code": f.error_code, "message": f.error_message} if f.error_code else None
                facts.setdefault(f.sha256, {})[f.extractor] = {"version": f.version, "data": f.data, "error": error}
        for item_id in chunk:
            r = rows.get(item_id)
            if r is None:
                continue
            error = {"code": r.error_code, "message": r.error_message} if r.error_code else None
            record = flatten(r.path, r.size, r.media_type, error, facts.get(r.sha256, {}) if r.sha256 else {}, r.stage_data)
            d = decisions[item_id]
            out.append(ReviewedItem(
                item_id=r.id, case_id=r.case_id, case_name=cases.get(r.case_id, ""), path=r.path,
                sha256=r.sha256 or _hex(record.get("sha256")), size=r.size, media_type=r.media_type,
                scanned_at=r.scanned_at, record=record,
                decision=DecisionInfo(d.id, d.decision, d.reviewer, d.note, d.bank, d.created_at),
                context=_context(contexts.get(item_id)), path_raw=r.path_raw,
            ))
    return out


def reviewed_items(session: Session, *, item_ids: Sequence[int] | None = None, case: str | None = None,
                   allowed: Sequence[str] = REPORTABLE) -> list[ReviewedItem]:
    """Items whose latest decision is in ``allowed``: the named items (all must qualify) or a case's items.

    Raises :class:`NotDecided` when a named item has no qualifying decision, and ``UsageError`` for an
    unknown case or item.
    """
    bad = set(allowed) - set(DECISIONS)
    if bad:
        raise ValueError(f"unknown decision value(s): {', '.join(sorted(bad))}")
    if (item_ids is None) == (case is None):
        raise ValueError("name items or a case, not both")
    if item_ids is not None:
        ids = sorted(set(int(i) for i in item_ids))
        found = set(session.scalars(select(ItemRow.id).where(ItemRow.id.in_(ids)))) if ids else set()
        missing = [i for i in ids if i not in found]
        if missing:
            raise UsageError(f"no item with id {', '.join(map(str, missing))}")
    else:
        case_id = session.scalar(select(Case.id).where(Case.name == case))
        if case_id is None:
            known = ", ".join(session.scalars(select(Case.name).order_by(Case.name))) or "none"
            raise UsageError(f"no case named {case!r} (cases: {known})")
        ids = list(session.scalars(
            select(ItemRow.id).where(ItemRow.case_id == case_id, ItemRow.id.in_(select(Decision.item_id))).order_by(ItemRow.id)
        ))
    decisions = latest_decisions(session, ids)
    qualifying = {i: d for i, d in decisions.items() if d.decision in allowed}
    if item_ids is not None:
        refused = [i for i in ids if i not in qualifying]
        if refused:
            detail = "; ".join(
                f"item {i}: " + (f"latest decision is {decisions[i].decision!r}" if i in decisions else "no recorded decision")
                for i in refused[:20]
            )
            raise NotDecided(
                f"refused: these items have no recorded human decision of {', '.join(allowed)} ({detail})", refused)
    return load_items(session, ids, qualifying)


def parse_target(text: str) -> tuple[str, str]:
    """``item:12`` / ``case:NAME`` / a bare number (an item) / anything else (a case name)."""
    text = text.strip()
    if text.startswith("item:"):
        return "item", text[5:]
    if text.startswith("case:"):
        return "case", text[5:]
    if text.isdigit():
        return "item", text
    return "case", text
