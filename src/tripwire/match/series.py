"""Series: images one creator made in one sitting — same checkpoint, same LoRA set, one prompt template with
small variations — grouped so that they are reviewed, reported and linked as one unit.

Method (docs/series.md has the reasoning and the measured figures):

1. **Block** = checkpoint key + LoRA set key, both exact. The checkpoint key is the model's AutoV2 hash
   (the first 10 hex of its SHA-256, derived when only the SHA-256 is known), else its AutoV1 hash, else
   its normalised name. Each LoRA is keyed by its AutoV3 hash, else its SHA-256, else its normalised name;
   the set is sorted and weights are ignored (creators tune weights from image to image).
2. **Template** = the prompt with LoRA/embedding tags removed, attention weights ``(x:1.2)`` and brackets
   dropped, lower-cased, split into words (numbers kept). Its shingles are the words and the word pairs.
3. Within a block, an item joins the series of the most similar earlier item whose template has an
   estimated Jaccard similarity ≥ ``threshold`` (default 0.5) over 64 MinHash permutations; otherwise it
   starts a new series. Candidates come from LSH banding (16 bands of 2 rows: a pair at Jaccard 0.5 is a
   candidate with probability 0.99, at 0.1 with 0.15). A bucket keeps the ``MAX_PER_BUCKET`` series that
   joined it most recently (each with its latest member's signature), so an item is verified against at
   most 16 × 8 signatures however many series exist. Joining the best match of any member (single linkage) lets a template drift
   slowly across a long series.
4. Seeds are recorded per member and as the series' range; consecutive or fixed seeds are shown as a signal,
   never required.

Records without generator facts are not in any series. Facts come from the provenance ``generator`` field:
the structured ``model_ref``/``loras``/``prompt_template`` when the parser gives them, else derived here from
``model``, ``model_hash``, ``prompt`` (``<lora:name:w>`` tags) and an AUTOMATIC1111 ``Lora hashes:`` line.

:func:`assign_series` runs after a scan (and after each service upload): it examines only items that have
no ``series_members`` row yet, looks their LSH buckets up in ``series_buckets`` (the persisted index), and
stores each item's ``series`` id in its stage data for items.jsonl — work proportional to the new items.
Per chunk of items it loads the buckets in a few queries, inserts the new series together (provisional ids
until then) and writes members, buckets and stage data with one statement each.
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
import zlib
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
from sqlalchemy import and_, bindparam, delete, insert, select, update

from ..config import Config
from ..store.db import Database
from ..store.models import Fact, ItemRow
from .models import Series, SeriesBucket, SeriesMember

__all__ = ["SeriesFacts", "SeriesIndex", "SeriesSummary", "series_facts", "normalise_prompt", "signature",
           "band_keys", "group_records", "assign_series", "settings", "DEFAULT_THRESHOLD"]

DEFAULT_THRESHOLD = 0.5
NUM_PERM = 64
BANDS = 16
ROWS = 2
#: series kept per LSH bucket, the most recently joined (a bucket shared by many series is a phrase every
#: creator uses; an active run keeps its place by joining again). Bounds the verifications per item.
MAX_PER_BUCKET = 8
_CHUNK = 1000
_IN_CHUNK = 500
_INT64 = 2 ** 63

_MERSENNE = np.uint64((1 << 61) - 1)
_rng = np.random.default_rng(20261217)
_A = _rng.integers(1, (1 << 61) - 1, NUM_PERM, dtype=np.uint64)
_B = _rng.integers(0, (1 << 61) - 1, NUM_PERM, dtype=np.uint64)
_EMPTY = np.full(NUM_PERM, 0xFFFFFFFF, dtype=np.uint32)

_TAG = re.compile(r"<\s*(?:lora|lyco|locon|hypernet|embedding|ti)\s*:[^>]*>", re.I)
_LORA_TAG = re.compile(r"<\s*(?:lora|lyco|locon)\s*:\s*([^:>]+?)\s*(?::\s*(-?[\d.]+)[^>]*)?>", re.I)
_WEIGHT = re.compile(r":\s*-?\d+(?:\.\d+)?\s*(?=[)\]])")
_BRACKETS = re.compile(r"[()\[\]{}]")
_WORD = re.compile(r"[^\W_](?:[\w'\-]*[^\W_])?")
_LORA_HASHES = re.compile(r"Lora hashes:\s*\"([^\"]*)\"", re.I)
_HEX = re.compile(r"^[0-9a-fA-F]+$")
_MODEL_EXT = re.compile(r"\.(safetensors|ckpt|pt|pth|bin|gguf|sft)$", re.I)


@dataclass(frozen=True)
class SeriesFacts:
    """What decides an item's series, in comparable form."""

    checkpoint: str | None
    model: str | None
    model_hash: str | None
    #: ((key, display name), ...) sorted by key
    loras: tuple[tuple[str, str], ...]
    template: str
    seed: int | None

    @property
    def block(self) -> str:
        text = (self.checkpoint or "") + "\x1f" + "\x1e".join(k for k, _ in self.loras)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _name(value: Any) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return None
    base = re.split(r"[\\/]", value.strip())[-1]
    base = re.sub(r"\s*\[[0-9a-fA-F]{8,12}\]$", "", base)  # "model [abcdef1234]" as some UIs write it
    base = _MODEL_EXT.sub("", base).strip().lower()
    return base or None


