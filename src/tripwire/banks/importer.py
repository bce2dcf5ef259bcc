"""Streaming import of hash lists into a bank, whatever the format.

A format reader turns a file into a stream of :class:`RawEntry` (or :class:`RowError` for a row it could
not parse), each with its position in the file (``line 12``, ``value[3].Media[17]``). :func:`run_import`
validates and normalises every entry against the bank (signal type, hex value, category scheme), writes
them in batches of a few thousand rows per transaction and keeps going past bad rows: the report lists
each malformed row with its position while every valid row loads. Memory stays bounded by the batch size
and the number of errors kept (all of them can be streamed to a file as they happen).
"""

from __future__ import annotations

import gzip
import io
import json
import os
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Callable, Iterable, Iterator

from ..signals.registry import AmbiguousSignalType, registry
from .categories import category_label, from_vics_number, normalise_category
from .entries import RawEntry, RowError
from .store import DEFAULT_BATCH, BankInfo, BankStore

FORMATS = ("vics", "csv", "lines", "te")
#: errors kept in memory for the report (all are written to ``error_sink`` when one is given)
MAX_KEPT_ERRORS = 1000


@dataclass
class ImportReport:
    bank: str
    format: str
    #: entries read (valid or not)
    read: int = 0
    added: int = 0
    existing: int = 0
    tombstoned: int = 0
    #: valid entries of types tripwire keeps but cannot match (e.g. photodna), by type
    unsupported: dict[str, int] = field(default_factory=dict)
    error_count: int = 0
    errors: list[RowError] = field(default_factory=list)
    #: reader-specific facts (e.g. the VICS envelope version)
    details: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "bank": self.bank, "format": self.format, "read": self.read, "added": self.added,
            "existing": self.existing, "tombstoned": self.tombstoned, "unsupported": dict(sorted(self.unsupported.items())),
            "error_count": self.error_count, "errors": [e.as_dict() for e in self.errors],
            "errors_truncated": self.error_count > len(self.errors), "details": self.details,
            "seconds": round(self.seconds, 3),
        }


def _text(value: Any, limit: int, what: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, (dict, list)):
        raise ValueError(f"{what} must be text, not {type(value).__name__}")
    text = str(value).strip()
    if not text:
        return None
    if len(text) > limit:
        raise ValueError(f"{what} longer than {limit} characters")
    return text


def _tags(value: Any) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        items = [t for t in (p.strip() for p in value.replace(";", ",").split(",")) if t]
    elif isinstance(value, (list, tuple)):
        items = []
        for t in value:
            if isinstance(t, dict):  # {"Name": "..."} / {"Tag": "..."}
                t = t.get("Name") or t.get("Tag") or t.get("Value")
            if t is None or isinstance(t, (dict, list)):
                raise ValueError("tags must be a list of strings")
            if str(t).strip():
                items.append(str(t).strip())
    else:
        raise ValueError(f"tags must be a list or a string, not {type(value).__name__}")
    return items or None


def normalise_entry(raw: RawEntry, bank: BankInfo, default_type: str | None = None) -> dict[str, Any]:
    """Validate one raw entry against ``bank``; ValueError with a readable message when it is malformed."""
    type_name = raw.signal_type or default_type
    if not type_name:
        raise ValueError("missing signal type")
    signal_type = registry.resolve(type_name)
    value = registry.normalise_value(signal_type, raw.value if raw.value is None or isinstance(raw.value, str) else str(raw.value))
    if raw.vics_category:
        category = from_vics_number(bank.category_scheme, raw.category)
    else:
        category = normalise_category(bank.category_scheme, raw.category)
    return {
        "signal_type": signal_type,
        "value": value,
        "category": category,
        "source_id": _text(raw.source_id, 200, "source id"),
        "series": _text(raw.series, 200, "series"),
        "tags": _tags(raw.tags),
        "notes": _text(raw.notes, 10_000, "notes"),
    }


