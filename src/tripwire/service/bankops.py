"""Bank changes made through the service, each committed together with its audit event.

:class:`~tripwire.banks.store.BankStore` opens one transaction per operation (per batch, for imports). The
service needs the change and its audit event to commit or roll back *together* — an acknowledged bank
change with no audit event, or an audit event for a change that never happened, would both break the
trail. :class:`~tripwire.banks.joined.JoinedDatabase` is a thin adapter: a Database look-alike whose ``session()`` hands out one
already-open session, so every BankStore call made through it joins the caller's transaction, in which
the audit event is appended last. Its engine stand-in does the same for code that opens connections
(``engine.begin()``), so the guarantee does not depend on how BankStore manages its transactions.
"""

from __future__ import annotations

import gzip
import io
from typing import IO, Any, Sequence

from ..banks.importer import ImportReport, ProgressReader, RawEntry, detect_format, normalise_entry, read_entries, run_import
from ..signals.registry import registry
from ..banks.store import BankError, BankInfo
from ..banks.joined import JoinedDatabase, joined_store  # noqa: F401  (JoinedDatabase: re-exported)
from ..review import audit
from ..store.db import Database


def create_bank(db: Database, actor: str, name: str, **settings: Any) -> BankInfo:
    with db.session() as s:
        info = joined_store(db, s).create_bank(name, **settings)
        audit.append(s, "bank.create", actor, subject=f"bank:{info.name}", data=info.as_dict())
        return info


def update_bank(db: Database, actor: str, name: str, /, **changes: Any) -> BankInfo:
    """Change a bank's settings with its audit event; ``changes`` may hold ``name`` (a rename), so the bank
    is named positionally."""
    with db.session() as s:
        info = joined_store(db, s).update_bank(name, **changes)
        audit.append(s, "bank.update", actor, subject=f"bank:{name}",
                     data={"changes": {k: v for k, v in changes.items() if v is not None}, "bank": info.as_dict()})
        return info


def delete_bank(db: Database, actor: str, name: str) -> int:
    with db.session() as s:
        count = joined_store(db, s).delete_bank(name)
        audit.append(s, "bank.delete", actor, subject=f"bank:{name}", data={"entries_deleted": count})
        return count


def validate_entries(info: BankInfo, entries: Sequence[dict[str, Any]], default_type: str | None = None
                     ) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    """Normalise API entries ({signal_type, value, category, source_id, series, tags, notes}) for ``info``;
    returns (valid rows, errors with their position)."""
    rows: list[dict[str, Any]] = []
    errors: list[dict[str, str]] = []
    for n, e in enumerate(entries):
        position = f"entries[{n}]"
        if not isinstance(e, dict):
            errors.append({"position": position, "message": "an entry must be an object"})
            continue
        raw = RawEntry(position, e.get("signal_type") or e.get("type"), e.get("value"), e.get("category"),
                       False, e.get("source_id"), e.get("series"), e.get("tags"), e.get("notes"))
        try:
            rows.append(normalise_entry(raw, info, default_type))
        except ValueError as exc:
            errors.append({"position": position, "message": str(exc)})
    return rows, errors


def add_entries(db: Database, actor: str, bank: str, entries: Sequence[dict[str, Any]],
                kind: str = "bank.add", extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Validate and add entries in one transaction with one audit event; malformed entries add nothing
    (the whole request is refused, with every error listed)."""
    with db.session() as s:
        store = joined_store(db, s)
        info = store.get_bank(bank)
        rows, errors = validate_entries(info, entries)
        if errors:
            raise EntryErrors(errors)
        result = store.insert_batch(info.id, rows)
        summary = {"bank": info.name, "added": result.added, "existing": result.existing,
                   "tombstoned": result.tombstoned}
        data = {**summary, "values": [{"signal_type": r["signal_type"], "value": r["value"], "category": r.get("category")}
                                      for r in rows[:100]], "count": len(rows), **(extra or {})}
        audit.append(s, kind, actor, subject=f"bank:{info.name}", data=data)
        return summary


def remove_entries(db: Database, actor: str, bank: str, *, ids: Sequence[int] | None = None,
                   values: Sequence[str] | None = None, signal_type: str | None = None,
                   reason: str | None = None) -> int:
    with db.session() as s:
        n = joined_store(db, s).remove_entries(bank, ids=ids, values=values, reason=reason,
                                               signal_type=registry.resolve(signal_type) if signal_type else None)
        audit.append(s, "bank.remove", actor, subject=f"bank:{bank}",
                     data={"removed": n, "ids": list(ids or [])[:100], "values": list(values or [])[:100], "reason": reason})
        return n


def import_stream(db: Database, actor: str, bank: str, stream: IO[bytes], filename: str, fmt: str | None = None,
                  signal_type: str | None = None) -> ImportReport:
    """Import a hash-list file (VICS, CSV, lines, TE — as ``tripwire bank import``) in ONE transaction with
    its audit event: an import is acknowledged whole or not at all."""
    default_type = registry.resolve(signal_type) if signal_type else None
    buffered: Any = io.BufferedReader(ProgressReader(stream), buffer_size=1 << 20)
    if filename.lower().endswith(".gz") or buffered.peek(2)[:2] == b"\x1f\x8b":
        buffered = gzip.GzipFile(fileobj=buffered, mode="rb")
    if fmt is None:
        fmt = detect_format(filename, buffered.peek(4096)[:4096])
    with db.session() as s:
        store = joined_store(db, s)
        details: dict[str, Any] = {}
        entries = read_entries(fmt, buffered, default_type, details)
        report = run_import(store, bank, entries, fmt, default_type=default_type, details=details)
        data = {k: v for k, v in report.as_dict().items() if k != "errors"}
        data["filename"] = filename
        data["first_errors"] = [e.as_dict() for e in report.errors[:20]]
        audit.append(s, "bank.import", actor, subject=f"bank:{report.bank}", data=data)
        return report


def rematch_since(svc: Any, actor: str, since: Any, trigger: str) -> dict[str, Any]:
    """Re-match the stored items against what changed since ``since`` (a :func:`tripwire.pipeline.rematch.mark`),
    with the service's matcher; the answer's ``rematch`` field ("N stored items newly match in cases ...")."""
    from ..pipeline.rematch import rematch

    return rematch(svc.db, svc.config, since=since, matcher=svc.matcher, actor=actor, trigger=trigger).as_dict()


class EntryErrors(BankError):
    """Some submitted entries are malformed; nothing was added."""

    def __init__(self, errors: list[dict[str, str]]) -> None:
        super().__init__(f"{len(errors)} malformed entr{'y' if len(errors) == 1 else 'ies'}")
        self.errors = errors
