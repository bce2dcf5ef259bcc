"""CSV lists with a header, and plain one-hash-per-line lists (IWF-style MD5/SHA-1 lists).

CSV: the header names the columns, in any order — ``signal_type,value,category,source_id,series,tags,notes``
(``added_at`` is written on export for the reader's benefit and ignored on import: it records when an entry
joined *this* bank). Common spellings are accepted (``hash``, ``signal_str``, ``type``, ``comment``). Tags
are ``;``-separated, or a JSON array when a tag itself contains ``;`` or ``,``. A missing or empty
``signal_type`` is inferred from the value's length like a plain list.

Plain lists: one value per line; blank lines and ``#`` comments are skipped. The type is inferred from the
length (32 hex = MD5, 40 = SHA-1); 64 hex characters may be SHA-256 or PDQ, so such lists need
``--signal-type``. Positions are reported as ``line N``.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timezone
from typing import IO, Any, Iterable, Iterator

from .. import csvsafe
from .entries import RawEntry, RowError
from ..signals.registry import AmbiguousSignalType, registry
from .store import EntryRow

CSV_COLUMNS = ("signal_type", "value", "category", "source_id", "series", "tags", "notes", "added_at")
_HEADER_ALIASES = {
    "signal_type": "signal_type", "type": "signal_type", "hash_type": "signal_type", "signaltype": "signal_type",
    "value": "value", "hash": "value", "signal_str": "value", "signal": "value", "hash_value": "value",
    "category": "category",
    "source_id": "source_id", "media_id": "source_id", "mediaid": "source_id", "id": "source_id",
    "series": "series",
    "tags": "tags",
    "notes": "notes", "note": "notes", "comment": "notes", "comments": "notes",
    "added_at": "added_at",
}


def _text_stream(stream: IO[bytes]) -> io.TextIOWrapper:
    return io.TextIOWrapper(stream, encoding="utf-8-sig", errors="replace", newline="")


def _tags_cell(cell: str | None) -> Any:
    if cell is None:
        return None
    cell = cell.strip()
    if cell.startswith("["):
        try:
            return json.loads(cell)
        except json.JSONDecodeError as exc:
            raise ValueError(f"tags look like JSON but do not parse: {exc}") from exc
    return cell


def csv_rows(reader, width: int, line_offset: int = 0) -> Iterator[tuple[int, list[str]] | RowError]:
    """The data rows of a ``csv.reader`` with their line numbers (``line_offset`` added, for a header read
    separately). A malformed row or one of the wrong width becomes a RowError and reading goes on; blank
    rows are skipped."""
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield RowError(f"line {reader.line_num + line_offset}", f"malformed CSV: {exc}")
            continue
        line = reader.line_num + line_offset
        if not row or all(not c.strip() for c in row):
            continue
        if len(row) != width:
            yield RowError(f"line {line}", f"expected {width} fields, found {len(row)}")
            continue
        yield line, row


def read_csv(stream: IO[bytes], signal_type: str | None = None) -> Iterator[RawEntry | RowError]:
    """Rows of a CSV list with a header (see module docs)."""
    text = _text_stream(stream)
    reader = csv.reader(text)
    try:
        header = next(reader)
    except StopIteration:
        return
    except csv.Error as exc:
        yield RowError("line 1", f"unreadable CSV header: {exc}")
        return
    columns: list[str | None] = []
    for name in header:
        key = name.strip().lower().replace("-", "_").replace(" ", "_")
        columns.append(_HEADER_ALIASES.get(key))
    if "value" not in columns:
        yield RowError("line 1", f"CSV header has no value column (found: {', '.join(header) or 'nothing'}; "
                                 f"expected {','.join(CSV_COLUMNS[:-1])})")
        return
    for item in csv_rows(reader, len(header)):
        if isinstance(item, RowError):
            yield item
            continue
        line, row = item
        cells = {col: csvsafe.unescape_cell(cell) for col, cell in zip(columns, row) if col}
        value = (cells.get("value") or "").strip()
        kind = (cells.get("signal_type") or "").strip() or signal_type
        if not value:
            yield RowError(f"line {line}", "empty value")
            continue
        try:
            kind = kind or registry.infer(value)
            tags = _tags_cell(cells.get("tags"))
        except AmbiguousSignalType:
            raise
        except ValueError as exc:
            yield RowError(f"line {line}", str(exc))
            continue
        yield RawEntry(f"line {line}", kind, value, category=cells.get("category"), source_id=cells.get("source_id"),
                       series=cells.get("series"), tags=tags, notes=cells.get("notes"))


def read_lines(stream: IO[bytes], signal_type: str | None = None) -> Iterator[RawEntry | RowError]:
    """One hash per line (see module docs)."""
    for number, raw in enumerate(_text_stream(stream), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if any(c.isspace() for c in line) or "," in line or ";" in line:
            yield RowError(f"line {number}", "expected one hash per line (use --format csv or te for more fields)")
            continue
        try:
            kind = signal_type or registry.infer(line)
        except AmbiguousSignalType:
            raise
        except ValueError as exc:
            yield RowError(f"line {number}", str(exc))
            continue
        yield RawEntry(f"line {number}", kind, line)


def _tags_out(tags: tuple[str, ...] | None) -> str:
    if not tags:
        return ""
    if any(c in t for t in tags for c in ";,") or tags[0].startswith("["):
        return json.dumps(list(tags), ensure_ascii=False)
    return ";".join(tags)


def _utc(when: datetime | None) -> str:
    """ISO 8601 in UTC (SQLite hands back naive datetimes; tripwire stores UTC)."""
    if when is None:
        return ""
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return when.astimezone(timezone.utc).isoformat()


def write_csv(entries: Iterable[EntryRow], out: IO[str]) -> int:
    """Write entries as CSV with the standard header; returns the number of rows."""
    writer = csvsafe.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    count = 0
    for e in entries:
        writer.writerow([e.signal_type, e.value, e.category or "", e.source_id or "", e.series or "",
                         _tags_out(e.tags), e.notes or "", _utc(e.added_at)])
        count += 1
    return count


def write_lines(entries: Iterable[EntryRow], out: IO[str], signal_type: str) -> int:
    """Write the values of one signal type, one per line (an IWF-style list)."""
    count = 0
    for e in entries:
        if e.signal_type == signal_type:
            out.write(e.value + "\n")
            count += 1
    return count
