"""The writes and reads the scan pipeline needs, portable between SQLite and PostgreSQL."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Mapping, Sequence, cast

from sqlalchemy import CursorResult, Result, func, select
from sqlalchemy.orm import Session

from ..records import FactEntry, ItemErrorDict, ItemRecord, RawRecord, flatten, path_bytes, shown_path
from .db import Database, path_key
from .models import Content, Fact, ItemRow, SourceRow

if TYPE_CHECKING:
    from sqlalchemy.dialects import postgresql, sqlite


def dialect_insert(db: Database, table: Any) -> postgresql.Insert | sqlite.Insert:
    """An INSERT with the dialect's ``ON CONFLICT`` clauses (PostgreSQL's, else SQLite's).

    Each dialect's module is imported when used: a SQLite scan need not load PostgreSQL's (~25 ms, issue 12)."""
    if db.dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(table)
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(table)


def rows_changed(result: Result[Any]) -> int:
    """Rows an UPDATE or DELETE run through a session touched (``Session.execute`` is typed as returning a
    plain ``Result``; for these statements it is the ``CursorResult`` that carries the count)."""
    return cast(CursorResult[Any], result).rowcount


def _shown(text: str | None) -> str | None:
    """A message that may quote a path: stored as valid UTF-8 (see records.shown_path)."""
    return None if text is None else shown_path(text)


def done_sources(db: Database, case_id: int) -> set[str]:
    """Path keys of sources whose items are all committed (skipped on resume)."""
    with db.session() as s:
        return set(s.scalars(select(SourceRow.path_key).where(SourceRow.case_id == case_id)))


def done_among(db: Database, case_id: int, keys: Sequence[str], chunk: int = 500) -> set[str]:
    """Those of the path ``keys`` whose source is stored in the case: resume, a chunk of the listing at a time."""
    found: set[str] = set()
    with db.session() as s:
        for start in range(0, len(keys), chunk):
            part = list(keys[start : start + chunk])
            found.update(s.scalars(select(SourceRow.path_key).where(SourceRow.case_id == case_id,
                                                                    SourceRow.path_key.in_(part))))
    return found


#: one stored item: (raw worker record, flat item record, the fields the stages added)
StoredRow = tuple[RawRecord, ItemRecord, Mapping[str, Any]]


def write_sources(db: Database, case_id: int, batch: Sequence[tuple[str, Sequence[StoredRow]]],
                  then: Callable[[Session], None] | None = None) -> None:
    """Commit finished sources with all their items in ONE transaction.

    ``batch`` holds (source path, [(raw worker record, flat record, stage data)]). Content and facts are
    shared across cases and written once per SHA-256; items are unique per (case, path). ``then(session)``
    runs inside the same transaction after the rows are written (rows that refer to the new items).
    """
    contents: dict[str, dict[str, Any]] = {}
    facts: dict[tuple[str, str], dict[str, Any]] = {}
    items: dict[str, dict[str, Any]] = {}
    sources: dict[str, dict[str, Any]] = {}
    for source, records in batch:
        for raw, flat, stage_data in records:
            sha = flat.get("sha256")
            if sha:
                contents.setdefault(sha, {
                    "sha256": sha, "md5": flat["md5"], "sha1": flat["sha1"], "size": flat.get("size") or 0,
                    "media_type": flat.get("media_type") or "application/octet-stream",
                    "width": flat.get("width"), "height": flat.get("height"),
                    "pdq": flat.get("pdq"), "pdq_quality": flat.get("pdq_quality"),
                })
                for name, entry in (raw.get("facts") or {}).items():
                    fact_error = entry.get("error")
                    facts[(sha, name)] = {
                        "sha256": sha, "extractor": name, "version": entry["version"], "data": entry.get("data") or {},
                        "error_code": fact_error.get("code") if fact_error else None,
                        "error_message": _shown(fact_error.get("message")) if fact_error else None,
                    }
            error = flat.get("error")
            key = path_key(flat["path"])
            items.setdefault(key, {
                "case_id": case_id, "path_key": key, "path": shown_path(flat["path"]), "path_raw": path_bytes(flat["path"]),
                "source_path": shown_path(source),
                "sha256": sha, "size": flat.get("size"), "media_type": flat.get("media_type"),
                "error_code": error.get("code") if error else None,
                "error_message": _shown(error.get("message")) if error else None,
                "stage_data": stage_data or None, "priority": flat.get("priority"),
            })
        skey = path_key(source)
        sources[skey] = {"case_id": case_id, "path_key": skey, "path": shown_path(source), "path_raw": path_bytes(source),
                         "item_count": len(records)}
    with db.session() as s:
        if contents:
            s.execute(dialect_insert(db, Content).on_conflict_do_nothing(index_elements=["sha256"]), list(contents.values()))
        if facts:
            stmt = dialect_insert(db, Fact)
            stmt = stmt.on_conflict_do_update(
                index_elements=["sha256", "extractor"],
                set_={"version": stmt.excluded.version, "data": stmt.excluded.data,
                      "error_code": stmt.excluded.error_code, "error_message": stmt.excluded.error_message},
            )
            s.execute(stmt, list(facts.values()))
        if items:
            s.execute(dialect_insert(db, ItemRow).on_conflict_do_nothing(index_elements=["case_id", "path_key"]), list(items.values()))
        if sources:
            s.execute(dialect_insert(db, SourceRow).on_conflict_do_nothing(index_elements=["case_id", "path_key"]), list(sources.values()))
        if then is not None:
            then(s)


def item_ids(s: Session, case_id: int, paths: Iterable[str], chunk: int = 500) -> dict[str, int]:
    """path -> item id for those of ``paths`` stored in the case (read in ``s``, so uncommitted rows count)."""
    by_key = {path_key(p): p for p in paths}
    keys = list(by_key)
    ids: dict[str, int] = {}
    for start in range(0, len(keys), chunk):
        part = keys[start : start + chunk]
        for item_id, key in s.execute(select(ItemRow.id, ItemRow.path_key)
                                      .where(ItemRow.case_id == case_id, ItemRow.path_key.in_(part))):
            ids[by_key[key]] = item_id
    return ids


def iter_records(db: Database, case_id: int, chunk: int = 1000) -> Iterator[ItemRecord]:
    """Every item record of a case in the order they were stored, rebuilt from items + facts."""
    last_id = 0
    while True:
        with db.session() as s:
            q = select(ItemRow).where(ItemRow.case_id == case_id, ItemRow.id > last_id)
            rows = list(s.scalars(q.order_by(ItemRow.id).limit(chunk)))
            if not rows:
                return
            shas = {r.sha256 for r in rows if r.sha256}
            facts: dict[str, dict[str, FactEntry]] = {}
            if shas:
                for f in s.scalars(select(Fact).where(Fact.sha256.in_(shas)).order_by(Fact.extractor)):
                    facts.setdefault(f.sha256, {})[f.extractor] = {
                        "version": f.version, "data": f.data, "error": _error(f.error_code, f.error_message)}
        for r in rows:
            error = _error(r.error_code, r.error_message)
            record = flatten(r.path, r.size, r.media_type, error, facts.get(r.sha256, {}) if r.sha256 else {}, r.stage_data)
            record["item_id"] = r.id  # what `tripwire decide` and `report ncmec` take
            yield record
        last_id = rows[-1].id


def _error(code: str | None, message: str | None) -> ItemErrorDict | None:
    """A stored ``error_code``/``error_message`` pair as the record's ``error`` (None: no error).

    :func:`write_sources` stores both from an :class:`ItemErrorDict`, so a code comes with its message."""
    return {"code": code, "message": cast(str, message)} if code else None


def duplicate_groups(db: Database, case_id: int, limit: int = 500) -> list[dict[str, Any]]:
    """Contents that occur at more than one path in the case, largest groups first."""
    with db.session() as s:
        groups = s.execute(
            select(ItemRow.sha256, func.count().label("n"))
            .where(ItemRow.case_id == case_id, ItemRow.sha256.is_not(None))
            .group_by(ItemRow.sha256).having(func.count() > 1)
            .order_by(func.count().desc(), ItemRow.sha256).limit(limit)
        ).all()
        out = []
        for sha, n in groups:
            paths = list(s.scalars(select(ItemRow.path).where(ItemRow.case_id == case_id, ItemRow.sha256 == sha).order_by(ItemRow.path).limit(50)))
            out.append({"sha256": sha, "count": n, "paths": paths})
        return out


def case_names(db: Database) -> list[str]:
    from .models import Case

    with db.session() as s:
        return list(s.scalars(select(Case.name).order_by(Case.name)))


def count_items(db: Database, case_id: int) -> int:
    with db.session() as s:
        return s.scalar(select(func.count()).select_from(ItemRow).where(ItemRow.case_id == case_id)) or 0
