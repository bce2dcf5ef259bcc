"""``tripwire scan``, ``tripwire inspect`` and ``tripwire report CASE``: hash files into a case, look at one file,
write a case's reports again."""

from __future__ import annotations

import atexit
import gc
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional, Sequence

import typer

from ..termsafe import safe_markup
from .common import ActorOption, ConfigOption, DbOption, actor_name, case_name, err, fail, get_config, no_case_hint, open_database

if TYPE_CHECKING:
    from rich.console import Console

    from ..records import ItemRecord


def scan(
    paths: list[str] = typer.Argument(..., help="Files, folders and archives to scan; - reads a newline-separated path list from stdin."),
    case: str = typer.Option("default", "--case", help="Case name: re-running the same case resumes it."),
    db: Optional[str] = DbOption,
    out: Path = typer.Option(Path("tripwire-out"), "--out", help="Folder for items.jsonl, items.csv and report.html."),
    workers: Optional[int] = typer.Option(None, "--workers", min=1, help="Worker processes (default: number of CPU cores)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress output; only the final summary line."),
    config: Optional[Path] = ConfigOption,
    engine: str = typer.Option("local", "--engine", help="Where extraction runs: local (worker processes) or ray (a Ray cluster: the cluster extra; see docs/scale.md)."),
    ray_address: Optional[str] = typer.Option(None, "--ray-address", help="Ray cluster to join (e.g. 10.0.0.5:6379); default: start Ray on this machine with --workers CPUs."),
    pdq_decode: Optional[str] = typer.Option(None, "--pdq-decode", metavar="exact|draft", help="exact (default): PDQ of the full-size decode, the hash ThreatExchange/HMA compute; draft: large JPEGs decoded at >= 512 px, 2-4x faster, within ~10 bits, marked pdq_decode=draft in the records. Overrides [scan] pdq_decode."),
) -> None:
    """Hash every file (archives expanded; s3://bucket/prefix too) into the case database and write reports."""
    from ..config import with_scan_settings
    from ..errors import UsageError
    from ..pipeline.engine import LocalEngine, read_path_list
    from ..pipeline.engines import make_engine

    missing = [p for p in paths if p != "-" and not p.startswith("s3://") and not os.path.lexists(p)]
    if missing:  # a mistyped argument: refuse before any database or output folder is touched
        fail(f"no such file or folder: {', '.join(missing[:5])}" + (f" (and {len(missing) - 5} more)" if len(missing) > 5 else ""))
    cfg = get_config(config)
    expanded: list[str] = []
    for p in paths:
        expanded.extend(read_path_list(sys.stdin) if p == "-" else [p])
    try:  # a bad choice fails before the case exists
        cfg = with_scan_settings(cfg, pdq_decode=pdq_decode)
        runner = make_engine(engine, workers, cfg, ray_address)
    except UsageError as exc:
        fail(str(exc))
    if isinstance(runner, LocalEngine):
        # the workers import while this process imports the store and the stages and opens the database
        runner.pool.start()
    try:
        from ..pipeline.scan import run_scan
        from ..store.db import DatabaseError

        database = open_database(db)
    except BaseException:
        runner.close()
        raise
    try:
        result = run_scan(expanded, database, case, out, cfg, quiet=quiet, engine=runner)
    except UsageError as exc:
        fail(str(exc))
    except DatabaseError as exc:
        fail(str(exc), code=1)
    except KeyboardInterrupt:
        err.print("interrupted: finished items are saved; run the same command again to resume")
        raise typer.Exit(130)
    finally:
        runner.close()  # a no-op when run_scan closed it
        database.dispose()
    s = result.summary
    errors = s.by_outcome.get("error", 0) if s else 0
    err.print(
        f"case {result.case}: {result.items_written} items stored from {result.sources_total - result.sources_skipped} files"
        f" ({result.sources_skipped} already done) in {result.seconds:.1f} s"
        + (f"; {s.items} items in case, {errors} with errors; reports in {out}" if s else ""),
        highlight=False,
    )
    # The database is closed and the reports are written: skip the interpreter's final garbage collection over
    # SQLAlchemy, numpy, every model and the pipeline (0.2-0.3 s of each scan, issue 12), objects that die with
    # the process anyway. At exit, so that a scan run inside another process (a test) changes nothing there
    # before it ends. Not for every command: one that leaves its SQLite connection to the collector would then
    # leave the -wal and -shm files behind.
    atexit.register(gc.freeze)


