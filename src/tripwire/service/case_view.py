"""Case work in the console: the cases of a database, a case's items page by page (highest priority first)
by where their review stands, bulk decisions, and the items related to one item.

**Case mode and the platform stream** (docs/review.md). A case — a hotline's report batch, a seized drive
scanned with ``tripwire scan`` — is reviewed *whole*: every item, highest triage priority first, whatever
the policy recommended. Where an item stands is its newest decision (decisions are append-only):

* ``todo``: no decision yet, or the newest one was withdrawn (an undo);
* ``escalated``: the newest decision is ``needs_escalation``;
* ``decided``: any other decision.

The review queue (``review_queue``) is the *platform stream*: uploads the policy sent to a person. Both use
the same decisions, through the same :func:`tripwire.review.deciding.decide`.

Related items (:func:`related_items`) are what a reviewer checks next: the same file elsewhere, its
near-duplicates (same cluster; the PDQ distance to each is shown and those within the cluster radius
flagged), the same account, and the same generator series (model, LoRAs and prompt template; seeds
listed).
"""

from __future__ import annotations

from typing import Any, Sequence

from sqlalchemy import Select, case, func, or_, select
from sqlalchemy.orm import Session

from ..config import Config
from ..match.cluster import settings as cluster_settings
from ..match.models import SeriesMember
from ..review.deciding import ReviewError, decide
from ..review.models import WITHDRAWN, Decision, ItemContext, QueueEntry
from ..signals.hamming import hamming_hex
from ..store.db import Database
from ..store.models import Case, Content, ItemRow, iso

__all__ = ["VIEWS", "bulk_decide", "case_items", "case_name", "cases", "next_in_case", "related_items", "standing", "withdraw"]

#: what a case page lists
VIEWS: tuple[str, ...] = ("todo", "escalated", "decided", "all")
#: most items one bulk decision may name (a page of the grid is at most this)
MAX_BULK = 500
#: most related items listed per kind
MAX_RELATED = 24


def short_path(path: str) -> str:
    """The file name, with the archive member path when there is one (``pack.zip!/album/boat.jpg``)."""
    top, sep, member = path.partition("!/")
    return top.rsplit("/", 1)[-1] + sep + member


def standing(decision: str | None) -> str:
    """Where an item's review stands, from its newest decision (see the module docs)."""
    if decision is None or decision == WITHDRAWN:
        return "todo"
    return "escalated" if decision == "needs_escalation" else "decided"


def _newest(case_id: int) -> Any:
    """Newest decision id per item of a case (a subquery)."""
    return (select(Decision.item_id.label("item_id"), func.max(Decision.id).label("id"))
            .join(ItemRow, ItemRow.id == Decision.item_id).where(ItemRow.case_id == case_id)
            .group_by(Decision.item_id).subquery())


def _in_view(q: Select, view: str) -> Select:
    if view == "todo":
        return q.where(or_(Decision.id.is_(None), Decision.decision == WITHDRAWN))
    if view == "escalated":
        return q.where(Decision.decision == "needs_escalation")
    if view == "decided":
        return q.where(Decision.id.is_not(None), Decision.decision.not_in([WITHDRAWN, "needs_escalation"]))
    return q


def _case(s: Session, case_id: int) -> Case:
    case = s.get(Case, case_id)
    if case is None:
        raise ReviewError(f"no case {case_id}", 404)
    return case


def case_name(db: Database, case_id: int) -> str:
    with db.session() as s:
        return _case(s, case_id).name


def cases(db: Database) -> list[dict[str, Any]]:
    """Every case with its item count, how many are to do / escalated / decided, and open queue entries."""
    with db.session() as s:
        items = dict(s.execute(select(ItemRow.case_id, func.count()).group_by(ItemRow.case_id)).all())
        newest = (select(Decision.item_id.label("item_id"), func.max(Decision.id).label("id"))
                  .group_by(Decision.item_id).subquery())
        by_decision = s.execute(
            select(ItemRow.case_id, Decision.decision, func.count())
            .join(newest, newest.c.item_id == ItemRow.id).join(Decision, Decision.id == newest.c.id)
            .group_by(ItemRow.case_id, Decision.decision)).all()
        queued = dict(s.execute(select(ItemRow.case_id, func.count()).join(QueueEntry, QueueEntry.item_id == ItemRow.id)
                                .where(QueueEntry.state == "open").group_by(ItemRow.case_id)).all())
        out = []
        for row in s.scalars(select(Case).order_by(Case.created_at.desc(), Case.id.desc())):
            counts = {"todo": 0, "escalated": 0, "decided": 0}
            for case_id, decision, n in by_decision:
                if case_id == row.id:
                    counts[standing(decision)] += int(n)
            total = int(items.get(row.id, 0))
            counts["todo"] += total - sum(counts.values())
            out.append({"id": row.id, "name": row.name, "created_at": iso(row.created_at), "items": total,
                        "queued": int(queued.get(row.id, 0)), **counts})
        return out


