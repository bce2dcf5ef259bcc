"""VICS 2.0 import (Project VIC / Griffeye / CAID): a case file or hash set read into a case.

Reads v1 (``odata.metadata``) or v2 (``@odata.context``) envelopes, cases or a bare hash set. ``tripwire import
vics --bank`` goes through the bank importer (:func:`tripwire.banks.importer.import_file`, VICS reader
:mod:`tripwire.banks.vics`); ``--case`` (:func:`import_case`) creates one item per MediaFiles path with the
hashes, category and tags as item facts. Imported categories are someone else's judgement, so they become
tripwire decisions only when the person importing says so (``--record-decisions --reviewer NAME``), each one
in the audit trail.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import IO, Any, Iterator

import ijson
from sqlalchemy import select

from ..banks.importer import RawEntry, RowError
from ..signals.registry import registry
from ..banks.vics import MAX_RECORD_EVENTS, check_media, media_entries
from ..errors import UsageError
from ..jsonl import JsonDepthError, parse_events
from ..records import path_bytes, shown_path
from ..store.db import Database, path_key
from ..store.models import Content, ItemRow
from ..store.queries import dialect_insert
from . import audit
from .decisions import latest_decisions
from .models import Decision
from .vics import IMPORT_NOTE, category_map, decision_from, join_media_file

_BATCH = 1000


class _Stopped(Exception):
    """Reading stopped part-way (bad JSON, nesting or record size past the caps) at ``position``."""

    def __init__(self, position: str, message: str) -> None:
        super().__init__(message)
        self.position = position
        self.message = message


def iter_media(stream: IO[bytes]) -> Iterator[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(position, Media, case fields) for every Media of a VICS file, one Media in memory at a time.

    Accepts cases (``value[].Media[]``) and hash sets (``value[]``), v1 or v2 envelope, or a bare array.
    Raises UsageError for a file that is not VICS JSON.
    """
    top: str | None = None
    record: ijson.ObjectBuilder | None = None
    media: ijson.ObjectBuilder | None = None
    in_media_array = False
    case_fields: dict[str, Any] = {}
    rec_index = -1
    media_index = -1
    held = 0  # events held by the record or Media being built (capped like the bank reader's)
    try:
        for prefix, event, value in parse_events(stream):  # nesting capped (jsonl.MAX_DEPTH)
            if record is not None or media is not None:
                held += 1
                if held > MAX_RECORD_EVENTS:
                    raise _Stopped(f"value[{rec_index}]" + (f".Media[{media_index}]" if media is not None else ""),
                                   f"record larger than {MAX_RECORD_EVENTS:,} JSON values")
            else:
                held = 0
            if top is None:
                if prefix == "" and event == "start_array":
                    top = "item"
                elif prefix == "value" and event == "start_array":
                    top = "value.item"
                continue
            media_prefix = top + ".Media.item"
            if media is not None:
                media.event(event, value)
                if prefix == media_prefix and event == "end_map":
                    yield f"value[{rec_index}].Media[{media_index}]", media.value, case_fields
                    media = None
                continue
            if in_media_array:
                if prefix == media_prefix and event == "start_map":
                    media_index += 1
                    media = ijson.ObjectBuilder()
                    media.event(event, value)
                elif prefix == top + ".Media" and event == "end_array":
                    in_media_array = False
                continue
            if prefix == top and event == "start_map":
                rec_index += 1
                media_index = -1
                record = ijson.ObjectBuilder()
                record.event(event, value)
                case_fields = {}
                continue
            if record is None:
                continue
            if prefix == top and event == "map_key" and value == "Media":
                in_media_array = True
                case_fields["_is_case"] = True
                continue
            if prefix == top + ".Media" and event == "start_array":
                continue
            if prefix == top and event == "end_map":
                record.event(event, value)
                built = record.value
                record = None
                if case_fields.get("_is_case"):
                    continue
                yield f"value[{rec_index}]", built, {}
                continue
            record.event(event, value)
            if prefix == top + "." + "CaseNumber" and event in ("string", "number"):
                case_fields["CaseNumber"] = value
    except (ijson.JSONError, JsonDepthError) as exc:
        message = " ".join(str(exc).split())[:300]
        if top is None:
            raise UsageError(f"not a readable VICS JSON file: {message}") from exc
        raise _Stopped(f"value[{rec_index}]" + (f".Media[{media_index}]" if in_media_array else ""),
                       f"invalid JSON: {message}") from exc
    if top is None:
        raise UsageError("not a VICS file: no 'value' array")


