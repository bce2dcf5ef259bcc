"""Re-matching: when a bank gains or loses entries, the stored items of every case are matched again —
without reading any file, at a cost proportional to the change.

Hotlines receive new hash lists daily, and a match found against last month's material is the most valuable
one. The scan stored every item's digests, PDQ hash and PDQ variants (``contents`` and the ``pdq_variants``
fact), which is all the matcher reads, so a re-match needs no file:

1. **What changed.** The entries added since a :class:`Mark` (entry ids above it) and those removed or
   restored since (``bank_changes``); or, on demand (``tripwire rematch``), every entry of a bank or of all
   banks, removed ones included.
2. **Candidates: the changed entries are the queries, the stored items the index.** Exact values are looked
   up on the indexed ``contents`` columns; PDQ values are searched within their bank's radius in the
   :class:`~tripwire.match.stored_index.StoredHashIndex` over the stored PDQ hashes and their rotations,
   flips and unletterboxed hashes. A few entries cost a few look-ups, however many items are stored.
3. **Verification is the matcher's.** Each candidate item's record is rebuilt from the database and matched
   again by :meth:`Matcher.match_record` (banks enabled, radius, quality floor, negative banks suppressing):
   the same code and the same answer as a new scan of the file would give.
4. **Consequences are the pipeline's.** An item whose matches changed gets its ``matches``, its triage
   priority and its policy outcome again (:class:`~tripwire.policy.priority.PriorityStage`,
   :class:`~tripwire.policy.stage.PolicyStage`); a newly matching item whose policy says queue enters the
   review queue (:func:`~.actions.queue_items`; an open entry is updated, a decided one reopened: the new
   match is new evidence for a person), with a ``rematch`` note saying which bank entry it newly matches.
   All of it, and one ``rematch`` audit event, commit in one transaction.

A dropped bank leaves no entry values to query: its former matches are found by reading the stored matches
of the items in scope (no file is read either).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Iterable, Iterator, Mapping, Sequence

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from ..banks.models import Bank, BankChange, BankEntry
from ..config import Config
from ..match.matcher import Matcher, MatchStage
from ..match.stored_index import DIGEST_TYPES, StoredHashIndex, contents_with_values
from ..policy.priority import PriorityStage
from ..policy.stage import PolicyStage, configured_policy
from ..records import FactEntry, ItemErrorDict, ItemRecord, flatten
from ..review import audit
from ..review.models import QueueEntry
from ..signals.registry import registry
from ..store.db import Database
from ..store.models import Case, Fact, ItemRow
from .actions import queue_items, wants_review
from .pipeline import bank_scheme_of

__all__ = ["Mark", "RematchReport", "mark", "rematch", "sync_stored_index"]

_CHUNK = 500
#: stage fields a re-match rewrites
_MATCH_FIELDS = ("matches", "matches_suppressed", "matches_truncated", "priority", "priority_reason", "policy", "rematch")


@dataclass(frozen=True)
class Mark:
    """Where the banks stood: the last entry id and the last change id (take one before changing a bank)."""

    entry_id: int
    change_id: int


def mark(db: Database) -> Mark:
    with db.session() as s:
        return Mark(int(s.scalar(select(func.max(BankEntry.id))) or 0), int(s.scalar(select(func.max(BankChange.id))) or 0))


@dataclass
class RematchReport:
    #: bank entries used as queries
    entries: int = 0
    #: stored items matched again
    candidates: int = 0
    #: case name -> ids of items that match an entry they did not match before
    newly_matching: dict[str, list[int]] = field(default_factory=dict)
    #: case name -> ids of items that lost every match
    no_longer_matching: dict[str, list[int]] = field(default_factory=dict)
    #: items whose matches changed in any way
    changed: int = 0
    #: queue entries added, updated or reopened
    queued: int = 0
    #: types with no stored-value index (distance types other than PDQ, exact types that are not content
    #: digests, such as model-file hashes named in generator metadata): their entries were not re-matched
    skipped_types: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def newly(self) -> int:
        return sum(len(v) for v in self.newly_matching.values())

    def summary(self) -> str:
        """"N stored items newly match in cases a (2), b (1)" (+ what was lost)."""
        cases = ", ".join(f"{c} ({len(ids)})" for c, ids in sorted(self.newly_matching.items()))
        text = f"{self.newly} stored item{'' if self.newly == 1 else 's'} newly match" + (f" in cases {cases}" if cases else "")
        lost = sum(len(v) for v in self.no_longer_matching.values())
        if lost:
            text += f"; {lost} no longer match"
        return text + f" (re-matched {self.candidates} candidate items for {self.entries} entries in {self.seconds:.2f} s)"

    def as_dict(self) -> dict[str, Any]:
        return {"entries": self.entries, "candidates": self.candidates, "newly_matching": self.newly_matching,
                "no_longer_matching": self.no_longer_matching, "changed": self.changed, "queued": self.queued,
                "skipped_types": self.skipped_types, "seconds": round(self.seconds, 3), "summary": self.summary()}


def sync_stored_index(db: Database, config: Config | None = None) -> StoredHashIndex:
    """Bring the persisted stored-hash index up to date (what ``tripwire scan`` does when it finishes)."""
    index = StoredHashIndex.for_database(db, config)
    index.open()
    return index


# -- which entries ------------------------------------------------------------------------------------------

_Entry = tuple[int, int, str, str]  # id, bank id, signal type, value


def _entries_since(db: Database, since: Mark) -> tuple[list[_Entry], set[int]]:
    """Entries added after ``since`` and entries removed/restored after it; the ids of banks dropped after it."""
    cols = (BankEntry.id, BankEntry.bank_id, BankEntry.signal_type, BankEntry.value)
    with db.session() as s:
        rows: dict[int, _Entry] = {int(r[0]): (int(r[0]), int(r[1]), r[2], r[3])
                                   for r in s.execute(select(*cols).where(BankEntry.id > since.entry_id))}
        changes = s.execute(select(BankChange.op, BankChange.entry_id, BankChange.bank_id)
                            .where(BankChange.id > since.change_id)).all()
        dropped = {int(b) for op, _, b in changes if op == "drop"}
        changed = sorted({int(e) for op, e, _ in changes if e is not None and int(e) not in rows})
        for start in range(0, len(changed), _CHUNK):
            for r in s.execute(select(*cols).where(BankEntry.id.in_(changed[start : start + _CHUNK]))):
                rows[int(r[0])] = (int(r[0]), int(r[1]), r[2], r[3])
    return list(rows.values()), dropped


def _entries_of(db: Database, bank_id: int | None, chunk: int = 100_000) -> Iterator[list[_Entry]]:
    """Every entry (removed ones too) of one bank or of all, in chunks (a bank may hold millions)."""
    last = 0
    while True:
        q = select(BankEntry.id, BankEntry.bank_id, BankEntry.signal_type, BankEntry.value).where(BankEntry.id > last)
        if bank_id is not None:
            q = q.where(BankEntry.bank_id == bank_id)
        with db.session() as s:
            rows = [(int(r[0]), int(r[1]), r[2], r[3]) for r in s.execute(q.order_by(BankEntry.id).limit(chunk))]
        if not rows:
            return
        yield rows
        last = rows[-1][0]


# -- candidates ---------------------------------------------------------------------------------------------


def _candidate_contents(db: Database, index: StoredHashIndex | None, entries: Sequence[_Entry],
                        radius_of: Mapping[int, int], report: RematchReport) -> set[str]:
    shas: set[str] = set()
    by_type: dict[str, list[_Entry]] = {}
    for e in entries:
        by_type.setdefault(e[2], []).append(e)
    for name, group in by_type.items():
        kind = registry.get(name) if name in registry else None
        if kind is None or not kind.matching:
            continue
        if kind.matching == "exact" and name in DIGEST_TYPES:
            for found in contents_with_values(db, name, [e[3] for e in group]).values():
                shas |= found
        elif name == "pdq" and index is not None:
            usable = [(e, v) for e in group if (v := kind.valid(e[3])) is not None and e[1] in radius_of]
            if not usable:
                continue
            radius = max(radius_of[e[1]] for e, _ in usable)
            for hit in index.search([v for _, v in usable], radius):
                if hit.distance <= radius_of[usable[hit.query][0][1]]:
                    shas.add(hit.sha256)
        else:
            report.skipped_types[name] = report.skipped_types.get(name, 0) + len(group)
    return shas


def _items_of(db: Database, shas: Iterable[str], case_id: int | None) -> list[int]:
    keys = sorted(shas)
    ids: list[int] = []
    for start in range(0, len(keys), _CHUNK):
        q = select(ItemRow.id).where(ItemRow.sha256.in_(keys[start : start + _CHUNK]))
        if case_id is not None:
            q = q.where(ItemRow.case_id == case_id)
        with db.session() as s:
            ids += [int(i) for i in s.scalars(q)]
    return ids


def _items_matching_banks(db: Database, bank_ids: set[int], case_id: int | None) -> list[int]:
    """Items whose stored matches name one of ``bank_ids`` (a dropped bank: its values are gone)."""
    q = select(ItemRow.id, ItemRow.stage_data).where(ItemRow.stage_data.is_not(None))
    if case_id is not None:
        q = q.where(ItemRow.case_id == case_id)
    found: list[int] = []
    with db.engine.connect() as conn:
        for item_id, data in conn.execution_options(stream_results=True, yield_per=5000).execute(q):
            stored = (data or {}).get("matches_suppressed", []) + (data or {}).get("matches", [])
            if any(isinstance(m, dict) and m.get("bank_id") in bank_ids for m in stored):
                found.append(int(item_id))
    return found


# -- the re-match -----------------------------------------------------------------------------------------------


def _records(s: Session, item_ids: Sequence[int]) -> list[tuple[ItemRow, ItemRecord]]:
    rows = list(s.scalars(select(ItemRow).where(ItemRow.id.in_(item_ids)).order_by(ItemRow.id)))
    shas = {r.sha256 for r in rows if r.sha256}
    facts: dict[str, dict[str, FactEntry]] = {}
    if shas:
        for f in s.scalars(select(Fact).where(Fact.sha256.in_(shas)).order_by(Fact.extractor)):
            facts.setdefault(f.sha256, {})[f.extractor] = {"version": f.version, "data": f.data, "error": None}

    def error(r: ItemRow) -> ItemErrorDict | None:
        return {"code": r.error_code, "message": r.error_message or ""} if r.error_code else None

    return [(r, flatten(r.path, r.size, r.media_type, error(r), facts.get(r.sha256, {}) if r.sha256 else {}, r.stage_data))
            for r in rows]


def _ids(matches: Any) -> list[int]:
    return sorted(int(m["entry_id"]) for m in (matches or []) if isinstance(m, dict) and "entry_id" in m)


def _reason(gained: Sequence[Mapping[str, Any]]) -> str:
    first = gained[0]
    more = f" and {len(gained) - 1} more" if len(gained) > 1 else ""
    return f"newly matches bank {first['bank']} entry {first['entry_id']}{more} (re-match)"


def rematch(db: Database, config: Config | None = None, *, since: Mark | None = None, bank: str | None = None,
            case: str | None = None, matcher: Matcher | None = None, index: StoredHashIndex | None = None,
            actor: str = "tripwire", trigger: str = "rematch") -> RematchReport:
    """Re-match stored items after bank changes (see the module docs).

    ``since``: the entries added, removed or restored after that :class:`Mark` (what ``bank import``/``bank
    remove`` and the API pass); without it, every entry of ``bank`` (or of every bank). ``case`` limits the
    items to one case. ``matcher``/``index``: already-open ones to reuse (the service's)."""
    started = time.monotonic()
    config = config or Config()
    report = RematchReport()
    case_id: int | None = None
    if case is not None:
        case_id = db.case_id(case, create=False)
        if case_id is None:
            raise ValueError(f"no case named {case!r}")
    if matcher is None:
        matcher = Matcher.from_config(db, config)
        matcher.open()
    else:
        matcher.refresh(force=True)
    radius_of = {b.id: registry.get("pdq").radius_for(b) for b in matcher.banks.values()}
    dropped: set[int] = set()
    bank_id = None
    if bank is not None:
        bank_id = next((b.id for b in matcher.banks.values() if b.name == bank), None)
        if bank_id is None and since is None:
            raise ValueError(f"no bank named {bank!r}")
    chunks: Iterable[list[_Entry]]
    if since is not None:
        entries, dropped = _entries_since(db, since)
        chunks = [[e for e in entries if bank is None or e[1] == bank_id]]
    else:
        chunks = _entries_of(db, bank_id)
    shas: set[str] = set()
    synced = False
    for entries in chunks:
        report.entries += len(entries)
        if index is None and any(e[2] == "pdq" for e in entries):
            index = StoredHashIndex.for_database(db, config)
            index.open()
            synced = True
        elif index is not None and not synced:
            index.sync()  # one passed in: catch up with what was stored since
            synced = True
        shas |= _candidate_contents(db, index, entries, radius_of, report)
    candidates = set(_items_of(db, shas, case_id))
    if dropped:
        candidates |= set(_items_matching_banks(db, dropped, case_id))
    report.candidates = len(candidates)
    _apply(db, config, matcher, sorted(candidates), report, actor, trigger,
           {"since": [since.entry_id, since.change_id] if since else None, "bank": bank, "case": case})
    report.seconds = time.monotonic() - started
    return report


def _apply(db: Database, config: Config, matcher: Matcher, item_ids: list[int], report: RematchReport,
           actor: str, trigger: str, scope: dict[str, Any]) -> None:
    priority = PriorityStage(config)
    policy = PolicyStage(configured_policy(config), bank_scheme_of([MatchStage(matcher)]))
    now = datetime.now(timezone.utc)
    case_names: dict[int, str] = {}
    with db.session() as s:
        for start in range(0, len(item_ids), _CHUNK):
            for row, record in _records(s, item_ids[start : start + _CHUNK]):
                result = matcher.match_record(record)
                old = dict(row.stage_data or {})
                before, after = _ids(old.get("matches")), _ids(result.matches)
                if (before == after and _ids(old.get("matches_suppressed")) == _ids(result.suppressed)
                        and int(old.get("matches_truncated") or 0) == result.truncated):
                    continue
                report.changed += 1
                for key in _MATCH_FIELDS:
                    record.pop(key, None)  # type: ignore[misc]
                record["matches"] = result.matches
                record["matches_suppressed"] = result.suppressed
                if result.truncated:
                    record["matches_truncated"] = result.truncated
                priority.apply(record)
                policy.apply(record)
                gained = [m for m in result.matches if int(m["entry_id"]) not in set(before)]
                note: dict[str, Any] = {"at": now.isoformat(timespec="seconds"), "trigger": trigger,
                                        "gained": [int(m["entry_id"]) for m in gained],
                                        "lost": [i for i in before if i not in set(after)]}
                if gained:
                    note["reason"] = _reason(gained)
                    record["policy"]["reason"] = f"{record['policy'].get('reason')}; {note['reason']}"
                record["rematch"] = note  # type: ignore[typeddict-unknown-key]
                data = {k: v for k, v in old.items() if k not in _MATCH_FIELDS}
                data.update({k: record[k] for k in _MATCH_FIELDS if k in record})  # type: ignore[literal-required]
                row.stage_data = data
                row.priority = record.get("priority")
                if row.case_id not in case_names:
                    case_names[row.case_id] = s.scalar(select(Case.name).where(Case.id == row.case_id)) or str(row.case_id)
                name = case_names[row.case_id]
                if gained:
                    report.newly_matching.setdefault(name, []).append(row.id)
                    if wants_review(record):
                        report.queued += _queue(s, row.id, record, now)
                elif before and not after:
                    report.no_longer_matching.setdefault(name, []).append(row.id)
                    _requeue_priority(s, row.id, record, now)
            s.flush()
        audit.append(s, "rematch", actor, subject=f"bank:{scope['bank']}" if scope.get("bank") else None, data={
            "trigger": trigger, **scope, "entries": report.entries, "candidates": report.candidates,
            "changed": report.changed, "queued": report.queued,
            "newly_matching": {c: ids[:100] for c, ids in report.newly_matching.items()},
            "no_longer_matching": {c: ids[:100] for c, ids in report.no_longer_matching.items()}})


def _queue(s: Session, item_id: int, record: ItemRecord, now: datetime) -> int:
    """Queue a newly matching item: a new entry, or the open one updated, or a decided one reopened."""
    if queue_items(s, [record], {record["path"]: item_id}):
        return 1
    policy = record["policy"]
    s.execute(update(QueueEntry).where(QueueEntry.item_id == item_id).values(
        state="open", action=policy.get("action") or "review", rule=policy.get("rule"),
        priority=float(record.get("priority") or 0.0), updated_at=now))
    return 1


def _requeue_priority(s: Session, item_id: int, record: ItemRecord, now: datetime) -> None:
    """An item that no longer matches keeps any queue entry (a person may have to release it) at its new
    priority."""
    s.execute(update(QueueEntry).where(QueueEntry.item_id == item_id, QueueEntry.state != "decided").values(
        priority=float(record.get("priority") or 0.0), updated_at=now))


def bank_names(db: Database) -> list[str]:
    with db.session() as s:
        return list(s.scalars(select(Bank.name).order_by(Bank.name)))
