"""The stored items' hashes, indexed the other way round: new bank entries are looked up against them.

Re-matching (:mod:`tripwire.pipeline.rematch`) must find, for a handful of new or removed bank entries, the
stored contents they may match among millions, without reading a file and without matching every item
again. So the *stored* side is indexed and the *changed entries* are the queries:

* **Exact types** (MD5, SHA-1, SHA-256) need no index of their own: ``contents.md5``/``sha1`` are indexed
  columns and ``sha256`` is the key, so :func:`contents_with_values` is one indexed query per chunk.
* **PDQ**: a :class:`~tripwire.signals.index.PdqIndex` over every stored content's PDQ hash and the variants
  the scan recorded for it (the 8 rotations/flips and the unletterboxed hashes of the ``pdq_variants``
  fact), so a bank entry of a rotated copy finds the stored upright picture. An index id is
  ``content ordinal * SLOTS + slot`` (the slot says which hash of the content it is); the ordinal -> SHA-256
  map is kept next to the codes.

The index is persisted next to the database (``<db>.itemindex/`` beside the bank index's ``<db>.pdqindex/``)
with the last item id it has seen, and kept in step incrementally: :meth:`StoredHashIndex.sync` reads the
items stored since (plus a slack window on PostgreSQL, whose transactions may commit out of id order), adds
the contents it has not indexed yet and saves. ``tripwire scan`` syncs it when it finishes; a re-match
syncs it first. A persisted index that does not belong to the database, or whose content count disagrees
with it, is rebuilt, never trusted. The index only proposes candidates: every candidate item is matched
again by the :class:`~tripwire.match.matcher.Matcher`, which decides.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
from sqlalchemy import and_, func, select

from ..config import Config
from ..signals.hamming import hex_to_codes
from ..signals.index import PdqIndex
from ..signals.pdq_labels import DIHEDRAL_VARIANTS, UNLETTERBOX, trimmed_label
from ..signals.registry import registry
from ..store.db import Database
from ..store.models import Content, Fact, ItemRow
from .index_state import read_state, write_state
from .matcher import default_index_path

log = logging.getLogger(__name__)

__all__ = ["DIGEST_TYPES", "SLOTS", "SLOT_LABELS", "StoredHashIndex", "StoredHit", "contents_with_values", "stored_index_path"]

#: which hash of a content an index id stands for: its PDQ, the 8 orientations, the unletterboxed ones
SLOT_LABELS: tuple[str, ...] = ("pdq", *DIHEDRAL_VARIANTS, *(trimmed_label(v) for v in DIHEDRAL_VARIANTS))
_SLOT = {label: n for n, label in enumerate(SLOT_LABELS)}
#: ids per content (room for more labels without renumbering)
SLOTS = 32
_STATE_VERSION = 1
#: item ids re-read behind the watermark on PostgreSQL (a transaction may commit after a later id)
PG_SLACK_IDS = 10_000
_CHUNK = 500
_LOAD_CHUNK = 50_000
#: queries per search call when several threads share a large search
_THREAD_MIN_WORK = 50_000_000
_DIGEST_COLUMNS = {"md5": Content.md5, "sha1": Content.sha1, "sha256": Content.sha256}
#: exact types found through the ``contents`` columns
DIGEST_TYPES = frozenset(_DIGEST_COLUMNS)


def stored_index_path(db: Database, config: Config | None = None) -> Path | None:
    """``<db>.itemindex`` beside the bank index ``<db>.pdqindex`` (for a configured or cache location: the
    same name with ``-items``); None for in-memory SQLite (built in memory each time)."""
    bank = default_index_path(db, config)
    if bank is None:
        return None
    if bank.name.endswith(".pdqindex"):
        return bank.with_name(bank.name[: -len(".pdqindex")] + ".itemindex")
    return bank.with_name(bank.name + "-items")


def contents_with_values(db: Database, signal_type: str, values: Sequence[str]) -> dict[str, set[str]]:
    """value -> SHA-256s of stored contents whose ``signal_type`` digest is that value (exact types)."""
    column = _DIGEST_COLUMNS.get(signal_type)
    out: dict[str, set[str]] = {}
    if column is None or not values:
        return out
    keys = sorted(set(values))
    for start in range(0, len(keys), _CHUNK):
        with db.session() as s:
            for value, sha in s.execute(select(column, Content.sha256).where(column.in_(keys[start : start + _CHUNK]))):
                out.setdefault(value, set()).add(sha)
    return out


@dataclass(frozen=True)
class StoredHit:
    """One query's neighbour among the stored hashes: which content, through which of its hashes, how far."""

    query: int
    sha256: str
    label: str
    distance: int


def _sha_key(shas: np.ndarray) -> np.ndarray:
    """The first 8 bytes of each (n, 32) SHA-256 as a uint64 (the membership key; full bytes confirm)."""
    return np.ascontiguousarray(shas[:, :8]).view(">u8").reshape(-1).astype(np.uint64)


