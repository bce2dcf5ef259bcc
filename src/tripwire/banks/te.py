"""ThreatExchange / HMA text formats, read and written through the ``threatexchange`` package's signal types.

The formats are ThreatExchange's own:

* signal files as its ``LocalFileSignalExchangeAPI`` reads and appends them: one ``<signal_type> <signal>``
  per line (``pdq f8f8f0cee0f4a84f...``), or a bare signal per line when the type is given
  (``--signal-type``, like the file collaboration's ``signal_type`` setting; bare 64-hex lines default to
  PDQ and bare 32-hex lines to MD5 here, since those are the only TE types with those lengths);
* the CSV that ``threatexchange dataset -P --csv`` prints: ``signal_type,signal_str,collab,category,tags``.

Type names and validation come from the signal type classes (``PdqSignal.get_name()`` is ``pdq``,
``VideoMD5Signal`` is ``video_md5``, ``VideoSHA256Signal`` is ``video_sha256``), so a value that
ThreatExchange would reject is reported here too, with its line number. Other TE types (TMK+PDQF, URLs,
text) are kept as unsupported entries under their TE name. SHA-1 has no TE signal type and is skipped on
export (and counted).
"""

from __future__ import annotations

import csv
import io
from typing import IO, Iterable, Iterator

from .. import csvsafe
from ..signals.registry import registry
from .csv_lines import csv_rows
from .entries import RawEntry, RowError
from .store import EntryRow

#: bare hex lines by length, when no type is given: the only TE types of those lengths (plus SHA-1)
_BARE_BY_LENGTH = {64: "pdq", 32: "md5", 40: "sha1"}


def _entry(position: str, te_name: str, signal: str, **extra) -> RawEntry | RowError:
    ours = registry.from_te(te_name) or (te_name if te_name in registry.names() else None)
    cls = registry.get(ours).te_class() if ours else None
    if cls is not None:
        try:
            signal = cls.validate_signal_str(signal.strip().lower())
        except ValueError as exc:
            return RowError(position, f"{te_name}: {exc}")
    return RawEntry(position, ours or te_name, signal, **extra)


def read_te(stream: IO[bytes], signal_type: str | None = None) -> Iterator[RawEntry | RowError]:
    """Entries of a TE signal file or TE dataset CSV (detected from the first line)."""
    text = io.TextIOWrapper(stream, encoding="utf-8-sig", errors="replace", newline="")
    first = text.readline()
    header = [h.strip().lower() for h in first.split(",")]
    if "signal_str" in header:
        yield from _read_te_csv(first, text)
        return
    lines = ([first] if first else [])
    number = 0
    for chunk in (lines, text):
        for raw in chunk:
            number += 1
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            te_name, sep, signal = line.partition(" ")
            if not sep:
                kind = signal_type or _BARE_BY_LENGTH.get(len(line))
                if kind is None:
                    yield RowError(f"line {number}", "expected '<signal_type> <signal>' or a bare PDQ/MD5 hash")
                    continue
                te_name = registry.kind(kind).te_name or kind
                signal = line
            yield _entry(f"line {number}", te_name, signal.strip())


def _read_te_csv(first: str, text: IO[str]) -> Iterator[RawEntry | RowError]:
    fields = [f.strip().lower() for f in next(csv.reader([first]))]
    for item in csv_rows(csv.reader(text), len(fields), line_offset=1):  # line 1 was the header
        if isinstance(item, RowError):
            yield item
            continue
        line, row = item
        cells = {f: csvsafe.unescape_cell(c) for f, c in zip(fields, row)}
        te_category = (cells.get("category") or "").strip()
        notes = f"threatexchange opinion: {te_category}" if te_category and te_category != "POSITIVE_CLASS" else None
        tags = [t for t in (cells.get("tags") or "").split() if t] or None
        yield _entry(f"line {line}", (cells.get("signal_type") or "").strip(), cells.get("signal_str") or "",
                     tags=tags, notes=notes, series=(cells.get("collab") or "").strip() or None)


def write_te(entries: Iterable[EntryRow], out: IO[str]) -> tuple[int, dict[str, int]]:
    """Write ``<te_signal_type> <signal>`` lines; returns (written, skipped counts by type)."""
    written = 0
    skipped: dict[str, int] = {}
    te_classes = registry.te_classes()
    for e in entries:
        cls = te_classes.get(e.signal_type)
        if cls is None:
            skipped[e.signal_type] = skipped.get(e.signal_type, 0) + 1
            continue
        out.write(f"{cls.get_name()} {cls.validate_signal_str(e.value)}\n")
        written += 1
    return written, skipped