def _hex(value: Any, *lengths: int) -> str | None:
    if isinstance(value, str):
        v = value.strip().lower()
        if _HEX.match(v) and len(v) in lengths:
            return v
    return None


def _checkpoint(ref: Mapping[str, Any], legacy_hash: Any, name: str | None) -> tuple[str | None, str | None]:
    """(key, display hash): AutoV2 (derived from a SHA-256 too) > AutoV1 > name."""
    hashes = _mapping(ref.get("hashes"))
    sha = _hex(hashes.get("sha256"), 64) or _hex(legacy_hash, 64)
    v2 = (sha[:10] if sha else None) or _hex(hashes.get("autov2"), 10) or _hex(legacy_hash, 10)
    if v2:
        return f"v2:{v2}", sha or v2
    v1 = _hex(hashes.get("autov1"), 8) or _hex(legacy_hash, 8)
    if v1:
        return f"v1:{v1}", v1
    return (f"name:{name}", None) if name else (None, None)


def _lora_key(name: str | None, hashes: Mapping[str, Any]) -> str | None:
    v3 = _hex(hashes.get("autov3"), 12)
    if v3:
        return f"v3:{v3}"
    sha = _hex(hashes.get("sha256"), 64)
    if sha:
        return f"sha256:{sha}"
    return f"name:{name}" if name else None


