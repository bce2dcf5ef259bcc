"""Batch hash look-ups against every bank: what ``POST /v1/lookup`` and the HMA ``/m/`` endpoints run.

:meth:`Matcher.match` looks up one item (its digests and its PDQ variants). A platform asking about a
thousand hashes at once should not cost a thousand index scans and a thousand queries, so this module
batches: the exact digests go to the database in ``IN (...)`` chunks, all PDQ hashes go through the index
in one pass, and each hash's hits are then decided (allow-list suppression, limits) exactly as the matcher
decides an item's. It uses the matcher's own hit and decision helpers so that a hash looked up here and
the same hash inside a scanned file give the same answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from sqlalchemy import select

from ..banks.models import BankEntry
from ..banks.signals import EXACT_TYPES, HEX_LENGTHS, normalise_signal_type
from ..match.index import hex_to_codes
from ..match.matcher import _HIT_COLUMNS, Matcher, hamming

_CHUNK = 500
#: HMA's names for signal types
HMA_TYPES = {"pdq": "pdq", "video_md5": "md5", "md5": "md5", "sha1": "sha1", "sha256": "sha256"}


@dataclass(frozen=True)
class HashQuery:
    signal_type: str
    value: str
    #: PDQ quality of the hash when the caller knows it (None: quality floors not applied)
    quality: int | None = None


def parse_query(signal_type: str, value: str, quality: Any = None) -> HashQuery:
    """A validated query; ValueError with a readable message otherwise."""
    st = normalise_signal_type(str(signal_type or ""))
    if st not in HEX_LENGTHS:
        raise ValueError(f"cannot look up {signal_type!r} hashes (supported: {', '.join(HEX_LENGTHS)})")
    v = str(value or "").strip().lower()
    if v.startswith("0x"):
        v = v[2:]
    if len(v) != HEX_LENGTHS[st] or any(c not in "0123456789abcdef" for c in v):
        raise ValueError(f"{str(value)[:80]!r} is not a {st} value ({HEX_LENGTHS[st]} hex characters)")
    q = None
    if quality is not None:
        try:
            q = int(quality)
        except (TypeError, ValueError):
            raise ValueError(f"quality must be an integer 0-100, not {quality!r}") from None
        if not 0 <= q <= 100:
            raise ValueError("quality must be between 0 and 100")
    return HashQuery(st, v, q)


def _exact_hits(matcher: Matcher, queries: Sequence[HashQuery], check_enabled: bool = True) -> dict[tuple[str, str], list[dict[str, Any]]]:
    wanted = {(q.signal_type, q.value) for q in queries if q.signal_type in EXACT_TYPES}
    out: dict[tuple[str, str], list[dict[str, Any]]] = {}
    values = sorted({v for _, v in wanted})
    for start in range(0, len(values), _CHUNK):
        chunk = values[start : start + _CHUNK]
        with matcher.db.session() as s:
            rows = s.execute(select(*_HIT_COLUMNS).where(BankEntry.value.in_(chunk), BankEntry.removed_at.is_(None))).all()
        for row in rows:
            key = (row.signal_type, row.value)
            if key not in wanted:
                continue
            bank = matcher.banks.get(row.bank_id)
            if bank is None or (check_enabled and not bank.enabled):
                continue
            out.setdefault(key, []).append(matcher._hit(bank, row, distance=0, variant=None))
    return out


def _pdq_candidates(matcher: Matcher, hexes: list[str], radius: int) -> dict[int, list[tuple[int, int]]]:
    """query row -> [(entry id, distance)] from one index pass."""
    if not hexes or len(matcher.bank_index) == 0:
        return {}
    qrows, ids, dists = matcher.bank_index.search(hex_to_codes(hexes), radius)
    out: dict[int, list[tuple[int, int]]] = {}
    for qrow, entry_id, dist in zip(qrows.tolist(), ids.tolist(), dists.tolist()):
        out.setdefault(int(qrow), []).append((int(entry_id), int(dist)))
    return out


def _entry_rows(matcher: Matcher, ids: set[int]) -> dict[int, Any]:
    rows: dict[int, Any] = {}
    id_list = sorted(ids)
    for start in range(0, len(id_list), _CHUNK):
        chunk = id_list[start : start + _CHUNK]
        with matcher.db.session() as s:
            for row in s.execute(select(*_HIT_COLUMNS).where(BankEntry.id.in_(chunk))).all():
                rows[int(row.id)] = row
    return rows


def lookup_many(matcher: Matcher, queries: Sequence[HashQuery], *, check_enabled: bool = True
                ) -> list[dict[str, Any]]:
    """One result per query, in order: ``{signal_type, value, matches, matches_suppressed, allowed_by}``.

    ``check_enabled=False`` also reports entries of disabled banks and skips allow-list suppression (what
    HMA's ``raw_lookup`` promises: the raw index answer).
    """
    matcher.refresh()
    exact = _exact_hits(matcher, queries, check_enabled)
    banks = [b for b in matcher.banks.values() if b.enabled or not check_enabled]
    pdq_rows = [(n, q) for n, q in enumerate(queries) if q.signal_type == "pdq"]
    unique_hex = sorted({q.value for _, q in pdq_rows})
    by_hex: dict[str, list[tuple[int, int]]] = {}
    if unique_hex and banks:
        radius = max(b.pdq_radius for b in banks)
        cands = _pdq_candidates(matcher, unique_hex, radius)
        by_hex = {unique_hex[row]: hits for row, hits in cands.items()}
    rows = _entry_rows(matcher, {eid for hits in by_hex.values() for eid, _ in hits})
    results: list[dict[str, Any]] = []
    for q in queries:
        hits: list[dict[str, Any]] = []
        if q.signal_type == "pdq":
            for entry_id, _ in by_hex.get(q.value, []):
                row = rows.get(entry_id)
                if row is None or row.removed_at is not None or row.signal_type != "pdq":
                    continue
                bank = matcher.banks.get(row.bank_id)
                if bank is None or (check_enabled and not bank.enabled):
                    continue
                if check_enabled and q.quality is not None and q.quality < bank.min_quality:
                    continue
                d = hamming(q.value, row.value)
                if d > bank.pdq_radius:
                    continue
                hit = matcher._hit(bank, row, distance=d, variant="original", quality=q.quality)
                hits.append(hit)
        else:
            hits = [h for h in exact.get((q.signal_type, q.value), [])]
        if check_enabled:
            decided = matcher._decide(hits).as_dict()
        else:
            hits.sort(key=lambda h: (h["distance"], h["bank"], h["entry_id"]))
            decided = {"matches": hits, "matches_suppressed": [], "allowed_by": [], "truncated": 0}
        results.append({"signal_type": q.signal_type, "value": q.value, **decided})
    return results
