"""VICS 2.0 JSON (Project VIC / Griffeye / CAID): streaming reader and writer.

VICS files are OData JSON. Two envelopes exist: v1 files carry ``"odata.metadata"``, v2 files
``"@odata.context"``; both hold a ``value`` array. Its elements are either Media (a hash set: ``value[]``
of Media) or cases whose ``Media`` array holds the Media (``value[].Media[]``). A Media has ``MD5``,
``SHA1``, ``AlternativeHashes`` (``[{"HashName": "PDQ", "HashValue": ...}]``, also PhotoDNA and SHA256),
``Category`` (a number), ``Series``, ``Tags`` and ``Comments``.

Files run to gigabytes, so the reader walks ijson parse events and materialises one Media object at a
time; a case with a million Media never sits in memory. Each Media becomes one entry per hash, sharing the
Media's ``MediaID`` as source id; positions are reported as ``record N (value[i].Media[j])``.

The writer emits a v2 hash set, one Media per line. Categories outside the numeric VICS schemes (NCMEC
industry codes, free text) travel as the OData instance annotation ``Category@tripwire.code``, which other
readers ignore and tripwire reads back, so ``import(export(bank))`` is exact for every scheme.
"""

from __future__ import annotations

import json
from typing import IO, Any, Iterable, Iterator

import ijson

from ..jsonl import JsonDepthError, parse_events
from .categories import to_vics_number
from .entries import RawEntry, RowError
from ..signals.registry import registry
from .store import BankInfo, EntryRow

CONTEXT_V2 = "http://github.com/VICSDATAMODEL/ProjectVic/DataModels/2.0.xml/Default/$metadata#Media"
CODE_ANNOTATION = "Category@tripwire.code"
_ENVELOPES = {"odata.metadata": "v1", "@odata.context": "v2"}
_TOP_LEVEL_DIGESTS = (("MD5", "md5"), ("SHA1", "sha1"), ("SHA256", "sha256"), ("PDQ", "pdq"))
#: parse events one record (a Media, or a case outside its Media) may hold; a real Media has a few dozen
MAX_RECORD_EVENTS = 100_000


class _RecordTooLarge(Exception):
    def __init__(self, position: str) -> None:
        super().__init__(position)
        self.position = position


#: largest MediaSize kept (a 64-bit signed integer: what the databases' size columns hold)
MAX_MEDIA_SIZE = 2**63 - 1
#: the Media fields the bank reader takes (besides the digests, which the importer judges entry by entry)
BANK_FIELDS = ("MediaID", "Series", "Tags", "Comments")
#: the Media fields the case import takes besides the bank's
CASE_FIELDS = BANK_FIELDS + ("Category", "IsPrecategorized", "MediaSize", "MediaFiles")


def _kind(value: Any) -> str:
    return {dict: "an object", list: "an array", bool: "true/false", str: "text"}.get(type(value), "a number")


def _scalar(value: Any) -> bool:
    """Text or a number (not true/false, not an object or array)."""
    return isinstance(value, (str, int, float)) and not isinstance(value, bool)


def _tag_ok(tag: Any) -> bool:
    if isinstance(tag, dict):  # {"Name": "..."} / {"Tag": "..."} / {"Value": "..."}
        return _scalar(tag.get("Name") or tag.get("Tag") or tag.get("Value"))
    return _scalar(tag)


def _media_size(value: Any) -> int | None:
    """MediaSize as an int in ``0..MAX_MEDIA_SIZE``, or None when it is not one (text of digits is accepted)."""
    if isinstance(value, str) and value.strip().isdigit() and len(value.strip()) <= 19:
        value = int(value.strip())
    if isinstance(value, float) and value.is_integer() and 0 <= value <= MAX_MEDIA_SIZE:
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_MEDIA_SIZE:
        return value
    return None


def check_media(media: dict[str, Any], position: str,
                fields: tuple[str, ...] = CASE_FIELDS) -> tuple[dict[str, Any], list[RowError]]:
    """``media`` with each of ``fields`` checked for type: ``(clean copy, errors)``.

    The one type check both VICS readers (bank import, case import) make at the boundary: a malformed field
    (``"Tags": 1``, ``"MediaFiles": true``, ``"MediaSize": "abc"`` or ``1e300``) is left out of the copy
    and costs a :class:`RowError` at ``position Field``; the rest of the Media is kept. Checking a clean
    copy again finds nothing (both readers may pass the same Media through it).
    """
    clean = dict(media)
    errors: list[RowError] = []

    def drop(name: str, why: str) -> None:
        del clean[name]
        errors.append(RowError(f"{position} {name}", f"{why}; field ignored"))

    for name in fields:
        value = media.get(name)
        if value is None:
            continue
        if name in ("MediaID", "Series", "Comments", "Category"):
            if not _scalar(value):
                drop(name, f"expected text or a number, found {_kind(value)}")
        elif name == "Tags":
            if not (isinstance(value, str) or (isinstance(value, list) and all(_tag_ok(t) for t in value))):
                drop(name, "expected an array of text tags" if isinstance(value, list) else
                     f"expected an array of text tags, found {_kind(value)}")
        elif name == "IsPrecategorized":
            if not (_scalar(value) or isinstance(value, bool)):
                drop(name, f"expected true/false, found {_kind(value)}")
        elif name == "MediaSize":
            size = _media_size(value)
            if size is None:
                drop(name, f"expected a size in bytes (0 to 2**63-1), found {_kind(value)}"
                     + (f" {value!r}"[:60] if _scalar(value) else ""))
            else:
                clean[name] = size
        elif name == "MediaFiles":
            if not isinstance(value, list):
                drop(name, f"expected an array of {{FileName, FilePath}}, found {_kind(value)}")
                continue
            files = []
            for k, f in enumerate(value):
                if isinstance(f, dict) and all(f.get(key) is None or _scalar(f.get(key)) for key in ("FileName", "FilePath")):
                    files.append(f)
                else:
                    errors.append(RowError(f"{position} MediaFiles[{k}]", "expected {FileName, FilePath} with text "
                                                                          "values; file ignored"))
            clean[name] = files
    return clean, errors


