"""The audit trail: append events inside the caller's transaction, verify the whole chain.

Each event's hash is SHA-256 over a canonical JSON of (seq, at, kind, actor, subject, data, prev_hash).
Appending first bumps the single ``audit_head`` row, which takes the write lock (a row lock on PostgreSQL,
the database lock on SQLite), so two appenders can never chain onto the same predecessor. On PostgreSQL an
advisory transaction lock (:data:`PG_AUDIT_LOCK`) is taken before that: appenders in any number of processes
or replicas queue on it, the first event of a new database included (when there is no head row to lock yet,
two first appenders would otherwise both insert one and one would fail). Both are held until the transaction
ends, so the chain is strictly serial and its order is the commit order. The event is
written in the same transaction as the action it records: no action without its event, no event without
its action. ``verify`` recomputes everything and names the first event that does not fit.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import select, text, update
from sqlalchemy.orm import Session

from ..store.queries import rows_changed
from .models import AuditEvent, AuditHead

GENESIS = "0" * 64
#: the PostgreSQL advisory lock that serialises appenders ("tw-audit"); a transaction that writes banks takes
#: their lock (migration 0011) before this one, never after
PG_AUDIT_LOCK = 0x74772D6175646974


def event_hash(seq: int, at: str, kind: str, actor: str, subject: str | None, data: Any, prev_hash: str) -> str:
    body = json.dumps(
        {"seq": seq, "at": at, "kind": kind, "actor": actor, "subject": subject, "data": data, "prev": prev_hash},
        sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str,
    )
    return hashlib.sha256(body.encode("utf-8")).hexdigest()


def append(session: Session, kind: str, actor: str, subject: str | None = None, data: dict | None = None) -> AuditEvent:
    """Append one event in ``session``'s transaction (commit or roll back together with the action)."""
    data = json.loads(json.dumps(data or {}, default=str))  # exactly what the JSON column will return
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": PG_AUDIT_LOCK})
    bumped = session.execute(update(AuditHead).where(AuditHead.id == 1).values(seq=AuditHead.seq + 1))
    if rows_changed(bumped) == 0:
        session.add(AuditHead(id=1, seq=1, hash=GENESIS))
        session.flush()
    head = session.execute(select(AuditHead).where(AuditHead.id == 1)).scalar_one()
    session.refresh(head)
    seq = head.seq
    at = datetime.now(timezone.utc).isoformat(timespec="microseconds")
    prev = head.hash
    digest = event_hash(seq, at, kind, actor, subject, data, prev)
    event = AuditEvent(seq=seq, at=at, kind=kind, actor=actor, subject=subject, data=data, prev_hash=prev, hash=digest)
    session.add(event)
    head.hash = digest
    session.flush()
    return event


@dataclass
class Verification:
    ok: bool
    events: int
    head: str
    first_bad_seq: int | None = None
    problem: str | None = None


def verify(session: Session, batch: int = 5000) -> Verification:
    """Walk the chain in order; report the first event that was edited, deleted, inserted or reordered."""
    expected_seq, prev, count = 1, GENESIS, 0
    last_seq = 0
    while True:
        rows = list(session.scalars(select(AuditEvent).where(AuditEvent.seq > last_seq).order_by(AuditEvent.seq).limit(batch)))
        if not rows:
            break
        for ev in rows:
            if ev.seq != expected_seq:
                return Verification(False, count, prev, expected_seq, f"event {expected_seq} is missing (next present is {ev.seq})")
            if ev.prev_hash != prev:
                return Verification(False, count, prev, ev.seq, "does not chain to the previous event (reordered, inserted or predecessor changed)")
            if event_hash(ev.seq, ev.at, ev.kind, ev.actor, ev.subject, ev.data, ev.prev_hash) != ev.hash:
                return Verification(False, count, prev, ev.seq, "content does not match its hash (edited)")
            prev, expected_seq, count = ev.hash, ev.seq + 1, count + 1
        last_seq = rows[-1].seq
    head = session.get(AuditHead, 1)
    if head is not None and (head.seq != count or head.hash != prev):
        return Verification(False, count, prev, count + 1 if head.seq > count else head.seq,
                            f"the head records {head.seq} events ending {head.hash[:12]}…, the table holds {count}: events removed from the end")
    return Verification(True, count, prev)
