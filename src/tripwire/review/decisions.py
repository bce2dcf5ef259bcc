"""Which decision stands for an item, and which decisions may leave the tool.

Decisions are append-only: an item's newest decision (highest id) is the one that counts.
"""

from __future__ import annotations

from typing import Iterable

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from .models import Decision

__all__ = ["EXPORTABLE", "latest_decisions"]

#: decisions that may travel in a VICS case export (non-pertinent files are useful to investigators)
EXPORTABLE: tuple[str, ...] = ("confirmed_abuse", "ai_generated", "not_abuse")
_CHUNK = 500


def latest_decisions(session: Session, item_ids: Iterable[int]) -> dict[int, Decision]:
    """The newest decision of each item (highest id: decisions are append-only)."""
    ids = sorted(set(item_ids))
    out: dict[int, Decision] = {}
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start : start + _CHUNK]
        newest = (select(Decision.item_id, func.max(Decision.id).label("id"))
                  .where(Decision.item_id.in_(chunk)).group_by(Decision.item_id).subquery())
        for row in session.scalars(select(Decision).join(newest, Decision.id == newest.c.id)):
            out[row.item_id] = row
    return out
