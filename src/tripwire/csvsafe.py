"""CSV that a spreadsheet cannot execute: the one place every CSV tripwire writes goes through.

A cell that starts with ``=``, ``+``, ``-``, ``@``, TAB or CR is read by Excel, LibreOffice and Google Sheets
as a formula (``=cmd|' /C calc'!A0``, ``=HYPERLINK(...)``), and such text reaches tripwire's CSV from files and
posts it analyses (generator prompts, tool names, error messages, notes, handles). Following OWASP's advice,
such a text cell is written with a single quote in front (``'=cmd|...``), which spreadsheets show as text.

Rules:

* Every *text* cell is checked, even one that looks like a number (``"-5"``): OWASP advises escaping
  anyway, and a text column holding a number is not something to guess about. Numbers tripwire itself
  computed (``int``/``float`` values) are written as they are: a number cannot carry a formula.
* The escape is reversible: a cell that already starts with quotes followed by a trigger character gets one
  more quote, so :func:`unescape_cell` (one quote off a cell of quotes + trigger) gives back exactly the text
  that was written. tripwire's own CSV readers (bank CSV, shared signals) apply it, so export and re-import
  round-trip to identical entries.

Use :func:`writer` / :class:`DictWriter` in place of ``csv.writer`` / ``csv.DictWriter`` (a test checks that
nothing in ``src/tripwire`` calls those directly).
"""

from __future__ import annotations

import csv
from typing import IO, Any, Iterable, Literal

#: first characters that make a spreadsheet evaluate a cell
TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def _needs_quote(text: str) -> bool:
    return text.lstrip("'").startswith(TRIGGERS)


def escape_cell(value: Any) -> Any:
    """``value`` safe for a spreadsheet: a text cell starting with a formula trigger gets a leading ``'``."""
    if isinstance(value, str) and _needs_quote(value):
        return "'" + value
    return value


def unescape_cell(value: Any) -> Any:
    """Undo :func:`escape_cell` on a cell read back from tripwire's CSV (other text is left alone)."""
    if isinstance(value, str) and value.startswith("'") and _needs_quote(value):
        return value[1:]
    return value


def escape_row(row: Iterable[Any]) -> list[Any]:
    return [escape_cell(v) for v in row]


class _SafeWriter:
    """A ``csv.writer`` whose rows are escaped cell by cell.

    A bare CR inside a cell is not quoted by ``csv`` when the line terminator is ``\n`` alone, so a reader (or
    a spreadsheet) would start a new row there, and the text after it (``x\r=cmd|...``) would become a fresh,
    unescaped first cell. Such a row is written with every cell quoted instead.
    """

    def __init__(self, out: IO[str], dialect: Any = "excel", **kwargs: Any) -> None:
        self._writer = csv.writer(out, dialect, **kwargs)
        self._quoted = csv.writer(out, dialect, **{**kwargs, "quoting": csv.QUOTE_ALL})
        self._bare_cr = "\r" not in self._writer.dialect.lineterminator

    def writerow(self, row: Iterable[Any]) -> Any:
        cells = escape_row(row)
        if self._bare_cr and any(isinstance(c, str) and "\r" in c for c in cells):
            return self._quoted.writerow(cells)
        return self._writer.writerow(cells)

    def writerows(self, rows: Iterable[Iterable[Any]]) -> None:
        for row in rows:
            self.writerow(row)


def writer(out: IO[str], dialect: Any = "excel", **kwargs: Any) -> _SafeWriter:
    """``csv.writer(out, dialect, **kwargs)`` with every cell passed through :func:`escape_cell`."""
    return _SafeWriter(out, dialect, **kwargs)


class DictWriter(csv.DictWriter):
    """``csv.DictWriter`` whose rows go through the same escaping writer as :func:`writer`."""

    def __init__(self, f: IO[str], fieldnames: Any, restval: Any = "", extrasaction: Literal["raise", "ignore"] = "raise",
                 dialect: Any = "excel", **kwds: Any) -> None:
        super().__init__(f, fieldnames, restval, extrasaction, dialect, **kwds)
        self.writer = _SafeWriter(f, dialect, **kwds)  # type: ignore[assignment]
