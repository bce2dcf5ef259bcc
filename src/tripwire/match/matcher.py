"""The bank-aware matcher: exact digests and PDQ (all 8 orientations + unletterboxed) against every bank.

How one image is matched:

1. **Exact digests** (MD5, SHA-1, SHA-256) are looked up in the database by value (the unique index on
   ``bank_entries.value`` makes this one indexed query), so they are always current.
2. **PDQ**: the image's 8 dihedral hashes, plus the hash of the image with its solid-colour borders
   trimmed, are searched together in one :class:`~tripwire.match.index.PdqIndex` pass at the largest radius
   of any enabled bank. The index holds every active PDQ entry of every bank under its entry id.
3. **Verification against the database.** Every candidate is re-read from ``bank_entries`` and kept only if
   it is still active, its bank is enabled, its distance (recomputed from the stored value) is within *its
   bank's* radius and the query hash meets *its bank's* quality floor. The index is a candidate generator;
   the database decides, so removing an entry stops its matches at once even in a process whose index
   has not caught up yet.
4. **Negative banks** (allow-lists) suppress: a negative exact-digest hit suppresses every match of the
   item; a negative PDQ hit suppresses the PDQ matches (exact digest matches from positive banks stand, a
   byte-identical file is stronger evidence than a perceptual neighbour). Suppressed matches are returned
   separately with the entry that suppressed them, never silently dropped.

The index is persisted next to the database (``<db>.pdqindex/``; ``[banks] index_path`` or
``$TRIPWIRE_BANKS_INDEX_PATH`` elsewhere) with the last entry id and change id it reflects. Opening it
replays what happened since (new entries by id, removals/restores from ``bank_changes``; a dropped bank
triggers a rebuild) and checks its size against the database, so a stale or foreign index file is
rebuilt, never trusted. :meth:`Matcher.refresh` does the same replay in a long-running process (at most
every ``refresh_interval`` seconds, or on demand), which is what makes a new entry matchable within a
second without a rebuild.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from ..banks.categories import category_label
from ..banks.models import Bank, BankChange, BankEntry
from ..banks.signals import EXACT_TYPES, HEX_LENGTHS
from ..banks.store import BankInfo
from ..config import Config
from ..store.db import Database
from .index import PdqIndex, hex_to_codes

log = logging.getLogger(__name__)

#: most matches reported per item (closest first); the count of the rest is reported
DEFAULT_MAX_MATCHES = 50
DEFAULT_REFRESH_S = 1.0
#: save the index after a sync that applied at least this many changes (so the next start is fast)
SAVE_AFTER_CHANGES = 10_000
_CHUNK = 500
_LOAD_CHUNK = 200_000
_STATE = "state.json"
_STATE_VERSION = 1

def hamming(a: str, b: str) -> int:
    """Bits that differ between two equal-length hex strings."""
    return (int(a, 16) ^ int(b, 16)).bit_count()


@dataclass(frozen=True)
class PdqQuery:
    """One hash to look up: which variant of the image it is, and its PDQ quality (None: unknown)."""

    variant: str
    hex: str
    quality: int | None = None


@dataclass
class MatchResult:
    #: matches from positive banks that stand, closest first
    matches: list[dict[str, Any]] = field(default_factory=list)
    #: positive matches suppressed by a negative bank (each with ``suppressed_by``)
    suppressed: list[dict[str, Any]] = field(default_factory=list)
    #: hits in negative banks (the reason for any suppression)
    allowed_by: list[dict[str, Any]] = field(default_factory=list)
    #: matches beyond ``max_matches`` that were not listed
    truncated: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {"matches": self.matches, "matches_suppressed": self.suppressed, "allowed_by": self.allowed_by,
                "truncated": self.truncated}


def default_index_path(db: Database, config: Config | None = None) -> Path | None:
    """Where the PDQ index of ``db`` lives: configured path, else ``<sqlite file>.pdqindex``, else a cache
    folder keyed by the database URL (for PostgreSQL); None for in-memory SQLite."""
    sections = (config.sections if config else {}) or {}
    configured = os.environ.get("TRIPWIRE_BANKS_INDEX_PATH") or (sections.get("banks") or {}).get("index_path")
    if configured:
        return Path(configured).expanduser()
    url = make_url(db.url)
    if url.get_backend_name() == "sqlite":
        if not url.database or url.database == ":memory:":
            return None
        return Path(url.database + ".pdqindex")
    key = hashlib.sha256(url.render_as_string(hide_password=True).encode()).hexdigest()[:16]
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "tripwire" / f"pdqindex-{key}"


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
    """Every active PDQ entry of every bank in a :class:`PdqIndex`, kept in step with the database."""

    def __init__(self, db: Database, path: Path | None = None, mmap: bool = False) -> None:
        self.db = db
        self.path = path
        self.mmap = mmap
        self.index = PdqIndex()
        self.last_entry_id = 0
        self.last_change_id = 0
        self._lock = threading.RLock()
        self.loaded_from_disk = False

    def __len__(self) -> int:
        return len(self.index)

    # -- persistence -------------------------------------------------------------------------------------

    def _fingerprint(self) -> str:
        return hashlib.sha256(make_url(self.db.url).render_as_string(hide_password=True).encode()).hexdigest()[:16]

    def load(self) -> bool:
        """Read the persisted index if it belongs to this database; False when there is none to trust."""
        if self.path is None:
            return False
        try:
            state = json.loads((self.path / _STATE).read_text(encoding="utf-8"))
            if state.get("version") != _STATE_VERSION or state.get("db") != self._fingerprint():
                return False
            index = PdqIndex.load(self.path / state["file"], mmap=self.mmap)
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
        if len(self.index) == 0 and not (self.path / _STATE).exists():
            return  # no PDQ entries anywhere: leave no empty index folder behind
        self.path.mkdir(parents=True, exist_ok=True)
        with self._lock:
            name = f"index-{time.time_ns()}.pdqidx"
            self.index.save(self.path / name)
            state = {"version": _STATE_VERSION, "db": self._fingerprint(), "file": name, "count": len(self.index),
                     "last_entry_id": self.last_entry_id, "last_change_id": self.last_change_id,
                     "saved_at": time.time()}
            tmp = self.path / f".{_STATE}.{os.getpid()}.tmp"
            tmp.write_text(json.dumps(state), encoding="utf-8")
            os.replace(tmp, self.path / _STATE)
        for old in self.path.glob("index-*.pdqidx"):
            if old.name != name:
                try:
                    old.unlink()
                except OSError:
                    pass

    # -- keeping in step -------------------------------------------------------------------------------

    def db_count(self) -> int:
        with self.db.session() as s:
            return s.scalar(select(func.count()).select_from(BankEntry).where(
                BankEntry.signal_type == "pdq", BankEntry.removed_at.is_(None))) or 0

    def rebuild(self) -> SyncStats:
        """Build the index from the database alone (what a fresh start and ``bank reindex`` do)."""
        started = time.monotonic()
        with self.db.session() as s:
            max_change = s.scalar(select(func.max(BankChange.id))) or 0
            max_entry = s.scalar(select(func.max(BankEntry.id))) or 0
        index = PdqIndex()
        added = self._stream_into(index, 0, max_entry)
        with self._lock:
            self.index = index
            self.last_entry_id = max_entry
            self.last_change_id = max_change
        return SyncStats(added=added, rebuilt=True, seconds=time.monotonic() - started)

    def _stream_into(self, index: PdqIndex, after_id: int, up_to: int | None = None) -> int:
        """Add active pdq entries with after_id < id (<= up_to) to ``index``; returns how many."""
        q = (select(BankEntry.id, BankEntry.value)
             .where(BankEntry.signal_type == "pdq", BankEntry.removed_at.is_(None), BankEntry.id > after_id))
        if up_to is not None:
            q = q.where(BankEntry.id <= up_to)
        q = q.order_by(BankEntry.id)
        total = 0
        ids: list[int] = []
        hexes: list[str] = []
        with self.db.engine.connect() as conn:
            for entry_id, value in conn.execution_options(stream_results=True, yield_per=_LOAD_CHUNK).execute(q):
                ids.append(entry_id)
                hexes.append(value)
                if len(ids) >= _LOAD_CHUNK:
                    index.add(np.array(ids, dtype=np.int64), hex_to_codes(hexes))
                    total += len(ids)
                    ids, hexes = [], []
        if ids:
            index.add(np.array(ids, dtype=np.int64), hex_to_codes(hexes))
            total += len(ids)
        return total

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
                stats.removed += self.index.remove(np.array(removed, dtype=np.int64))
            for start in range(0, len(restored), _CHUNK):
                chunk = restored[start : start + _CHUNK]
                with self.db.session() as s:
                    rows = s.execute(select(BankEntry.id, BankEntry.value).where(
                        BankEntry.id.in_(chunk), BankEntry.signal_type == "pdq", BankEntry.removed_at.is_(None))).all()
                if rows:
                    self.index.add(np.array([r[0] for r in rows], dtype=np.int64), hex_to_codes([r[1] for r in rows]))
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
            if verify and not stats.rebuilt and len(self.index) != self.db_count():
                log.warning("PDQ index at %s disagrees with the database; rebuilding", self.path)
                stats = self.rebuild()
        return stats

    def search(self, codes: np.ndarray, radius: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return self.index.search_arrays(codes, radius)


class Matcher:
    """Matches items against every enabled bank of one database (see the module docs)."""

    def __init__(self, db: Database, index_path: Path | None = None, *, refresh_interval: float = DEFAULT_REFRESH_S,
                 max_matches: int = DEFAULT_MAX_MATCHES, use_variants: bool = True, use_unletterbox: bool = True,
                 persist: bool = True, mmap: bool = False) -> None:
        self.db = db
        self.bank_index = BankIndex(db, index_path if persist else None, mmap=mmap)
        self.refresh_interval = refresh_interval
        self.max_matches = max_matches
        self.use_variants = use_variants
        self.use_unletterbox = use_unletterbox
        self.banks: dict[int, BankInfo] = {}
        self._last_refresh = 0.0
        self._opened = False
        self._unsaved = 0
        self.last_sync: SyncStats | None = None

    @classmethod
    def from_config(cls, db: Database, config: Config | None = None, **overrides: Any) -> "Matcher":
        """A matcher with the ``[banks]`` settings of ``config`` (index_path, refresh_interval,
        max_matches_per_item, variants, unletterbox)."""
        section = ((config.sections if config else {}) or {}).get("banks") or {}
        kwargs: dict[str, Any] = {
            "index_path": default_index_path(db, config),
            "refresh_interval": float(section.get("refresh_interval", DEFAULT_REFRESH_S)),
            "max_matches": int(section.get("max_matches_per_item", DEFAULT_MAX_MATCHES)),
            "use_variants": bool(section.get("variants", True)),
            "use_unletterbox": bool(section.get("unletterbox", True)),
        }
        kwargs.update(overrides)
        return cls(db, **kwargs)

    # -- state ----------------------------------------------------------------------------------------------

    def _load_banks(self) -> None:
        with self.db.session() as s:
            self.banks = {b.id: BankInfo.of(b) for b in s.scalars(select(Bank))}

    def open(self) -> SyncStats:
        """Load banks and the PDQ index (building or catching it up); saves it when that was real work."""
        self._load_banks()
        stats = self.bank_index.open()
        self._opened = True
        self._last_refresh = time.monotonic()
        self.last_sync = stats
        if stats.rebuilt or stats.changes >= SAVE_AFTER_CHANGES:
            self.save()
        return stats

    def refresh(self, force: bool = False) -> SyncStats | None:
        """Catch up with bank changes made since the last refresh (by this or any other process)."""
        if not self._opened:
            return self.open()
        if not force and time.monotonic() - self._last_refresh < self.refresh_interval:
            return None
        self._load_banks()
        stats = self.bank_index.sync()
        self._last_refresh = time.monotonic()
        self.last_sync = stats
        self._unsaved += stats.changes
        if stats.rebuilt or self._unsaved >= SAVE_AFTER_CHANGES:
            self.save()
        return stats

    def rebuild(self) -> SyncStats:
        """Rebuild the index from the database and persist it."""
        self._load_banks()
        stats = self.bank_index.rebuild()
        self._opened = True
        self._last_refresh = time.monotonic()
        self.save()
        return stats

    def save(self) -> None:
        try:
            self.bank_index.save()
            self._unsaved = 0
        except OSError as exc:  # a read-only location must not stop matching
            log.warning("cannot save the PDQ index to %s: %s", self.bank_index.path, exc)

    def close(self) -> None:
        if self._opened and self._unsaved:
            self.save()

    # -- queries ----------------------------------------------------------------------------------------------

    def queries_of(self, record: dict[str, Any]) -> list[PdqQuery]:
        """The PDQ queries for an item record (its variants and unletterbox hash, per the settings)."""
        quality = record.get("pdq_quality")
        trimmed_quality = record.get("pdq_unletterbox_quality")
        queries: list[PdqQuery] = []
        if record.get("pdq"):
            queries.append(PdqQuery("original", record["pdq"], quality))
        variants = record.get("pdq_variants")
        if isinstance(variants, dict):
            for name, h in variants.items():
                if not isinstance(h, str):
                    continue
                trimmed = name.startswith("unletterbox")
                if (trimmed and not self.use_unletterbox) or (not self.use_variants and name not in ("original", "unletterbox")):
                    continue
                queries.append(PdqQuery(name, h, trimmed_quality if trimmed else quality))
        if self.use_unletterbox and record.get("pdq_unletterbox"):
            queries.append(PdqQuery("unletterbox", record["pdq_unletterbox"], trimmed_quality))
        return queries

    def match_record(self, record: dict[str, Any]) -> MatchResult:
        """Match one item record (digests, PDQ, variants and unletterbox hash as the extractors left them)."""
        digests = {t: record.get(t) for t in EXACT_TYPES if record.get(t)}
        return self.match(digests, self.queries_of(record))

    def match(self, digests: dict[str, str] | None = None, pdq: Sequence[PdqQuery] | None = None) -> MatchResult:
        """Match digests ({"md5": hex, ...}) and PDQ queries against every enabled bank."""
        self.refresh()
        hits = self._exact(digests or {}) + self._pdq(list(pdq or []))
        return self._decide(hits)

    def _exact(self, digests: dict[str, str]) -> list[dict[str, Any]]:
        pairs = {(t, str(v).strip().lower()) for t, v in digests.items()
                 if t in EXACT_TYPES and v and len(str(v).strip()) == HEX_LENGTHS[t]}
        if not pairs:
            return []
        values = sorted({v for _, v in pairs})
        with self.db.session() as s:
            rows = s.execute(select(*_HIT_COLUMNS).where(BankEntry.value.in_(values), BankEntry.removed_at.is_(None))).all()
        out = []
        for row in rows:
            if (row.signal_type, row.value) not in pairs:
                continue
            bank = self.banks.get(row.bank_id)
            if bank is None or not bank.enabled:
                continue
            out.append(self._hit(bank, row, distance=0, variant=None))
        return out

    def _pdq(self, queries: list[PdqQuery]) -> list[dict[str, Any]]:
        pdq_banks = [b for b in self.banks.values() if b.enabled]
        if not queries or not pdq_banks or len(self.bank_index) == 0:
            return []
        # identical hashes (symmetric images) are searched once; the first variant name is kept
        unique: dict[str, PdqQuery] = {}
        for q in queries:
            h = q.hex.strip().lower()
            if len(h) == 64 and h not in unique:
                unique[h] = PdqQuery(q.variant, h, q.quality)
        if not unique:
            return []
        uq = list(unique.values())
        floor = min(b.min_quality for b in pdq_banks)
        searchable = [q for q in uq if q.quality is None or q.quality >= floor]
        if not searchable:
            return []
        radius = max(b.pdq_radius for b in pdq_banks)
        codes = hex_to_codes([q.hex for q in searchable])
        qrows, ids, dists = self.bank_index.search(codes, radius)
        if ids.size == 0:
            return []
        best: dict[int, tuple[int, int]] = {}  # entry id -> (distance, query row); rows come closest first
        for qrow, entry_id, dist in zip(qrows.tolist(), ids.tolist(), dists.tolist()):
            prev = best.get(entry_id)
            if prev is None or (dist, qrow) < prev:
                best[entry_id] = (dist, qrow)
        out = []
        id_list = sorted(best)
        for start in range(0, len(id_list), _CHUNK):
            chunk = id_list[start : start + _CHUNK]
            with self.db.session() as s:
                rows = s.execute(select(*_HIT_COLUMNS).where(BankEntry.id.in_(chunk))).all()
            for row in rows:
                if row.removed_at is not None or row.signal_type != "pdq":
                    continue
                bank = self.banks.get(row.bank_id)
                if bank is None or not bank.enabled:
                    continue
                # the database decides: recompute the distance over every query, keep the closest allowed one
                chosen = None
                for q in searchable:
                    if q.quality is not None and q.quality < bank.min_quality:
                        continue
                    d = hamming(q.hex, row.value)
                    if d <= bank.pdq_radius and (chosen is None or d < chosen[0]):
                        chosen = (d, q)
                if chosen is None:
                    continue
                out.append(self._hit(bank, row, distance=chosen[0], variant=chosen[1].variant,
                                     quality=chosen[1].quality))
        return out

    @staticmethod
    def _hit(bank: BankInfo, row: Any, distance: int, variant: str | None, quality: int | None = None) -> dict[str, Any]:
        hit = {
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

    def _decide(self, hits: list[dict[str, Any]]) -> MatchResult:
        result = MatchResult()
        key = lambda h: (h["signal_type"] == "pdq", h["distance"], h["bank"], h["entry_id"])  # noqa: E731
        negatives = sorted((h for h in hits if h.get("negative")), key=key)
        positives = sorted((h for h in hits if not h.get("negative")), key=key)
        result.allowed_by = negatives
        exact_allow = next((h for h in negatives if h["signal_type"] != "pdq"), None)
        pdq_allow = next((h for h in negatives if h["signal_type"] == "pdq"), None)
        for h in positives:
            reason = exact_allow or (pdq_allow if h["signal_type"] == "pdq" else None)
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


_HIT_COLUMNS = (BankEntry.id, BankEntry.bank_id, BankEntry.signal_type, BankEntry.value, BankEntry.category,
                BankEntry.source_id, BankEntry.series, BankEntry.removed_at)


class MatchStage:
    """Pipeline stage: every record gets ``matches`` (a list, empty when nothing matched) and
    ``matches_suppressed`` (matches an allow-list bank overrode)."""

    name = "match"

    def __init__(self, matcher: Matcher | None) -> None:
        self.matcher = matcher

    def apply(self, record: dict[str, Any]) -> None:
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
