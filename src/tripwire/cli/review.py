"""``tripwire decide``: record a reviewer's decision on an item (or a CSV of them) from the command line.

It records exactly what the review console records, through the same library function
(:func:`tripwire.review.deciding.decide`): a row in ``decisions`` naming the reviewer, the item's queue state, the
item's hashes added to a bank when asked, and the audit event, all in one transaction. Item ids are the
``item_id`` column of items.csv / items.jsonl (an id is never read as a case name).

Exit codes: 0 every decision recorded; 1 the database cannot be used; 2 usage errors (unknown item, decision or
bank, a decision that cannot go into that bank, a file that cannot be read); 3 ``--from`` finished but some rows
were refused (each is listed with its line number; every valid row was recorded).
"""

from __future__ import annotations

import csv
import io
import sys
from pathlib import Path
from typing import IO, Any, Iterator, Optional

import typer

from .common import DbOption, JsonOption, actor_name, echo_json, err, fail, open_database

__all__ = ["decide_command", "EXIT_ROW_ERRORS", "parse_item_id"]

EXIT_ROW_ERRORS = 3
#: the decisions ``--decision`` accepts (the same list as the console's, tripwire.review.models.DECISIONS)
DECISION_CHOICES = ("confirmed_abuse", "not_abuse", "ai_generated", "needs_escalation")
#: the console's undo (tripwire.review.models.WITHDRAWN): takes the newest decision back, as a new audited decision
WITHDRAW = "withdrawn"
#: ``--from`` columns: item_id and decision are required; others (items.csv's, for one) are ignored
CSV_REQUIRED = ("item_id", "decision")
CSV_OPTIONAL = ("category", "note", "bank")


def parse_item_id(text: str) -> int | None:
    """``12`` or ``item:12`` as an item id; anything else is not one (None)."""
    text = text.strip()
    if text.startswith("item:"):
        text = text[5:]
    return int(text) if text.isdigit() else None


def decide_command(
    item: Optional[str] = typer.Argument(None, metavar="ITEM_ID", help="The item's id (item_id in items.csv / items.jsonl; item:ID also works)."),
    decision: Optional[str] = typer.Option(None, "--decision", help=f"One of {', '.join(DECISION_CHOICES)}; or "
                                           f"{WITHDRAW} to take the newest decision back (a new audited decision, "
                                           "bank entries it added removed)."),
    note: Optional[str] = typer.Option(None, "--note", help="Free text kept with the decision."),
    bank: Optional[str] = typer.Option(None, "--bank", help="Also add the item's hashes to this bank: a positive bank for "
                                       "confirmed_abuse, an allow-list for not_abuse. With --from: the bank for every "
                                       "confirmed_abuse row that names none."),
    category: Optional[str] = typer.Option(None, "--category", help="Category of the bank entries (with --bank; "
                                           "with --from: the default for rows that leave it empty)."),
    from_file: Optional[Path] = typer.Option(None, "--from", help="Record many decisions from a CSV file (- reads stdin) "
                                             "with columns item_id, decision and optionally category, note, bank; "
                                             "rows with an empty decision are skipped, so items.csv with a decision "
                                             "column added works."),
    reviewer: Optional[str] = typer.Option(None, "--reviewer", "--actor", envvar="TRIPWIRE_ACTOR",
                                           help="Who decided (recorded with the decision and in the audit trail; "
                                           "default $TRIPWIRE_ACTOR, else your login name)."),
    db: Optional[str] = DbOption,
    as_json: bool = JsonOption,
) -> None:
    """Record a reviewer's decision on an item, as the review console does (same audit trail)."""
    if from_file is not None:
        if item is not None or decision is not None or note is not None:
            fail("--from reads item ids, decisions and notes from the file: give no ITEM_ID, --decision or --note with it")
        _decide_many(from_file, bank, category, actor_name(reviewer), db, as_json)
        return
    if item is None or decision is None:
        fail("give ITEM_ID and --decision (or --from FILE.csv)")
    item_id = parse_item_id(item)
    if item_id is None:
        fail(f"{item!r} is not an item id: an item id is a number (the item_id column of items.csv)")
    if decision not in (*DECISION_CHOICES, WITHDRAW):
        fail(f"unknown decision {decision!r} (expected one of {', '.join(DECISION_CHOICES)}, or {WITHDRAW})")
    if category and not bank:
        fail("--category is the category of the bank entries: give --bank too")
    from ..review.deciding import ReviewError, decide

    who = actor_name(reviewer)
    database = open_database(db)
    try:
        result = decide(database, item_id, decision, who, note, bank, category, via="cli")
    except ReviewError as exc:
        fail(str(exc))
    finally:
        database.dispose()
    if as_json:
        echo_json(result)
    else:
        typer.echo(_describe(result))


