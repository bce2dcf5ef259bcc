"""The item record: the one JSON object per file that items.jsonl, inspect and the API all share.

Field order is fixed (interface fields first) so that output diffs and eyeballing stay easy; the schema is
documented in docs/schema.md.
"""

from __future__ import annotations

from typing import Any

Record = dict[str, Any]

#: fields every record carries, in this order, whether or not a value exists
CORE_FIELDS = ("path", "size", "media_type", "width", "height", "md5", "sha1", "sha256", "pdq", "pdq_quality", "error")
#: fields later stages add, placed right after the core ones when present
LATER_FIELDS = ("provenance", "generator", "matches", "priority", "priority_reason", "cluster")
#: bookkeeping placed last
TAIL_FIELDS = ("extractors", "case")


def flatten(path: str, size: int | None, media_type: str | None, error: dict | None,
            facts: dict[str, dict], stage_data: dict | None = None) -> Record:
    """Merge per-extractor facts ({name: {version, data, error}}) and stage fields into one record."""
    merged: Record = {}
    versions: dict[str, str] = {}
    for name, entry in facts.items():
        versions[name] = entry["version"]
        merged.update(entry.get("data") or {})
    merged.update(stage_data or {})
    merged.update(path=path, error=error)
    if size is not None or "size" not in merged:
        merged["size"] = size
    if media_type or "media_type" not in merged:
        merged["media_type"] = media_type
    merged["extractors"] = versions
    return ordered(merged)


def ordered(record: Record) -> Record:
    out: Record = {key: record.get(key) for key in CORE_FIELDS}
    for key in LATER_FIELDS:
        if key in record:
            out[key] = record[key]
    for key in sorted(record):
        if key not in out and key not in TAIL_FIELDS:
            out[key] = record[key]
    for key in TAIL_FIELDS:
        if key in record:
            out[key] = record[key]
    return out


def from_worker(raw: Record) -> Record:
    """A worker's raw record (facts per extractor) as the flat item record."""
    return flatten(raw["path"], raw.get("size"), raw.get("media_type"), raw.get("error"), raw.get("facts") or {})
