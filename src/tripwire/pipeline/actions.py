"""The actions step: what the policy's outcome makes happen, written with the items it concerns.

Today that is one thing: an item whose ``policy`` says ``queue`` gets an ``open`` review-queue entry
carrying the action, the deciding rule and the triage priority. The entries are added in the transaction
that stores the items, so a queued item is never stored without its entry (nor an entry without its item).
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..records import ItemRecord
from ..review.models import QueueEntry


def wants_review(record: ItemRecord) -> bool:
    policy = record.get("policy")
    return bool(policy and policy.get("queue"))


def queue_items(s: Session, records: Iterable[ItemRecord], ids: dict[str, int]) -> int:
    """Open queue entries for the stored ``records`` whose policy says queue; returns how many were added.

    An item that already has an entry (a re-run over items stored before) keeps it unchanged.
    """
    wanted = {ids[r["path"]]: r for r in records if wants_review(r) and r["path"] in ids}
    if not wanted:
        return 0
    existing = set(s.scalars(select(QueueEntry.item_id).where(QueueEntry.item_id.in_(list(wanted)))))
    now = datetime.now(timezone.utc)
    added = 0
    for item_id, record in wanted.items():
        if item_id in existing:
            continue
        policy = record["policy"]
        s.add(QueueEntry(item_id=item_id, state="open", action=policy.get("action") or "review",
                         rule=policy.get("rule"), priority=float(record.get("priority") or 0.0),
                         queued_at=now, updated_at=now))
        added += 1
    return added
