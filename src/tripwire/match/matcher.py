"""The bank-aware matcher: every matchable signal type of the registry against every bank.

What an item offers for matching comes from its signal types (:meth:`SignalType.queries`: the digests,
PDQ's 8 orientations and unletterboxed hashes, any registered type's own values). Then:

1. **Exact types** (MD5, SHA-1, SHA-256) are looked up in the database by value (the unique index on
   ``bank_entries.value`` makes this one indexed query), so they are always current.
2. **Distance types**: all of an item's values of one type are searched together in that type's index
   (:class:`~tripwire.signals.index.PdqIndex` for PDQ, :class:`~tripwire.signals.hamming_index.HammingIndex`
   for any other) at the largest radius of any bank. Each index holds every active entry of its type
   under its entry id.
3. **Verification against the database.** Every candidate is re-read from ``bank_entries`` and kept only if
   it is still active, its bank is enabled, its distance (recomputed from the stored value by the type) is
   within *its bank's* radius and the query meets *its bank's* quality floor. The index is a candidate
   generator; the database decides, so removing an entry stops its matches at once even in a process whose
   index has not caught up yet.
4. **Negative banks** (allow-lists) suppress: a negative exact-digest hit suppresses every match of the
   item; a negative perceptual hit suppresses the perceptual matches (exact digest matches from positive
   banks stand, a byte-identical file is stronger evidence than a perceptual neighbour). Suppressed matches
   are returned separately with the entry that suppressed them, never silently dropped. A negative *model*
   entry (``describes == "model"``: a base checkpoint everybody uses) suppresses only the positive matches
   of the same model reference (same ``variant``), never the item's other matches.
5. **Prefix forms** (model hashes: AutoV2 is the first 10 hex of a file's SHA-256): an exact type with
   ``prefix_lengths`` also looks up the short forms of a full query value, and a short query value finds the
   entries it is a prefix of by a range on the indexed ``bank_entries.value``; each such match says the
   ``form`` it rests on and, for a short query, how many distinct banked values share the prefix
   (``prefix_candidates``, ``ambiguous``). In cached mode a short form is looked up in the database.

Batch look-ups (``POST /v1/lookup``, HMA's ``/m/`` endpoints, post feeds) use :meth:`Matcher.lookup_many`,
the same search and verification with one answer per hash.

**Cached mode** (:meth:`Matcher.enable_cache`, what ``tripwire serve`` uses, whose background thread refreshes
every second): exact values are found through an in-memory candidate index (a 64-bit digest of type and value
per active entry, sorted) instead of a query by value, and the rows that verify candidates are kept in memory
by entry id. Entries never change in place — only their tombstone, through ``bank_changes`` — so a cached row
stays right until a removal or restore of that entry, which the next :meth:`Matcher.refresh` reads and drops
from the cache. A look-up then touches the database only for an entry it has not verified before: a miss,
the common case, never does. The price: a change made by *another* process is seen at the next refresh (one
``refresh_interval``) instead of at once; ``tripwire serve`` refreshes at once after a change it makes itself.
Cached mode also gives the PDQ index its look-up tables (``[banks] index_accel``, on by default; see
docs/pdq-index.md): 96 more bytes per hash for PDQ searches several times faster than the scan.

The index is persisted next to the database (``<db>.pdqindex/``; ``[banks] index_path`` or
``$TRIPWIRE_BANKS_INDEX_PATH`` elsewhere) with the last entry id and change id it reflects. Opening it
replays what happened since (new entries by id, removals/restores from ``bank_changes``; a dropped bank
triggers a rebuild) and checks its size against the database, so a stale or foreign index file is
rebuilt, never trusted. :meth:`Matcher.refresh` does the same replay in a long-running process (at most
every ``refresh_interval`` seconds, or on demand), which is what makes a new entry matchable within a
second without a rebuild.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence, TypedDict

import numpy as np
from sqlalchemy import bindparam, func, select
from sqlalchemy.engine import make_url

from ..banks.categories import category_label
from ..banks.models import Bank, BankChange, BankEntry
from ..banks.store import BankInfo
from ..config import BankSettings, Config
from ..records import BankMatch, ItemRecord
from ..signals.registry import registry
from ..signals.types.base import Query, SignalType
from ..store.db import Database
from .index_state import STATE, fingerprint, read_state, write_state

log = logging.getLogger(__name__)

#: most matches reported per item (closest first); the count of the rest is reported
DEFAULT_MAX_MATCHES = 50
DEFAULT_REFRESH_S = 1.0
#: save the index after a sync that applied at least this many changes (so the next start is fast)
SAVE_AFTER_CHANGES = 10_000
_CHUNK = 500
_LOAD_CHUNK = 200_000
_STATE_VERSION = 1

__all__ = ["BankIndex", "LookupResult", "MatchFields", "MatchResult", "MatchStage", "Matcher", "PdqQuery", "Query",
           "SyncStats", "default_index_path", "match_stage"]


def PdqQuery(variant: str, hex: str, quality: int | None = None) -> Query:  # noqa: N802 - reads as a type
    """The query for one PDQ hash: which variant of the image it is, and its quality (None: unknown)."""
    return Query("pdq", hex, variant, quality)


class MatchFields(TypedDict):
    """:meth:`MatchResult.as_dict`: one item's (or one hash's) decided matches."""

    matches: list[BankMatch]
    matches_suppressed: list[BankMatch]
    allowed_by: list[BankMatch]
    truncated: int


class LookupResult(MatchFields):
    """One entry of :meth:`Matcher.lookup_many`: the (normalised) query and its decided matches."""

    signal_type: str
    value: str


@dataclass
class MatchResult:
    #: matches from positive banks that stand, closest first
    matches: list[BankMatch] = field(default_factory=list)
    #: positive matches suppressed by a negative bank (each with ``suppressed_by``)
    suppressed: list[BankMatch] = field(default_factory=list)
    #: hits in negative banks (the reason for any suppression)
    allowed_by: list[BankMatch] = field(default_factory=list)
    #: matches beyond ``max_matches`` that were not listed
    truncated: int = 0

    def as_dict(self) -> MatchFields:
        return {"matches": self.matches, "matches_suppressed": self.suppressed, "allowed_by": self.allowed_by,
                "truncated": self.truncated}


def default_index_path(db: Database, config: Config | None = None) -> Path | None:
    """Where the PDQ index of ``db`` lives: configured path, else ``<sqlite file>.pdqindex``, else a cache
    folder keyed by the database URL (for PostgreSQL); None for in-memory SQLite."""
    configured = BankSettings.from_config(config).index_path
    if configured:
        return Path(configured).expanduser()
    url = make_url(db.url)
    if url.get_backend_name() == "sqlite":
        if not url.database or url.database == ":memory:":
            return None
        return Path(url.database + ".pdqindex")
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "tripwire" / f"pdqindex-{fingerprint(db)}"


@dataclass
class SyncStats:
    added: int = 0
    removed: int = 0
    rebuilt: bool = False
    seconds: float = 0.0

    @property
    def changes(self) -> int:
        return self.added + self.removed


class BankIndex:
    """Every active entry of one distance type, of every bank, in that type's index, kept in step with the
    database. Only an index with a ``path`` (PDQ's) is persisted; others are rebuilt when opened."""

    def __init__(self, db: Database, path: Path | None = None, mmap: bool = False,
                 signal_type: SignalType | None = None) -> None:
        self.db = db
        self.signal = signal_type or registry.get("pdq")
        self.path = path
        self.mmap = mmap
        self.index = self._new_index()
        #: keep the index's look-up tables (PdqIndex.accelerate): set through set_accelerate
        self.accelerate = False
        #: changes applied since the index was last saved
        self.unsaved = 0
        self.last_entry_id = 0
        self.last_change_id = 0
        self._lock = threading.RLock()
        self.loaded_from_disk = False

    def __len__(self) -> int:
        return len(self.index)

    def _new_index(self) -> Any:
        cls = self.signal.index_class()
        if cls is None:
            raise ValueError(f"{self.signal.name} is not a distance type")
        return cls()

    # -- persistence -------------------------------------------------------------------------------------

    def load(self) -> bool:
        """Read the persisted index if it belongs to this database; False when there is none to trust."""
        if self.path is None:
            return False
        try:
            state = read_state(self.path, self.db, _STATE_VERSION)
            if state is None:
                return False
            index = self.signal.index_class().load(  # type: ignore[union-attr]
                self.path / state["file"], mmap=self.mmap, accelerate=self.accelerate)
        except (OSError, ValueError, KeyError) as exc:
            log.info("PDQ index at %s not usable (%s); rebuilding", self.path, exc)
            return False
        with self._lock:
            self.index = index
            self.last_entry_id = int(state["last_entry_id"])
            self.last_change_id = int(state["last_change_id"])
        self.loaded_from_disk = True
        return True

    def save(self) -> None:
        """Write index + watermarks atomically (a new index file, then the state that names it)."""
        if self.path is None:
            return
        if len(self.index) == 0 and not (self.path / STATE).exists():
            return  # no PDQ entries anywhere: leave no empty index folder behind
        self.path.mkdir(parents=True, exist_ok=True)
        with self._lock:
            name = f"index-{time.time_ns()}.pdqidx"
            self.index.save(self.path / name)
            write_state(self.path, self.db, _STATE_VERSION,
                        {"file": name, "count": len(self.index), "last_entry_id": self.last_entry_id,
                         "last_change_id": self.last_change_id},
                        keep=(name,), patterns=("index-*.pdqidx",))

    # -- keeping in step -------------------------------------------------------------------------------

    def entries_indexed(self) -> int:
        """Entries the index holds (a vPDQ entry is one row per distinct frame)."""
        if not self.signal.several_codes:
            return len(self.index)
        return len(np.unique(self.signal.index_owner(self.index.ids())))

    def db_count(self) -> int:
        with self.db.session() as s:
            return s.scalar(select(func.count()).select_from(BankEntry).where(
                BankEntry.signal_type == self.signal.name, BankEntry.removed_at.is_(None))) or 0

    def rebuild(self) -> SyncStats:
        """Build the index from the database alone (what a fresh start and ``bank reindex`` do)."""
        started = time.monotonic()
        with self.db.session() as s:
            max_change = s.scalar(select(func.max(BankChange.id))) or 0
            max_entry = s.scalar(select(func.max(BankEntry.id))) or 0
        index = self._new_index()
        added = self._stream_into(index, 0, max_entry)
        if self.accelerate:  # once, for the final segments, not for every merge of the load
            index.accelerate = True
        with self._lock:
            self.index = index
            self.last_entry_id = max_entry
            self.last_change_id = max_change
        return SyncStats(added=added, rebuilt=True, seconds=time.monotonic() - started)

    def _stream_into(self, index: Any, after_id: int, up_to: int | None = None) -> int:
        """Add active entries of the type with after_id < id (<= up_to) to ``index``; returns how many."""
        q = (select(BankEntry.id, BankEntry.value, BankEntry.data)
             .where(BankEntry.signal_type == self.signal.name, BankEntry.removed_at.is_(None),
                    BankEntry.id > after_id))
        if up_to is not None:
            q = q.where(BankEntry.id <= up_to)
        q = q.order_by(BankEntry.id)
        total = 0
        ids: list[int] = []
        hexes: list[str] = []
        with self.db.engine.connect() as conn:
            for entry_id, value, data in conn.execution_options(stream_results=True, yield_per=_LOAD_CHUNK).execute(q):
                ids.append(entry_id)
                hexes.append(data or value)
                if len(ids) >= _LOAD_CHUNK:
                    index.add(*self.signal.index_rows(ids, hexes))
                    total += len(ids)
                    ids, hexes = [], []
        if ids:
            index.add(*self.signal.index_rows(ids, hexes))
            total += len(ids)
        return total

    def _remove(self, entry_ids: list[int]) -> int:
        """Take entries out of the index (every row of an entry whose value holds several codes)."""
        wanted = np.array(entry_ids, dtype=np.int64)
        if not self.signal.several_codes:
            return int(self.index.remove(wanted))
        present = self.index.ids()
        rows = present[np.isin(self.signal.index_owner(present), wanted)]
        self.index.remove(rows)
        return len(np.unique(self.signal.index_owner(rows)))

    def sync(self) -> SyncStats:
        """Apply what changed in the database since the last sync (or rebuild after a dropped bank)."""
        started = time.monotonic()
        stats = SyncStats()
        with self._lock:
            with self.db.session() as s:
                changes = s.execute(select(BankChange.id, BankChange.op, BankChange.entry_id)
                                    .where(BankChange.id > self.last_change_id).order_by(BankChange.id)).all()
                max_entry = s.scalar(select(func.max(BankEntry.id))) or 0
            if any(op == "drop" for _, op, _ in changes) or max_entry < self.last_entry_id:
                # a bank was dropped (its entry ids are gone) or the database is not the one indexed
                return self.rebuild()
            final: dict[int, str] = {}
            for _, op, entry_id in changes:
                if entry_id is not None:
                    final[int(entry_id)] = op
            removed = [i for i, op in final.items() if op == "remove"]
            restored = [i for i, op in final.items() if op == "restore"]
            if removed:
                stats.removed += self._remove(removed)
            for start in range(0, len(restored), _CHUNK):
                chunk = restored[start : start + _CHUNK]
                with self.db.session() as s:
                    rows = s.execute(select(BankEntry.id, BankEntry.value, BankEntry.data).where(
                        BankEntry.id.in_(chunk), BankEntry.signal_type == self.signal.name,
                        BankEntry.removed_at.is_(None))).all()
                if rows:
                    self.index.add(*self.signal.index_rows([r[0] for r in rows], [r[2] or r[1] for r in rows]))
                    stats.added += len(rows)
            stats.added += self._stream_into(self.index, self.last_entry_id, max_entry)
            self.last_entry_id = max(self.last_entry_id, max_entry)
            if changes:
                self.last_change_id = changes[-1][0]
        stats.seconds = time.monotonic() - started
        return stats

    def open(self, verify: bool = True) -> SyncStats:
        """Load (or build) and catch up; rebuild when the result disagrees with the database's count."""
        if not self.load():
            stats = self.rebuild()
        else:
            stats = self.sync()
            if verify and not stats.rebuilt and self.entries_indexed() != self.db_count():
                log.warning("PDQ index at %s disagrees with the database; rebuilding", self.path)
                stats = self.rebuild()
        return stats

    def set_accelerate(self, on: bool) -> None:
        """Build (or drop) the index's look-up tables: faster searches for more memory (docs/pdq-index.md)."""
        if not isinstance(getattr(type(self.index), "accelerate", None), property):
            raise TypeError(f"the {self.signal.name} index has no look-up tables")
        with self._lock:
            self.accelerate = on
            self.index.accelerate = on

    def search(self, codes: np.ndarray, radius: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        found: tuple[np.ndarray, np.ndarray, np.ndarray] = self.index.search_arrays(codes, radius)
        return found


_HIT_COLUMNS = (BankEntry.id, BankEntry.bank_id, BankEntry.signal_type, BankEntry.value, BankEntry.category,
                BankEntry.source_id, BankEntry.series, BankEntry.removed_at, BankEntry.data)


#: entry rows by id, one statement compiled once (an expanding IN parameter)
_ROWS_BY_ID = select(*_HIT_COLUMNS).where(BankEntry.id.in_(bindparam("ids", expanding=True)))


def _is_distance(signal_type: str) -> bool:
    return signal_type in registry and registry.get(signal_type).matching == "distance"


def _describes(signal_type: str) -> str:
    return registry.get(signal_type).describes if signal_type in registry else "media"


def _persisted_at(index_path: Path | None, signal_type: SignalType) -> Path | None:
    """Where a distance type's index is saved: PDQ's at ``index_path``, another type kept in a PdqIndex (vPDQ's
    frames) in a subfolder named after it; None for types whose index is rebuilt at each start."""
    if index_path is None:
        return None
    if signal_type.name == "pdq":
        return index_path
    from ..signals.index import PdqIndex

    return index_path / signal_type.name if signal_type.index_class() is PdqIndex else None


class Matcher:
    """Matches items and hashes against every enabled bank of one database (see the module docs).

    A distance type registered after the matcher was made is not searched by it (its index is made here).
    """

    def __init__(self, db: Database, index_path: Path | None = None, *, refresh_interval: float = DEFAULT_REFRESH_S,
                 max_matches: int = DEFAULT_MAX_MATCHES, use_variants: bool = True, use_unletterbox: bool = True,
                 persist: bool = True, mmap: bool = False, bank_settings: BankSettings | None = None,
                 index_accel: bool | None = None) -> None:
        self.db = db
        #: one index per distance type; PDQ's is persisted at ``index_path``, vPDQ's (its frames in a PdqIndex)
        #: in its ``vpdq`` subfolder
        self.indexes: dict[str, BankIndex] = {
            t.name: BankIndex(db, _persisted_at(index_path, t) if persist else None, mmap=mmap, signal_type=t)
            for t in registry.matchable() if t.matching == "distance"}
        self.refresh_interval = refresh_interval
        self.max_matches = max_matches
        self.settings = dataclasses.replace(bank_settings or BankSettings(), variants=use_variants,
                                            unletterbox=use_unletterbox)
        #: cached mode also keeps the PDQ index's look-up tables (``[banks] index_accel`` unless given)
        self.index_accel = self.settings.index_accel if index_accel is None else index_accel
        self.banks: dict[int, BankInfo] = {}
        self._last_refresh = 0.0
        self._opened = False
        self.last_sync: SyncStats | None = None
        #: cached mode (see the module docs): None when the database decides every look-up
        self._cache: _LookupCache | None = None

    @classmethod
    def from_config(cls, db: Database, config: Config | None = None, **overrides: Any) -> "Matcher":
        """A matcher with the ``[banks]`` settings of ``config`` (index_path, refresh_interval,
        max_matches_per_item, variants, unletterbox, index_accel)."""
        registry.configure(config)
        settings = BankSettings.from_config(config)
        kwargs: dict[str, Any] = {
            "index_path": default_index_path(db, config),
            "refresh_interval": settings.refresh_interval,
            "max_matches": settings.max_matches_per_item,
            "use_variants": settings.variants,
            "use_unletterbox": settings.unletterbox,
            "bank_settings": settings,
        }
        kwargs.update(overrides)
        return cls(db, **kwargs)

    @property
    def bank_index(self) -> BankIndex:
        """The PDQ index (what ``bank reindex`` and the service's health report)."""
        return self.indexes["pdq"]

    @property
    def use_variants(self) -> bool:
        return self.settings.variants

    @property
    def use_unletterbox(self) -> bool:
        return self.settings.unletterbox

    # -- state ----------------------------------------------------------------------------------------------

    def _load_banks(self) -> None:
        with self.db.session() as s:
            self.banks = {b.id: BankInfo.of(b) for b in s.scalars(select(Bank))}

    def _each_index(self, step: Any, count_unsaved: bool = True) -> SyncStats:
        """Run ``step(index) -> SyncStats`` on every index; save those that did real work; the PDQ stats.

        Changes are counted towards the next save in a long-running process (``count_unsaved``), not when
        an index is opened: a start that replayed a few changes leaves the saved index as it is."""
        result = SyncStats()
        for name, bank_index in self.indexes.items():
            stats = step(bank_index)
            bank_index.unsaved += stats.changes if count_unsaved else 0
            if stats.rebuilt or (not count_unsaved and stats.changes >= SAVE_AFTER_CHANGES) or bank_index.unsaved >= SAVE_AFTER_CHANGES:
                self._save(bank_index)
            if name == "pdq":
                result = stats
        self.last_sync = result
        self._last_refresh = time.monotonic()
        return result

    def open(self) -> SyncStats:
        """Load banks and the indexes (building or catching them up); saves them when that was real work."""
        self._load_banks()
        self._opened = True
        stats = self._each_index(lambda i: i.open(), count_unsaved=False)
        if self._cache is not None:
            self._cache.sync()
        return stats

    def refresh(self, force: bool = False) -> SyncStats | None:
        """Catch up with bank changes made since the last refresh (by this or any other process)."""
        if not self._opened:
            return self.open()
        if not force and time.monotonic() - self._last_refresh < self.refresh_interval:
            return None
        self._load_banks()
        stats = self._each_index(lambda i: i.sync())
        if self._cache is not None:
            self._cache.sync()
        return stats

    def rebuild(self) -> SyncStats:
        """Rebuild the indexes from the database and persist them."""
        self._load_banks()
        self._opened = True
        stats = self._each_index(lambda i: i.rebuild())
        if self._cache is not None:
            self._cache.sync(rebuild=True)
        return stats

    def behind(self) -> tuple[int, int]:
        """How far the database is ahead of what this matcher has applied: (entry ids, change-log ids) beyond
        the lowest watermark of its indexes and cache (two indexed ``max(id)`` reads). (0, 0): caught up."""
        with self.db.session() as s:
            max_entry = s.scalar(select(func.max(BankEntry.id))) or 0
            max_change = s.scalar(select(func.max(BankChange.id))) or 0
        marks = [(i.last_entry_id, i.last_change_id) for i in self.indexes.values()]
        if self._cache is not None:
            marks.append((self._cache.last_entry_id, self._cache.last_change_id))
        return (max(0, max_entry - min(m[0] for m in marks)) if marks else 0,
                max(0, max_change - min(m[1] for m in marks)) if marks else 0)

    def enable_cache(self) -> None:
        """Switch to cached mode (module docs): exact candidates and verified rows from memory, and (with
        ``index_accel``) the PDQ index's look-up tables. The owner must call :meth:`refresh` regularly (the
        service's background thread does, every second)."""
        if self.index_accel:
            self.bank_index.set_accelerate(True)
        if self._cache is None:
            self._cache = _LookupCache(self)
            if self._opened:
                self._cache.sync(rebuild=True)

    @staticmethod
    def warm() -> None:
        """Load the compiled search kernels now (numba's import and cached code, ~2 s on the first large search):
        a long-running process pays that at start-up instead of in a look-up (with replicas: within the 1 s
        bound). Small searches never need them (numpy answers those), and other index types have none."""
        from ..signals.index_kernel import load_kernels

        load_kernels()

    @property
    def cached(self) -> bool:
        return self._cache is not None

    def _save(self, bank_index: BankIndex) -> None:
        try:
            bank_index.save()
            bank_index.unsaved = 0
        except OSError as exc:  # a read-only location must not stop matching
            log.warning("cannot save the %s index to %s: %s", bank_index.signal.name, bank_index.path, exc)

    def save(self) -> None:
        for bank_index in self.indexes.values():
            self._save(bank_index)

    def close(self) -> None:
        if self._opened:
            for bank_index in self.indexes.values():
                if bank_index.unsaved:
                    self._save(bank_index)

    # -- matching items ---------------------------------------------------------------------------------------

    def queries_of(self, record: Mapping[str, Any]) -> list[Query]:
        """What an item record offers for matching: every matchable type's queries, per the settings."""
        return [q for t in registry.matchable() for q in t.queries(record, self.settings)]

    def match_record(self, record: Mapping[str, Any]) -> MatchResult:
        """Match one item record (its digests, PDQ variants and any other type's values)."""
        return self.match_queries(self.queries_of(record))

    def match(self, digests: dict[str, str] | None = None, pdq: Sequence[Query] | None = None) -> MatchResult:
        """Match digests ({"md5": hex, ...}) and further queries (PDQ hashes) as one item."""
        return self.match_queries([Query(t, v) for t, v in (digests or {}).items()] + list(pdq or []))

    def match_queries(self, queries: Sequence[Query]) -> MatchResult:
        """Match the values of one item: each bank entry is reported once, through its closest query."""
        self.refresh()
        valid = self._valid(queries)
        best: dict[int, tuple[int, int, BankMatch]] = {}  # entry id -> (distance, query row, hit)
        for row, hits in enumerate(self._hits(valid)):
            for hit in hits:
                prev = best.get(hit["entry_id"])
                if prev is None or (hit["distance"], row) < prev[:2]:
                    best[hit["entry_id"]] = (hit["distance"], row, hit)
        return self._decide([hit for _, _, hit in best.values()])

    # -- batch look-ups ---------------------------------------------------------------------------------------

    def lookup_many(self, queries: Sequence[Query], *, check_enabled: bool = True) -> list[LookupResult]:
        """One result per (validated) query, in order: ``{signal_type, value, matches, matches_suppressed,
        allowed_by, truncated}``, each hash decided on its own exactly as an item's matches are.

        ``check_enabled=False`` also reports entries of disabled banks and skips quality floors and allow-list
        suppression (what HMA's ``raw_lookup`` promises: the raw index answer).
        """
        self.refresh()
        return self._results(queries, self._hits(list(queries), check_enabled), check_enabled)

    def lookup_from_memory(self, queries: Sequence[Query], *, check_enabled: bool = True,
                           searched: dict[tuple[str, int], Any] | None = None,
                           ) -> tuple[list[LookupResult] | None, list[int]]:
        """``(lookup_many's answer, [])`` when it can be given without the database (cached mode, every
        candidate's row verified once before), else ``(None, entry ids whose rows are needed)`` — read them with
        :meth:`load_rows` and ask again; ``(None, [])`` when not in cached mode. For an event loop that must not
        block on a database round trip; the background refresh keeps the answer current. Pass the same
        ``searched`` dict to both calls: the index answers of the first are kept in it, so the second (after
        :meth:`load_rows`) does not search the index again."""
        if self._cache is None or not self._opened:
            return None, []
        if any(q.signal_type in registry and registry.get(q.signal_type).prefix_search(q.value) for q in queries):
            return None, []  # a short form needs a range look-up in the database
        missing: list[int] = []
        hits = self._hits(list(queries), check_enabled, missing=missing, searched=searched)
        if missing:
            return None, missing
        return self._results(queries, hits, check_enabled), []

    def load_rows(self, entry_ids: Sequence[int]) -> None:
        """Read entry rows into the cache (cached mode; blocking)."""
        if self._cache is not None:
            self._cache.rows(sorted(set(entry_ids)))

    def _results(self, queries: Sequence[Query], all_hits: list[list[BankMatch]],
                 check_enabled: bool) -> list[LookupResult]:
        results: list[LookupResult] = []
        for q, hits in zip(queries, all_hits):
            if not hits:  # most look-ups: nothing to decide, sort or suppress
                decided = MatchFields(matches=[], matches_suppressed=[], allowed_by=[], truncated=0)
            elif check_enabled:
                decided = self._decide(hits).as_dict()
            else:
                hits.sort(key=lambda h: (h["distance"], h["bank"], h["entry_id"]))
                decided = MatchFields(matches=hits, matches_suppressed=[], allowed_by=[], truncated=0)
            results.append({"signal_type": q.signal_type, "value": q.value, **decided})
        return results

    # -- the search --------------------------------------------------------------------------------------------

    @staticmethod
    def _valid(queries: Sequence[Query]) -> list[Query]:
        """Queries of matchable types with well-formed values (normalised); others cannot match anything."""
        out = []
        kinds: dict[str, SignalType | None] = {}  # an item has ~25 queries of ~5 types: resolve each type once
        for q in queries:
            if q.signal_type not in kinds:
                found = registry.get(q.signal_type) if q.signal_type in registry else None
                kinds[q.signal_type] = found if found is not None and found.matching else None
            kind = kinds[q.signal_type]
            value = kind.valid(q.value) if kind is not None else None
            if kind is not None and value is not None:
                out.append(Query(kind.name, value, q.variant, q.quality))
        return out

    def _hits(self, queries: list[Query], check_enabled: bool = True, missing: list[int] | None = None,
              searched: dict[tuple[str, int], Any] | None = None) -> list[list[BankMatch]]:
        """Per query, the bank entries it matches (verified against the database, or in cached mode against
        rows read from it once). With ``missing`` (cached mode), rows not in memory are not read: their ids
        are added to it and the answer is incomplete."""
        out: list[list[BankMatch]] = [[] for _ in queries]
        banks = [b for b in self.banks.values() if b.enabled or not check_enabled]
        if not queries or not banks:
            return out
        cache = self._cache
        exact = {n: q for n, q in enumerate(queries) if registry.get(q.signal_type).matching == "exact"}
        if exact:
            kinds = {n: registry.get(q.signal_type) for n, q in exact.items()}
            values = sorted({(q.signal_type, v) for n, q in exact.items() for v in kinds[n].lookup_values(q.value)})
            if cache is not None:
                found = cache.rows(sorted(set(cache.exact_candidates(values))), missing)
            else:
                found = self._rows(BankEntry.value, sorted({v for _, v in values}))
            prefixes = sorted({(q.signal_type, q.value) for n, q in exact.items() if kinds[n].prefix_search(q.value)})
            if prefixes:  # short forms (AutoV2, AutoV3): the entries they are a prefix of, by an indexed range
                found = list({int(r.id): r for r in [*found, *self._prefix_rows(prefixes)]}.values())
            by_value: dict[tuple[str, str], list[BankMatch]] = {}
            for row in found:
                if row.removed_at is None and (bank := self._bank(row.bank_id, check_enabled)) is not None:
                    by_value.setdefault((row.signal_type, row.value), []).append(
                        self._hit(bank, row, distance=0, variant=None))
            for n, q in exact.items():
                if not (kinds[n].prefix_lengths or kinds[n].forms):  # digests: equality, as always
                    out[n] = [{**h, "variant": q.variant} if q.variant else h
                              for h in by_value.get((q.signal_type, q.value), [])]
                else:
                    out[n] = _prefix_hits(kinds[n], q, by_value)
        for name, bank_index in self.indexes.items():
            rows = [n for n, q in enumerate(queries) if q.signal_type == name]
            if rows and len(bank_index):
                self._distance_hits(bank_index, [queries[n] for n in rows], banks, check_enabled,
                                    [out[n] for n in rows], missing, searched)
        return out

    def _distance_hits(self, bank_index: BankIndex, queries: list[Query], banks: list[BankInfo],
                       check_enabled: bool, out: list[list[BankMatch]], missing: list[int] | None = None,
                       searched: dict[tuple[str, int], Any] | None = None) -> None:
        kind = bank_index.signal
        values = sorted({q.value for q in queries})
        radius = max(kind.radius_for(b) for b in banks)
        key = (kind.name, radius)
        if searched is not None and key in searched:  # the second ask of one look-up: same values, same answer
            owners, entries = searched[key]
        else:
            # a value may hold several codes (vPDQ: a video's frames): rows map back to values and entries
            query_ids, codes = kind.index_rows(range(len(values)), values)
            qrows, ids, _ = bank_index.search(codes, radius)
            owners = kind.index_owner(query_ids[qrows]) if len(qrows) else qrows
            entries = kind.index_owner(ids)
            if searched is not None:
                searched[key] = (owners, entries)
        if not len(entries):  # most look-ups: nothing near, no rows to read or verify
            return
        candidates: dict[str, set[int]] = {}
        for owner, entry_id in zip(owners.tolist(), entries.tolist()):
            candidates.setdefault(values[owner], set()).add(int(entry_id))
        wanted = sorted(set(entries.tolist()))
        found = self._cache.rows(wanted, missing) if self._cache is not None else self._rows(BankEntry.id, wanted)
        rows = {int(r.id): r for r in found}
        for q, hits in zip(queries, out):
            for entry_id in sorted(candidates.get(q.value, ())):
                row = rows.get(entry_id)
                if row is None or row.removed_at is not None or row.signal_type != kind.name:
                    continue
                bank = self._bank(row.bank_id, check_enabled)
                if bank is None:
                    continue
                if check_enabled and q.quality is not None and q.quality < kind.min_quality_for(bank):
                    continue
                # the database decides, not the index: the stored value (in full when it is kept beside its key)
                verdict = kind.verify(q, row.data or row.value, bank, self.settings)
                if verdict is not None:
                    hit = self._hit(bank, row, distance=verdict[0], variant=q.variant, quality=q.quality)
                    hits.append({**hit, **verdict[1]})  # type: ignore[typeddict-item]

    def _prefix_rows(self, prefixes: list[tuple[str, str]]) -> list[Any]:
        """Entry rows of each (type, short value) whose value starts with it: ``value >= p AND value < p+'g'``
        on the index that leads with ``value`` (a range, unlike ``LIKE``, uses it on PostgreSQL in any
        collation); the type's own check (:meth:`SignalType.same`) then decides."""
        found: list[Any] = []
        with self.db.session() as s:
            for signal_type, prefix in prefixes:
                found += s.execute(select(*_HIT_COLUMNS).where(
                    BankEntry.value >= prefix, BankEntry.value < prefix + "g",
                    BankEntry.signal_type == signal_type)).all()
        return found

    def _rows(self, column: Any, keys: list[Any]) -> list[Any]:
        """Entry rows whose ``column`` is one of ``keys``, in chunks that stay under parameter limits."""
        found: list[Any] = []
        for start in range(0, len(keys), _CHUNK):
            with self.db.session() as s:
                found += s.execute(select(*_HIT_COLUMNS).where(column.in_(keys[start : start + _CHUNK]))).all()
        return found

    def _bank(self, bank_id: int, check_enabled: bool) -> BankInfo | None:
        bank = self.banks.get(bank_id)
        return bank if bank is not None and (bank.enabled or not check_enabled) else None

    @staticmethod
    def _hit(bank: BankInfo, row: Any, distance: int, variant: str | None, quality: int | None = None) -> BankMatch:
        hit: BankMatch = {
            "bank": bank.name,
            "bank_id": bank.id,
            "entry_id": int(row.id),
            "signal_type": row.signal_type,
            "value": row.value,
            "category": row.category,
            "category_label": category_label(bank.category_scheme, row.category),
            "source_id": row.source_id,
            "series": row.series,
            "distance": int(distance),
            "variant": variant,
        }
        if quality is not None:
            hit["query_quality"] = quality
        if bank.negative:
            hit["negative"] = True
        return hit

    def _decide(self, hits: list[BankMatch]) -> MatchResult:
        result = MatchResult()
        key = lambda h: (_is_distance(h["signal_type"]), h["distance"], h["bank"], h["entry_id"])  # noqa: E731
        negatives = sorted((h for h in hits if h.get("negative")), key=key)
        positives = sorted((h for h in hits if not h.get("negative")), key=key)
        result.allowed_by = negatives
        # a model allow-list entry (a common base checkpoint) speaks for the reference it matched, not for the
        # item: it suppresses positive matches of that same reference only (same role, ``variant``)
        model_allow = {h.get("variant"): h for h in reversed(negatives) if _describes(h["signal_type"]) == "model"}
        negatives = [h for h in negatives if _describes(h["signal_type"]) != "model"]
        exact_allow = next((h for h in negatives if not _is_distance(h["signal_type"])), None)
        near_allow = next((h for h in negatives if _is_distance(h["signal_type"])), None)
        for h in positives:
            reason = exact_allow or (near_allow if _is_distance(h["signal_type"]) else None)
            if reason is None and _describes(h["signal_type"]) == "model":
                reason = model_allow.get(h.get("variant"))
            if reason is None:
                result.matches.append(h)
            else:
                result.suppressed.append({**h, "suppressed_by": {
                    "bank": reason["bank"], "entry_id": reason["entry_id"], "signal_type": reason["signal_type"],
                    "distance": reason["distance"], "variant": reason["variant"]}})
        if len(result.matches) > self.max_matches:
            result.truncated = len(result.matches) - self.max_matches
            result.matches = result.matches[: self.max_matches]
        return result


def _prefix_hits(kind: SignalType, q: Query, by_value: dict[tuple[str, str], list[BankMatch]]) -> list[BankMatch]:
    """The hits of one query of a type with prefix forms, each with the ``form`` the match rests on (the
    shorter of the two values: ``AutoV2``, ``AutoV3``, ``SHA256``) and, for a short query, how many distinct
    banked values share its prefix (``prefix_candidates``; ``ambiguous`` when more than one: at 10 hex a
    random collision in a bank of N models has a chance of about N/2^40, but a bank holding near-identical
    files, or a crafted one, can share one)."""
    matched = [(v, hits) for (t, v), hits in by_value.items() if t == q.signal_type and kind.same(q.value, v)]
    # distinct models behind a short query: the longer values it is a prefix of (entries holding only the
    # short value itself are consistent with any of them, and count as one when they are all there is)
    distinct = len({v for v, _ in matched if len(v) > len(q.value)}) or 1
    out: list[BankMatch] = []
    for v, hits in matched:
        extra: dict[str, Any] = {"form": kind.form(min(q.value, v, key=len)), "variant": q.variant}
        if kind.prefix_search(q.value):
            extra["prefix_candidates"] = distinct
            extra["ambiguous"] = distinct > 1
        out.extend({**h, **extra} for h in hits)  # type: ignore[typeddict-item]
    return out


def _exact_key(signal_type: str, value: str) -> int:
    """A 64-bit digest of an exact value and its type (the candidate index's key)."""
    return int.from_bytes(hashlib.blake2b(f"{signal_type}\0{value}".encode(), digest_size=8).digest(), "little")


#: rows kept in memory at most (verified candidates: matching entries, almost never misses)
ROW_CACHE_MAX = 200_000
#: entries added since the candidate index was last built that are merged into it
_EXACT_MERGE_AT = 50_000


class _LookupCache:
    """Cached mode's memory (see the module docs): exact candidates by a 64-bit digest of type and value, and
    the rows that verify candidates, by entry id; kept in step by :meth:`sync` from ``bank_entries`` (new ids)
    and ``bank_changes`` (removals, restores, drops)."""

    def __init__(self, matcher: Matcher) -> None:
        self.db = matcher.db
        self.types = [t.name for t in registry.matchable() if t.matching == "exact"]
        self._keys = np.zeros(0, dtype=np.uint64)
        self._ids = np.zeros(0, dtype=np.int64)
        #: candidates added since the arrays were built: key -> entry ids
        self._recent: dict[int, list[int]] = {}
        self._rows: dict[int, Any] = {}
        self.last_entry_id = 0
        self.last_change_id = 0
        self._lock = threading.Lock()
        #: guards the row cache; ``_generation`` moves on whenever rows are dropped, so that a row read from
        #: the database before a removal was seen is not cached after it was dropped
        self._mutex = threading.Lock()
        self._generation = 0

    def __len__(self) -> int:
        return len(self._ids) + sum(len(v) for v in self._recent.values())

    # -- keeping in step ---------------------------------------------------------------------------------

    def sync(self, rebuild: bool = False) -> None:
        with self._lock:
            with self.db.session() as s:
                changes = s.execute(select(BankChange.id, BankChange.op, BankChange.entry_id)
                                    .where(BankChange.id > self.last_change_id).order_by(BankChange.id)).all()
                max_entry = s.scalar(select(func.max(BankEntry.id))) or 0
                max_change = changes[-1][0] if changes else self.last_change_id
            if rebuild or any(op == "drop" for _, op, _ in changes) or max_entry < self.last_entry_id:
                self._rebuild(max_entry, max(max_change, self.last_change_id))
                return
            if changes:
                with self._mutex:  # removals and restores: re-read the row when next needed
                    for _, _, entry_id in changes:
                        if entry_id is not None:
                            self._rows.pop(int(entry_id), None)
                    self._generation += 1
            if max_entry > self.last_entry_id:
                self._add(self._stream(self.last_entry_id, max_entry))
                self.last_entry_id = max_entry
            self.last_change_id = max_change

    def _rebuild(self, max_entry: int, max_change: int) -> None:
        keys: list[int] = []
        ids: list[int] = []
        for entry_id, key in self._stream(0, max_entry):
            ids.append(entry_id)
            keys.append(key)
        k = np.array(keys, dtype=np.uint64)
        i = np.array(ids, dtype=np.int64)
        order = np.argsort(k, kind="stable")
        self._keys, self._ids, self._recent = k[order], i[order], {}
        with self._mutex:
            self._rows = {}
            self._generation += 1
        self.last_entry_id, self.last_change_id = max_entry, max_change

    def _stream(self, after_id: int, up_to: int) -> Any:
        """(entry id, key) of exact-type entries with after_id < id <= up_to (tombstoned ones too: the row
        decides, and a restore then needs no re-indexing)."""
        if not self.types:
            return
        q = (select(BankEntry.id, BankEntry.signal_type, BankEntry.value)
             .where(BankEntry.signal_type.in_(self.types), BankEntry.id > after_id, BankEntry.id <= up_to)
             .order_by(BankEntry.id))
        with self.db.engine.connect() as conn:
            for entry_id, signal_type, value in conn.execution_options(stream_results=True, yield_per=_LOAD_CHUNK).execute(q):
                yield int(entry_id), _exact_key(signal_type, value)

    def _add(self, pairs: Any) -> None:
        recent = dict(self._recent)  # copy-on-write: readers never see a dict being changed
        for entry_id, key in pairs:
            recent.setdefault(key, []).append(entry_id)
        if sum(len(v) for v in recent.values()) >= _EXACT_MERGE_AT:
            extra_k = np.array([k for k, v in recent.items() for _ in v], dtype=np.uint64)
            extra_i = np.array([i for v in recent.values() for i in v], dtype=np.int64)
            k = np.concatenate([self._keys, extra_k])
            i = np.concatenate([self._ids, extra_i])
            order = np.argsort(k, kind="stable")
            self._keys, self._ids, recent = k[order], i[order], {}
        self._recent = recent

    # -- looking up ----------------------------------------------------------------------------------------

    def exact_candidates(self, values: Sequence[tuple[str, str]]) -> list[int]:
        """Entry ids that may hold one of the (type, value) pairs (a digest collision is weeded out by the row)."""
        if not values:
            return []
        keys_arr, ids_arr, recent = self._keys, self._ids, self._recent
        wanted = [_exact_key(t, v) for t, v in values]
        out: list[int] = []
        if len(keys_arr):
            q = np.array(wanted, dtype=np.uint64)
            lo = np.searchsorted(keys_arr, q, side="left")
            hi = np.searchsorted(keys_arr, q, side="right")
            for a, b in zip(lo.tolist(), hi.tolist()):
                if b > a:
                    out.extend(ids_arr[a:b].tolist())
        for key in wanted:
            out.extend(recent.get(key, ()))
        return out

    def rows(self, ids: Sequence[int], missing: list[int] | None = None) -> list[Any]:
        """The entry rows of ``ids`` (the _HIT_COLUMNS), from memory or read once from the database; with
        ``missing``, only from memory (the ids of rows not there are added to it)."""
        cache = self._rows
        found: list[Any] = []
        absent: list[int] = []
        for i in ids:
            row = cache.get(i)
            if row is None:
                absent.append(i)
            else:
                found.append(row)
        if absent and missing is not None:
            missing.extend(absent)
        elif absent:
            generation = self._generation
            read: list[Any] = []
            with self.db.engine.connect() as conn:  # Core, not an ORM session: a third of the cost per read
                for start in range(0, len(absent), _CHUNK):
                    read += conn.execute(_ROWS_BY_ID, {"ids": absent[start : start + _CHUNK]}).all()
            with self._mutex:
                if generation == self._generation and cache is self._rows:
                    if len(cache) + len(read) > ROW_CACHE_MAX:
                        cache.clear()
                    for row in read:
                        cache[int(row.id)] = row
            found += read
        return found


class MatchStage:
    """Pipeline stage: every record gets ``matches`` (a list, empty when nothing matched) and
    ``matches_suppressed`` (matches an allow-list bank overrode)."""

    name = "match"

    def __init__(self, matcher: Matcher | None) -> None:
        self.matcher = matcher

    def apply(self, record: ItemRecord) -> None:
        if self.matcher is None:
            record["matches"] = []
            record["matches_suppressed"] = []
            return
        result = self.matcher.match_record(record)
        record["matches"] = result.matches
        record["matches_suppressed"] = result.suppressed
        if result.truncated:
            record["matches_truncated"] = result.truncated


def match_stage(config: Config, db: Database | None) -> MatchStage:
    """The stage ``default_stages`` adds: a no-op (empty lists) without a database or without banks."""
    if db is None:
        return MatchStage(None)
    try:
        with db.session() as s:
            has_banks = s.scalar(select(func.count()).select_from(Bank)) or 0
    except Exception:  # a database without the bank tables (not migrated): nothing to match against
        return MatchStage(None)
    matcher = Matcher.from_config(db, config)
    if has_banks:
        matcher.open()
    return MatchStage(matcher)