def _loras(generator: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    found: dict[str, str] = {}
    structured = generator.get("loras")
    if isinstance(structured, list):  # the parser's own list (may be empty: it looked and found none)
        for entry in structured:
            if not isinstance(entry, Mapping):
                continue
            name = _name(entry.get("name"))
            hashes = _mapping(entry.get("hashes"))
            key = _lora_key(name, hashes)
            if key:
                found.setdefault(key, name or key)
        return tuple(sorted(found.items()))
    # derived: <lora:name:w> tags in the prompt, hashes from an AUTOMATIC1111 "Lora hashes" line
    hashes_by_name: dict[str, str] = {}
    raw = generator.get("raw")
    texts = [v for v in (raw.values() if isinstance(raw, Mapping) else []) if isinstance(v, str)]
    for text in texts:
        for m in _LORA_HASHES.finditer(text):
            for part in m.group(1).split(","):
                n, _, h = part.rpartition(":")
                name, v3 = _name(n), _hex(h, 12)
                if name and v3:
                    hashes_by_name[name] = v3
    names = {_name(m.group(1)) for m in _LORA_TAG.finditer(str(generator.get("prompt") or ""))}
    names |= set(hashes_by_name)
    for name in names:
        if name:
            key = _lora_key(name, {"autov3": hashes_by_name.get(name)})
            if key:
                found.setdefault(key, name)
    return tuple(sorted(found.items()))


def normalise_prompt(prompt: Any) -> str:
    """The prompt template: tags and attention weights removed, lower case, words (numbers kept) separated
    by single spaces, phrases by ``", "``."""
    if not isinstance(prompt, str):
        return ""
    text = _TAG.sub(" ", prompt[:20000])
    text = _BRACKETS.sub(" ", _WEIGHT.sub("", text)).lower()
    phrases = (" ".join(_WORD.findall(p)) for p in re.split(r"[,\n;|]", text))
    return ", ".join(p for p in phrases if p)


def _seed(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if -_INT64 <= value < _INT64 else None
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return _seed(int(value.strip()))
    return None


def series_facts(generator: Any) -> SeriesFacts | None:
    """The series facts of a record's ``generator`` field, or None when it names nothing to group by."""
    if not isinstance(generator, Mapping):
        return None
    ref = _mapping(generator.get("model_ref"))
    display = ref.get("name") if isinstance(ref.get("name"), str) else generator.get("model")
    display = display.strip() if isinstance(display, str) and display.strip() else None
    checkpoint, model_hash = _checkpoint(ref, generator.get("model_hash"), _name(display))
    loras = _loras(generator)
    template = normalise_prompt(generator.get("prompt_template") or generator.get("prompt"))
    if checkpoint is None and not loras and not template:
        return None
    return SeriesFacts(checkpoint, display, model_hash, loras, template, _seed(generator.get("seed")))


def shingles(template: str) -> set[str]:
    """Words and word pairs of a template (pairs carry word order; words survive a single swap)."""
    words = template.replace(",", " ").split()
    return set(words) | {f"{a} {b}" for a, b in zip(words, words[1:])}


def signature(template: str) -> np.ndarray:
    """MinHash signature (``NUM_PERM`` uint32) of the template's shingles; stable across processes."""
    sh = shingles(template)
    if not sh:
        return _EMPTY.copy()
    hv = np.fromiter((zlib.crc32(s.encode("utf-8")) for s in sh), dtype=np.uint64, count=len(sh))
    with np.errstate(over="ignore"):
        perm = (hv[:, None] * _A[None, :] + _B[None, :]) % _MERSENNE
    out: np.ndarray = (perm & np.uint64(0xFFFFFFFF)).min(axis=0).astype(np.uint32)
    return out


def band_keys(block: str, sig: np.ndarray) -> list[int]:
    """The item's LSH buckets: one signed 64-bit key per band, scoped to its block."""
    prefix = block.encode("ascii")
    out = []
    for band in range(BANDS):
        part = sig[band * ROWS:(band + 1) * ROWS].tobytes()
        digest = hashlib.blake2b(prefix + bytes([band]) + part, digest_size=8).digest()
        out.append(int.from_bytes(digest, "little", signed=True))
    return out


def similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Estimated Jaccard similarity of the templates behind two signatures."""
    return float(np.count_nonzero(a == b)) / NUM_PERM


class SeriesIndex:
    """LSH buckets -> the series with a member there, most recently joined last; the in-memory half of the
    persisted index.

    A bucket keeps at most ``MAX_PER_BUCKET`` series, each with the signature of its latest member in that
    bucket (what a candidate is verified against). A series joined again moves to the end of the bucket; when
    a bucket is full, the series that joined it least recently is evicted from that bucket (it stays findable
    through its other buckets). So an item is verified against at most ``BANDS * MAX_PER_BUCKET`` signatures
    however many series exist. Series merged into another are resolved through ``alias``."""

    def __init__(self, threshold: float = DEFAULT_THRESHOLD, cap: int | None = None) -> None:
        self.threshold = threshold
        self.cap = MAX_PER_BUCKET if cap is None else cap
        #: bucket -> [[series id, signature, item id], ...], least recently joined first
        self.buckets: dict[int, list[list[Any]]] = {}
        self.alias: dict[int, int] = {}
        #: series -> buckets it may hold an entry in (a superset: evictions are not removed)
        self.of_series: dict[int, set[int]] = {}

    def resolve(self, sid: int) -> int:
        root = sid
        while root in self.alias:
            root = self.alias[root]
        while sid != root:  # path compression: chains of merges stay short
            self.alias[sid], sid = root, self.alias[sid]
        return root

    def matches(self, bands: Sequence[int], sig: np.ndarray) -> dict[int, float]:
        """Series (resolved) with a candidate at or above the threshold -> best similarity."""
        cands: list[list[Any]] = []
        for b in bands:
            entries = self.buckets.get(b)
            if entries:
                cands.extend(entries)
        if not cands:
            return {}
        sims = np.count_nonzero(np.stack([c[1] for c in cands]) == sig, axis=1)
        need = self.threshold * NUM_PERM
        found: dict[int, float] = {}
        for i in np.flatnonzero(sims >= need - 1e-9).tolist():
            sid = self.resolve(cands[i][0])
            sim = float(sims[i]) / NUM_PERM
            if sim > found.get(sid, -1.0):
                found[sid] = sim
        return found

    def load(self, bucket: int, sid: int, sig: np.ndarray, item_id: int | None) -> None:
        """A stored entry (oldest first); beyond the cap the least recent is dropped."""
        self._put(bucket, self.resolve(sid), sig, item_id)

    def add(self, bands: Sequence[int], sid: int, sig: np.ndarray,
            item_id: int | None = None) -> list[tuple[int, int]]:
        """Record ``sid`` (its latest member ``item_id``) under ``bands``; returns the (bucket, series) entries
        evicted to make room."""
        evicted: list[tuple[int, int]] = []
        for b in bands:
            gone = self._put(b, sid, sig, item_id)
            if gone is not None:
                evicted.append((b, gone))
        return evicted

    def _put(self, b: int, sid: int, sig: np.ndarray, item_id: int | None) -> int | None:
        entries = self.buckets.setdefault(b, [])
        for i, entry in enumerate(entries):
            if entry[0] == sid:
                del entries[i]
                break
        entries.append([sid, sig, item_id])
        self.of_series.setdefault(sid, set()).add(b)
        if len(entries) > self.cap:
            gone = int(entries.pop(0)[0])
            self.of_series.get(gone, set()).discard(b)
            return gone
        return None

    def entry(self, bucket: int, sid: int) -> list[Any] | None:
        for entry in self.buckets.get(bucket, ()):
            if entry[0] == sid:
                return entry
        return None

    def merge(self, other: int, keep: int) -> None:
        """Fold ``other`` into ``keep``: its entries are relabelled (where ``keep`` has none in that bucket)."""
        self.alias[other] = keep
        mine = self.of_series.setdefault(keep, set())
        for b in self.of_series.pop(other, set()):
            entries = self.buckets.get(b, [])
            has_keep = any(e[0] == keep for e in entries)
            for i, entry in enumerate(entries):
                if entry[0] == other:
                    if has_keep:
                        del entries[i]
                    else:
                        entry[0] = keep
                        mine.add(b)
                    break


def group_records(generators: Iterable[Any], threshold: float = DEFAULT_THRESHOLD) -> list[int | None]:
    """Series labels for a sequence of ``generator`` fields, in memory (None: no facts).

    The same facts, signatures, buckets, index and merging as :func:`assign_series`, without the database:
    what the benchmark and the unit tests measure."""
    index = SeriesIndex(threshold)
    labels: list[int | None] = []
    count = 0
    for generator in generators:
        facts = series_facts(generator)
        if facts is None:
            labels.append(None)
            continue
        sig = signature(facts.template)
        bands = band_keys(facts.block, sig)
        found = index.matches(bands, sig)
        if not found:
            sid, count = count, count + 1
        else:
            sid = min(found)  # the oldest series survives a merge
            for other in found:
                if other != sid:
                    index.merge(other, sid)
        index.add(bands, sid, sig)
        labels.append(sid)
    return [None if lab is None else index.resolve(lab) for lab in labels]


@dataclass
class SeriesSummary:
    examined: int = 0
    assigned: int = 0
    new_series: int = 0
    joined_existing: int = 0
    seconds: float = 0.0
    #: item id -> series id for the items assigned in this call
    series_of: dict[int, int] = field(default_factory=dict)
    #: series this call started
    created: set[int] = field(default_factory=set)
    #: earlier series folded into another because a new item joined them
    merged: int = 0


def settings(config: Config | None) -> float:
    """``[series] threshold`` (estimated Jaccard similarity of prompt templates, 0..1)."""
    section = ((config.sections if config else {}) or {}).get("series") or {}
    value = float(section.get("threshold", DEFAULT_THRESHOLD))
    if not 0.0 < value <= 1.0:
        raise ValueError(f"[series] threshold must be in (0, 1], not {value}")
    return value


_LOCK = threading.Lock()


def assign_series(db: Database, case_id: int | None = None, config: Config | None = None, *,
                  item_ids: Iterable[int] | None = None, threshold: float | None = None) -> SeriesSummary:
    """Give every not-yet-examined item (of ``case_id``, or the ``item_ids``, or all) its series.

    New items join existing series of any case (found through ``series_buckets``) or start new ones. Each
    chunk of items is one transaction; items are examined once (a ``series_members`` row marks them)."""
    started = time.monotonic()
    threshold = settings(config) if threshold is None else threshold
    summary = SeriesSummary()
    ids = sorted(set(item_ids)) if item_ids is not None else None
    with _LOCK:
        index = SeriesIndex(threshold)
        loaded: set[int] = set()
        last = 0
        while True:
            q = (select(ItemRow.id, ItemRow.case_id, ItemRow.stage_data, Fact.data)
                 .outerjoin(SeriesMember, SeriesMember.item_id == ItemRow.id)
                 .outerjoin(Fact, and_(Fact.sha256 == ItemRow.sha256, Fact.extractor == "provenance"))
                 .where(SeriesMember.item_id.is_(None), ItemRow.id > last))
            if case_id is not None:
                q = q.where(ItemRow.case_id == case_id)
            if ids is not None:
                chunk_ids = [i for i in ids if i > last][:_CHUNK]
                if not chunk_ids:
                    break
                q = q.where(ItemRow.id.in_(chunk_ids))
            with db.session() as s:
                rows = s.execute(q.order_by(ItemRow.id).limit(_CHUNK)).all()
                if not rows:
                    if ids is not None and chunk_ids:
                        last = chunk_ids[-1]
                        continue
                    break
                last = rows[-1][0]
                _assign_chunk(s, rows, index, loaded, summary)
    summary.seconds = time.monotonic() - started
    return summary


_PROVISIONAL = 1 << 62


def _assign_chunk(s: Any, rows: Sequence[Any], index: SeriesIndex, loaded: set[int],
                  summary: SeriesSummary) -> None:
    """One chunk, in bulk: its buckets loaded in a few queries, its new series inserted together (provisional
    ids until then), its members, buckets and stage data written with one statement each."""
    now = datetime.now(timezone.utc)
    prepared: list[tuple[int, int, Any, SeriesFacts | None, np.ndarray | None, list[int]]] = []
    wanted: set[int] = set()
    for item_id, case, stage_data, data in rows:
        generator = data.get("generator") if isinstance(data, Mapping) else None
        facts = series_facts(generator)
        sig = signature(facts.template) if facts else None
        bands = band_keys(facts.block, sig) if facts and sig is not None else []
        wanted.update(b for b in bands if b not in loaded)
        prepared.append((item_id, case, stage_data, facts, sig, bands))
    missing = sorted(wanted)
    for start in range(0, len(missing), _IN_CHUNK):
        part = missing[start:start + _IN_CHUNK]
        found = s.execute(select(SeriesBucket.bucket, SeriesBucket.series_id, SeriesBucket.item_id,
                                 SeriesMember.signature)
                          .join(SeriesMember, SeriesMember.item_id == SeriesBucket.item_id)
                          .where(SeriesBucket.bucket.in_(part))
                          .order_by(SeriesBucket.item_id)).all()
        for bucket, sid, member, blob in found:
            if blob:
                index.load(bucket, sid, np.frombuffer(blob, dtype="<u4").astype(np.uint32), member)
        loaded.update(part)
    series_rows: dict[int, Series] = {}
    pending: dict[int, Series] = {}  # provisional id -> new row, not inserted yet
    dirty: set[tuple[int, int]] = set()  # (bucket, series) entries to rewrite from the index
    members: list[dict[str, Any]] = []
    stage_updates: list[dict[str, Any]] = []

    def materialise() -> None:  # insert the pending series (one batched INSERT) and relabel them
        if not pending:
            return
        s.add_all(pending.values())
        s.flush()
        for prov, row in pending.items():
            index.merge(prov, row.id)
            series_rows[row.id] = series_rows.pop(prov)
            summary.created.discard(prov)
            summary.created.add(row.id)
        pending.clear()

    for item_id, case, stage_data, facts, sig, bands in prepared:
        summary.examined += 1
        if facts is None or sig is None:
            members.append({"item_id": item_id, "series_id": None, "case_id": case, "seed": None,
                            "signature": None, "joined_at": now})
            continue
        found = index.matches(bands, sig)
        if not found:
            row = Series(block=facts.block, checkpoint=facts.checkpoint, model=facts.model,
                         model_hash=facts.model_hash, loras=[{"key": k, "name": n} for k, n in facts.loras],
                         template=facts.template, seed_min=facts.seed, seed_max=facts.seed, members=0,
                         first_seen=now, last_seen=now)
            sid = _PROVISIONAL + summary.examined
            pending[sid] = row
            series_rows[sid] = row
            summary.created.add(sid)
        else:
            sid = min(found)  # the oldest series survives a merge
            for other in sorted(found):
                if other == sid:
                    continue
                if other in pending:  # started in this chunk, not stored yet: folded in memory
                    gone = pending.pop(other)
                    series_rows.pop(other, None)
                    kept = series_rows.get(sid) or s.get(Series, sid)
                    series_rows[sid] = kept
                    kept.members = (kept.members or 0) + (gone.members or 0)
                    seeds = [v for v in (kept.seed_min, kept.seed_max, gone.seed_min, gone.seed_max) if v is not None]
                    kept.seed_min, kept.seed_max = (min(seeds), max(seeds)) if seeds else (None, None)
                    index.merge(other, sid)
                    continue
                # a stored series is folded (rare): what the chunk has so far goes to the database first
                materialise()
                sid, other = index.resolve(sid), index.resolve(other)
                if other == sid:
                    continue
                _flush_writes(s, index, members, dirty)
                _merge(s, other, sid, index, summary)
                series_rows.pop(other, None)
            row = series_rows.get(sid) or s.get(Series, sid)
            series_rows[sid] = row
            if sid not in summary.created:
                summary.joined_existing += 1
            if facts.seed is not None:
                row.seed_min = facts.seed if row.seed_min is None else min(row.seed_min, facts.seed)
                row.seed_max = facts.seed if row.seed_max is None else max(row.seed_max, facts.seed)
        row.members = (row.members or 0) + 1
        row.last_seen = now
        members.append({"item_id": item_id, "series_id": sid, "case_id": case, "seed": facts.seed,
                        "signature": sig.astype("<u4").tobytes(), "joined_at": now})
        dirty.update((b, sid) for b in bands)
        dirty.update(index.add(bands, sid, sig, item_id))
        stage_updates.append({"id": item_id, "stage_data": {**(stage_data or {}), "series": sid}})
        summary.assigned += 1
        summary.series_of[item_id] = sid
    materialise()
    _flush_writes(s, index, members, dirty)
    for update_ in stage_updates:
        update_["stage_data"]["series"] = index.resolve(update_["stage_data"]["series"])
    if stage_updates:
        s.execute(update(ItemRow), stage_updates)
    for item_id, sid in summary.series_of.items():
        summary.series_of[item_id] = index.resolve(sid)
    summary.created = {index.resolve(sid) for sid in summary.created}
    summary.new_series = len(summary.created)


def _flush_writes(s: Any, index: SeriesIndex, members: list[dict[str, Any]], dirty: set[tuple[int, int]]) -> None:
    """Write the pending members, then the touched bucket entries as the index now has them (evicted ones
    deleted): one executemany each. Series ids must be real (no provisional ones left among them)."""
    s.flush()
    if members:
        for m in members:
            if m["series_id"] is not None:
                m["series_id"] = index.resolve(m["series_id"])
        s.execute(insert(SeriesMember), members)
        members.clear()
    if not dirty:
        return
    keys = {(b, index.resolve(sid)) for b, sid in dirty}
    dirty.clear()
    # executemany by key: Core level (the ORM has no bulk DELETE by parameters)
    s.connection().execute(delete(SeriesBucket).where(SeriesBucket.bucket == bindparam("b"),
                                                      SeriesBucket.series_id == bindparam("s")),
                           [{"b": b, "s": sid} for b, sid in keys])
    rows = []
    for b, sid in keys:
        entry = index.entry(b, sid)
        if entry is not None and entry[2] is not None:
            rows.append({"bucket": b, "series_id": sid, "item_id": entry[2]})
    if rows:
        s.execute(insert(SeriesBucket), rows)


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def _merge(s: Any, other: int, keep: int, index: SeriesIndex, summary: SeriesSummary) -> None:
    """Fold series ``other`` into ``keep``: an item was close to members of both (single linkage). Rewrites
    the folded series' memberships, buckets and its items' stage data; rare, and bounded by its size."""
    s.flush()
    index.merge(other, keep)
    gone = s.get(Series, other)
    kept = s.get(Series, keep)
    if gone is None or kept is None:
        return
    kept.members = (kept.members or 0) + (gone.members or 0)
    seeds = [v for v in (kept.seed_min, kept.seed_max, gone.seed_min, gone.seed_max) if v is not None]
    kept.seed_min, kept.seed_max = (min(seeds), max(seeds)) if seeds else (None, None)
    if kept.first_seen and gone.first_seen:
        kept.first_seen = min(_aware(kept.first_seen), _aware(gone.first_seen))
    moved = s.execute(select(ItemRow.id, ItemRow.stage_data).join(SeriesMember, SeriesMember.item_id == ItemRow.id)
                      .where(SeriesMember.series_id == other)).all()
    s.execute(update(SeriesMember).where(SeriesMember.series_id == other).values(series_id=keep))
    theirs = s.execute(select(SeriesBucket.bucket, SeriesBucket.item_id).where(SeriesBucket.series_id == other)).all()
    have: set[int] = set()
    keys = [b for b, _ in theirs]
    for start in range(0, len(keys), _IN_CHUNK):
        have.update(s.scalars(select(SeriesBucket.bucket).where(SeriesBucket.series_id == keep,
                                                                SeriesBucket.bucket.in_(keys[start:start + _IN_CHUNK]))))
    for bucket, item_id in theirs:
        if bucket not in have:
            s.add(SeriesBucket(bucket=bucket, series_id=keep, item_id=item_id))
            have.add(bucket)
    s.flush()
    s.execute(delete(SeriesBucket).where(SeriesBucket.series_id == other))
    changes = [{"id": i, "stage_data": {**(d or {}), "series": keep}} for i, d in moved
               if (d or {}).get("series") == other]
    if changes:
        s.execute(update(ItemRow), changes)
    s.delete(gone)
    s.flush()
    if other not in summary.created:
        summary.merged += 1
