"""The review queue, item details and decisions — shared by the JSON API and the console.

A decision is a row in ``decisions`` (append-only: a later decision supersedes, never overwrites), a
queue-state change, optionally the item's hashes added to a bank, and an audit event — all in one
transaction, so an acknowledged decision is never half-recorded.

Decisions and banks:

* ``confirmed_abuse`` may add the item's hashes to a *positive* bank: the next upload of the same file
  (or, through PDQ, a near-duplicate) matches it;
* ``not_abuse`` may add them to a *negative* bank (an allow-list), which suppresses a false positive;
* ``needs_escalation`` moves the item to the ``escalated`` queue for a second reviewer;
* every other decision closes the item's queue entry.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Mapping

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..banks.store import BankError
from ..records import ItemRecord, flatten
from ..review import audit
from ..review.models import DECISIONS, QUEUE_STATES, Decision, ItemContext, QueueEntry
from ..store.db import Database
from ..store.models import Case, Content, Fact, ItemRow
from .bankops import joined_store

#: hashes a decision can put in a bank
BANKABLE = ("md5", "sha1", "sha256", "pdq")


class ReviewError(Exception):
    """The request cannot be carried out as asked (status: 400 unless ``status`` says otherwise)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.isoformat()


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


def queue(db: Database, state: str = "open", limit: int = 50, offset: int = 0) -> dict[str, Any]:
    """Queue entries in ``state``, highest priority first (oldest first among equals)."""
    if state not in QUEUE_STATES:
        raise ReviewError(f"unknown queue state {state!r} (expected one of {', '.join(QUEUE_STATES)})")
    with db.session() as s:
        total = s.scalar(select(func.count()).select_from(QueueEntry).where(QueueEntry.state == state)) or 0
        rows = s.execute(
            select(QueueEntry, ItemRow, ItemContext)
            .join(ItemRow, ItemRow.id == QueueEntry.item_id)
            .outerjoin(ItemContext, ItemContext.item_id == QueueEntry.item_id)
            .where(QueueEntry.state == state)
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
    return {"state": state, "total": total, "limit": limit, "offset": offset, "items": items}


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


def decide(db: Database, item_id: int, decision: str, actor: str, note: str | None = None,
           bank: str | None = None, category: str | None = None, signals: list[str] | None = None) -> dict[str, Any]:
    """Record a decision (see the module docs); returns the decision and what was added to a bank."""
    if decision not in DECISIONS:
        raise ReviewError(f"unknown decision {decision!r} (expected one of {', '.join(DECISIONS)})")
    note = (note or "").strip() or None
    if note is not None and len(note) > 10_000:
        raise ReviewError("the note is longer than 10,000 characters")
    bank = (bank or "").strip() or None
    if bank and decision not in ("confirmed_abuse", "not_abuse"):
        raise ReviewError("only confirmed_abuse (positive bank) or not_abuse (allow-list bank) can add hashes to a bank")
    wanted = list(signals or BANKABLE)
    unknown = [t for t in wanted if t not in BANKABLE]
    if unknown:
        raise ReviewError(f"cannot bank {', '.join(unknown)} (expected some of {', '.join(BANKABLE)})")
    now = datetime.now(timezone.utc)
    with db.session() as s:
        item = s.get(ItemRow, item_id)
        if item is None:
            raise ReviewError(f"no item {item_id}", 404)
        banked: dict[str, Any] | None = None
        if bank:
            banked = _bank_item(db, s, item, bank, decision, category, wanted, actor)
        row = Decision(item_id=item_id, decision=decision, note=note, reviewer=actor, bank=bank if banked else None,
                       created_at=now)
        s.add(row)
        s.flush()
        q = s.get(QueueEntry, item_id)
        new_state = "escalated" if decision == "needs_escalation" else "decided"
        if q is not None:
            q.state = new_state
            q.updated_at = now
        audit.append(s, "decision", actor, subject=f"item:{item_id}",
                     data={"decision_id": row.id, "decision": decision, "note": note, "sha256": item.sha256,
                           "queue_state": new_state if q is not None else None, "bank": banked})
        return {"id": row.id, "item_id": item_id, "decision": decision, "note": note, "reviewer": actor,
                "created_at": _iso(now), "queue_state": new_state if q is not None else None, "bank": banked}


def _bank_item(db: Database, s, item: ItemRow, bank: str, decision: str, category: str | None,
               wanted: list[str], actor: str) -> dict[str, Any]:
    from ..banks.importer import RawEntry, normalise_entry

    store = joined_store(db, s)
    try:
        info = store.get_bank(bank)
    except BankError as exc:
        raise ReviewError(str(exc), 404) from exc
    if decision == "confirmed_abuse" and info.negative:
        raise ReviewError(f"bank {bank!r} is an allow-list: a confirmed item goes into a positive bank")
    if decision == "not_abuse" and not info.negative:
        raise ReviewError(f"bank {bank!r} is not an allow-list: a not_abuse item can only go into a negative bank")
    content = s.get(Content, item.sha256) if item.sha256 else None
    if content is None:
        raise ReviewError("this item has no digests (it could not be read): nothing to add to a bank", 409)
    rows = []
    for signal_type in wanted:
        value = getattr(content, signal_type, None)
        if not value:
            continue
        raw = RawEntry(f"item {item.id}", signal_type, value, category, False, f"item:{item.id}", None, None,
                       f"{decision} by {actor}")
        try:
            rows.append(normalise_entry(raw, info))
        except ValueError as exc:
            raise ReviewError(str(exc)) from exc
    result = store.insert_batch(info.id, rows)
    audit.append(s, "bank.add", actor, subject=f"bank:{info.name}",
                 data={"bank": info.name, "from_item": item.id, "added": result.added, "existing": result.existing,
                       "tombstoned": result.tombstoned, "count": len(rows),
                       "values": [{"signal_type": r["signal_type"], "value": r["value"], "category": r.get("category")} for r in rows]})
    return {"name": info.name, "added": result.added, "existing": result.existing, "tombstoned": result.tombstoned,
            "signals": [r["signal_type"] for r in rows]}


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
