"""Hash-list files for post feeds (``posts scan --banks FILE``), loaded as in-memory banks.

Each file becomes a bank named after its stem, imported through the normal bank importer into a private
in-memory database and matched by the bank :class:`~tripwire.match.matcher.Matcher`
(:class:`HashListMatcher`). Two layouts:

* one hex digest per line: 32 hex = MD5, 64 hex = SHA-256 *and* PDQ (both entries: the media's ``sha256``
  matches exactly, its ``pdq`` by Hamming distance, since both are 64 hex characters);
* or CSV ``signal_type,value[,category[,...]]`` (header optional) with any matchable signal type, in any
  spelling the registry knows (``photo_md5``/``video_md5`` are MD5).

PDQ matches are within ``radius`` bits (default 31, as elsewhere in tripwire) and media whose declared
``pdq_quality`` is below ``min_quality`` (default 50) are not PDQ-matched. A malformed line stops the
load with ``file:line`` in the message.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Iterable, Iterator

from ..banks.entries import RawEntry, RowError
from ..banks.importer import run_import
from ..banks.memory import MemoryDatabase
from ..banks.store import BankError, BankStore
from ..errors import UsageError
from ..match.matcher import Matcher
from ..signals.registry import registry
from .bankmatch import BankMediaMatcher

__all__ = ["HashListMatcher", "read_hash_list"]

#: the types of a bare hex line, by length
_BARE = {32: ("md5",), 64: ("sha256", "pdq")}


def read_hash_list(path: Path) -> Iterator[RawEntry | RowError]:
    """The entries of one hash-list file, positions ``<file name>:<line>``."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read hash list {path}: {exc}") from exc
    first = next((ln for ln in text.splitlines() if ln.strip() and not ln.startswith("#")), "")
    if "," in first:
        yield from _csv_entries(text, path.name)
        return
    for lineno, line in enumerate(text.splitlines(), 1):
        value = line.strip()
        if not value or value.startswith("#"):
            continue
        kinds = _BARE.get(len(value), ())
        if not kinds:
            yield RowError(f"{path.name}:{lineno}", "not an MD5 (32 hex) or SHA-256/PDQ (64 hex) value")
        for kind in kinds:
            yield RawEntry(f"{path.name}:{lineno}", kind, value)


def _csv_entries(text: str, name: str) -> Iterator[RawEntry | RowError]:
    for lineno, row in enumerate(csv.reader(io.StringIO(text)), 1):
        if not row or row[0].strip().startswith("#") or row[0].strip().lower() in ("signal_type", "type"):
            continue
        try:
            kind = registry.resolve(row[0])
        except ValueError:
            kind = ""
        if kind not in registry.names():
            yield RowError(f"{name}:{lineno}", f"unknown signal type {row[0]!r} ({', '.join(registry.names())})")
            continue
        yield RawEntry(f"{name}:{lineno}", kind, row[1] if len(row) > 1 else "",
                       category=row[2] if len(row) > 2 else None)


class HashListMatcher(BankMediaMatcher):
    """Hash-list files as in-memory banks behind the bank matcher (see the module doc)."""

    @classmethod
    def from_files(cls, paths: Iterable[str | Path], radius: int = 31, min_quality: int = 50) -> "HashListMatcher":
        db = MemoryDatabase()
        store = BankStore(db)
        counts: dict[str, int] = {}
        for p in map(Path, paths):
            if p.stem not in counts:  # two files with one stem fill one bank, as their names say
                try:
                    store.create_bank(p.stem, source=str(p), category_scheme="none", pdq_radius=radius,
                                      min_quality=min_quality)
                except BankError as exc:
                    raise UsageError(f"{p.name}: {exc}") from exc
            report = run_import(store, p.stem, read_hash_list(p), "hashlist")
            if report.errors:
                first = report.errors[0]
                raise UsageError(f"{first.position}: {first.message}")
            counts[p.stem] = counts.get(p.stem, 0) + report.added + report.existing
        return cls(Matcher(db, persist=False), counts, counts)

    def __len__(self) -> int:
        return sum(self.counts.values())
