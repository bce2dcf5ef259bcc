"""Exchange configurations, fetch status, and applying one fetched page to the bank in one transaction.

:meth:`ExchangeStore.apply_page` is the heart of resumability: the page's bank entries (added, tombstoned,
restored), the exchange's source records and the checkpoint after the page are written in the same transaction,
which first checks that the stored checkpoint is still the one the fetch started the page from (two fetchers of
one exchange cannot both apply a page). A process killed at any point leaves either the page and its checkpoint
or neither; re-fetching from the stored checkpoint then adds every entry exactly once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable, Iterable, Mapping, Sequence

from sqlalchemy import and_, delete, insert, select, update
from sqlalchemy.orm import Session

from ...store.db import Database
from ...store.models import utcnow
from ..models import Bank, BankEntry
from ..store import BankError, BankStore
from .apis import API_NAMES, ExchangeApiError, api_class, collab_config, dump
from .models import Exchange, ExchangeRecord

__all__ = ["ConcurrentFetch", "ExchangeInfo", "ExchangeStore", "PageResult", "deleted_reason"]

_CHUNK = 500
#: values listed in one page's audit event (the counts are always complete)
MAX_LISTED = 1000

Values = list[tuple[str, str, list[str]]]


class ConcurrentFetch(Exception):
    """Another fetch of the same exchange committed a page since this one read the checkpoint."""


def deleted_reason(exchange: str) -> str:
    """The removal reason an exchange writes on a tombstone; only tombstones with it are restored when the source
    lists the value again (a person's removal of a false positive stays)."""
    return f"deleted at source (exchange {exchange})"


@dataclass(frozen=True)
class ExchangeInfo:
    """An exchange's configuration and fetch status, detached from any session."""

    id: int
    name: str
    api: str
    bank: str
    enabled: bool
    settings: dict[str, Any]
    base_url: str | None
    checkpoint: dict[str, Any] | None
    checkpoint_at: datetime | None
    records: int
    pages: int
    pages_skipped: int
    last_fetch_started: datetime | None
    last_fetch_finished: datetime | None
    last_success: bool | None
    last_error: str | None
    rematch_pending: tuple[int, int] | None

    @classmethod
    def of(cls, row: Exchange, bank: str) -> "ExchangeInfo":
        pending = (int(row.rematch_entry_id), int(row.rematch_change_id or 0)) if row.rematch_entry_id is not None else None
        return cls(row.id, row.name, row.api, bank, bool(row.enabled), dict(row.settings or {}), row.base_url,
                   dict(row.checkpoint) if row.checkpoint is not None else None, row.checkpoint_at, int(row.records or 0),
                   int(row.pages or 0), int(row.pages_skipped or 0), row.last_fetch_started, row.last_fetch_finished,
                   row.last_success, row.last_error, pending)

    def collab(self) -> Any:
        """python-threatexchange's collaboration config for this exchange."""
        return collab_config(self.api, self.name, self.enabled, self.settings)

    def checkpoint_time(self) -> int | None:
        """The time the checkpoint corresponds to (the API's ``get_progress_timestamp``), None when unknown."""
        if self.checkpoint is None:
            return None
        from .apis import load_checkpoint

        try:
            return load_checkpoint(self.api, self.checkpoint).get_progress_timestamp()
        except Exception:
            return None

    def as_dict(self) -> dict[str, Any]:
        def iso(d: datetime | None) -> str | None:
            return d.isoformat() if d else None

        return {"name": self.name, "api": self.api, "bank": self.bank, "enabled": self.enabled,
                "settings": self.settings, "base_url": self.base_url, "checkpoint": self.checkpoint,
                "checkpoint_at": iso(self.checkpoint_at), "checkpoint_time": self.checkpoint_time(),
                "records": self.records, "pages": self.pages, "pages_skipped": self.pages_skipped,
                "last_fetch_started": iso(self.last_fetch_started), "last_fetch_finished": iso(self.last_fetch_finished),
                "last_success": self.last_success, "last_error": self.last_error,
                "rematch_pending": self.rematch_pending is not None}


@dataclass
class PageResult:
    """What one committed page changed."""

    exchange: str
    page: int
    #: source records (keys) in the page
    records: int = 0
    #: bank entries added (new values), restored (listed again after a deletion at source), removed (tombstoned)
    added: int = 0
    restored: int = 0
    removed: int = 0
    #: records (key, message) that could not be converted: skipped, the rest of the page applies
    bad_records: list[tuple[str, str]] = field(default_factory=list)
    #: up to MAX_LISTED "type:value" of what entered and left the bank
    added_values: list[str] = field(default_factory=list)
    removed_values: list[str] = field(default_factory=list)
    checkpoint: dict[str, Any] | None = None
    #: set when the page is a skipped malformed page: what was skipped and why
    skipped: str | None = None
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"exchange": self.exchange, "page": self.page, "records": self.records, "added": self.added,
                "restored": self.restored, "removed": self.removed, "bad_records": len(self.bad_records),
                "bad_record_samples": [{"key": k, "error": m} for k, m in self.bad_records[:20]],
                "added_values": self.added_values, "removed_values": self.removed_values,
                "checkpoint": self.checkpoint, "skipped": self.skipped, "error": self.error}


