"""Content items: several entries of one bank that stand for one piece of content (HMA's ``bank_content``).

HMA stores a piece of content once, with every signal computed from it (a PDQ and an MD5 of one upload), a
note, user metadata and a disable time; a look-up of any of its signals answers the content's id. tripwire
keeps one entry per (bank, signal type, value) — what the matcher, the indexes, exports and re-matching read
— and groups entries into an item with ``bank_contents`` + ``bank_content_entries`` (:mod:`.models`):

* an item's id is the smallest id of the entries it was created with, so item ids and the ids of entries in
  no item (imports, ``/v1`` adds: each is an item of its own, id = entry id) share one space;
* an entry belongs to at most one item; adding a value the bank already holds leaves it where it is (the
  bank keeps one entry per value, so a match reports one item), and a removed value is not re-added
  (tombstones are kept, as for imports);
* removing an item tombstones its entries (audit trail and index sync as any removal); an item with no
  active entry is gone.

Every function takes the caller's session, so the change commits with the caller's audit event.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..store.models import utcnow
from .models import BankContent, BankContentEntry, BankEntry
from .store import BankError, BankInfo, BankStore, _chunks

#: HMA's magic ``disable_until_ts`` values (any other value is a Unix time)
ENABLED = 1
DISABLED = 0


def is_enabled(disable_until_ts: int, now: float | None = None) -> bool:
    """HMA's rule: 0 disabled, 1 enabled, else enabled once the time has passed."""
    if disable_until_ts == DISABLED:
        return False
    if disable_until_ts == ENABLED:
        return True
    return disable_until_ts <= (time.time() if now is None else now)


@dataclass(frozen=True)
class ContentItem:
    """One item as HMA shows it: its active signals (canonical type -> value) and its settings."""

    id: int
    bank: BankInfo
    signals: dict[str, str]
    entry_ids: tuple[int, ...]
    note: str | None = None
    metadata: dict[str, Any] | None = None
    disable_until_ts: int = ENABLED

    @property
    def enabled(self) -> bool:
        return is_enabled(self.disable_until_ts)


@dataclass
class AddedContent:
    """What :func:`add_content` did: the item id a look-up of the given signals answers, and the counts."""

    id: int
    added: int = 0
    #: values already active in the bank (they stay in the item they belong to)
    existing: list[int] = field(default_factory=list)
    #: values removed from the bank earlier (not re-added)
    tombstoned: int = 0


def add_content(store: BankStore, session: Session, bank: BankInfo, rows: Sequence[dict[str, Any]],
                note: str | None = None, metadata: dict[str, Any] | None = None) -> AddedContent:
    """Add normalised entry rows as one item (``store`` must join ``session``: see :mod:`.joined`).

    New values make a new item (with ``note`` and ``metadata``); when every value is already active in the
    bank, the item of the first one is answered (adding the same content twice is a no-op). BankError when
    nothing is new and nothing is active (every value was removed from this bank earlier)."""
    keys = [(r["signal_type"], r["value"]) for r in rows]
    present: dict[tuple[str, str], tuple[int, bool]] = {}
    for chunk in _chunks(sorted({v for _, v in keys})):
        for entry_id, st, value, removed_at in session.execute(
                select(BankEntry.id, BankEntry.signal_type, BankEntry.value, BankEntry.removed_at)
                .where(BankEntry.value.in_(list(chunk)), BankEntry.bank_id == bank.id)):
            present[(st, value)] = (int(entry_id), removed_at is None)
    fresh = [r for r in rows if (r["signal_type"], r["value"]) not in present]
    result = AddedContent(id=0, existing=[present[k][0] for k in keys if k in present and present[k][1]],
                          tombstoned=sum(1 for k in keys if k in present and not present[k][1]))
    if fresh:
        result.added = store.insert_batch(bank.id, fresh).added
        wanted = {(r["signal_type"], r["value"]) for r in fresh}
        new_ids = sorted(int(i) for chunk in _chunks(sorted({v for _, v in wanted}))
                         for i, st, value in session.execute(
                             select(BankEntry.id, BankEntry.signal_type, BankEntry.value)
                             .where(BankEntry.value.in_(list(chunk)), BankEntry.bank_id == bank.id,
                                    BankEntry.removed_at.is_(None)))
                         if (st, value) in wanted)
        if new_ids:
            now = utcnow()
            session.add(BankContent(id=new_ids[0], bank_id=bank.id, note=note, user_metadata=metadata or None,
                                    disable_until_ts=ENABLED, created_at=now, updated_at=now))
            session.flush()
            session.add_all([BankContentEntry(entry_id=i, content_id=new_ids[0]) for i in new_ids])
            session.flush()
            result.id = new_ids[0]
            return result
    if not result.existing:
        raise BankError(f"every signal given was removed from bank {bank.name!r} earlier; removed entries are "
                        "not re-added (restore them: tripwire bank restore)")
    result.id = content_ids(session, result.existing[:1])[result.existing[0]][0]
    return result