def case_items(db: Database, case_id: int, view: str = "todo", page: int = 1, per_page: int = 60) -> dict[str, Any]:
    """One page of a case's items in ``view``, highest priority first, with each item's newest decision."""
    if view not in VIEWS:
        raise ReviewError(f"unknown view {view!r} (expected one of {', '.join(VIEWS)})")
    page, per_page = max(1, page), max(1, min(per_page, MAX_BULK))
    with db.session() as s:
        found = _case(s, case_id)
        newest = _newest(case_id)
        base = (select(ItemRow, Decision).outerjoin(newest, newest.c.item_id == ItemRow.id)
                .outerjoin(Decision, Decision.id == newest.c.id).where(ItemRow.case_id == case_id))
        bucket = case((or_(Decision.id.is_(None), Decision.decision == WITHDRAWN), "todo"),
                      (Decision.decision == "needs_escalation", "escalated"), else_="decided")
        counts = {v: 0 for v in VIEWS}
        for name, n in s.execute(select(bucket, func.count()).select_from(ItemRow)
                                 .outerjoin(newest, newest.c.item_id == ItemRow.id)
                                 .outerjoin(Decision, Decision.id == newest.c.id)
                                 .where(ItemRow.case_id == case_id).group_by(bucket)).all():
            counts[name] = int(n)
        counts["all"] = sum(counts[v] for v in VIEWS if v != "all")
        rows = s.execute(_in_view(base, view).order_by(ItemRow.priority.desc().nulls_last(), ItemRow.id)
                         .limit(per_page).offset((page - 1) * per_page)).all()
        items = []
        for item, decision in rows:
            stage = item.stage_data or {}
            policy = stage.get("policy") if isinstance(stage.get("policy"), dict) else {}
            items.append({
                "id": item.id, "path": item.path, "name": short_path(item.path), "media_type": item.media_type,
                "size": item.size, "error": item.error_code, "priority": item.priority,
                "priority_reason": stage.get("priority_reason"), "action": (policy or {}).get("action"),
                "matches": len([m for m in stage.get("matches") or [] if isinstance(m, dict) and not m.get("negative")]),
                "image": bool(item.sha256) and (item.media_type or "").startswith("image/"),
                "decision": decision.decision if decision else None, "state": standing(decision.decision if decision else None),
                "reviewer": decision.reviewer if decision else None,
                "decided_at": iso(decision.created_at) if decision else None,
            })
        total = counts[view]
        return {"case": {"id": found.id, "name": found.name}, "view": view, "page": page, "per_page": per_page,
                "pages": max(1, -(-total // per_page)), "total": total, "counts": counts, "items": items}


def next_in_case(db: Database, case_id: int, after: int | None = None) -> int | None:
    """The highest-priority item of the case still to do, other than ``after`` (what the console opens next)."""
    with db.session() as s:
        newest = _newest(case_id)
        q = _in_view(select(ItemRow.id).outerjoin(newest, newest.c.item_id == ItemRow.id)
                     .outerjoin(Decision, Decision.id == newest.c.id).where(ItemRow.case_id == case_id), "todo")
        if after is not None:
            q = q.where(ItemRow.id != after)
        return s.scalar(q.order_by(ItemRow.priority.desc().nulls_last(), ItemRow.id).limit(1))


def bulk_decide(db: Database, case_id: int, item_ids: Sequence[int], decision: str, actor: str, note: str | None = None,
                bank: str | None = None, category: str | None = None) -> dict[str, Any]:
    """One decision for each named item of the case, each through :func:`decide` (its own decision row, queue
    change, bank addition and audit event, in its own transaction). Items of other cases are refused."""
    ids = sorted({int(i) for i in item_ids})
    if not ids:
        raise ReviewError("select at least one item")
    if len(ids) > MAX_BULK:
        raise ReviewError(f"at most {MAX_BULK} items in one bulk decision")
    with db.session() as s:
        _case(s, case_id)
        ours = set(s.scalars(select(ItemRow.id).where(ItemRow.id.in_(ids), ItemRow.case_id == case_id)))
    foreign = [i for i in ids if i not in ours]
    if foreign:
        raise ReviewError(f"not items of this case: {', '.join(map(str, foreign[:20]))}")
    text = f"{(note or '').strip()} [bulk decision from the case grid, {len(ids)} items]".strip()
    if decision == WITHDRAWN:
        done = [r["id"] for r in (withdraw(db, i, actor, text, missing_ok=True) for i in ids) if r is not None]
    else:
        done = [decide(db, item_id, decision, actor, text, bank, category, via="console")["id"] for item_id in ids]
    return {"decided": len(done), "decision_ids": done}


def withdraw(db: Database, item_id: int, actor: str, note: str | None = None,
             missing_ok: bool = False) -> dict[str, Any] | None:
    """Undo: take back the item's newest decision with a new, audited ``withdrawn`` decision naming it (nothing
    is rewritten). An item without a standing decision is refused (None with ``missing_ok``)."""
    with db.session() as s:
        newest = s.scalar(select(Decision).where(Decision.item_id == item_id).order_by(Decision.id.desc()).limit(1))
        taken = None if newest is None or newest.decision == WITHDRAWN else (newest.id, newest.decision, newest.reviewer)
    if taken is None:
        if missing_ok:
            return None
        raise ReviewError("nothing to undo: the item has no standing decision", 409)
    text = f"undo of decision {taken[0]} ({taken[1]} by {taken[2]}) {(note or '').strip()}".strip()
    return decide(db, item_id, WITHDRAWN, actor, text, via="console")


def related_items(db: Database, item_id: int, config: Config | None = None) -> dict[str, Any]:
    """Items related to ``item_id``: ``copies`` (same SHA-256, any case), ``near`` (same cluster, with PDQ
    distances; ``close`` when within the cluster radius), ``account`` (same platform account) and ``series``
    (same generator series, with seeds). Each list is capped at :data:`MAX_RELATED`."""
    radius, _ = cluster_settings(config)
    with db.session() as s:
        item = s.get(ItemRow, item_id)
        if item is None:
            raise ReviewError(f"no item {item_id}", 404)
        stage = item.stage_data or {}

        def listed(q: Select) -> list[dict[str, Any]]:
            rows = s.execute(q.add_columns(Case.name).join(Case, Case.id == ItemRow.case_id)
                             .where(ItemRow.id != item_id).order_by(ItemRow.priority.desc().nulls_last(), ItemRow.id)
                             .limit(MAX_RELATED)).all()
            return [{"id": r[0].id, "path": r[0].path, "name": short_path(r[0].path), "case": r[-1], "priority": r[0].priority,
                     **({"extra": r[1]} if len(r) > 2 else {})} for r in rows]

        copies = listed(select(ItemRow).where(ItemRow.sha256 == item.sha256)) if item.sha256 else []
        near: list[dict[str, Any]] = []
        cluster = stage.get("cluster")
        if isinstance(cluster, int):
            mine = s.scalar(select(Content.pdq).where(Content.sha256 == item.sha256)) if item.sha256 else None
            for entry in listed(select(ItemRow, Content.pdq).outerjoin(Content, Content.sha256 == ItemRow.sha256)
                                .where(ItemRow.case_id == item.case_id, ItemRow.stage_data["cluster"].as_integer() == cluster)):
                pdq = entry.pop("extra", None)
                distance = hamming_hex(mine, pdq) if mine and pdq and len(mine) == len(pdq) else None
                near.append({**entry, "distance": distance, "close": distance is not None and distance <= radius})
        account: list[dict[str, Any]] = []
        ctx = s.get(ItemContext, item_id)
        if ctx is not None and ctx.account_id:
            account = listed(select(ItemRow).join(ItemContext, ItemContext.item_id == ItemRow.id)
                             .where(ItemContext.account_id == ctx.account_id, ItemContext.platform.is_(ctx.platform)
                                    if ctx.platform is None else ItemContext.platform == ctx.platform))
        series_id = s.scalar(select(SeriesMember.series_id).where(SeriesMember.item_id == item_id))
        series = []
        if series_id is not None:
            series = [{**e, "seed": e.pop("extra", None)} for e in listed(
                select(ItemRow, SeriesMember.seed).join(SeriesMember, SeriesMember.item_id == ItemRow.id)
                .where(SeriesMember.series_id == series_id))]
        return {"copies": copies, "near": near, "cluster": cluster if isinstance(cluster, int) else None,
                "radius": radius, "account": account,
                "account_label": (ctx.account_handle or ctx.account_id) if ctx is not None else None,
                "series": series, "series_id": series_id}