class ExchangeStore:
    """Exchanges in one :class:`~tripwire.store.db.Database`."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.banks = BankStore(db)

    # -- configuration ---------------------------------------------------------------------------------

    def create(self, name: str, api: str, *, bank: str | None = None, settings: Mapping[str, Any] | None = None,
               enabled: bool = True, base_url: str | None = None, create_bank: bool = True,
               on_commit: Callable[[Session], None] | None = None) -> ExchangeInfo:
        """Add an exchange filling ``bank`` (default: a bank of the exchange's name, created when missing);
        ``on_commit(session)`` runs in the exchange's transaction (an audit event)."""
        name = (name or "").strip()
        if not name or len(name) > 200:
            raise ExchangeApiError("an exchange name must be 1-200 characters")
        if api not in API_NAMES:
            api_class(api)  # the error names the known APIs
        settings = dict(settings or {})
        collab = collab_config(api, name, enabled, settings)  # validates
        stored = {k: v for k, v in dump(collab).items() if k not in ("name", "api", "enabled")}
        bank_name = bank or name
        try:
            info = self.banks.get_bank(bank_name)
        except BankError:
            if not create_bank:
                raise
            info = self.banks.create_bank(bank_name, source=f"exchange {name} ({api})")
        with self.db.session() as s:
            if s.scalar(select(Exchange.id).where(Exchange.name == name)) is not None:
                raise ExchangeApiError(f"an exchange named {name!r} already exists")
            now = utcnow()
            row = Exchange(name=name, api=api, bank_id=info.id, enabled=bool(enabled), settings=stored,
                           base_url=base_url or None, records=0, pages=0, pages_skipped=0, created_at=now, updated_at=now)
            s.add(row)
            s.flush()
            if on_commit is not None:
                on_commit(s)
            return ExchangeInfo.of(row, info.name)

    def _row(self, s: Session, name: str) -> tuple[Exchange, str]:
        found = s.execute(select(Exchange, Bank.name).join(Bank, Bank.id == Exchange.bank_id)
                          .where(Exchange.name == name)).first()
        if found is None:
            known = ", ".join(s.scalars(select(Exchange.name).order_by(Exchange.name))) or "none"
            raise ExchangeApiError(f"no exchange named {name!r} (exchanges: {known})")
        return found[0], found[1]

    def get(self, name: str) -> ExchangeInfo:
        with self.db.session() as s:
            row, bank = self._row(s, name)
            return ExchangeInfo.of(row, bank)

    def find(self, name: str) -> ExchangeInfo | None:
        try:
            return self.get(name)
        except ExchangeApiError:
            return None

    def exchanges(self) -> list[ExchangeInfo]:
        with self.db.session() as s:
            return [ExchangeInfo.of(r, b) for r, b in s.execute(
                select(Exchange, Bank.name).join(Bank, Bank.id == Exchange.bank_id).order_by(Exchange.name))]

    def update(self, name: str, *, enabled: bool | None = None, settings: Mapping[str, Any] | None = None,
               base_url: str | None = None, on_commit: Callable[[Session], None] | None = None) -> ExchangeInfo:
        with self.db.session() as s:
            row, bank = self._row(s, name)
            if enabled is not None:
                row.enabled = bool(enabled)
            if settings is not None:
                merged = {**(row.settings or {}), **settings}
                collab = collab_config(row.api, row.name, row.enabled, merged)
                row.settings = {k: v for k, v in dump(collab).items() if k not in ("name", "api", "enabled")}
            if base_url is not None:
                row.base_url = base_url or None
            row.updated_at = utcnow()
            s.flush()
            if on_commit is not None:
                on_commit(s)
            return ExchangeInfo.of(row, bank)

    def delete(self, name: str, on_commit: Callable[[Session], None] | None = None) -> None:
        """Forget the exchange, its checkpoint and its record keys; the bank and its entries stay."""
        with self.db.session() as s:
            row, _ = self._row(s, name)
            s.execute(delete(ExchangeRecord).where(ExchangeRecord.exchange_id == row.id))
            s.execute(delete(Exchange).where(Exchange.id == row.id))
            if on_commit is not None:
                on_commit(s)

    def reset(self, name: str) -> None:
        """Drop the checkpoint: the next fetch starts from the beginning (records already held are kept, so
        nothing is added twice)."""
        with self.db.session() as s:
            row, _ = self._row(s, name)
            row.checkpoint = None
            row.checkpoint_at = None
            row.updated_at = utcnow()

    # -- fetch status ------------------------------------------------------------------------------------

    def start_fetch(self, name: str, mark: tuple[int, int]) -> ExchangeInfo:
        """Record that a fetch starts; keep ``mark`` (the banks' position) as the re-match starting point unless
        an earlier fetch left one pending (killed before it re-matched)."""
        with self.db.session() as s:
            row, bank = self._row(s, name)
            row.last_fetch_started = utcnow()
            row.last_success = None
            if row.rematch_entry_id is None:
                row.rematch_entry_id, row.rematch_change_id = mark
            s.flush()
            return ExchangeInfo.of(row, bank)

    def finish_fetch(self, name: str, success: bool, error: str | None) -> None:
        with self.db.session() as s:
            row, _ = self._row(s, name)
            row.last_fetch_finished = utcnow()
            row.last_success = success
            row.last_error = (error or None) and error[:4000]

    def rematched(self, name: str, mark: tuple[int, int]) -> None:
        """The stored items were re-matched against everything up to now: clear the pending mark if it is still
        the one the re-match started from."""
        with self.db.session() as s:
            s.execute(update(Exchange).where(Exchange.name == name, Exchange.rematch_entry_id == mark[0],
                                             Exchange.rematch_change_id == mark[1])
                      .values(rematch_entry_id=None, rematch_change_id=None))

    # -- one page ------------------------------------------------------------------------------------------

    def apply_page(self, name: str, expected: Mapping[str, Any] | None, checkpoint: Mapping[str, Any] | None,
                   updates: Mapping[str, Values | None], *, page: int, snapshot: bool = False,
                   bad_records: Sequence[tuple[str, str]] = (), skipped: str | None = None,
                   on_commit: Callable[[Session, PageResult], None] | None = None) -> PageResult:
        """Apply one page: ``updates`` maps a record key to its values (None or []: the record is deleted);
        ``snapshot``: the page is the whole list, keys it lacks are deleted. The checkpoint becomes
        ``checkpoint`` in the same transaction; ``on_commit(session, result)`` runs inside it (the audit event).
        Raises :class:`ConcurrentFetch` when the stored checkpoint is no longer ``expected``."""
        result = PageResult(exchange=name, page=page, records=len(updates), bad_records=list(bad_records),
                            checkpoint=dict(checkpoint) if checkpoint is not None else None, skipped=skipped)
        with self.db.session() as s:
            row, _ = self._row(s, name)
            if self.db.dialect == "postgresql":
                s.execute(select(Exchange.id).where(Exchange.id == row.id).with_for_update())
                s.refresh(row)
            if row.checkpoint != (dict(expected) if expected is not None else None):
                raise ConcurrentFetch(f"exchange {name!r}: another fetch moved the checkpoint; this one stops")
            if snapshot:
                held = set(s.scalars(select(ExchangeRecord.key).where(ExchangeRecord.exchange_id == row.id).distinct()))
                updates = {**{k: None for k in held - set(updates)}, **updates}
                result.records = len(updates)
            self._apply(s, row, updates, result)
            now = utcnow()
            row.checkpoint = dict(checkpoint) if checkpoint is not None else None
            row.checkpoint_at = now
            row.pages = int(row.pages or 0) + 1
            if skipped:
                row.pages_skipped = int(row.pages_skipped or 0) + 1
            row.updated_at = now
            s.flush()
            if on_commit is not None:
                on_commit(s, result)
        return result

    def _apply(self, s: Session, row: Exchange, updates: Mapping[str, Values | None], result: PageResult) -> None:
        keys = list(updates)
        old: dict[str, set[tuple[str, str]]] = {}
        for start in range(0, len(keys), _CHUNK):
            for key, kind, value in s.execute(select(ExchangeRecord.key, ExchangeRecord.signal_type, ExchangeRecord.value)
                                              .where(ExchangeRecord.exchange_id == row.id,
                                                     ExchangeRecord.key.in_(keys[start : start + _CHUNK]))):
                old.setdefault(key, set()).add((kind, value))
        gone: list[tuple[str, tuple[str, str]]] = []
        new_rows: list[dict[str, Any]] = []
        tags: dict[tuple[str, str], list[str]] = {}
        source: dict[tuple[str, str], str] = {}
        records_delta = 0
        for key, values in updates.items():
            before = old.get(key, set())
            now = {(k, v) for k, v, _ in (values or [])}
            for k, v, t in values or []:
                tags.setdefault((k, v), t)
                source.setdefault((k, v), key)
            records_delta += (1 if now else 0) - (1 if before else 0)
            gone += [(key, sv) for sv in before - now]
            new_rows += [{"exchange_id": row.id, "key": key, "signal_type": k, "value": v} for k, v in now - before]
        for start in range(0, len(gone), _CHUNK):
            chunk = gone[start : start + _CHUNK]
            for key, (kind, value) in chunk:
                s.execute(delete(ExchangeRecord).where(ExchangeRecord.exchange_id == row.id, ExchangeRecord.key == key,
                                                       ExchangeRecord.signal_type == kind, ExchangeRecord.value == value))
        if new_rows:
            for start in range(0, len(new_rows), _CHUNK):
                s.execute(insert(ExchangeRecord), new_rows[start : start + _CHUNK])
        row.records = int(row.records or 0) + records_delta
        added = sorted({(r["signal_type"], r["value"]) for r in new_rows})
        removed = sorted({sv for _, sv in gone})
        reason = deleted_reason(row.name)
        if added:
            entries = [{"signal_type": k, "value": v, "tags": tags.get((k, v)) or None,
                        "source_id": source.get((k, v), "")[:200] or None} for k, v in added]
            batch = self.banks.insert_rows(s.connection(), row.bank_id, entries)
            result.added = batch.added
            if batch.tombstoned:
                back = [i for i, why in self._entries(s, row.bank_id, added, removed=True) if why == reason]
                result.restored = BankStore.mark_removed(s, row.bank_id, back, remove=False)
            result.added_values = [f"{k}:{v}" for k, v in added[:MAX_LISTED]]
        if removed:
            still = self._held(s, row.id, removed)
            orphans = [sv for sv in removed if sv not in still]
            ids = [i for i, _ in self._entries(s, row.bank_id, orphans, removed=False)]
            result.removed = BankStore.mark_removed(s, row.bank_id, ids, remove=True, reason=reason)
            result.removed_values = [f"{k}:{v}" for k, v in orphans[:MAX_LISTED]]

    @staticmethod
    def _held(s: Session, exchange_id: int, values: Iterable[tuple[str, str]]) -> set[tuple[str, str]]:
        """Which (type, value) some record of the exchange still holds."""
        wanted = list(values)
        found: set[tuple[str, str]] = set()
        for start in range(0, len(wanted), _CHUNK):
            chunk = wanted[start : start + _CHUNK]
            found |= {(k, v) for k, v in s.execute(select(ExchangeRecord.signal_type, ExchangeRecord.value).where(
                ExchangeRecord.value.in_([v for _, v in chunk]), ExchangeRecord.exchange_id == exchange_id))}
        return found & set(wanted)

    @staticmethod
    def _entries(s: Session, bank_id: int, values: Sequence[tuple[str, str]], *, removed: bool) -> list[tuple[int, str | None]]:
        """(entry id, removal reason) of the bank's active (or removed) entries holding ``values``."""
        out: list[tuple[int, str | None]] = []
        wanted = set(values)
        state = BankEntry.removed_at.is_not(None) if removed else BankEntry.removed_at.is_(None)
        for start in range(0, len(values), _CHUNK):
            chunk = values[start : start + _CHUNK]
            for i, kind, value, why in s.execute(select(BankEntry.id, BankEntry.signal_type, BankEntry.value,
                                                        BankEntry.removed_reason).where(
                    and_(BankEntry.value.in_([v for _, v in chunk]), (BankEntry.bank_id + 0) == bank_id, state))):
                if (kind, value) in wanted:
                    out.append((int(i), why))
        return out

    def record_error(self, name: str, checkpoint: Mapping[str, Any] | None, error: str,
                     on_commit: Callable[[Session, PageResult], None], *, page: int) -> None:
        """Hand a page that could not be fetched or skipped to ``on_commit`` (the audit event), changing nothing."""
        with self.db.session() as s:
            on_commit(s, PageResult(exchange=name, page=page, checkpoint=dict(checkpoint) if checkpoint else None,
                                    error=error))
