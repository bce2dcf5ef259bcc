"""Bank and entry operations on the case/service database (SQLite or PostgreSQL).

Everything that writes entries goes through :class:`BankStore`, so the rules hold everywhere: values are
normalised before they are stored, re-adding an existing value is a no-op (``ON CONFLICT DO NOTHING``),
a removal is a tombstone plus a ``bank_changes`` row the PDQ index replays, and large inputs are written
in bounded batches (one transaction each) so an import of millions of rows never holds them all in memory.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Iterable, Iterator, Sequence, cast

from sqlalchemy import Table, and_, case, delete, func, insert, nulls_last, select, tuple_, update

from ..store.db import Database
from ..store.models import utcnow
from ..store.queries import dialect_insert
from .categories import check_scheme
from .models import Bank, BankChange, BankEntry
from ..signals.registry import registry

# declarative models type ``__table__`` as a FromClause; it is this Table
ENTRY_TABLE = cast(Table, BankEntry.__table__)
BANK_TABLE = cast(Table, Bank.__table__)
#: rows per INSERT transaction during imports
DEFAULT_BATCH = 5000
#: parameters per IN (...) list: stays under SQLite's and PostgreSQL's limits
_CHUNK = 500


class BankError(Exception):
    """A bank operation cannot be done as asked (unknown bank, duplicate name, bad setting)."""


@dataclass(frozen=True)
class BankInfo:
    """A bank's settings, detached from any session."""

    id: int
    name: str
    source: str
    description: str
    category_scheme: str
    negative: bool
    pdq_radius: int
    min_quality: int
    enabled: bool
    created_at: datetime | None = None
    updated_at: datetime | None = None

    @classmethod
    def of(cls, row: Bank) -> "BankInfo":
        return cls(row.id, row.name, row.source or "", row.description or "", row.category_scheme, bool(row.negative),
                   int(row.pdq_radius), int(row.min_quality), bool(row.enabled), row.created_at, row.updated_at)

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for key in ("created_at", "updated_at"):
            d[key] = d[key].isoformat() if d[key] else None
        return d


@dataclass
class BankSummary:
    bank: BankInfo
    #: active entries per signal type
    counts: dict[str, int] = field(default_factory=dict)
    removed: int = 0

    @property
    def active(self) -> int:
        return sum(self.counts.values())

    @property
    def unsupported(self) -> dict[str, int]:
        return {k: v for k, v in self.counts.items() if k not in registry.names()}

    def as_dict(self) -> dict[str, Any]:
        return {**self.bank.as_dict(), "entries": self.active, "by_type": dict(sorted(self.counts.items())),
                "unsupported": dict(sorted(self.unsupported.items())), "removed": self.removed}


@dataclass(frozen=True)
class EntryRow:
    """One stored entry, as exporters and the matcher see it."""

    id: int
    bank_id: int
    signal_type: str
    value: str
    category: str | None = None
    source_id: str | None = None
    series: str | None = None
    tags: tuple[str, ...] | None = None
    notes: str | None = None
    added_at: datetime | None = None
    removed_at: datetime | None = None
    removed_reason: str | None = None

    def content(self) -> tuple:
        """What an import/export round trip must preserve (not ids or timestamps)."""
        return (self.signal_type, self.value, self.category, self.source_id, self.series, self.tags, self.notes)


@dataclass
class BatchResult:
    added: int = 0
    #: already present and active (or repeated inside the input)
    existing: int = 0
    #: already present but removed: a re-import never revives a tombstone
    tombstoned: int = 0


_ENTRY_COLUMNS = (
    BankEntry.id, BankEntry.bank_id, BankEntry.signal_type, BankEntry.value, BankEntry.category, BankEntry.source_id,
    BankEntry.series, BankEntry.tags, BankEntry.notes, BankEntry.added_at, BankEntry.removed_at, BankEntry.removed_reason,
    BankEntry.data,
)


def _entry(row: Sequence[Any]) -> EntryRow:
    values = list(row)
    tags = values[7]
    values[7] = tuple(tags) if tags is not None else None
    data = values.pop()
    if data is not None:  # the whole value of a type keyed by a digest of it (vPDQ)
        values[3] = data
    return EntryRow(*values)