class ProgressReader(io.RawIOBase):
    """A binary reader that counts the bytes it hands out (for progress on a file of known size)."""

    def __init__(self, raw: IO[bytes], callback: Callable[[int], None] | None = None) -> None:
        self._raw = raw
        self.consumed = 0
        self._callback = callback

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return self._raw.seekable()

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        """Rewinding (a reader starting over, see jsonl.parse_events) restarts the byte count too."""
        pos = self._raw.seek(offset, whence)
        self.consumed = pos
        return pos

    def readinto(self, buffer) -> int:
        data = self._raw.read(len(buffer))
        n = len(data)
        buffer[:n] = data
        self.consumed += n
        if self._callback is not None:
            self._callback(self.consumed)
        return n

    def close(self) -> None:
        self._raw.close()
        super().close()


class Inflater(io.RawIOBase):
    """A ``.gz`` stream that ends, instead of raising, where its data is corrupt or cut short.

    Every byte decoded before the damage reaches the reader (a buffered reader that meets an exception
    mid-fill would drop the bytes it already holds); ``error`` then says what was wrong and ``offset`` at
    which byte of the decompressed data reading stopped. :func:`import_file` reports it as a row error.
    """

    def __init__(self, gz: gzip.GzipFile) -> None:
        self._gz = gz
        self.offset = 0
        self.error: str | None = None

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return self.error is None

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        self.offset = self._gz.seek(offset, whence)
        return self.offset

    def readinto(self, buffer) -> int:
        if self.error is not None:
            return 0
        try:
            data = self._gz.read1(len(buffer))
        except (zlib.error, gzip.BadGzipFile, EOFError, OSError) as exc:
            self.error = f"{type(exc).__name__}: {exc}"
            return 0
        n = len(data)
        buffer[:n] = data
        self.offset += n
        return n

    def close(self) -> None:
        self._gz.close()
        super().close()


def open_input(path: str | Path, progress: Callable[[int, int], None] | None = None) -> IO[bytes]:
    """Open a list file for binary streaming: ``-`` is stdin, ``.gz`` is decompressed on the fly.

    ``progress(done_bytes, total_bytes)`` is called as the (compressed) file is read.
    """
    if str(path) == "-":
        return io.BufferedReader(ProgressReader(os.fdopen(os.dup(0), "rb")))
    p = Path(path)
    total = p.stat().st_size
    raw = open(p, "rb")
    counting = ProgressReader(raw, (lambda done: progress(done, total)) if progress else None)
    buffered = io.BufferedReader(counting, buffer_size=1 << 20)
    if p.suffix.lower() == ".gz":
        return io.BufferedReader(Inflater(gzip.GzipFile(fileobj=buffered, mode="rb")), buffer_size=1 << 16)
    return buffered


def detect_format(path: str | Path, head: bytes) -> str:
    """Guess a list's format from its name and first bytes (``--format`` overrides)."""
    name = str(path).lower()
    if name.endswith(".gz"):
        name = name[:-3]
    text = head.lstrip(b"\xef\xbb\xbf").lstrip()
    if name.endswith(".json") or text[:1] in (b"{", b"["):
        return "vics"
    first = text.split(b"\n", 1)[0].strip().decode("utf-8", "replace")
    lowered = first.lower()
    if "signal_str" in lowered:
        return "te"
    if name.endswith(".csv") or ("," in first and ("value" in lowered or "signal_type" in lowered)):
        return "csv"
    parts = first.split()
    if len(parts) == 2 and not any(c in parts[0] for c in ",;"):
        return "te"
    return "lines"


def read_entries(fmt: str, stream: IO[bytes], signal_type: str | None = None,
                 details: dict[str, Any] | None = None) -> Iterator[RawEntry | RowError]:
    """The reader for ``fmt`` over a binary stream."""
    details = details if details is not None else {}
    if fmt == "vics":
        from .vics import read_vics

        return read_vics(stream, details)
    if fmt == "csv":
        from .csv_lines import read_csv

        return read_csv(stream, signal_type)
    if fmt == "lines":
        from .csv_lines import read_lines

        return read_lines(stream, signal_type)
    if fmt == "te":
        from .te import read_te

        return read_te(stream, signal_type)
    raise ValueError(f"unknown format {fmt!r} (expected one of {', '.join(FORMATS)})")