def media_entries(media: Any, position: str) -> Iterator[RawEntry | RowError]:
    """The entries of one Media object (one per hash), or errors for what is malformed in it."""
    if not isinstance(media, dict):
        yield RowError(position, f"expected a Media object, found {type(media).__name__}")
        return
    media, problems = check_media(media, position, BANK_FIELDS)
    yield from problems
    common: dict[str, Any] = {"source_id": media.get("MediaID"), "series": media.get("Series"),
                              "tags": media.get("Tags"), "notes": media.get("Comments")}
    if media.get(CODE_ANNOTATION) is not None:
        common.update(category=media.get(CODE_ANNOTATION), vics_category=False)
    else:
        common.update(category=media.get("Category"), vics_category=True)
    found = 0
    for key, signal_type in _TOP_LEVEL_DIGESTS:
        value = media.get(key)
        if value is None or value == "":
            continue
        found += 1
        yield RawEntry(f"{position} {key}", signal_type, value, **common)
    alternatives = media.get("AlternativeHashes")
    if alternatives is not None and not isinstance(alternatives, list):
        yield RowError(f"{position} AlternativeHashes", "AlternativeHashes must be an array")
        alternatives = None
    for k, alt in enumerate(alternatives or []):
        where = f"{position} AlternativeHashes[{k}]"
        if not isinstance(alt, dict):
            yield RowError(where, "expected {HashName, HashValue}")
            continue
        name, value = alt.get("HashName"), alt.get("HashValue")
        if not isinstance(name, str) or not name.strip():
            yield RowError(where, "missing HashName")
            continue
        if value is None or value == "":
            yield RowError(where, f"missing HashValue for {name}")
            continue
        found += 1
        yield RawEntry(f"{where} {name}", name, value, **common)
    if not found:
        yield RowError(position, "Media has no MD5, SHA1 or AlternativeHashes value")


