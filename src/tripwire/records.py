"""The item record: the one JSON object per file that items.jsonl, inspect and the API all share.

Field order is fixed (interface fields first) so that output diffs and eyeballing stay easy; the schema is
documented in docs/schema.md. At run time every record here is a plain ``dict`` (they travel through
worker pipes and JSON columns unchanged); the ``TypedDict`` classes name their fields so that a type
checker can follow a record from the worker to the store.
"""

from __future__ import annotations

import re
from typing import Any, Mapping, TypedDict, cast


class ItemErrorDict(TypedDict):
    """Why an item (or one extractor on it) could not be fully processed: ``{code, message}``."""

    code: str
    message: str


class FactEntry(TypedDict):
    """One extractor's result for one content, stored per SHA-256 under the extractor's name."""

    version: str
    data: dict[str, Any]
    error: ItemErrorDict | None


class RawRecord(TypedDict):
    """What a worker sends for one item: its facts still grouped per extractor."""

    path: str
    source: str
    size: int | None
    media_type: str | None
    error: ItemErrorDict | None
    facts: dict[str, FactEntry]


class SuppressedBy(TypedDict):
    """The allow-list entry that overrode a match (``matches_suppressed[].suppressed_by``)."""

    bank: str
    entry_id: int
    signal_type: str
    distance: int
    variant: str | None


class BankMatch(TypedDict, total=False):
    """One bank entry an item matched (``matches``), or an allow-list hit that overrode one."""

    bank: str
    bank_id: int
    entry_id: int
    signal_type: str
    value: str
    category: str | None
    category_label: str | None
    source_id: str | None
    series: str | None
    distance: int
    variant: str | None
    query_quality: int
    negative: bool
    #: model hashes: the form the match rests on (AutoV2, AutoV3, SHA256), and for a short form how many
    #: distinct banked models share it (``ambiguous`` when more than one)
    form: str
    prefix_candidates: int
    ambiguous: bool
    suppressed_by: SuppressedBy
    #: vPDQ: shares of the item's and of the entry's frames that matched (threatexchange's percentages), and
    #: the [start, end] seconds of each video covered by matching frames
    query_match_percent: float
    compared_match_percent: float
    matched_ranges: list[list[float]]
    bank_ranges: list[list[float]]


class ProvenanceVerdict(TypedDict, total=False):
    """The ``provenance`` field: the verdict and everything it rests on."""

    label: str
    confidence: str | None
    tool: str | None
    #: one line: why this label (for ``unknown``, what the evidence present says and why it names no origin)
    reason: str
    evidence: list[dict[str, Any]]
    conflicts: list[dict[str, Any]]
    basis: list[Any]
    #: editing evidence (an editing program in EXIF Software / XMP CreatorTool); does not change the label
    edits: list[str]
    notes: list[str]


class PolicyOutcome(TypedDict):
    """The ``policy`` field: what the policy recommends for the item and which rule decided it."""

    action: str
    queue: bool
    rule: str | None
    reason: str


class ItemRecord(TypedDict, total=False):
    """The flat item record: core fields (always present, in :data:`CORE_FIELDS` order), then the fields
    stages add, then the other facts sorted by name, then bookkeeping (:data:`TAIL_FIELDS`)."""

    path: str
    size: int | None
    media_type: str | None
    width: int | None
    height: int | None
    md5: str | None
    sha1: str | None
    sha256: str | None
    pdq: str | None
    pdq_quality: int | None
    error: ItemErrorDict | None
    provenance: ProvenanceVerdict | None
    generator: dict[str, Any] | None
    matches: list[BankMatch]
    priority: float
    priority_reason: str
    cluster: int | None
    series: int | None
    matches_suppressed: list[BankMatch]
    matches_truncated: int
    pdq_variants: dict[str, str]
    pdq_unletterbox: str | None
    pdq_unletterbox_quality: int | None
    #: ``"draft"`` (:data:`PDQ_DRAFT`) when ``pdq`` comes from the draft decode, absent when it is exact
    pdq_decode: str
    #: videos and animated images: what the video is (``media.video.VideoInfo``) and its vPDQ (threatexchange JSON)
    video: dict[str, Any] | None
    vpdq: str | None
    vpdq_unletterbox: str | None
    policy: PolicyOutcome
    extractors: dict[str, str]
    case: str
    item_id: int


#: the name call sites used before the record was typed
Record = ItemRecord

#: fields every record carries, in this order, whether or not a value exists
CORE_FIELDS = ("path", "size", "media_type", "width", "height", "md5", "sha1", "sha256", "pdq", "pdq_quality", "error")
#: fields later stages add, placed right after the core ones when present
LATER_FIELDS = ("provenance", "generator", "matches", "priority", "priority_reason", "cluster", "series")
#: bookkeeping placed last
TAIL_FIELDS = ("extractors", "case", "item_id")

