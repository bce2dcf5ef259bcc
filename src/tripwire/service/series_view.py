"""A series as one reviewable unit (tripwire.match.series): its shared facts, members, the accounts and cases
it spans, and one bulk decision that becomes one audited decision per member.

The bulk decision goes through :func:`.reviewing.decide` for every member — the same append-only
``decisions`` row, queue-state change and audit event as deciding each item on its own, with the series
named in the note — so nothing downstream (reports, VICS export, sharing) needs to know a series exists.
Each member is its own transaction: a member that fails (deleted meanwhile) is reported, the others stand.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from ..match.models import Series, SeriesMember
from ..review.models import Decision, ItemContext, QueueEntry
from ..store.db import Database
from ..store.models import Case, ItemRow, iso as _iso
from .reviewing import ReviewError, decide

#: members listed on the page (the bulk decision still covers every member)
MAX_LISTED = 1000


def seed_pattern(seeds: list[int]) -> str:
    """``fixed``, ``consecutive`` (a run of +1 steps, in any order), ``varied`` or ``unknown``."""
    distinct = sorted(set(seeds))
    if not distinct:
        return "unknown"
    if len(distinct) == 1:
        return "fixed" if len(seeds) > 1 else "single"
    steps = sum(1 for a, b in zip(distinct, distinct[1:]) if b - a == 1)
    if steps == len(distinct) - 1:
        return "consecutive"
    if steps >= (len(distinct) - 1) / 2:
        return "mostly consecutive"
    return "varied"


def series_member_ids(db: Database, series_id: int) -> list[int]:
    with db.session() as s:
        if s.get(Series, series_id) is None:
            raise ReviewError(f"no series {series_id}", 404)
        return list(s.scalars(select(SeriesMember.item_id).where(SeriesMember.series_id == series_id)
                              .order_by(SeriesMember.item_id)))


def series_detail(db: Database, series_id: int) -> dict[str, Any]:
    """Shared facts, members (with queue state and latest decision), accounts and cases of one series."""
    with db.session() as s:
        row = s.get(Series, series_id)
        if row is None:
            raise ReviewError(f"no series {series_id}", 404)
        members = s.execute(
            select(SeriesMember, ItemRow, Case.name, QueueEntry.state, ItemContext)
            .join(ItemRow, ItemRow.id == SeriesMember.item_id)
            .join(Case, Case.id == ItemRow.case_id)
            .outerjoin(QueueEntry, QueueEntry.item_id == ItemRow.id)
            .outerjoin(ItemContext, ItemContext.item_id == ItemRow.id)
            .where(SeriesMember.series_id == series_id).order_by(ItemRow.id)).all()
        ids = [m.ItemRow.id for m in members]
        latest: dict[int, str] = {}
        for start in range(0, len(ids), 500):
            for item_id, decision in s.execute(select(Decision.item_id, Decision.decision)
                                               .where(Decision.item_id.in_(ids[start:start + 500]))
                                               .order_by(Decision.id)).all():
                latest[item_id] = decision
        seeds = [m.SeriesMember.seed for m in members if m.SeriesMember.seed is not None]
        cases: dict[str, int] = {}
        accounts: dict[tuple[str, str], int] = {}
        listed: list[dict[str, Any]] = []
        for member, item, case, state, ctx in members:
            cases[case] = cases.get(case, 0) + 1
            if ctx is not None and (ctx.account_handle or ctx.account_id):
                key = (ctx.platform or "", ctx.account_handle or ctx.account_id or "")
                accounts[key] = accounts.get(key, 0) + 1
            if len(listed) < MAX_LISTED:
                listed.append({"id": item.id, "path": item.path, "case": case, "seed": member.seed,
                               "state": state, "decision": latest.get(item.id), "sha256": item.sha256,
                               "media_type": item.media_type, "scanned_at": _iso(item.scanned_at)})
        return {
            "id": row.id, "model": row.model, "model_hash": row.model_hash, "checkpoint": row.checkpoint,
            "loras": row.loras or [], "template": row.template, "members": len(members),
            "seed_min": row.seed_min, "seed_max": row.seed_max, "seed_pattern": seed_pattern(seeds),
            "first_seen": _iso(row.first_seen), "last_seen": _iso(row.last_seen),
            "cases": [{"name": n, "items": c} for n, c in sorted(cases.items())],
            "accounts": [{"platform": p, "account": a, "items": c} for (p, a), c in sorted(accounts.items())],
            "decided": sum(1 for i in ids if i in latest), "items": listed, "listed_all": len(listed) == len(members),
        }


def decide_series(db: Database, series_id: int, decision: str, actor: str, note: str | None = None) -> dict[str, Any]:
    """One decision for every member: one audited decision row each (see the module docs)."""
    ids = series_member_ids(db, series_id)
    if not ids:
        raise ReviewError(f"series {series_id} has no members", 409)
    text = (note or "").strip()
    text = f"{text} [bulk decision for series {series_id}, {len(ids)} items]".strip()
    done, failed = [], []
    for item_id in ids:
        try:
            done.append(decide(db, item_id, decision, actor, text)["id"])
        except ReviewError as exc:
            if exc.status != 404:
                raise
            failed.append(item_id)
    return {"series": series_id, "decision": decision, "decided": len(done), "decision_ids": done, "missing": failed}