def read_vics(stream: IO[bytes], details: dict[str, Any] | None = None) -> Iterator[RawEntry | RowError]:
    """Stream the entries of a VICS JSON file (v1 or v2 envelope, hash set or cases, or a bare array)."""
    details = details if details is not None else {}
    details.setdefault("envelope", "none")
    details.setdefault("media", 0)
    details.setdefault("cases", 0)
    record_prefix: str | None = None
    record_builder: ijson.ObjectBuilder | None = None
    media_builder: ijson.ObjectBuilder | None = None
    skipping_media = False  # inside a Media[] element that is an array (malformed)
    record_index = -1  # position in value[]
    media_index = -1  # position in value[i].Media[]
    in_case = False
    number = 0  # Media seen so far (1-based record number)

    def where(building: bool = False) -> str:
        """The position of the last record finished, or with ``building`` of the one being read."""
        n = number + 1 if building and (media_builder is not None or (record_builder is not None and not in_case)) else number
        base = "value" if record_prefix == "value.item" else ""
        if in_case:
            return f"record {n} ({base}[{record_index}].Media[{media_index}])"
        return f"record {n} ({base}[{record_index}])"

    events = parse_events(stream)  # nesting capped (jsonl.MAX_DEPTH): a [[[[…]]]] file stops, not the host
    held = 0  # events held by the record (or Media) being built
    try:
        for prefix, event, value in events:
            if record_builder is not None or media_builder is not None:
                held += 1
                if held > MAX_RECORD_EVENTS:
                    raise _RecordTooLarge(where(building=True))
            else:
                held = 0
            if prefix in _ENVELOPES and event == "string":
                details["envelope"] = _ENVELOPES[prefix]
                details["context"] = value
                continue
            if record_prefix is None:
                if prefix == "" and event == "start_array":
                    record_prefix = "item"
                elif prefix == "value" and event == "start_array":
                    record_prefix = "value.item"
                continue
            if prefix == record_prefix:
                if event == "start_map":
                    record_index += 1
                    in_case = False
                    media_index = -1
                    record_builder = ijson.ObjectBuilder()
                    record_builder.event(event, value)
                elif record_builder is None:
                    # an element of value[] that is not an object (nested arrays have longer prefixes)
                    if event != "end_array":
                        record_index += 1
                        number += 1
                        kind = "an array" if event == "start_array" else f"a {event}"
                        yield RowError(where(), f"expected an object, found {kind}")
                elif event == "end_map":
                    if in_case:
                        details["cases"] += 1
                    else:
                        number += 1
                        details["media"] += 1
                        record_builder.event(event, value)
                        yield from media_entries(record_builder.value, where())
                    record_builder = None
                    in_case = False
                elif event == "map_key" and value == "Media":
                    in_case = True
                else:
                    record_builder.event(event, value)
                continue
            if record_builder is None:
                continue  # inside a malformed element of value[], or after the records
            media_prefix = record_prefix + ".Media"
            if in_case and (prefix == media_prefix or prefix.startswith(media_prefix + ".")):
                item_prefix = media_prefix + ".item"
                if prefix == media_prefix:
                    if event not in ("start_array", "end_array", "null"):
                        yield RowError(where(), "Media must be an array")
                    continue
                if skipping_media:
                    if prefix == item_prefix and event == "end_array":
                        skipping_media = False
                    continue
                if prefix == item_prefix and media_builder is None:
                    media_index += 1
                    number += 1
                    if event == "start_map":
                        media_builder = ijson.ObjectBuilder()
                        media_builder.event(event, value)
                    else:
                        skipping_media = event == "start_array"
                        kind = "an array" if skipping_media else f"a {event}"
                        yield RowError(where(), f"expected a Media object, found {kind}")
                    continue
                if media_builder is not None:
                    media_builder.event(event, value)
                    if prefix == item_prefix and event == "end_map":
                        built, media_builder = media_builder.value, None
                        details["media"] += 1
                        yield from media_entries(built, where())
                continue
            record_builder.event(event, value)
    except ijson.JSONError as exc:
        message = " ".join(str(exc).split())  # yajl's messages span lines (snippet + caret)
        yield RowError(f"after record {number}", f"invalid JSON, reading stopped: {message[:300]}")
        details["truncated"] = True
    except JsonDepthError as exc:
        yield RowError(where(building=True) if record_prefix is not None else "file",
                       f"{exc}, reading stopped (records before it were read)")
        details["truncated"] = True
    except _RecordTooLarge as exc:
        yield RowError(exc.position, f"record larger than {MAX_RECORD_EVENTS:,} JSON values, reading stopped "
                                     "(records before it were read)")
        details["truncated"] = True
    if record_prefix is None and "truncated" not in details:
        yield RowError("file", "not a VICS file: no 'value' array (expected a VICS 2.0 JSON export)")


def _media_id(source_id: str | None) -> Any:
    if source_id is None:
        return None
    if source_id.isdigit() and (source_id == "0" or not source_id.startswith("0")) and len(source_id) < 19:
        return int(source_id)
    return source_id


def _media(group: list[EntryRow], bank: BankInfo) -> dict[str, Any]:
    first = group[0]
    media: dict[str, Any] = {}
    if first.source_id is not None:
        media["MediaID"] = _media_id(first.source_id)
    number = to_vics_number(bank.category_scheme, first.category)
    media["Category"] = number
    if first.category is not None and number is None:
        media[CODE_ANNOTATION] = first.category
    alternatives = []
    for e in group:
        if e.signal_type == "md5":
            media["MD5"] = e.value.upper()
        elif e.signal_type == "sha1":
            media["SHA1"] = e.value.upper()
        else:
            alternatives.append({"HashName": registry.display_name(e.signal_type, e.value), "HashValue": e.value})
    if first.series is not None:
        media["Series"] = first.series
    if first.tags:
        media["Tags"] = list(first.tags)
    if first.notes is not None:
        media["Comments"] = first.notes
    if alternatives:
        media["AlternativeHashes"] = alternatives
    return media


def _groups(entries: Iterable[EntryRow]) -> Iterator[list[EntryRow]]:
    """Entries that can share one Media: same source id and metadata, at most one MD5 and one SHA1."""
    group: list[EntryRow] = []
    key: tuple | None = None
    slots: set[str] = set()
    for e in entries:
        k = (e.source_id, e.category, e.series, e.tags, e.notes)
        clash = e.signal_type in ("md5", "sha1") and e.signal_type in slots
        if group and (e.source_id is None or k != key or clash):
            yield group
            group, slots = [], set()
        group.append(e)
        key = k
        if e.signal_type in ("md5", "sha1"):
            slots.add(e.signal_type)
    if group:
        yield group


def write_vics(entries: Iterable[EntryRow], bank: BankInfo, out: IO[str]) -> int:
    """Write a VICS 2.0 hash set (``@odata.context`` envelope); returns the number of Media written.

    ``entries`` should come grouped by source id (:meth:`BankStore.iter_entries` orders them so).
    """
    out.write("{\n")
    out.write(f'"@odata.context": {json.dumps(CONTEXT_V2)},\n')
    out.write('"value": [')
    count = 0
    for group in _groups(entries):
        out.write(",\n" if count else "\n")
        out.write(json.dumps(_media(group, bank), ensure_ascii=False, separators=(",", ":")))
        count += 1
    out.write("\n]\n}\n")
    return count