def inspect(
    file: Path = typer.Argument(..., help="The file to examine."),
    as_json: bool = typer.Option(False, "--json", help="Print the item record as JSON."),
    config: Optional[Path] = ConfigOption,
) -> None:
    """Print the record tripwire would store for one file (human-readable by default)."""
    from ..errors import UsageError
    from ..pipeline.inspect import inspect_file
    from ..termsafe import console, safe_json

    cfg = get_config(config)
    if not file.exists():
        fail(f"no such file: {file}")
    if file.is_dir():
        fail(f"{file} is a folder: inspect examines one file (or archive); use `tripwire scan {file}` for a folder")
    try:
        records = inspect_file(str(file), cfg)
    except UsageError as exc:
        fail(str(exc))
    if as_json:
        typer.echo(safe_json(json.dumps(records[0] if len(records) == 1 else records, indent=2, ensure_ascii=False)))
    else:
        render(records, console())


def _fmt(value: Any) -> str:
    return "—" if value is None else safe_markup(value)


def render(records: Sequence[ItemRecord], console: Console) -> None:
    """``inspect``'s human-readable view: the provenance verdict first, then the item's hashes and outcome."""
    from rich.table import Table

    from ..provenance.render import render_provenance
    from ..records import PDQ_DRAFT_NOTE

    for record in records:
        if record.get("provenance"):
            render_provenance(dict(record), console)  # the verdict and its evidence first
        table = Table(show_header=False, box=None, pad_edge=False)
        table.add_column(style="bold")
        table.add_column(overflow="fold")
        error = record.get("error")
        for key in ("path", "media_type", "size", "width", "height", "md5", "sha1", "sha256", "pdq", "pdq_quality"):
            table.add_row(key, _fmt(record.get(key)))
        if record.get("pdq_decode"):
            table.add_row("pdq_decode", f"[yellow]{_fmt(record.get('pdq_decode'))}[/]: {PDQ_DRAFT_NOTE}")
        table.add_row("error", f"[red]{_fmt(error['code'])}[/]: {_fmt(error['message'])}" if error else "none")
        if "priority" in record:
            table.add_row("priority", f"{_fmt(record.get('priority'))} ({_fmt(record.get('priority_reason'))})")
        if "matches" in record:
            table.add_row("matches", str(len(record.get("matches") or [])))
        console.print(table)
        console.print()


def report(
    case: str = typer.Argument("default", help="Case name (or case:NAME)."),
    pdf_file: Optional[Path] = typer.Argument(None, metavar="[PDF]", help="With --pdf: the PDF to write (default OUT/handover.pdf)."),
    db: Optional[str] = DbOption,
    out: Path = typer.Option(Path("tripwire-out"), "--out", help="Folder for the reports."),
    pdf: bool = typer.Option(False, "--pdf", help="Write the investigator handover PDF (case summary, chain of custody, "
                             "audit head hash; no media) instead of the HTML/CSV/JSONL reports."),
    actor: Optional[str] = ActorOption,
    config: Optional[Path] = ConfigOption,
) -> None:
    """Write items.jsonl, items.csv and the triage report (report.html, report-pages/) again from the case database;
    with --pdf, the investigator handover PDF."""
    from ..report.writer import write_case_reports
    from ..store import queries

    case = case_name(case)
    if pdf_file is not None and not pdf:
        fail(f"unexpected argument {str(pdf_file)!r}: a second argument is the PDF file, given with --pdf")
    database = open_database(db)
    case_id = database.case_id(case, create=False)
    if case_id is None:
        known = ", ".join(queries.case_names(database)) or "none"
        fail(f"no case named {case!r} in the database (cases: {known}){no_case_hint(case)}")
    if pdf:
        from ..errors import UsageError
        from ..report.handover import write_handover

        target = pdf_file or out / "handover.pdf"
        settings = ((get_config(config).sections or {}).get("reporting") or {}).get("pdf") or {}
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            handover = write_handover(database, case, target, actor_name(actor), settings)
        except UsageError as exc:
            fail(str(exc))
        chain = "intact" if handover.audit_ok else "BROKEN"
        err.print(f"case {case}: handover PDF {target}: {handover.items} items, {handover.decided} decided; "
                  f"audit chain {chain}, head {handover.audit_head}", highlight=False, markup=False)
        if not handover.audit_ok:
            raise typer.Exit(1)
        return
    summary = write_case_reports(database, case_id, out, case)
    err.print(f"case {case}: {summary.items} items; reports in {out}", highlight=False)
