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
:class:`ContentMap` answers "which item, and is it enabled" for a look-up's hits from memory.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..signals.registry import registry
from ..store.models import utcnow
from .models import BankContent, BankContentEntry, BankEntry
from .store import BankError, BankInfo, BankStore, _chunks
from ..store.db import Database

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
    # what the bank keys each value by (a vPDQ's digest: its JSON is stored beside it)
    keys = [(r["signal_type"], registry.kind(r["signal_type"]).storage_key(r["value"])) for r in rows]
    present: dict[tuple[str, str], tuple[int, bool]] = {}
    for chunk in _chunks(sorted({v for _, v in keys})):
        for entry_id, st, value, removed_at in session.execute(
                select(BankEntry.id, BankEntry.signal_type, BankEntry.value, BankEntry.removed_at)
                .where(BankEntry.value.in_(list(chunk)), BankEntry.bank_id == bank.id)):
            present[(st, value)] = (int(entry_id), removed_at is None)
    fresh = [(r, k) for r, k in zip(rows, keys) if k not in present]
    result = AddedContent(id=0, existing=[present[k][0] for k in keys if k in present and present[k][1]],
                          tombstoned=sum(1 for k in keys if k in present and not present[k][1]))
    if fresh:
        result.added = store.insert_batch(bank.id, [r for r, _ in fresh]).added
        wanted = {k for _, k in fresh}
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


_EPOCH = datetime(1970, 1, 2, tzinfo=timezone.utc)


def _utc(value: datetime) -> datetime:
    """SQLite hands back naive datetimes; they are UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=timezone.utc)


class ContentMap:
    """Which content item each bank entry belongs to, and the items' disable times, kept in memory so that a
    look-up's hits are mapped without a database query (the look-up routes answer from memory).

    An entry's item never changes (it is set in the transaction that adds the entry), so the entry map is
    read once per entry and kept (up to ``max_entries``, then started afresh). Disable times change: the
    owner calls :meth:`sync` regularly (the service: with the match index, every second, and at once after a
    change it made), which reads the items updated since the last sync through the ``updated_at`` index."""

    #: items updated this long before the last one seen are read again (a transaction committing late)
    OVERLAP = timedelta(seconds=5)

    def __init__(self, db: Database, max_entries: int = 1_000_000) -> None:
        self.db = db
        self.max_entries = max_entries
        self._items: dict[int, int] = {}
        #: disable_until_ts of the items that are not plainly enabled
        self._disabled: dict[int, int] = {}
        self._seen: datetime | None = None
        self._lock = threading.Lock()

    def sync(self) -> None:
        """Catch up with the disable times changed since the last sync."""
        with self.db.session() as s:
            q = select(BankContent.id, BankContent.disable_until_ts, BankContent.updated_at)
            rows = s.execute(q.where(BankContent.disable_until_ts != ENABLED) if self._seen is None
                             else q.where(BankContent.updated_at >= self._seen - self.OVERLAP)).all()
            newest = s.scalar(select(func.max(BankContent.updated_at))) if self._seen is None else None
        with self._lock:
            seen = [_utc(newest)] if newest is not None else []
            for content_id, disable, updated in rows:
                if int(disable) == ENABLED:
                    self._disabled.pop(int(content_id), None)
                else:
                    self._disabled[int(content_id)] = int(disable)
                seen.append(_utc(updated))
            self._seen = max([*seen, *([self._seen] if self._seen else [])], default=_EPOCH)

    def get(self, entry_ids: Sequence[int]) -> dict[int, tuple[int, int]] | None:
        """{entry id: (item id, disable_until_ts)} from memory; None when an entry was never read (:meth:`load`)."""
        with self._lock:
            out = {}
            for entry_id in entry_ids:
                content_id = self._items.get(entry_id)
                if content_id is None:
                    return None
                out[entry_id] = (content_id, self._disabled.get(content_id, ENABLED))
            return out

    def read(self, entry_ids: Sequence[int]) -> dict[int, tuple[int, int]]:
        """:meth:`get`'s answer from the database."""
        with self.db.session() as s:
            return content_ids(s, entry_ids)

    def load(self, entry_ids: Sequence[int]) -> None:
        """Read the items of entries not read before."""
        found = self.read(entry_ids)
        with self._lock:
            if len(self._items) + len(found) > self.max_entries:
                self._items.clear()
            self._items.update({e: c for e, (c, _) in found.items()})
