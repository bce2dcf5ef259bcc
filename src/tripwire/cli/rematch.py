"""``tripwire rematch``: match the stored items of the cases against the banks again, without reading a file.

``bank import`` and ``bank remove`` re-match what they changed by themselves; this command does it on demand
(after a bank's settings changed, or for a case scanned before a list arrived). Exit codes: 0 done; 2 usage
errors (unknown case or bank).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

import typer

from .common import ActorOption, ConfigOption, DbOption, JsonOption, actor_name, echo_json, err, fail, get_config, open_database

if TYPE_CHECKING:
    from ..pipeline.rematch import Mark


def rematch_command(
    case: Optional[str] = typer.Option(None, "--case", help="Only this case's items (default: every case)."),
    bank: Optional[str] = typer.Option(None, "--bank", help="Only this bank's entries (default: every bank)."),
    db: Optional[str] = DbOption,
    config: Optional[Path] = ConfigOption,
    actor: Optional[str] = ActorOption,
    as_json: bool = JsonOption,
) -> None:
    """Re-match stored items against the banks (no file is read); newly matching items enter the review queue."""
    from ..pipeline.rematch import rematch

    cfg = get_config(config)
    database = open_database(db)
    try:
        report = rematch(database, cfg, bank=bank, case=case, actor=actor_name(actor), trigger="rematch")
    except ValueError as exc:
        fail(str(exc))
    if as_json:
        echo_json(report.as_dict())
    else:
        err.print(report.summary(), highlight=False, markup=False)


def rematch_after(database: Any, config: Any, since: "Mark", quiet: bool, trigger: str) -> dict[str, Any] | None:
    """Re-match what changed since ``since`` (what ``bank import``/``bank remove`` call); prints the summary
    line unless ``quiet``; returns the report as a dict (None when the re-match failed: the bank change
    stands, ``tripwire rematch`` can be run later)."""
    from ..pipeline.rematch import rematch

    try:
        report = rematch(database, config, since=since, actor=_who(), trigger=trigger)
    except Exception as exc:  # the bank change is committed; say so and how to finish
        err.print(f"re-match failed ({exc}); run `tripwire rematch` to retry", highlight=False, markup=False)
        return None
    if not quiet:
        err.print(report.summary(), highlight=False, markup=False)
    return report.as_dict()


def _who() -> str:
    import getpass
    import os

    if os.environ.get("TRIPWIRE_ACTOR"):
        return os.environ["TRIPWIRE_ACTOR"]
    try:
        return getpass.getuser()
    except Exception:  # no login name (containers)
        return "tripwire"
