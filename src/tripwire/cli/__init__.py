"""The ``tripwire`` command line."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from . import __version__
from .errors import UsageError
from .cli_common import ConfigOption, DbOption, err, fail, get_config
from .cli_common import open_database as get_db
from .store.db import DatabaseError

app = typer.Typer(
    name="tripwire",
    help="Find known, AI-generated and traded abuse material, with evidence. Stores hashes and facts, never media.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback(invoke_without_command=True)
def _main(version: bool = typer.Option(False, "--version", help="Print the version and exit.")) -> None:
    if version:
        typer.echo(f"tripwire {__version__}")
        raise typer.Exit()


@app.command()
def scan(
    paths: list[str] = typer.Argument(..., help="Files, folders and archives to scan; - reads a newline-separated path list from stdin."),
    case: str = typer.Option("default", "--case", help="Case name: re-running the same case resumes it."),
    db: Optional[str] = DbOption,
    out: Path = typer.Option(Path("tripwire-out"), "--out", help="Folder for items.jsonl, items.csv and report.html."),
    workers: Optional[int] = typer.Option(None, "--workers", min=1, help="Worker processes (default: number of CPU cores)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress output; only the final summary line."),
    config: Optional[Path] = ConfigOption,
) -> None:
    """Hash every file (archives expanded) into the case database and write reports."""
    from .pipeline.scan import read_path_list, run_scan

    cfg = get_config(config)
    expanded: list[str] = []
    for p in paths:
        expanded.extend(read_path_list(sys.stdin) if p == "-" else [p])
    database = get_db(db)
    try:
        result = run_scan(expanded, database, case, out, cfg, workers=workers, quiet=quiet)
    except UsageError as exc:
        fail(str(exc))
    except DatabaseError as exc:
        fail(str(exc), code=1)
    except KeyboardInterrupt:
        err.print("interrupted: finished items are saved; run the same command again to resume")
        raise typer.Exit(130)
    finally:
        database.dispose()
    s = result.summary
    errors = s.by_outcome.get("error", 0) if s else 0
    err.print(
        f"case {result.case}: {result.items_written} items stored from {result.sources_total - result.sources_skipped} files"
        f" ({result.sources_skipped} already done) in {result.seconds:.1f} s"
        + (f"; {s.items} items in case, {errors} with errors; reports in {out}" if s else ""),
        highlight=False,
    )


@app.command()
def inspect(
    file: Path = typer.Argument(..., help="The file to examine."),
    as_json: bool = typer.Option(False, "--json", help="Print the item record as JSON."),
    config: Optional[Path] = ConfigOption,
) -> None:
    """Print the record tripwire would store for one file (human-readable by default)."""
    from .inspect import inspect_file, render

    cfg = get_config(config)
    if not file.exists():
        fail(f"no such file: {file}")
    try:
        records = inspect_file(str(file), cfg)
    except UsageError as exc:
        fail(str(exc))
    if as_json:
        typer.echo(json.dumps(records[0] if len(records) == 1 else records, indent=2, ensure_ascii=False))
    else:
        render(records, Console())


def report(
    case: str = typer.Argument("default", help="Case name."),
    db: Optional[str] = DbOption,
    out: Path = typer.Option(Path("tripwire-out"), "--out", help="Folder for the reports."),
) -> None:
    """Write items.jsonl, items.csv and report.html again from the case database."""
    from .report.writer import write_reports
    from .store import queries

    database = get_db(db)
    case_id = database.case_id(case, create=False)
    if case_id is None:
        known = ", ".join(queries.case_names(database)) or "none"
        fail(f"no case named {case!r} in the database (cases: {known})")
    summary = write_reports(queries.iter_records(database, case_id), out, case,
                            duplicates=lambda: queries.duplicate_groups(database, case_id))
    err.print(f"case {case}: {summary.items} items; reports in {out}", highlight=False)


from .provenance.cli import detector_app  # noqa: E402  (sub-app registered after the main commands)

app.add_typer(detector_app, name="detector")

from .banks.cli import bank_app, match_command  # noqa: E402

app.add_typer(bank_app, name="bank")
app.command("match")(match_command)

from .trade.cli import posts_app, prompt_app  # noqa: E402

app.add_typer(posts_app, name="posts")
app.add_typer(prompt_app, name="prompt")

from .service.cli import audit_app, keys_app, serve_command  # noqa: E402

app.add_typer(keys_app, name="keys")
app.add_typer(audit_app, name="audit")
app.command("serve")(serve_command)

from .evidence.cli import evidence_app  # noqa: E402
from .report.cli import export_app, import_app, report_app  # noqa: E402
from .sharing.cli import signals_app  # noqa: E402

report_app.command("case")(report)  # `tripwire report CASE` stays the default; `tripwire report ncmec ...` beside it
app.add_typer(report_app, name="report")
app.add_typer(export_app, name="export")
app.add_typer(import_app, name="import")
app.add_typer(evidence_app, name="evidence")
app.add_typer(signals_app, name="signals")
