"""Export a bank in any supported format, streaming from the database."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import IO

from .store import BankStore

EXPORT_FORMATS = ("vics", "csv", "te", "lines")


@dataclass
class ExportReport:
    bank: str
    format: str
    #: entries written (for VICS: entries, grouped into ``media`` Media objects)
    entries: int = 0
    media: int = 0
    #: entries the format cannot carry, by signal type
    skipped: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {"bank": self.bank, "format": self.format, "entries": self.entries, "media": self.media,
                "skipped": self.skipped}


class _Counting:
    def __init__(self, it):
        self.it = it
        self.count = 0

    def __iter__(self):
        for x in self.it:
            self.count += 1
            yield x


def export_bank(store: BankStore, bank: str, fmt: str, out: IO[str], signal_type: str | None = None,
                include_removed: bool = False) -> ExportReport:
    """Write ``bank``'s active entries to ``out`` as ``fmt`` (``lines`` needs ``signal_type``)."""
    info = store.get_bank(bank)
    report = ExportReport(info.name, fmt)
    entries = _Counting(store.iter_entries(info.id, include_removed=include_removed))
    if fmt == "vics":
        from .vics import write_vics

        report.media = write_vics(entries, info, out)
        report.entries = entries.count
    elif fmt == "csv":
        from .csv_lines import write_csv

        report.entries = write_csv(entries, out)
    elif fmt == "te":
        from .te import write_te

        report.entries, report.skipped = write_te(entries, out)
    elif fmt == "lines":
        from .csv_lines import write_lines

        if not signal_type:
            raise ValueError("--format lines writes one signal type: pass --signal-type (md5, sha1, sha256 or pdq)")
        report.entries = write_lines(entries, out, signal_type)
        report.skipped = {"other types": entries.count - report.entries} if entries.count > report.entries else {}
    else:
        raise ValueError(f"unknown export format {fmt!r} (expected one of {', '.join(EXPORT_FORMATS)})")
    return report