class StoredHashIndex:
    """Every stored content's PDQ hashes (and variants) in one :class:`PdqIndex` (see the module docs)."""

    def __init__(self, db: Database, path: Path | None = None, *, threads: int | None = None) -> None:
        self.db = db
        self.path = path
        self.threads = max(1, threads or os.cpu_count() or 1)
        self.index = PdqIndex()
        #: (n, 32) uint8 SHA-256 of content ordinal k
        self._shas = np.zeros((0, 32), dtype=np.uint8)
        #: membership: sorted 8-byte prefixes and the ordinal of each
        self._keys = np.zeros(0, dtype=np.uint64)
        self._ords = np.zeros(0, dtype=np.int64)
        self.last_item_id = 0
        self.unsaved = 0
        self.loaded_from_disk = False
        self._lock = threading.RLock()

    @classmethod
    def for_database(cls, db: Database, config: Config | None = None) -> StoredHashIndex:
        return cls(db, stored_index_path(db, config))

    def __len__(self) -> int:
        """Contents indexed."""
        return int(self._shas.shape[0])

    @property
    def codes(self) -> int:
        """Hashes indexed (a content has up to 17)."""
        return len(self.index)

    # -- persistence -------------------------------------------------------------------------------------

    def load(self) -> bool:
        if self.path is None:
            return False
        try:
            state = read_state(self.path, self.db, _STATE_VERSION)
            if state is None:
                return False
            index = PdqIndex.load(self.path / state["index"], mmap=True)
            shas = np.load(self.path / state["shas"], allow_pickle=False)
            if shas.ndim != 2 or shas.shape[1] != 32 or shas.dtype != np.uint8 or len(shas) != int(state["contents"]):
                return False
        except (OSError, ValueError, KeyError) as exc:
            log.info("stored-hash index at %s not usable (%s); rebuilding", self.path, exc)
            return False
        with self._lock:
            self.index = index
            self._set_shas(shas)
            self.last_item_id = int(state["last_item_id"])
        self.loaded_from_disk = True
        return True

    def save(self) -> None:
        if self.path is None:
            return
        with self._lock:
            self.path.mkdir(parents=True, exist_ok=True)
            stamp = time.time_ns()
            index_name, shas_name = f"codes-{stamp}.pdqidx", f"shas-{stamp}.npy"
            self.index.save(self.path / index_name)
            with open(self.path / shas_name, "wb") as fh:
                np.save(fh, self._shas, allow_pickle=False)
            write_state(self.path, self.db, _STATE_VERSION,
                        {"index": index_name, "shas": shas_name, "contents": len(self), "codes": self.codes,
                         "last_item_id": self.last_item_id},
                        keep=(index_name, shas_name), patterns=("codes-*.pdqidx", "shas-*.npy"))
            self.unsaved = 0

    def _set_shas(self, shas: np.ndarray) -> None:
        keys = _sha_key(shas)
        order = np.argsort(keys, kind="stable")
        self._shas, self._keys, self._ords = shas, keys[order], order.astype(np.int64)

    # -- keeping in step ---------------------------------------------------------------------------------

    def db_count(self) -> int:
        with self.db.session() as s:
            return s.scalar(select(func.count()).select_from(Content).where(Content.pdq.is_not(None))) or 0

    def open(self, verify: bool = True) -> int:
        """Load (or build) and catch up; rebuild when the result disagrees with the database. Returns the
        number of contents added."""
        if not self.load():
            return self.rebuild()
        added = self.sync()
        if verify and len(self) != self.db_count():
            log.warning("stored-hash index at %s disagrees with the database; rebuilding", self.path)
            return self.rebuild()
        return added

    def rebuild(self) -> int:
        with self.db.session() as s:
            max_item = s.scalar(select(func.max(ItemRow.id))) or 0
        with self._lock:
            self.index = PdqIndex()
            self._set_shas(np.zeros((0, 32), dtype=np.uint8))
            q = (select(Content.sha256).where(Content.pdq.is_not(None)).order_by(Content.sha256))
            added = 0
            batch: list[str] = []
            with self.db.engine.connect() as conn:
                for (sha,) in conn.execution_options(stream_results=True, yield_per=_LOAD_CHUNK).execute(q):
                    batch.append(sha)
                    if len(batch) >= _LOAD_CHUNK:
                        added += self._add_contents(batch)
                        batch = []
            added += self._add_contents(batch)
            self.last_item_id = max_item
        self.save_quietly()
        return added

    def sync(self) -> int:
        """Index the contents of items stored since the last sync; saves when anything was added."""
        with self._lock:
            slack = PG_SLACK_IDS if self.db.dialect == "postgresql" else 0
            with self.db.session() as s:
                max_item = s.scalar(select(func.max(ItemRow.id))) or 0
            if max_item < self.last_item_id:  # items were deleted from the end, or another database
                return self.rebuild()
            if max_item == self.last_item_id and not slack:
                return 0
            shas: set[str] = set()
            q = (select(ItemRow.sha256).join(Content, Content.sha256 == ItemRow.sha256)
                 .where(ItemRow.id > max(0, self.last_item_id - slack), ItemRow.id <= max_item,
                        Content.pdq.is_not(None)))
            with self.db.engine.connect() as conn:
                for (sha,) in conn.execution_options(stream_results=True, yield_per=_LOAD_CHUNK).execute(q):
                    if sha:
                        shas.add(sha)
            new = [sha for sha in sorted(shas) if not self.contains(sha)]
            added = self._add_contents(new)
            self.last_item_id = max_item
        if added:
            self.save_quietly()
        return added

    def save_quietly(self) -> None:
        try:
            self.save()
        except OSError as exc:  # a read-only location must not stop re-matching
            log.warning("cannot save the stored-hash index to %s: %s", self.path, exc)

    def contains(self, sha256: str) -> bool:
        raw = np.frombuffer(bytes.fromhex(sha256), dtype=np.uint8)[None, :]
        key = _sha_key(raw)[0]
        lo, hi = np.searchsorted(self._keys, key, "left"), np.searchsorted(self._keys, key, "right")
        return any(bytes(self._shas[o]) == raw.tobytes() for o in self._ords[lo:hi].tolist())

    def _add_contents(self, shas: Sequence[str]) -> int:
        """Read the PDQ hashes of ``shas`` (contents + their ``pdq_variants`` fact) and index them."""
        if not shas:
            return 0
        ids: list[int] = []
        hexes: list[str] = []
        added: list[str] = []
        base = len(self)
        for start in range(0, len(shas), _CHUNK):
            part = list(shas[start : start + _CHUNK])
            with self.db.session() as s:
                rows = s.execute(
                    select(Content.sha256, Content.pdq, Fact.data)
                    .outerjoin(Fact, and_(Fact.sha256 == Content.sha256, Fact.extractor == "pdq_variants"))
                    .where(Content.sha256.in_(part), Content.pdq.is_not(None))).all()
            for sha, pdq, data in sorted(rows, key=lambda r: r[0]):
                ordinal = base + len(added)
                added.append(sha)
                seen: set[str] = set()
                for label, value in _labelled(pdq, data):
                    if label in _SLOT and value not in seen:
                        seen.add(value)
                        ids.append(ordinal * SLOTS + _SLOT[label])
                        hexes.append(value)
        if not added:
            return 0
        if ids:
            self.index.add(np.array(ids, dtype=np.int64), hex_to_codes(hexes))
        new = np.frombuffer(bytes.fromhex("".join(added)), dtype=np.uint8).reshape(-1, 32)
        self._set_shas(np.concatenate([self._shas, new]) if len(self._shas) else new.copy())
        self.unsaved += len(added)
        return len(added)

    # -- searching -------------------------------------------------------------------------------------------

    def search(self, hexes: Sequence[str], radius: int) -> list[StoredHit]:
        """Every stored hash within ``radius`` of each query (64-hex PDQ), as (query row, content, label,
        distance); large searches are split over threads (the kernel releases the GIL)."""
        if not hexes or not len(self.index):
            return []
        codes = hex_to_codes(list(hexes))
        n = len(codes)
        parts = min(self.threads, max(1, (n * self.codes) // _THREAD_MIN_WORK), n)
        bounds = [(n * k) // parts for k in range(parts + 1)]

        def run(k: int) -> tuple[int, Any]:
            return bounds[k], self.index.search_arrays(codes[bounds[k] : bounds[k + 1]], radius)

        if parts == 1:
            results = [run(0)]
        else:
            with ThreadPoolExecutor(parts) as pool:
                results = list(pool.map(run, range(parts)))
        hits: list[StoredHit] = []
        for offset, (qrows, ids, dists) in results:
            for qrow, id_, dist in zip(qrows.tolist(), ids.tolist(), dists.tolist()):
                ordinal, slot = divmod(int(id_), SLOTS)
                hits.append(StoredHit(offset + int(qrow), bytes(self._shas[ordinal]).hex(), SLOT_LABELS[slot], int(dist)))
        return hits


def _labelled(pdq: str | None, data: Any) -> Iterable[tuple[str, str]]:
    """(slot label, 64-hex) of one content: its PDQ, then the recorded variants (malformed values skipped)."""
    kind = registry.get("pdq")
    found: list[tuple[str, Any]] = [("pdq", pdq)]
    if isinstance(data, dict):
        variants = data.get("pdq_variants")
        found += [(str(k), v) for k, v in (variants.items() if isinstance(variants, dict) else ())]
        found.append((UNLETTERBOX, data.get("pdq_unletterbox")))
    for label, value in found:
        hex_ = kind.valid(value) if isinstance(value, str) else None
        if hex_ is not None:
            yield label, hex_
