"""Recording a reviewer's decision: the one path the console, the JSON API and ``tripwire decide`` share.

A decision is a row in ``decisions`` (append-only: a later decision supersedes, never overwrites), a
queue-state change, optionally the item's hashes added to a bank, and an audit event — all in one
transaction, so an acknowledged decision is never half-recorded.

Decisions and banks:

* ``confirmed_abuse`` may add the item's hashes to a *positive* bank: the next upload of the same file
  (or, through PDQ, a near-duplicate) matches it;
* ``not_abuse`` may add them to a *negative* bank (an allow-list), which suppresses a false positive;
* ``needs_escalation`` moves the item to the ``escalated`` queue for a second reviewer;
* ``withdrawn`` (:data:`~.models.WITHDRAWN`, the console's undo) takes back the newest decision: the
  item's queue entry reopens and the item is to be reviewed again, and the bank entries its decisions
  added (entries whose source is ``item:ID``) are removed again (tombstoned, a ``bank.remove`` event), as no
  decision stands behind them any more; an entry that was in the bank before (another source) stays;
* every other decision closes the item's queue entry.

Amending a decision is deciding again: the newest decision stands, the earlier ones stay on record.

``category`` is the category of the bank entries a decision adds (it is not stored without a bank).
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import select

from ..banks.importer import RawEntry, normalise_entry
from ..banks.joined import joined_store
from ..banks.models import BankEntry
from ..banks.store import BankError
from ..store.db import Database
from ..store.models import Content, ItemRow, iso
from . import audit
from .models import DECISIONS, WITHDRAWN, Decision, QueueEntry

__all__ = ["BANKABLE", "ReviewError", "decide"]

#: hashes a decision can put in a bank
BANKABLE = ("md5", "sha1", "sha256", "pdq")


class ReviewError(Exception):
    """The request cannot be carried out as asked (status: 400 unless ``status`` says otherwise)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def decide(db: Database, item_id: int, decision: str, actor: str, note: str | None = None,
           bank: str | None = None, category: str | None = None, signals: list[str] | None = None,
           via: str | None = None) -> dict[str, Any]:
    """Record a decision (see the module docs); returns the decision and what was added to a bank.

    ``actor`` is the person deciding (never empty: a decision is a human act); ``via`` names the front it
    came through (``cli``, ...) and is recorded in the audit event when given."""
    actor = (actor or "").strip()
    if not actor:
        raise ReviewError("a decision needs the reviewer who made it")
    if decision not in DECISIONS and decision != WITHDRAWN:
        raise ReviewError(f"unknown decision {decision!r} (expected one of {', '.join(DECISIONS)}, or {WITHDRAWN})")
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
        retracted = _retract(db, s, item, actor) if decision == WITHDRAWN else []
        row = Decision(item_id=item_id, decision=decision, note=note, reviewer=actor, bank=bank if banked else None,
                       created_at=now)
        s.add(row)
        s.flush()
        q = s.get(QueueEntry, item_id)
        new_state = {"needs_escalation": "escalated", WITHDRAWN: "open"}.get(decision, "decided")
        if q is not None:
            q.state = new_state
            q.updated_at = now
        audit.append(s, "decision", actor, subject=f"item:{item_id}",
                     data={"decision_id": row.id, "decision": decision, "note": note, "sha256": item.sha256,
                           "queue_state": new_state if q is not None else None, "bank": banked,
                           **({"retracted": retracted} if retracted else {}), **({"via": via} if via else {})})
        return {"id": row.id, "item_id": item_id, "decision": decision, "note": note, "reviewer": actor,
                "created_at": iso(now), "queue_state": new_state if q is not None else None, "bank": banked,
                **({"retracted": retracted} if retracted else {})}


def _retract(db: Database, s, item: ItemRow, actor: str) -> list[dict[str, Any]]:
    """Remove the active bank entries the item's decisions added (source ``item:ID``), bank by bank."""
    retracted = []
    store = joined_store(db, s)
    names = s.scalars(select(Decision.bank).where(Decision.item_id == item.id, Decision.bank.is_not(None)).distinct())
    for name in sorted(set(names)):
        try:
            info = store.get_bank(name)
        except BankError:  # the bank was deleted since: nothing left to take out
            continue
        ids = list(s.scalars(select(BankEntry.id).where(BankEntry.bank_id == info.id, BankEntry.source_id == f"item:{item.id}",
                                                       BankEntry.removed_at.is_(None))))
        if not ids:
            continue
        reason = f"the decision on item {item.id} was withdrawn by {actor}"
        removed = store.remove_entries(name, ids=ids, reason=reason)
        audit.append(s, "bank.remove", actor, subject=f"bank:{name}",
                     data={"removed": removed, "ids": ids[:100], "values": [], "reason": reason, "from_item": item.id})
        retracted.append({"name": name, "removed": removed})
    return retracted


def _bank_item(db: Database, s, item: ItemRow, bank: str, decision: str, category: str | None,
               wanted: list[str], actor: str) -> dict[str, Any]:
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
