"""What every command group shares: error exits, opening the database and config, common options.

Exit codes are the same everywhere: 2 for usage errors (bad arguments, bad configuration), 1 for system
errors (database unreachable); command groups add their own codes above 2 for partial outcomes.
"""

from __future__ import annotations

import getpass
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, Optional

import typer

from ..config import Config, load_config
from ..errors import UsageError
from ..termsafe import console, safe_json, safe_markup

if TYPE_CHECKING:
    from sqlalchemy import MetaData

err = console(stderr=True, soft_wrap=True)

DbOption = typer.Option(None, "--db", help="Case database: a SQLite file (default ./tripwire.db) or a SQLAlchemy URL (postgresql://...).")
ConfigOption = typer.Option(None, "--config", help="TOML configuration file (default: $TRIPWIRE_CONFIG, else built-in defaults).")
JsonOption = typer.Option(False, "--json", help="Print machine-readable JSON on stdout.")
ActorOption = typer.Option(None, "--actor", envvar="TRIPWIRE_ACTOR",
                           help="Who is acting (recorded in the audit trail; default $TRIPWIRE_ACTOR, else your login name).")


def fail(message: str, code: int = 2) -> NoReturn:
    """Print an error and exit: 2 for usage errors, 1 for system errors."""
    err.print(f"[bold red]error:[/] {safe_markup(message)}", highlight=False)
    raise typer.Exit(code)


def get_config(path: Optional[Path]) -> Config:
    try:
        return load_config(path)
    except UsageError as exc:
        fail(str(exc))


def warn_draft_pdq(count: int) -> None:
    """Say so when an export wrote PDQ hashes from a draft-decode scan (not the hash partners compute)."""
    from ..report.reviewed import draft_pdq_warning

    warning = draft_pdq_warning(count)
    if warning:
        err.print(f"[yellow]warning:[/] {safe_markup(warning)}", highlight=False)


def complete_schema() -> MetaData:
    """Every tripwire table, for creating a new case database from the models (``store.db.open_db(schema=)``);
    the models of every package are imported only when a database is new, not on every command."""
    from ..service.schema import all_tables

    return all_tables()


def open_database(db: Optional[str]):
    """Open and migrate (or, when new, create) the database named by ``--db``; unreachable is a system error
    (exit 1)."""
    from ..store.db import DatabaseError, open_db

    try:
        return open_db(db, schema=complete_schema)
    except DatabaseError as exc:
        fail(str(exc), code=1)


def actor_name(actor: Optional[str]) -> str:
    """Who is acting, for the audit trail: ``--actor``/$TRIPWIRE_ACTOR, else the login name."""
    if actor:
        return actor
    try:
        return getpass.getuser()
    except Exception:  # no login name (containers): insist on --actor
        fail("say who is acting with --actor NAME (or $TRIPWIRE_ACTOR): it goes into the audit trail")


def case_name(text: str) -> str:
    """A command's CASE argument: a case name, or ``case:NAME``. Commands that take a case never read an item id
    (``item:12``) as one; commands that take either read a bare number as an item id (``report ncmec``)."""
    if text.startswith("item:"):
        fail(f"{text}: this command takes a case (NAME or case:NAME), not an item")
    return text[5:] if text.startswith("case:") else text


def no_case_hint(name: str) -> str:
    """What to add to "no case named ..." when the name looks like an item id."""
    return " (a number as CASE is a case name here; item ids are for `tripwire decide` and `report ncmec`)" \
        if name.isdigit() else ""


def echo_json(data: Any) -> None:
    typer.echo(safe_json(json.dumps(data, indent=2, ensure_ascii=False, default=str)))