#: ``pdq_decode`` of a record whose ``pdq`` was hashed from a reduced (draft) decode, ``[scan] pdq_decode =
#: "draft"``; the field is absent when ``pdq`` is the exact hash
PDQ_DRAFT = "draft"
#: what every output carrying such a hash says about it
PDQ_DRAFT_NOTE = ("draft decode: this PDQ is within ~10 bits of the hash ThreatExchange and HMA compute for the file "
                  "(it matches theirs at the usual radius) but it is not that hash")

#: a lone surrogate: an undecodable byte of a POSIX path (``os.fsdecode``'s ``surrogateescape``) or junk
_SURROGATE = re.compile("[\ud800-\udfff]")


#: how each lone surrogate is written out (``str.translate`` table): as the byte it stands for (``\xe9``) when
#: it came from ``surrogateescape``, else as ``\udXXX``; terminal output (:mod:`tripwire.termsafe`) uses it too
SURROGATE_ESCAPES: dict[int, str] = {code: f"\\x{code - 0xDC00:02x}" if 0xDC80 <= code <= 0xDCFF else f"\\u{code:04x}"
                                     for code in range(0xD800, 0xE000)}


def shown_path(path: str) -> str:
    """The display form of a path: valid UTF-8, every byte that was not UTF-8 written as ``\\xNN``.

    Paths are bytes on POSIX. In memory tripwire keeps them as ``os.fsdecode`` does (undecodable bytes as
    lone surrogates, lossless: the walker, tarfile and the records carry that form); everything written out
    (the ``path`` columns, items.jsonl/csv/html, API responses, inspect) carries this form. It is not
    reversible on its own (a name may contain a real ``\\x``): the store keeps the exact bytes beside it
    (:func:`path_bytes`, the ``path_raw`` columns) and keys rows by a hash of those bytes.
    """
    return path.translate(SURROGATE_ESCAPES) if _SURROGATE.search(path) else path


def os_bytes(path: str) -> bytes:
    """The exact bytes of a path (``os.fsencode``); a surrogate that no file system produced is kept as
    its UTF-8 code units rather than refused."""
    try:
        return path.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return path.encode("utf-8", "surrogatepass")


def path_bytes(path: str) -> bytes | None:
    """The exact bytes of a path that is not valid UTF-8, ``None`` when :func:`shown_path` is already exact."""
    return os_bytes(path) if _SURROGATE.search(path) else None


def stored_path(path: str, raw: bytes | None) -> str:
    """The in-memory path back from its stored form (``path`` column, ``path_raw`` column)."""
    return path if raw is None else raw.decode("utf-8", "surrogateescape")


def shown(record: ItemRecord) -> ItemRecord:
    """``record`` ready to be written out: its ``path`` and error message in display form
    (:func:`shown_path`); the same object when nothing needs escaping."""
    path, error = record.get("path"), record.get("error")
    bad_path = isinstance(path, str) and _SURROGATE.search(path) is not None
    bad_error = error is not None and isinstance(error.get("message"), str) and _SURROGATE.search(error["message"]) is not None
    if not (bad_path or bad_error):
        return record
    out = cast(ItemRecord, dict(record))
    if bad_path and isinstance(path, str):
        out["path"] = shown_path(path)
    if bad_error and error is not None:
        out["error"] = {"code": error["code"], "message": shown_path(error["message"])}
    return out


def flatten(path: str, size: int | None, media_type: str | None, error: ItemErrorDict | Mapping[str, Any] | None,
            facts: Mapping[str, FactEntry | Mapping[str, Any]], stage_data: Mapping[str, Any] | None = None) -> ItemRecord:
    """Merge per-extractor facts ({name: {version, data, error}}, see :class:`FactEntry`; from a worker or
    read back from the store) and stage fields into one record."""
    merged: dict[str, Any] = {}
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


def ordered(record: Mapping[str, Any]) -> ItemRecord:
    """``record``'s fields in record order (see :class:`ItemRecord`); the core fields are always present.

    This is where facts (whatever keys the extractors declared) become the typed record, so the one
    ``cast`` of the record flow is here."""
    out: dict[str, Any] = {key: record.get(key) for key in CORE_FIELDS}
    for key in LATER_FIELDS:
        if key in record:
            out[key] = record[key]
    for key in sorted(record):
        if key not in out and key not in TAIL_FIELDS:
            out[key] = record[key]
    for key in TAIL_FIELDS:
        if key in record:
            out[key] = record[key]
    return cast(ItemRecord, out)


def from_worker(raw: RawRecord | Mapping[str, Any]) -> ItemRecord:
    """A worker's raw record (facts per extractor) as the flat item record."""
    return flatten(raw["path"], raw.get("size"), raw.get("media_type"), raw.get("error"), raw.get("facts") or {})
