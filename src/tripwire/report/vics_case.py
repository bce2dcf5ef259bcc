"""VICS 2.0 case export and import (Project VIC / Griffeye / CAID) built on reviewed items.

Export (``tripwire export vics CASE > case.json``) writes one VICS case whose ``Media`` array has one Media per
unique file (SHA-256) of the case that carries a recorded human decision: ``MD5``/``SHA1`` (upper-case hex, as
VICS tools write them), ``MediaSize``, ``AlternativeHashes`` with ``PDQ`` and ``SHA256``, ``Category`` from
the decision (``[reporting.vics.categories]``, default confirmed_abuse 1 = CAM, ai_generated 3 = CGI/animation,
not_abuse 0 = non-pertinent), ``IsPrecategorized`` (true: a person categorised it before the export),
``MediaFiles`` with every path the file occurred at, and ``Tags`` carrying tripwire's decision, provenance label
and generator tool (``tripwire:provenance=ai_generated``, ``tripwire:tool=ComfyUI``). Files nobody decided on
are not exported: an export to investigators is sharing, and sharing needs a human decision.

Import reads the same shape (v1 ``odata.metadata`` or v2 ``@odata.context`` envelope, cases or a bare hash
set) back: ``--bank`` goes through the bank importer (:func:`tripwire.banks.importer.import_file`, VICS
reader :mod:`tripwire.banks.vics`), ``--case`` creates one item per MediaFiles path with the hashes,
category and tags as item facts. Imported categories are someone else's judgement, so they become tripwire
decisions only when the person importing says so (``--record-decisions --reviewer NAME``), each one in the
audit trail.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import IO, Any, Iterator, Mapping

import ijson
from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite

from .. import __version__
from ..banks.importer import RawEntry, RowError
from ..banks.signals import display_name, normalise_signal_type, normalise_value
from ..banks.vics import media_entries
from ..errors import UsageError
from ..review import audit
from ..review.models import DECISIONS, Decision
from ..store.db import Database, path_key
from ..store.models import Content, ItemRow
from .ncmec import MIN_PDQ_QUALITY
from .reviewed import EXPORTABLE, ReviewedItem, latest_decisions, reviewed_items

CONTEXT_CASES = "http://github.com/VICSDATAMODEL/ProjectVic/DataModels/2.0.xml/Default/$metadata#Cases"
DEFAULT_CATEGORIES: dict[str, int] = {"confirmed_abuse": 1, "ai_generated": 3, "not_abuse": 0}
#: VICS numbers without a tripwire decision of their own: 2 (exploitive / age difficult) needs a second look,
#: 4 (comparison images) is not abuse material
_EXTRA_FROM_NUMBER = {2: "needs_escalation", 4: "not_abuse"}
#: more severe first: a file with conflicting decisions at different paths takes the most severe
_SEVERITY = ("confirmed_abuse", "ai_generated", "not_abuse")
TAG_PREFIX = "tripwire:"
#: how decisions recorded by an import start (not repeated as Comments on a later export)
IMPORT_NOTE = "imported from VICS "
_BATCH = 1000


def category_map(config: Any = None) -> dict[str, int]:
    """Decision -> VICS Category number (``[reporting.vics.categories]`` overrides the defaults)."""
    section = (((getattr(config, "sections", None) or {}).get("reporting") or {}).get("vics") or {})
    unknown = set(section) - {"categories"}
    if unknown:
        raise UsageError(f"unknown setting(s) in [reporting.vics]: {', '.join(sorted(unknown))}")
    mapping = dict(DEFAULT_CATEGORIES)
    for decision, number in (section.get("categories") or {}).items():
        if decision not in EXPORTABLE:
            raise UsageError(f"[reporting.vics.categories]: {decision!r} is not an exportable decision ({', '.join(EXPORTABLE)})")
        if not isinstance(number, int) or not 0 <= number <= 4:
            raise UsageError(f"[reporting.vics.categories] {decision}: expected a VICS category number 0-4")
        mapping[decision] = number
    return mapping


def _split_path(path: str) -> dict[str, str]:
    cut = max(path.rfind("/"), path.rfind("\\"))
    if cut < 0:
        return {"FileName": path, "FilePath": ""}
    return {"FileName": path[cut + 1 :], "FilePath": path[:cut]}


def join_media_file(media_file: Mapping[str, Any]) -> str | None:
    name = str(media_file.get("FileName") or "").strip()
    folder = str(media_file.get("FilePath") or "")
    if not name and not folder:
        return None
    if not folder:
        return name
    if folder.endswith(("/", "\\")):
        return folder + name
    sep = "\\" if "\\" in folder and "/" not in folder else "/"
    return f"{folder}{sep}{name}" if name else folder


def _tags(group: list[ReviewedItem], decision: str) -> list[str]:
    tags = {f"{TAG_PREFIX}decision={decision}"}
    for item in group:
        label = item.record.get("provenance", {}).get("label") if isinstance(item.record.get("provenance"), dict) else None
        if label:
            tags.add(f"{TAG_PREFIX}provenance={label}")
        if item.provenance_tool:
            tags.add(f"{TAG_PREFIX}tool={item.provenance_tool}")
        vics = item.record.get("vics") if isinstance(item.record.get("vics"), dict) else {}
        for tag in vics.get("tags") or []:  # carried from an imported VICS file
            if isinstance(tag, str) and tag.strip() and not tag.startswith(f"{TAG_PREFIX}decision="):
                tags.add(tag.strip())
    return sorted(tags)


def media_of(number: int, group: list[ReviewedItem], categories: Mapping[str, int]) -> dict[str, Any]:
    """The VICS Media object for one unique file (all its paths in ``group``)."""
    decisions = {i.decision.decision for i in group}
    decision = next(d for d in _SEVERITY if d in decisions)
    first = group[0]
    media: dict[str, Any] = {"MediaID": number}
    category = categories.get(decision)
    if category is not None:
        media["Category"] = category
    media["IsPrecategorized"] = category is not None
    md5 = next((i.md5 for i in group if i.md5), None)
    sha1 = next((i.sha1 for i in group if i.sha1), None)
    if md5:
        media["MD5"] = md5.upper()
    if sha1:
        media["SHA1"] = sha1.upper()
    size = next((i.size for i in group if i.size is not None), None)
    if size is not None:
        media["MediaSize"] = size
    alternatives = []
    pdq = next((i.pdq for i in group if i.pdq and (i.pdq_quality is None or i.pdq_quality >= MIN_PDQ_QUALITY)), None)
    if pdq:
        alternatives.append({"HashName": display_name("pdq"), "HashValue": pdq})
    if first.sha256:
        alternatives.append({"HashName": display_name("sha256"), "HashValue": first.sha256})
    if alternatives:
        media["AlternativeHashes"] = alternatives
    media["MediaFiles"] = [_split_path(p) for p in sorted({i.path for i in group})]
    media["Tags"] = _tags(group, decision)
    notes_set = {i.decision.note.strip() for i in group
                 if i.decision.note and i.decision.note.strip() and not i.decision.note.startswith(IMPORT_NOTE)}
    for item in group:  # comments carried from an imported VICS file
        vics = item.record.get("vics") if isinstance(item.record.get("vics"), dict) else {}
        if isinstance(vics.get("comments"), str) and vics["comments"].strip():
            notes_set.add(vics["comments"].strip())
    notes = sorted(notes_set)
    if len(decisions) > 1:
        notes.insert(0, "tripwire: paths of this file carry different decisions (" + ", ".join(sorted(decisions)) + ")")
    if notes:
        media["Comments"] = " | ".join(notes)
    return media


@dataclass
class VicsExport:
    case: str
    media: int = 0
    files: int = 0
    by_category: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def export_case(db: Database, case: str, out: IO[str], config: Any = None) -> VicsExport:
    """Write ``case`` as a VICS 2.0 case (one Media per unique decided file) to ``out``."""
    categories = category_map(config)
    with db.session() as s:
        items = reviewed_items(s, case=case, allowed=EXPORTABLE)
    groups: dict[str, list[ReviewedItem]] = {}
    for item in items:
        groups.setdefault(item.sha256 or item.md5 or f"item:{item.item_id}", []).append(item)
    summary = VicsExport(case)
    header = {
        "CaseID": str(uuid.uuid5(uuid.NAMESPACE_URL, f"tripwire-case:{case}")),
        "CaseNumber": case,
        "SourceApplicationName": "tripwire",
        "SourceApplicationVersion": __version__,
        "DateCreated": datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z"),
    }
    out.write("{\n")
    out.write(f'"@odata.context": {json.dumps(CONTEXT_CASES)},\n')
    out.write('"value": [\n')
    head = json.dumps(header, ensure_ascii=False)
    out.write(head[:-1] + ', "Media": [')
    for number, (_, group) in enumerate(sorted(groups.items(), key=lambda kv: min(i.item_id for i in kv[1])), 1):
        media = media_of(number, group, categories)
        out.write(",\n" if number > 1 else "\n")
        out.write(json.dumps(media, ensure_ascii=False, separators=(",", ":")))
        summary.media += 1
        summary.files += len(media["MediaFiles"])
        key = str(media.get("Category", "none"))
        summary.by_category[key] = summary.by_category.get(key, 0) + 1
    out.write("\n]}\n]\n}\n")
    return summary


# -- import ---------------------------------------------------------------------------------------------


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
    try:
        for prefix, event, value in ijson.parse(stream, use_float=True):
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
    except ijson.JSONError as exc:
        raise UsageError(f"not a readable VICS JSON file: {exc}") from exc
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
            kind = normalise_signal_type(entry.signal_type or "")
            value = normalise_value(kind, entry.value if isinstance(entry.value, str) else str(entry.value))
        except ValueError as exc:
            errors.append({"position": entry.position, "message": str(exc)})
            continue
        if kind in ("md5", "sha1", "sha256", "pdq"):
            out.setdefault(kind, value)
    return out


def decision_from(media: Mapping[str, Any], categories: Mapping[str, int]) -> str | None:
    """The decision a VICS Media stands for: tripwire's own tag first, else its Category number."""
    for tag in media.get("Tags") or []:
        if isinstance(tag, str) and tag.startswith(f"{TAG_PREFIX}decision="):
            value = tag.split("=", 1)[1]
            if value in DECISIONS:
                return value
    number = media.get("Category")
    if isinstance(number, bool) or not isinstance(number, (int, float)):
        return None
    number = int(number)
    for decision, mapped in categories.items():
        if mapped == number:
            return decision
    return _EXTRA_FROM_NUMBER.get(number)


