"""The review queue, item details and decisions — shared by the JSON API and the console.

Recording a decision lives one layer down, in :mod:`tripwire.review.deciding` (``tripwire decide`` uses the
same function); it is re-exported here for the routes.
"""

from __future__ import annotations

from typing import Any, Mapping

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..records import ItemRecord, flatten
from ..review import audit
from ..review.deciding import BANKABLE, ReviewError, decide
from ..review.decisions import latest_decisions
from ..review.models import QUEUE_STATES, Decision, ItemContext, QueueEntry
from ..store.db import Database
from ..store.models import Case, Fact, ItemRow, iso as _iso

__all__ = ["BANKABLE", "ReviewError", "decide", "item_detail", "item_record", "next_item", "queue", "queue_counts",
           "record_reveal"]


def _summary(record: Mapping[str, Any]) -> dict[str, Any]:
    found = record.get("provenance")
    prov: Mapping[str, Any] = found if isinstance(found, dict) else {}
    matches = record.get("matches") or []
    return {
        "provenance": prov.get("label"),
        "provenance_confidence": prov.get("confidence"),
        "generator": prov.get("tool"),
        "matches": len([m for m in matches if isinstance(m, dict) and not m.get("negative")]),
        "banks": sorted({str(m.get("bank")) for m in matches if isinstance(m, dict)}),
    }


def queue(db: Database, state: str = "open", limit: int = 50, offset: int = 0, case_id: int | None = None) -> dict[str, Any]:
    """Queue entries in ``state`` (of one case with ``case_id``), highest priority first (oldest first among equals)."""
    if state not in QUEUE_STATES:
        raise ReviewError(f"unknown queue state {state!r} (expected one of {', '.join(QUEUE_STATES)})")
    where = [QueueEntry.state == state] + ([ItemRow.case_id == case_id] if case_id is not None else [])
    with db.session() as s:
        total = s.scalar(select(func.count()).select_from(QueueEntry).join(ItemRow, ItemRow.id == QueueEntry.item_id)
                         .where(*where)) or 0
        rows = s.execute(
            select(QueueEntry, ItemRow, ItemContext)
            .join(ItemRow, ItemRow.id == QueueEntry.item_id)
            .outerjoin(ItemContext, ItemContext.item_id == QueueEntry.item_id)
            .where(*where)
            .order_by(QueueEntry.priority.desc(), QueueEntry.queued_at, QueueEntry.item_id)
            .limit(limit).offset(offset)
        ).all()
        items = []
        for q, item, ctx in rows:
            stage = item.stage_data or {}
            items.append({
                "id": item.id, "state": q.state, "action": q.action, "rule": q.rule, "priority": q.priority,
                "priority_reason": stage.get("priority_reason"), "queued_at": _iso(q.queued_at),
                "path": item.path, "media_type": item.media_type, "size": item.size, "sha256": item.sha256,
                "error": item.error_code, **_summary(stage | _provenance_of(s, item)),
                "context": {"platform": ctx.platform, "post_id": ctx.post_id, "account_handle": ctx.account_handle} if ctx else None,
            })
        newest = latest_decisions(s, [it["id"] for it in items])
        for it in items:  # what the Decided view shows: the standing decision, who made it, when
            d = newest.get(it["id"])
            it.update({"decision": d.decision if d else None, "reviewer": d.reviewer if d else None,
                       "decided_at": _iso(d.created_at) if d else None})
    return {"state": state, "total": total, "limit": limit, "offset": offset, "items": items,
            **({"case_id": case_id} if case_id is not None else {})}


def _provenance_of(s, item: ItemRow) -> dict[str, Any]:
    if not item.sha256:
        return {}
    data = s.scalar(select(Fact.data).where(Fact.sha256 == item.sha256, Fact.extractor == "provenance"))
    return {"provenance": (data or {}).get("provenance")} if data else {}


def item_record(s: Session, item: ItemRow) -> ItemRecord:
    """The item's full record, rebuilt from its content's facts and its stage data (as items.jsonl has it)."""
    facts: dict[str, dict] = {}
    if item.sha256:
        for f in s.scalars(select(Fact).where(Fact.sha256 == item.sha256).order_by(Fact.extractor)):
            error = {"code": f.error_code, "message": f.error_message} if f.error_code else None
            facts[f.extractor] = {"version": f.version, "data": f.data, "error": error}
    error = {"code": item.error_code, "message": item.error_message} if item.error_code else None
    return flatten(item.path, item.size, item.media_type, error, facts, item.stage_data)


def item_detail(db: Database, item_id: int) -> dict[str, Any]:
    with db.session() as s:
        item = s.get(ItemRow, item_id)
        if item is None:
            raise ReviewError(f"no item {item_id}", 404)
        record = item_record(s, item)
        case = s.get(Case, item.case_id)
        ctx = s.get(ItemContext, item_id)
        q = s.get(QueueEntry, item_id)
        decisions = list(s.scalars(select(Decision).where(Decision.item_id == item_id).order_by(Decision.id)))
        return {
            "id": item.id,
            "case": case.name if case else None,
            "scanned_at": _iso(item.scanned_at),
            "record": record,
            "context": {k: getattr(ctx, k) for k in ("platform", "post_id", "url", "account_id", "account_handle",
                                                     "profile_url", "ip_events", "extra")} if ctx else None,
            "queue": {"state": q.state, "action": q.action, "rule": q.rule, "priority": q.priority,
                      "queued_at": _iso(q.queued_at), "updated_at": _iso(q.updated_at)} if q else None,
            "decisions": [{"id": d.id, "decision": d.decision, "note": d.note, "reviewer": d.reviewer, "bank": d.bank,
                           "created_at": _iso(d.created_at)} for d in decisions],
        }


def next_item(db: Database, after: int | None = None, state: str = "open") -> int | None:
    """The highest-priority item in ``state`` other than ``after`` (what the console opens next)."""
    with db.session() as s:
        q = select(QueueEntry.item_id).where(QueueEntry.state == state)
        if after is not None:
            q = q.where(QueueEntry.item_id != after)
        return s.scalar(q.order_by(QueueEntry.priority.desc(), QueueEntry.queued_at, QueueEntry.item_id).limit(1))


def record_reveal(db: Database, item_id: int, actor: str) -> None:
    """A reviewer chose to see an item's media unblurred: an audit event, before anything is shown."""
    with db.session() as s:
        item = s.get(ItemRow, item_id)
        if item is None:
            raise ReviewError(f"no item {item_id}", 404)
        audit.append(s, "media.reveal", actor, subject=f"item:{item_id}", data={"sha256": item.sha256})


def queue_counts(db: Database) -> dict[str, int]:
    with db.session() as s:
        rows = s.execute(select(QueueEntry.state, func.count()).group_by(QueueEntry.state)).all()
    counts = {state: 0 for state in QUEUE_STATES}
    counts.update({state: int(n) for state, n in rows})
    return counts