def run_import(store: BankStore, bank: str, entries: Iterable[RawEntry | RowError], fmt: str = "", *,
               default_type: str | None = None, batch_size: int = DEFAULT_BATCH,
               error_sink: IO[str] | None = None, on_batch: Callable[[ImportReport], None] | None = None,
               details: dict[str, Any] | None = None) -> ImportReport:
    """Validate and store ``entries`` into ``bank``; malformed rows are reported, valid rows load.

    ``error_sink`` receives every error as one JSON line as it happens (the report keeps the first
    :data:`MAX_KEPT_ERRORS`). :class:`~tripwire.signals.registry.AmbiguousSignalType` aborts the import: a whole
    list of 64-character values cannot be guessed row by row.
    """
    info = store.get_bank(bank)
    report = ImportReport(bank=info.name, format=fmt, details=details if details is not None else {})
    started = time.monotonic()
    batch: list[dict[str, Any]] = []

    def error(position: str, message: str) -> None:
        report.error_count += 1
        err = RowError(position, message)
        if len(report.errors) < MAX_KEPT_ERRORS:
            report.errors.append(err)
        if error_sink is not None:
            error_sink.write(json.dumps(err.as_dict(), ensure_ascii=False) + "\n")

    def flush() -> None:
        result = store.insert_batch(info.id, batch)
        report.added += result.added
        report.existing += result.existing
        report.tombstoned += result.tombstoned
        batch.clear()
        if on_batch is not None:
            on_batch(report)

    try:
        for item in entries:
            report.read += 1
            if isinstance(item, RowError):
                error(item.position, item.message)
                continue
            try:
                row = normalise_entry(item, info, default_type)
            except AmbiguousSignalType:
                raise
            except ValueError as exc:
                error(item.position, str(exc))
                continue
            if row["signal_type"] not in registry.names():
                report.unsupported[row["signal_type"]] = report.unsupported.get(row["signal_type"], 0) + 1
            batch.append(row)
            if len(batch) >= batch_size:
                flush()
    finally:
        # rows read before a fatal problem (truncated file, ^C) are still committed
        if batch:
            flush()
        report.seconds = time.monotonic() - started
    return report


def import_file(store: BankStore, bank: str, path: str | Path, fmt: str | None = None, *,
                signal_type: str | None = None, batch_size: int = DEFAULT_BATCH,
                error_sink: IO[str] | None = None, progress: Callable[[int, int], None] | None = None,
                on_batch: Callable[[ImportReport], None] | None = None) -> ImportReport:
    """Import a list file (format guessed from its name and content unless given)."""
    default_type = registry.resolve(signal_type) if signal_type else None
    with open_input(path, progress) as stream:
        if fmt is None:
            fmt = detect_format(path, stream.peek(4096)[:4096] if hasattr(stream, "peek") else b"")
        details: dict[str, Any] = {}
        entries = _with_damage(read_entries(fmt, stream, default_type, details), stream, details)
        return run_import(store, bank, entries, fmt, default_type=default_type, batch_size=batch_size,
                          error_sink=error_sink, on_batch=on_batch, details=details)


def _with_damage(entries: Iterable[RawEntry | RowError], stream: IO[bytes],
                 details: dict[str, Any]) -> Iterator[RawEntry | RowError]:
    """``entries``, then a row error naming the byte where a ``.gz`` input turned out corrupt or cut short."""
    yield from entries
    inflater = getattr(stream, "raw", None)
    if isinstance(inflater, Inflater) and inflater.error is not None:
        details["truncated"] = True
        yield RowError(f"byte {inflater.offset} of the decompressed data",
                       f"corrupt or truncated .gz, reading stopped ({inflater.error}); rows before it were read")


def label_of(bank: BankInfo, code: str | None) -> str | None:
    return category_label(bank.category_scheme, code)