def _describe(result: dict[str, Any]) -> str:
    line = f"item {result['item_id']}: {result['decision']} by {result['reviewer']} (decision {result['id']})"
    banked = result.get("bank")
    if banked:
        line += (f"; {len(banked['signals'])} hash(es) in bank {banked['name']!r} ({banked['added']} new, "
                 f"{banked['existing']} already there)")
    return line


def _open_csv(path: Path) -> IO[str]:
    if str(path) == "-":
        return io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8-sig", newline="")
    if not path.is_file():
        fail(f"no such file: {path}")
    try:
        return open(path, encoding="utf-8-sig", newline="")
    except OSError as exc:
        fail(f"cannot read {path}: {exc.strerror or exc}")


def _header(reader: Any, name: str) -> dict[str, int]:
    """The header's columns this command reads ({name: index}); a header without the required ones is refused."""
    try:
        header = next(reader)
    except StopIteration:
        fail(f"{name} is empty: expected a header row with {', '.join(CSV_REQUIRED)}")
    except (csv.Error, UnicodeDecodeError) as exc:
        fail(f"{name}: line 1: {exc}")
    columns = [c.strip().lower() for c in header]
    missing = [c for c in CSV_REQUIRED if c not in columns]
    if missing:
        fail(f"{name}: the header has no {', '.join(missing)} column (expected {', '.join(CSV_REQUIRED)}, and optionally "
             f"{', '.join(CSV_OPTIONAL)})")
    return {c: columns.index(c) for c in (*CSV_REQUIRED, *CSV_OPTIONAL) if c in columns}


def _rows(reader: Any, wanted: dict[str, int]) -> Iterator[tuple[int, dict[str, str] | str]]:
    """(line number, row) per data row, or (line number, error text) for a row the CSV reader cannot parse."""
    last = reader.line_num
    while True:
        start = last + 1
        try:
            values = next(reader)
        except StopIteration:
            return
        except (csv.Error, UnicodeDecodeError) as exc:  # the rest of the file cannot be trusted
            yield start, f"unreadable CSV ({exc}); the rows after it were not read"
            return
        last = reader.line_num
        if not any(v.strip() for v in values):
            continue
        yield start, {c: (values[i].strip() if i < len(values) else "") for c, i in wanted.items()}


def _decide_many(path: Path, bank: Optional[str], category: Optional[str], who: str, db: Optional[str],
                 as_json: bool) -> None:
    from ..review.deciding import ReviewError, decide

    name = "stdin" if str(path) == "-" else str(path)
    fh = _open_csv(path)
    reader = csv.reader(fh)
    wanted = _header(reader, name)  # a file without the columns is refused before the database is opened
    database = open_database(db)
    recorded: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    skipped = 0
    try:
        with fh:
            for line, row in _rows(reader, wanted):
                if isinstance(row, str):
                    errors.append({"line": line, "message": row})
                    continue
                decision = row.get("decision", "")
                if not decision:
                    skipped += 1
                    continue
                item_id = parse_item_id(row.get("item_id", ""))
                if item_id is None:
                    errors.append({"line": line, "message": f"item_id {row.get('item_id', '')!r} is not a number"})
                    continue
                row_bank = row.get("bank") or (bank if decision == "confirmed_abuse" else None)
                row_category = (row.get("category") or category) if row_bank else None
                try:
                    result = decide(database, item_id, decision, who, row.get("note") or None, row_bank, row_category,
                                    via="cli")
                except ReviewError as exc:
                    errors.append({"line": line, "item_id": item_id, "message": str(exc)})
                    continue
                recorded.append({"line": line, **result})
    finally:
        database.dispose()
    if as_json:
        echo_json({"file": name, "recorded": recorded, "skipped": skipped, "errors": errors})
    else:
        for r in recorded:
            typer.echo(_describe(r))
        for e in errors:
            err.print(f"{name}:{e['line']}: {e['message']}", highlight=False, markup=False)
        err.print(f"{len(recorded)} decision(s) recorded from {name}"
                  + (f", {skipped} row(s) without a decision skipped" if skipped else "")
                  + (f", {len(errors)} row(s) refused (listed above)" if errors else ""), highlight=False)
    if errors:
        raise typer.Exit(EXIT_ROW_ERRORS)