@dataclass
class VicsImport:
    case: str
    media: int = 0
    items: int = 0
    existing: int = 0
    decisions: int = 0
    errors: list[dict[str, str]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _hashes(media: dict[str, Any], position: str, errors: list[dict[str, str]]) -> dict[str, str]:
    out: dict[str, str] = {}
    for entry in media_entries(media, position):
        if isinstance(entry, RowError):
            errors.append(entry.as_dict())
            continue
        assert isinstance(entry, RawEntry)
        try:
            kind = registry.resolve(entry.signal_type or "")
            value = registry.normalise_value(kind, entry.value if isinstance(entry.value, str) else str(entry.value))
        except ValueError as exc:
            errors.append({"position": entry.position, "message": str(exc)})
            continue
        if kind in ("md5", "sha1", "sha256", "pdq"):
            out.setdefault(kind, value)
    return out


def import_case(db: Database, stream: IO[bytes], case: str, source: str, *, config: Any = None,
                reviewer: str | None = None) -> VicsImport:
    """Load a VICS file into ``case``: one item per path; decisions only when ``reviewer`` vouches for them."""
    categories = category_map(config)
    summary = VicsImport(case)
    case_id = db.case_id(case, create=True)
    pending: list[tuple[dict[str, Any], str | None]] = []

    def flush() -> None:
        if not pending:
            return
        with db.session() as s:
            contents = [p["content"] for p, _ in pending if p["content"]]
            if contents:
                s.execute(dialect_insert(db, Content).on_conflict_do_nothing(index_elements=["sha256"]), contents)
            rows = [p["item"] for p, _ in pending]
            keys = [r["path_key"] for r in rows]
            before = set(s.scalars(select(ItemRow.path_key).where(ItemRow.case_id == case_id, ItemRow.path_key.in_(keys))))
            s.execute(dialect_insert(db, ItemRow).on_conflict_do_nothing(index_elements=["case_id", "path_key"]), rows)
            summary.items += len([k for k in keys if k not in before])
            summary.existing += len([k for k in keys if k in before])
            if reviewer:
                ids = dict(s.execute(select(ItemRow.path_key, ItemRow.id)
                                     .where(ItemRow.case_id == case_id, ItemRow.path_key.in_(keys))).all())
                decided = latest_decisions(s, ids.values())
                for p, decision in pending:
                    item_id = ids.get(p["item"]["path_key"])
                    if decision is None or item_id is None or item_id in decided:
                        continue
                    note = f"{IMPORT_NOTE}{source} ({p['why']})"
                    row = Decision(item_id=item_id, decision=decision, note=note, reviewer=reviewer, bank=None,
                                   created_at=datetime.now(timezone.utc))
                    s.add(row)
                    s.flush()
                    audit.append(s, "decision", reviewer, subject=f"item:{item_id}",
                                 data={"decision": decision, "decision_id": row.id, "source": "vics import", "file": source})
                    summary.decisions += 1
        pending.clear()

    known_contents: set[str] = set()

    def take(position: str, media: dict[str, Any], fields: dict[str, Any]) -> None:
        summary.media += 1
        media, problems = check_media(media, position)  # a malformed field costs that field, with an error
        summary.errors.extend(e.as_dict() for e in problems)
        hashes = _hashes(media, position, summary.errors)
        if not hashes:
            return
        sha = hashes.get("sha256")
        content = None
        if sha and "md5" in hashes and "sha1" in hashes:
            content = {"sha256": sha, "md5": hashes["md5"], "sha1": hashes["sha1"],
                       "size": int(media.get("MediaSize") or 0), "media_type": "application/octet-stream",
                       "width": None, "height": None, "pdq": hashes.get("pdq"), "pdq_quality": None}
            known_contents.add(sha)
        elif sha:
            with db.session() as s:
                if s.get(Content, sha) is not None:
                    known_contents.add(sha)
        vics = {k: v for k, v in {
            "media_id": media.get("MediaID"), "category": media.get("Category"),
            "is_precategorized": media.get("IsPrecategorized"), "tags": media.get("Tags"),
            "comments": media.get("Comments"), "case_number": fields.get("CaseNumber"), "source": source,
        }.items() if v is not None}
        stage: dict[str, Any] = {**hashes, "vics": vics}
        if media.get("MediaSize") is not None:
            stage["size"] = media.get("MediaSize")
        paths = [p for p in (join_media_file(f) for f in media.get("MediaFiles") or []) if p]
        if not paths:
            paths = [f"vics:{source}:{media.get('MediaID', summary.media)}"]
        decision = decision_from(media, categories)
        why = f"Category {media.get('Category')}" if media.get("Category") is not None else "tripwire tag"
        for path in sorted(set(paths)):
            item = {"case_id": case_id, "path_key": path_key(path), "path": shown_path(path), "path_raw": path_bytes(path),
                    "source_path": shown_path(source),
                    "sha256": sha if sha in known_contents else None,
                    "size": media.get("MediaSize"),
                    "media_type": None, "error_code": None, "error_message": None, "stage_data": stage,
                    "priority": None}
            pending.append(({"item": item, "content": content, "why": why}, decision))
            content = None  # one insert per Media is enough
        if len(pending) >= _BATCH:
            flush()

    try:
        for position, media, fields in iter_media(stream):
            take(position, media, fields)
    except _Stopped as exc:  # what was read before it is stored, and the report says where reading stopped
        summary.errors.append({"position": exc.position,
                               "message": f"{exc.message}, reading stopped (Media before it were imported)"})
    flush()
    return summary