def _chunks(seq: Sequence[Any], size: int = _CHUNK) -> Iterator[Sequence[Any]]:
    for start in range(0, len(seq), size):
        yield seq[start : start + size]


class BankStore:
    """Banks and their entries in one :class:`~tripwire.store.db.Database`."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # -- banks ---------------------------------------------------------------------------------------

    def create_bank(self, name: str, *, source: str = "", description: str = "", category_scheme: str = "vics",
                    negative: bool = False, pdq_radius: int = 31, min_quality: int = 50,
                    enabled: bool = True) -> BankInfo:
        name = (name or "").strip()
        if not name or len(name) > 200:
            raise BankError("a bank name must be 1-200 characters")
        settings = self._validated(category_scheme=category_scheme, pdq_radius=pdq_radius, min_quality=min_quality)
        with self.db.session() as s:
            if s.scalar(select(Bank.id).where(Bank.name == name)) is not None:
                raise BankError(f"a bank named {name!r} already exists")
            now = utcnow()
            row = Bank(name=name, source=source or "", description=description or "", negative=bool(negative),
                       enabled=bool(enabled), created_at=now, updated_at=now, **settings)
            s.add(row)
            s.flush()
            return BankInfo.of(row)

    def update_bank(self, bank: str, /, **changes: Any) -> BankInfo:
        """Change settings (name, source, description, category_scheme, negative, pdq_radius, min_quality,
        enabled); ``None`` values are left unchanged."""
        allowed = {"source", "description", "category_scheme", "negative", "pdq_radius", "min_quality", "enabled", "name"}
        unknown = set(changes) - allowed
        if unknown:
            raise BankError(f"unknown bank setting(s): {', '.join(sorted(unknown))}")
        changes = {k: v for k, v in changes.items() if v is not None}
        changes.update(self._validated(**{k: changes[k] for k in ("category_scheme", "pdq_radius", "min_quality") if k in changes}))
        with self.db.session() as s:
            row = self._bank_row(s, bank)
            if "name" in changes:
                new = str(changes["name"]).strip()
                if not new or len(new) > 200:
                    raise BankError("a bank name must be 1-200 characters")
                if new != row.name and s.scalar(select(Bank.id).where(Bank.name == new)) is not None:
                    raise BankError(f"a bank named {new!r} already exists")
                changes["name"] = new
            if "category_scheme" in changes and changes["category_scheme"] != row.category_scheme:
                used = s.scalar(select(func.count()).select_from(BankEntry)
                                .where(BankEntry.bank_id == row.id, BankEntry.category.is_not(None)))
                if used:
                    raise BankError(f"bank {bank!r} has {used} categorised entries: its category scheme cannot change")
            for key, value in changes.items():
                setattr(row, key, value)
            row.updated_at = utcnow()
            s.flush()
            return BankInfo.of(row)

    @staticmethod
    def _validated(**settings: Any) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if "category_scheme" in settings:
            try:
                out["category_scheme"] = check_scheme(settings["category_scheme"])
            except ValueError as exc:
                raise BankError(str(exc)) from exc
        if "pdq_radius" in settings:
            radius = int(settings["pdq_radius"])
            if not 0 <= radius <= 128:
                raise BankError("the PDQ radius must be between 0 and 128 bits")
            out["pdq_radius"] = radius
        if "min_quality" in settings:
            quality = int(settings["min_quality"])
            if not 0 <= quality <= 100:
                raise BankError("the minimum PDQ quality must be between 0 and 100")
            out["min_quality"] = quality
        return out

    @staticmethod
    def _bank_row(session, name: str) -> Bank:
        row = session.scalar(select(Bank).where(Bank.name == name))
        if row is None:
            known = ", ".join(session.scalars(select(Bank.name).order_by(Bank.name)).all()) or "none"
            raise BankError(f"no bank named {name!r} (banks: {known})")
        return row

    def get_bank(self, name: str) -> BankInfo:
        with self.db.session() as s:
            return BankInfo.of(self._bank_row(s, name))

    def banks(self) -> list[BankInfo]:
        with self.db.session() as s:
            return [BankInfo.of(r) for r in s.scalars(select(Bank).order_by(Bank.name))]

    def list_banks(self) -> list[BankSummary]:
        """Every bank with its active entry counts per signal type and its tombstone count."""
        with self.db.session() as s:
            summaries = {r.id: BankSummary(BankInfo.of(r)) for r in s.scalars(select(Bank).order_by(Bank.name))}
            removed = case((BankEntry.removed_at.is_(None), 0), else_=1)
            rows = s.execute(
                select(BankEntry.bank_id, BankEntry.signal_type, removed, func.count())
                .group_by(BankEntry.bank_id, BankEntry.signal_type, removed)
            )
            for bank_id, signal_type, is_removed, count in rows:
                summary = summaries.get(bank_id)
                if summary is None:
                    continue
                if is_removed:
                    summary.removed += count
                else:
                    summary.counts[signal_type] = summary.counts.get(signal_type, 0) + count
            return list(summaries.values())

    def delete_bank(self, name: str) -> int:
        """Drop a bank and all its entries; returns the number of entries deleted."""
        with self.db.session() as s:
            row = self._bank_row(s, name)
            count = s.scalar(select(func.count()).select_from(BankEntry).where(BankEntry.bank_id == row.id)) or 0
            s.execute(delete(BankEntry).where(BankEntry.bank_id == row.id))
            s.execute(delete(Bank).where(Bank.id == row.id))
            s.add(BankChange(bank_id=row.id, entry_id=None, op="drop", at=utcnow()))
            return count

    # -- entries -------------------------------------------------------------------------------------

    def insert_batch(self, bank_id: int, rows: Iterable[dict[str, Any]]) -> BatchResult:
        """Insert normalised entry dicts (signal_type, value, category, source_id, series, tags, notes).

        One transaction; existing (bank, type, value) rows are left untouched, so a re-import is a no-op.
        """
        with self.db.engine.begin() as conn:
            return self.insert_rows(conn, bank_id, rows)

    def insert_rows(self, conn: Any, bank_id: int, rows: Iterable[dict[str, Any]]) -> BatchResult:
        """:meth:`insert_batch` inside the caller's transaction (``conn``: a Connection, or a Session's
        ``connection()``), for writers that commit other rows with the entries (an exchange's checkpoint)."""
        result = BatchResult()
        unique: dict[tuple[str, str], dict[str, Any]] = {}
        for row in rows:
            stored = registry.kind(row["signal_type"]).storage_key(row["value"])
            key = (row["signal_type"], stored)
            if key in unique:
                result.existing += 1
                continue
            unique[key] = {**row, "value": stored, "data": row["value"] if stored != row["value"] else None}
        if not unique:
            return result
        now = utcnow()
        params = [
            {"bank_id": bank_id, "signal_type": r["signal_type"], "value": r["value"], "category": r.get("category"),
             "source_id": r.get("source_id"), "series": r.get("series"), "tags": r.get("tags"),
             "notes": r.get("notes"), "added_at": now, "removed_at": None, "removed_reason": None, "data": r["data"]}
            for r in unique.values()
        ]
        result.added = self._insert_ignore(conn, params)
        if result.added < len(params):
            # which of the rows already there are tombstones (only asked when something was skipped)
            tomb = 0
            for chunk in _chunks(list(unique)):
                # by value first: the unique index leads with it
                found = conn.execute(select(BankEntry.signal_type, BankEntry.value).where(
                    BankEntry.value.in_([v for _, v in chunk]), _bank_is(bank_id),
                    BankEntry.removed_at.is_not(None)))
                wanted = set(chunk)
                tomb += sum(1 for t, v in found if (t, v) in wanted)
            result.tombstoned = tomb
            result.existing += len(params) - result.added - tomb
        conn.execute(update(BANK_TABLE).where(BANK_TABLE.c.id == bank_id).values(updated_at=now))
        return result

    def _insert_ignore(self, conn, params: list[dict[str, Any]]) -> int:
        """INSERT ... ON CONFLICT DO NOTHING as one executemany; returns the number of new rows."""
        dialect = self.db.dialect
        if dialect in ("sqlite", "postgresql"):
            stmt = dialect_insert(self.db, ENTRY_TABLE).on_conflict_do_nothing(index_elements=["value", "signal_type", "bank_id"])
            if dialect == "sqlite":
                # sqlite3's executemany reports the rows it inserted (ignored conflicts do not count)
                return int(conn.execute(stmt, params).rowcount)
            # PostgreSQL: batched multi-row INSERT ... RETURNING; only inserted rows come back
            return len(conn.execute(stmt.returning(ENTRY_TABLE.c.id), params).all())
        # other databases: look up what exists, insert the rest (same outcome, one more query)
        bank_id = params[0]["bank_id"]
        existing: set[tuple[str, str]] = set()
        keys = [(p["signal_type"], p["value"]) for p in params]
        for chunk in _chunks(keys):
            existing.update(tuple(r) for r in conn.execute(select(BankEntry.signal_type, BankEntry.value).where(
                BankEntry.bank_id == bank_id, tuple_(BankEntry.signal_type, BankEntry.value).in_(list(chunk)))))
        fresh = [p for p in params if (p["signal_type"], p["value"]) not in existing]
        if fresh:
            conn.execute(insert(ENTRY_TABLE), fresh)
        return len(fresh)

    def add_entries(self, bank: str, rows: Iterable[dict[str, Any]], batch_size: int = DEFAULT_BATCH) -> BatchResult:
        """Add already-normalised entries to a bank by name, in batches (see :mod:`tripwire.banks.importer`
        for validation of raw input)."""
        info = self.get_bank(bank)
        total = BatchResult()
        batch: list[dict[str, Any]] = []

        def flush() -> None:
            r = self.insert_batch(info.id, batch)
            total.added += r.added
            total.existing += r.existing
            total.tombstoned += r.tombstoned
            batch.clear()

        for row in rows:
            batch.append(row)
            if len(batch) >= batch_size:
                flush()
        if batch:
            flush()
        return total

    def _select_entries(self, bank_id: int | None, ids: Sequence[int] | None, values: Sequence[str] | None,
                        signal_type: str | None, removed: bool | None):
        q = select(BankEntry.id, BankEntry.bank_id)
        conds = []
        if bank_id is not None:
            conds.append(_bank_is(bank_id) if values is not None else BankEntry.bank_id == bank_id)
        if signal_type is not None:
            conds.append(BankEntry.signal_type == signal_type)
        if removed is True:
            conds.append(BankEntry.removed_at.is_not(None))
        elif removed is False:
            conds.append(BankEntry.removed_at.is_(None))
        if ids is not None:
            conds.append(BankEntry.id.in_(list(ids)))
        if values is not None:
            conds.append(BankEntry.value.in_(list(values)))
        return q.where(and_(*conds))

    def remove_entries(self, bank: str, *, ids: Sequence[int] | None = None, values: Sequence[str] | None = None,
                       signal_type: str | None = None, reason: str | None = None) -> int:
        """Tombstone entries (by id or by value); returns how many active entries were removed."""
        return self._set_removed(bank, ids, values, signal_type, reason, remove=True)

    def restore_entries(self, bank: str, *, ids: Sequence[int] | None = None, values: Sequence[str] | None = None,
                        signal_type: str | None = None) -> int:
        """Undo removals; returns how many tombstoned entries became active again."""
        return self._set_removed(bank, ids, values, signal_type, None, remove=False)

    def _set_removed(self, bank: str, ids, values, signal_type, reason, remove: bool) -> int:
        if ids is None and values is None:
            raise BankError("name the entries to change by id or by value")
        info = self.get_bank(bank)
        keys: list[Any] = list(ids) if ids is not None else [_stored_key(v, signal_type) for v in values]
        changed = 0
        now = utcnow()
        for chunk in _chunks(keys):
            with self.db.session() as s:
                q = self._select_entries(info.id, chunk if ids is not None else None,
                                         chunk if ids is None else None, signal_type, removed=not remove)
                targets = [r[0] for r in s.execute(q)]
                changed += self.mark_removed(s, info.id, targets, remove=remove, reason=reason, now=now)
        return changed

    @staticmethod
    def mark_removed(session: Any, bank_id: int, entry_ids: Sequence[int], *, remove: bool, reason: str | None = None,
                     now: datetime | None = None) -> int:
        """Tombstone (or restore) ``entry_ids`` in the caller's transaction, with the ``bank_changes`` rows the
        PDQ index replays; the ids must be active (or removed, to restore) entries of ``bank_id``."""
        if not entry_ids:
            return 0
        now = now or utcnow()
        for chunk in _chunks(list(entry_ids)):
            session.execute(update(BankEntry).where(BankEntry.id.in_(list(chunk))).values(
                removed_at=now if remove else None, removed_reason=reason if remove else None))
        session.execute(insert(BankChange), [{"bank_id": bank_id, "entry_id": t, "op": "remove" if remove else "restore",
                                              "at": now} for t in entry_ids])
        session.execute(update(Bank).where(Bank.id == bank_id).values(updated_at=now))
        return len(entry_ids)

    def iter_entries(self, bank: str | int, include_removed: bool = False, order: str = "source",
                     chunk: int = DEFAULT_BATCH) -> Iterator[EntryRow]:
        """Stream a bank's entries (grouped by source id, then insertion order) without loading them all."""
        bank_id = bank if isinstance(bank, int) else self.get_bank(bank).id
        q = select(*_ENTRY_COLUMNS).where(BankEntry.bank_id == bank_id)
        if not include_removed:
            q = q.where(BankEntry.removed_at.is_(None))
        q = q.order_by(nulls_last(BankEntry.source_id.asc()), BankEntry.id) if order == "source" else q.order_by(BankEntry.id)
        with self.db.engine.connect() as conn:
            result = conn.execution_options(stream_results=True, yield_per=chunk).execute(q)
            for row in result:
                yield _entry(row)

    def page_entries(self, bank: str, *, after_id: int = 0, limit: int = 50, include_removed: bool = True,
                     value: str | None = None) -> list[EntryRow]:
        """One page of a bank's entries in id order after ``after_id`` (keyset paging: the cost of a page does not
        grow with its position); ``value`` narrows to entries whose value starts with it (browsing)."""
        bank_id = self.get_bank(bank).id
        q = select(*_ENTRY_COLUMNS).where(BankEntry.bank_id == bank_id, BankEntry.id > after_id)
        if not include_removed:
            q = q.where(BankEntry.removed_at.is_(None))
        if value:
            v = value.strip()
            q = q.where(BankEntry.value.startswith(v.lower() if _is_hex(v) else v, autoescape=True))
        with self.db.session() as s:
            return [_entry(r) for r in s.execute(q.order_by(BankEntry.id).limit(max(1, min(limit, 1000))))]

    def get_entries(self, ids: Sequence[int]) -> dict[int, EntryRow]:
        out: dict[int, EntryRow] = {}
        with self.db.session() as s:
            for chunk in _chunks(list(ids)):
                for row in s.execute(select(*_ENTRY_COLUMNS).where(BankEntry.id.in_(list(chunk)))):
                    e = _entry(row)
                    out[e.id] = e
        return out

    def find(self, value: str, signal_type: str | None = None, include_removed: bool = False) -> list[EntryRow]:
        """Entries holding ``value`` in any bank (digest look-up, also what ``bank show`` uses)."""
        value = value.strip()
        value = value.lower() if _is_hex(value) else value
        q = select(*_ENTRY_COLUMNS).where(BankEntry.value == value)
        if signal_type:
            q = q.where(BankEntry.signal_type == signal_type)
        if not include_removed:
            q = q.where(BankEntry.removed_at.is_(None))
        with self.db.session() as s:
            return [_entry(r) for r in s.execute(q.order_by(BankEntry.id))]


def _bank_is(bank_id: int):
    """``bank_id = ?`` written so that SQLite's planner (no statistics) looks rows up through the value
    index instead of scanning the whole bank through ``ix_bank_entries_bank``."""
    return (BankEntry.bank_id + 0) == bank_id


def _stored_key(value: str, signal_type: str | None) -> str:
    """The ``bank_entries.value`` a user-given value is stored under: a registered type's storage key of its
    normalised form (vPDQ's JSON -> its digest), else the value (hex lowercased)."""
    if signal_type and signal_type in registry:
        kind = registry.get(signal_type)
        normalised = kind.valid(value)
        if normalised is not None:
            return kind.storage_key(normalised)
    v = value.strip()
    return v.lower() if _is_hex(v) else v


def _is_hex(value: str) -> bool:
    v = value.strip()
    return bool(v) and all(c in "0123456789abcdefABCDEF" for c in v)