def import_case(db: Database, stream: IO[bytes], case: str, source: str, *, config: Any = None,
                reviewer: str | None = None) -> VicsImport:
    """Load a VICS file into ``case``: one item per path; decisions only when ``reviewer`` vouches for them."""
    categories = category_map(config)
    summary = VicsImport(case)
    case_id = db.case_id(case, create=True)
    insert = postgresql.insert if db.dialect == "postgresql" else sqlite.insert
    pending: list[tuple[dict[str, Any], str | None]] = []

    def flush() -> None:
        if not pending:
            return
        with db.session() as s:
            contents = [p["content"] for p, _ in pending if p["content"]]
            if contents:
                s.execute(insert(Content).on_conflict_do_nothing(index_elements=["sha256"]), contents)
            rows = [p["item"] for p, _ in pending]
            keys = [r["path_key"] for r in rows]
            before = set(s.scalars(select(ItemRow.path_key).where(ItemRow.case_id == case_id, ItemRow.path_key.in_(keys))))
            s.execute(insert(ItemRow).on_conflict_do_nothing(index_elements=["case_id", "path_key"]), rows)
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
    for position, media, fields in iter_media(stream):
        summary.media += 1
        hashes = _hashes(media, position, summary.errors)
        if not hashes:
            continue
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
        paths = [p for p in (join_media_file(f) for f in media.get("MediaFiles") or [] if isinstance(f, Mapping)) if p]
        if not paths:
            paths = [f"vics:{source}:{media.get('MediaID', summary.media)}"]
        decision = decision_from(media, categories)
        why = f"Category {media.get('Category')}" if media.get("Category") is not None else "tripwire tag"
        for path in sorted(set(paths)):
            item = {"case_id": case_id, "path_key": path_key(path), "path": path, "source_path": source,
                    "sha256": sha if sha in known_contents else None,
                    "size": int(media["MediaSize"]) if isinstance(media.get("MediaSize"), (int, float)) else None,
                    "media_type": None, "error_code": None, "error_message": None, "stage_data": stage,
                    "priority": None}
            pending.append(({"item": item, "content": content, "why": why}, decision))
            content = None  # one insert per Media is enough
        if len(pending) >= _BATCH:
            flush()
    flush()
    return summary