def content_ids(session: Session, entry_ids: Sequence[int]) -> dict[int, tuple[int, int]]:
    """{entry id: (item id, disable_until_ts)} for ``entry_ids``; an entry in no item is its own item."""
    out = {int(i): (int(i), ENABLED) for i in entry_ids}
    for chunk in _chunks(list(out)):
        for entry_id, content_id, disable in session.execute(
                select(BankContentEntry.entry_id, BankContentEntry.content_id, BankContent.disable_until_ts)
                .join(BankContent, BankContent.id == BankContentEntry.content_id)
                .where(BankContentEntry.entry_id.in_(list(chunk)))):
            out[int(entry_id)] = (int(content_id), int(disable))
    return out


def get_content(session: Session, bank: BankInfo, content_id: int) -> ContentItem | None:
    """The item ``content_id`` of ``bank`` with its active signals; None when there is none (or it is empty)."""
    row = session.get(BankContent, content_id)
    if row is not None:
        if row.bank_id != bank.id:
            return None
        members = list(session.scalars(select(BankContentEntry.entry_id).where(BankContentEntry.content_id == content_id)))
    else:
        owner = session.scalar(select(BankContentEntry.content_id).where(BankContentEntry.entry_id == content_id))
        if owner is not None:  # an entry of another item: its id names no item
            return None
        members = [content_id]
    entries = session.execute(select(BankEntry.id, BankEntry.signal_type, BankEntry.value).where(
        BankEntry.id.in_(members), BankEntry.bank_id == bank.id, BankEntry.removed_at.is_(None))
        .order_by(BankEntry.id)).all()
    if not entries:
        return None
    return ContentItem(content_id, bank, {st: value for _, st, value in entries}, tuple(int(e[0]) for e in entries),
                       row.note if row else None, row.user_metadata if row else None,
                       int(row.disable_until_ts) if row else ENABLED)


def update_content(session: Session, item: ContentItem, **changes: Any) -> ContentItem:
    """Set ``note`` and/or ``disable_until_ts`` of an item (an entry in no item becomes an item of one)."""
    unknown = set(changes) - {"note", "disable_until_ts"}
    if unknown:
        raise BankError(f"unknown content setting(s): {', '.join(sorted(unknown))}")
    row = session.get(BankContent, item.id)
    now = utcnow()
    if row is None:
        row = BankContent(id=item.id, bank_id=item.bank.id, note=None, user_metadata=None, disable_until_ts=ENABLED,
                          created_at=now, updated_at=now)
        session.add(row)
        session.flush()
        session.add(BankContentEntry(entry_id=item.id, content_id=item.id))
    for key, value in changes.items():
        setattr(row, key, value)
    row.updated_at = now
    session.flush()
    return ContentItem(item.id, item.bank, item.signals, item.entry_ids, row.note, row.user_metadata,
                       int(row.disable_until_ts))
