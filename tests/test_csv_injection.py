"""CSV formula injection (issue 11, item 6): no CSV tripwire writes can make a spreadsheet run a formula.

Every hostile cell is built here; each writer must put a ``'`` in front of a text cell that starts with
``=``, ``+``, ``-``, ``@``, TAB or CR, and tripwire's own readers must take it off again.
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import pytest

from tripwire import csvsafe
from tripwire.banks.exporter import export_bank
from tripwire.banks.importer import import_file
from tripwire.banks.store import BankStore
from tripwire.report.writer import write_reports
from tripwire.sharing.indicators import SharedSignal, read_signals, write_signals
from tripwire.store.db import open_db

DDE = "=cmd|' /C calc'!A0"
#: cells whose first character a spreadsheet evaluates
FIRST = [DDE, "+1+cmd|x", "-2+3", "@SUM(A1:A2)", "\t=1+1", "\r=1+1", "=HYPERLINK(\"http://x.example\",\"y\")",
         "'=already quoted", "''@twice"]
#: cells that smuggle a formula behind a line break (a bare CR must not start a new row)
EMBEDDED = ["note\r=cmd|' /C calc'!A0", "line\n-1+1", "crlf\r\n@SUM(1)"]
HOSTILE = FIRST + EMBEDDED


def _expected(cell: str) -> str:
    return "'" + cell if cell in FIRST else cell


def _rows(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


def _unsafe(cells) -> list[str]:
    """Cells a spreadsheet would evaluate (a CR not inside quotes would start a new row: count it too)."""
    return [c for c in cells if isinstance(c, str) and c[:1] in ("=", "+", "-", "@", "\t", "\r")]


def _crlf_split(text: str) -> list[str]:
    """Physical rows as a spreadsheet splits them: at any CR or LF outside a quoted cell."""
    rows, quoted = [""], False
    for ch in text:
        if ch == '"':
            quoted = not quoted
        if ch in "\r\n" and not quoted:
            rows.append("")
            continue
        rows[-1] += ch
    return [r for r in rows if r]


def _assert_safe(text: str) -> list[list[str]]:
    """No cell and no physical row begins with a formula trigger; returns the parsed rows."""
    assert [r for r in _crlf_split(text) if r[:1] in ("=", "+", "-", "@", "\t")] == []
    rows = _rows(text)
    for row in rows:
        assert _unsafe(row) == [], row
    return rows


def test_escape_is_reversible_and_leaves_numbers_and_plain_text_alone():
    for cell in FIRST:
        escaped = csvsafe.escape_cell(cell)
        assert escaped.startswith("'") and not _unsafe([escaped])
        assert csvsafe.unescape_cell(escaped) == cell
    for plain in ("alpha", "term-1", "", "'quoted", "a=b", "9e107d9d372bb6826bd81d3542a419d6", *EMBEDDED):
        assert csvsafe.escape_cell(plain) == plain and csvsafe.unescape_cell(plain) == plain
    assert csvsafe.escape_cell("-5") == "'-5"  # text that looks like a number is still text: escaped
    assert csvsafe.escape_cell(-5) == -5 and csvsafe.escape_cell(-0.5) == -0.5 and csvsafe.escape_cell(None) is None


def test_items_csv_escapes_hostile_cells(tmp_path):
    records = [{"path": str(tmp_path / f"{i}.png"), "size": 10, "generator": {"prompt": cell},
                "provenance": {"label": "ai_generated", "tool": cell},
                "error": {"code": "decode_error", "message": cell}, "priority_reason": cell}
               for i, cell in enumerate(HOSTILE)]
    records.append({"path": "=HYPERLINK(\"http://x.example\")", "size": 1})  # a file name is hostile text too
    write_reports(records, tmp_path / "out", "c1")
    with open(tmp_path / "out" / "items.csv", encoding="utf-8", newline="") as fh:
        text = fh.read()
    _assert_safe(text)
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == len(records)
    for row in rows:
        assert _unsafe(row.values()) == [], row
    for row, cell in zip(rows, HOSTILE):
        assert row["prompt"] == _expected(cell) and row["provenance_tool"] == _expected(cell)
        assert row["error_message"] == _expected(cell) and row["priority_reason"] == _expected(cell)
        assert row["size"] == "10"


@pytest.fixture
def store(db_url):
    db = open_db(db_url)
    yield BankStore(db)
    db.dispose()


def test_bank_csv_export_escapes_and_round_trips(store, tmp_path):
    store.create_bank("orig", category_scheme="none")
    rows = [{"signal_type": "md5", "value": "%032x" % (0xA11CE + i), "category": cell, "source_id": cell,
             "series": cell, "tags": [cell], "notes": cell}
            for i, cell in enumerate(HOSTILE) if cell == cell.strip()]  # import trims surrounding whitespace
    store.add_entries("orig", rows)
    out = io.StringIO()
    assert export_bank(store, "orig", "csv", out).entries == len(rows)
    assert len(_assert_safe(out.getvalue())) == len(rows) + 1
    store.create_bank("copy", category_scheme="none")
    back = import_file(store, "copy", _write(tmp_path / "export.csv", out.getvalue()))
    assert back.error_count == 0 and back.added == len(rows)
    assert sorted(e.content() for e in store.iter_entries("copy")) == sorted(e.content() for e in store.iter_entries("orig"))


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8", newline="")
    return path


def _hostile_signals() -> list[SharedSignal]:
    return [SharedSignal("keyword", cell.strip() or "x", cell, 0.9, provenance=cell, source=cell, platform=cell,
                         handle=cell, note=cell) for cell in HOSTILE if cell.strip()] + \
        [SharedSignal("md5", "%032x" % 0xBEEF, DDE, 0.5, provenance=DDE, note=DDE)]


@pytest.mark.parametrize("fmt", ["lantern", "te-csv"])
def test_shared_signal_csv_escapes_hostile_cells(fmt):
    buf = io.StringIO()
    written, _ = write_signals(_hostile_signals(), fmt, buf, collab=DDE)
    assert written
    rows = _assert_safe(buf.getvalue())
    assert any(c.startswith("'=cmd") for row in rows[1:] for c in row)


def test_lantern_values_read_back_unescaped():
    signals = _hostile_signals()
    buf = io.StringIO()
    write_signals(signals, "lantern", buf)
    entries = list(read_signals(io.BytesIO(buf.getvalue().encode()), free_text_category=True))
    assert [e.value for e in entries] == [s.value for s in signals]
    assert [e.notes for e in entries] == [s.note for s in signals]


def test_no_csv_writer_bypasses_csvsafe():
    src = Path(__file__).resolve().parents[1] / "src" / "tripwire"
    offenders = [f"{p.relative_to(src)}:{n}" for p in sorted(src.rglob("*.py")) if p.name != "csvsafe.py"
                 for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
                 if re.search(r"\bcsv\.(writer|DictWriter)\(", line)]
    assert offenders == []
