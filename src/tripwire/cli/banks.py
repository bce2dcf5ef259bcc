"""``tripwire bank ...`` (create, import, export, list, remove entries, ...) and ``tripwire match``.

Exit codes: 0 success; 1 the database cannot be used; 2 usage errors (unknown bank, bad option, ambiguous
list type); 3 ``bank import`` finished but some rows were malformed (they are listed with their position,
every valid row was stored), or ``bank add-model`` could not read some files (the others were added).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Optional

import typer

from .common import ConfigOption, DbOption, JsonOption, err
from .common import echo_json as _echo_json
from .common import fail as _fail
from .common import get_config as _config
from .common import open_database as _db

bank_app = typer.Typer(
    help="Hash banks: lists of known content (hotline lists, your own decisions, allow-lists).",
    no_args_is_help=True,
)

EXIT_ROW_ERRORS = 3
#: `tripwire match` found nothing (like grep)
EXIT_NO_MATCH = 1


def _sync_index(database, config, quiet: bool) -> None:
    """Bring the persisted PDQ index up to date so the next scan starts without catching up."""
    from ..match.matcher import Matcher

    matcher = Matcher.from_config(database, config)
    stats = matcher.open()
    if stats.changes and not (stats.rebuilt or stats.changes >= 10_000):
        matcher.save()
    if not quiet:
        what = "rebuilt" if stats.rebuilt else f"+{stats.added} -{stats.removed}"
        err.print(f"PDQ index: {len(matcher.bank_index)} hashes ({what}, {stats.seconds:.2f} s)", highlight=False)


def _existing_bank(name: str, db: Optional[str], config: Optional[Path]) -> tuple[Any, Any, Any]:
    """(config, database, BankStore) for a command that adds to bank ``name``; exits 2 when there is none."""
    from ..banks.store import BankError, BankStore

    cfg = _config(config)
    database = _db(db)
    store = BankStore(database)
    try:
        store.get_bank(name)
    except BankError as exc:
        _fail(str(exc))
    return cfg, database, store


@bank_app.command("create")
def create(
    name: str = typer.Argument(..., help="Bank name (unique)."),
    negative: bool = typer.Option(False, "--negative", help="An allow-list: its matches suppress matches from other banks."),
    pdq_radius: int = typer.Option(31, "--pdq-radius", min=0, max=128, help="Largest PDQ distance (bits) that matches."),
    min_quality: int = typer.Option(50, "--min-quality", min=0, max=100, help="Query PDQ hashes below this quality are not matched."),
    source: str = typer.Option("", "--source", help="Where the list comes from (NCMEC, IWF, Project VIC, own, ...)."),
    description: str = typer.Option("", "--description", help="Free text."),
    category_scheme: str = typer.Option("vics", "--category-scheme", help="Category codes: vics, uk, ncmec, none."),
    disabled: bool = typer.Option(False, "--disabled", help="Create the bank disabled (not matched until enabled)."),
    db: Optional[str] = DbOption,
    as_json: bool = JsonOption,
) -> None:
    """Create a bank."""
    from ..banks.store import BankError, BankStore

    database = _db(db)
    try:
        info = BankStore(database).create_bank(name, source=source, description=description, category_scheme=category_scheme,
                                               negative=negative, pdq_radius=pdq_radius, min_quality=min_quality,
                                               enabled=not disabled)
    except BankError as exc:
        _fail(str(exc))
    if as_json:
        _echo_json(info.as_dict())
    else:
        kind = "negative (allow-list)" if info.negative else "positive"
        err.print(f"created {kind} bank {info.name!r} (PDQ radius {info.pdq_radius}, min quality {info.min_quality}, "
                  f"categories: {info.category_scheme})", highlight=False)


@bank_app.command("update")
def update_bank(
    name: str = typer.Argument(..., help="Bank name."),
    rename: Optional[str] = typer.Option(None, "--rename", help="New name."),
    negative: Optional[bool] = typer.Option(None, "--negative/--positive", help="Make the bank an allow-list, or not."),
    pdq_radius: Optional[int] = typer.Option(None, "--pdq-radius", min=0, max=128),
    min_quality: Optional[int] = typer.Option(None, "--min-quality", min=0, max=100),
    source: Optional[str] = typer.Option(None, "--source"),
    description: Optional[str] = typer.Option(None, "--description"),
    category_scheme: Optional[str] = typer.Option(None, "--category-scheme", help="Only while no entry has a category."),
    enabled: Optional[bool] = typer.Option(None, "--enable/--disable", help="Match against this bank, or not."),
    db: Optional[str] = DbOption,
    as_json: bool = JsonOption,
) -> None:
    """Change a bank's settings (takes effect for matching at once)."""
    from ..banks.store import BankError, BankStore

    database = _db(db)
    try:
        info = BankStore(database).update_bank(name, name=rename, negative=negative, pdq_radius=pdq_radius,
                                               min_quality=min_quality, source=source, description=description,
                                               category_scheme=category_scheme, enabled=enabled)
    except BankError as exc:
        _fail(str(exc))
    if as_json:
        _echo_json(info.as_dict())
    else:
        err.print(f"updated bank {info.name!r}", highlight=False)


@bank_app.command("list")
def list_banks(db: Optional[str] = DbOption, as_json: bool = JsonOption) -> None:
    """List banks with their settings and entry counts."""
    from rich.table import Table

    from ..banks.store import BankStore
    from ..termsafe import console, safe_markup

    database = _db(db)
    summaries = BankStore(database).list_banks()
    if as_json:
        _echo_json([s.as_dict() for s in summaries])
        return
    if not summaries:
        err.print("no banks yet: create one with `tripwire bank create NAME`")
        return
    table = Table()
    table.add_column("bank", no_wrap=True)
    table.add_column("settings")
    table.add_column("entries")
    table.add_column("removed", justify="right")
    table.add_column("source")
    for s in summaries:
        b = s.bank
        settings = (f"{'negative' if b.negative else 'positive'}, radius {b.pdq_radius}, min q {b.min_quality}, "
                    f"{b.category_scheme}" + ("" if b.enabled else ", [bold]disabled[/]"))
        by_type = ", ".join(f"{safe_markup(k)} {v}" for k, v in sorted(s.counts.items()) if k not in s.unsupported)
        unsupported = ", ".join(f"{safe_markup(k)} {v}" for k, v in sorted(s.unsupported.items()))
        entries = f"{s.active}" + (f" ({by_type})" if by_type else "") + (f"; unsupported: {unsupported}" if unsupported else "")
        table.add_row(safe_markup(b.name), settings, entries, str(s.removed), safe_markup(b.source or "—"))
    console().print(table)


@bank_app.command("show")
def show(name: str = typer.Argument(...), db: Optional[str] = DbOption, as_json: bool = JsonOption) -> None:
    """Show one bank's settings and counts."""
    from ..banks.store import BankError, BankStore
    from ..termsafe import safe_text

    database = _db(db)
    found = [s for s in BankStore(database).list_banks() if s.bank.name == name]
    if not found:
        try:
            BankStore(database).get_bank(name)
        except BankError as exc:
            _fail(str(exc))
    data = found[0].as_dict()
    if as_json:
        _echo_json(data)
        return
    for key, value in data.items():
        typer.echo(f"{key:16} {safe_text(value)}")


@bank_app.command("import")
def import_(
    name: str = typer.Argument(..., help="Bank to add to (create it first)."),
    file: str = typer.Argument(..., help="List file (.gz is decompressed); - reads stdin."),
    fmt: Optional[str] = typer.Option(None, "--format", help="vics, csv, lines or te (default: guessed from name and content)."),
    signal_type: Optional[str] = typer.Option(None, "--signal-type", help="Type of untyped values (md5, sha1, sha256, pdq): needed for 64-hex plain lists."),
    errors_out: Optional[Path] = typer.Option(None, "--errors", help="Write every malformed row (JSON lines with its position) here."),
    batch_size: int = typer.Option(5000, "--batch-size", min=1, max=100_000, help="Rows per transaction."),
    no_index: bool = typer.Option(False, "--no-index", help="Do not update the persisted PDQ index afterwards."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress output."),
    db: Optional[str] = DbOption,
    config: Optional[Path] = ConfigOption,
    as_json: bool = JsonOption,
) -> None:
    """Import a hash list (VICS JSON, CSV, one-hash-per-line, ThreatExchange); re-importing is a no-op."""
    from ..banks.importer import FORMATS, import_file
    from ..signals.registry import AmbiguousSignalType, registry
    from ..banks.store import BankError

    if fmt is not None and fmt not in FORMATS:
        _fail(f"unknown format {fmt!r} (expected one of {', '.join(FORMATS)})")
    if file != "-" and not Path(file).is_file():
        _fail(f"no such file: {file}")
    if signal_type:
        try:
            signal_type = registry.resolve(signal_type)
        except ValueError as exc:
            _fail(str(exc))
    cfg, database, store = _existing_bank(name, db, config)
    from ..pipeline.rematch import mark
    from .rematch import rematch_after

    before = mark(database)
    bar = None
    progress = on_batch = None
    if not quiet and err.is_terminal and file != "-":
        from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn

        bar = shown = Progress(TextColumn(f"[bold]importing {Path(file).name}"), BarColumn(), DownloadColumn(),
                               TransferSpeedColumn(), TextColumn("{task.fields[rows]} rows"), TimeRemainingColumn(),
                               console=err)
        task = bar.add_task("import", total=Path(file).stat().st_size, rows=0)
        bar.start()
        progress = lambda done, total: shown.update(task, completed=done)  # noqa: E731
        on_batch = lambda report: shown.update(task, rows=report.read)  # noqa: E731
    sink = open(errors_out, "w", encoding="utf-8") if errors_out else None
    try:
        report = import_file(store, name, file, fmt, signal_type=signal_type, batch_size=batch_size, error_sink=sink,
                             progress=progress, on_batch=on_batch)
    except AmbiguousSignalType as exc:
        _fail(f"{exc} (rows before this one were stored; re-run with --signal-type to load the rest)")
    except BankError as exc:
        _fail(str(exc))
    finally:
        if bar is not None:
            bar.stop()
        if sink is not None:
            sink.close()
    if not no_index:
        _sync_index(database, cfg, quiet or as_json)
    rematched = rematch_after(database, cfg, before, quiet or as_json, trigger=f"bank import {name}")
    if as_json:
        _echo_json({**report.as_dict(), "rematch": rematched})
    else:
        unsupported = ", ".join(f"{k} {v}" for k, v in sorted(report.unsupported.items()))
        err.print(
            f"{report.bank}: read {report.read} rows ({report.format}) in {report.seconds:.1f} s: {report.added} added, "
            f"{report.existing} already present, {report.tombstoned} previously removed (kept removed), "
            f"{report.error_count} malformed" + (f"; kept but not matchable: {unsupported}" if unsupported else ""),
            highlight=False,
        )
        for e in report.errors[:20]:
            err.print(f"  {e.position}: {e.message}", highlight=False, markup=False)
        if report.error_count > 20:
            more = f" (all in {errors_out})" if errors_out else " (use --errors FILE to keep them all)"
            err.print(f"  ... and {report.error_count - 20} more{more}", highlight=False)
    if report.error_count:
        raise typer.Exit(EXIT_ROW_ERRORS)


@bank_app.command("add-model")
def add_model(
    name: str = typer.Argument(..., help="Bank to add to (create it first)."),
    files: list[Path] = typer.Argument(..., help="Model files (safetensors, ckpt, pt, bin): read, never loaded."),
    category: Optional[str] = typer.Option(None, "--category", help="Category code of the bank's scheme, or free text."),
    notes: Optional[str] = typer.Option(None, "--notes", help="Free text stored with every entry of these files."),
    no_index: bool = typer.Option(False, "--no-index", help="Do not update the persisted PDQ index afterwards."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress output."),
    db: Optional[str] = DbOption,
    config: Optional[Path] = ConfigOption,
    as_json: bool = JsonOption,
) -> None:
    """Hash model files (SHA-256 = AutoV2's source, AutoV3 of safetensors, AutoV1) into a bank.

    Images whose generator metadata names one of these files, by any form, then match it. Files are streamed
    once, never unpickled. Exit code 3 when some files could not be read (the others were added).
    """
    from ..banks.modelfiles import add_model_files
    from ..banks.store import BankError
    from ..termsafe import safe_text

    cfg, database, store = _existing_bank(name, db, config)
    bar = None
    progress = on_file = None
    if not quiet and not as_json and err.is_terminal:
        from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn

        total = sum(f.stat().st_size for f in files if f.is_file())
        bar = shown = Progress(TextColumn("[bold]hashing {task.fields[file]}"), BarColumn(), DownloadColumn(),
                               TransferSpeedColumn(), TimeRemainingColumn(), console=err)
        task = bar.add_task("hash", total=total, file="")
        bar.start()
        progress = lambda n: shown.update(task, advance=n)  # noqa: E731
        on_file = lambda path: shown.update(task, file=safe_text(Path(path).name))  # noqa: E731
    try:
        report = add_model_files(store, name, files, category=category, notes=notes, progress=progress,
                                 on_file=on_file)
    except (BankError, ValueError) as exc:
        _fail(str(exc))
    finally:
        if bar is not None:
            bar.stop()
    if not no_index:
        _sync_index(database, cfg, quiet or as_json)
    if as_json:
        _echo_json(report.as_dict())
    else:
        for h in report.files:
            forms = ", ".join(f"{k} {v}" for k, v in h.forms().items() if k != "sha256")
            err.print(f"{safe_text(h.name)}: {h.format}, {h.size:,} bytes, sha256 {h.sha256} ({forms})",
                      highlight=False, markup=False)
            for w in h.warnings:
                err.print(f"  note: {w}", highlight=False, markup=False)
        for e in report.errors:
            err.print(f"cannot hash {safe_text(e['message'])}", highlight=False, markup=False)
        err.print(f"{report.bank}: {len(report.files)} file(s) hashed, {report.added} entries added, "
                  f"{report.existing} already present, {report.tombstoned} previously removed (kept removed)",
                  highlight=False, markup=False)
    if report.errors:
        raise typer.Exit(EXIT_ROW_ERRORS)


@bank_app.command("export")
def export(
    name: str = typer.Argument(..., help="Bank to export."),
    fmt: str = typer.Option(..., "--format", help="vics (VICS 2.0 JSON), csv, te (ThreatExchange signal file) or lines."),
    out: Optional[Path] = typer.Option(None, "--out", help="Output file (default: stdout)."),
    signal_type: Optional[str] = typer.Option(None, "--signal-type", help="For --format lines: which type to write."),
    include_removed: bool = typer.Option(False, "--include-removed", help="Also write tombstoned entries."),
    db: Optional[str] = DbOption,
) -> None:
    """Export a bank's active entries (streamed; import(export(bank)) gives the same entries)."""
    from ..banks.exporter import EXPORT_FORMATS, export_bank
    from ..signals.registry import registry
    from ..banks.store import BankError, BankStore

    if fmt not in EXPORT_FORMATS:
        _fail(f"unknown export format {fmt!r} (expected one of {', '.join(EXPORT_FORMATS)})")
    database = _db(db)
    target = out.with_name(out.name + ".part") if out else None
    stream = open(target, "w", encoding="utf-8", newline="") if target else sys.stdout
    try:
        report = export_bank(BankStore(database), name, fmt, stream,
                             signal_type=registry.resolve(signal_type) if signal_type else None,
                             include_removed=include_removed)
    except (BankError, ValueError) as exc:
        if target:
            stream.close()
            target.unlink(missing_ok=True)
        _fail(str(exc))
    if target:
        stream.close()
        target.replace(out)  # type: ignore[arg-type]
    skipped = ", ".join(f"{k} {v}" for k, v in report.skipped.items())
    err.print(f"{report.bank}: wrote {report.entries} entries as {fmt}" + (f" ({report.media} Media)" if fmt == "vics" else "")
              + (f"; not expressible in this format: {skipped}" if skipped else "") + (f" to {out}" if out else ""),
              highlight=False)


def _targets(values: list[str], ids: list[int], file: Optional[Path]) -> tuple[list[str] | None, list[int] | None]:
    vals = list(values)
    if file is not None:
        with open(file, encoding="utf-8") as fh:
            vals.extend(line.strip() for line in fh if line.strip() and not line.startswith("#"))
    if vals and ids:
        _fail("name entries either by value or by --id, not both")
    if not vals and not ids:
        _fail("name the entries: values, --id N or --file FILE")
    return (vals or None), (ids or None)


@bank_app.command("remove")
def remove(
    name: str = typer.Argument(..., help="Bank."),
    values: list[str] = typer.Argument(None, help="Hash values to remove."),
    ids: list[int] = typer.Option([], "--id", help="Entry id to remove (repeatable)."),
    file: Optional[Path] = typer.Option(None, "--file", help="File with one value per line to remove."),
    signal_type: Optional[str] = typer.Option(None, "--signal-type", help="Only entries of this type."),
    reason: Optional[str] = typer.Option(None, "--reason", help="Why (kept with the tombstone)."),
    db: Optional[str] = DbOption,
    as_json: bool = JsonOption,
) -> None:
    """Remove entries (a tombstone is kept; matching stops at once; re-imports do not bring them back)."""
    from ..signals.registry import registry

    from ..pipeline.rematch import mark
    from .rematch import rematch_after

    st = registry.resolve(signal_type) if signal_type else None
    before = mark(_db(db))
    _change_entries("removed", name, values, ids, file, db, as_json,
                    lambda store, vals, id_list: store.remove_entries(name, ids=id_list, values=vals, reason=reason, signal_type=st))
    rematch_after(_db(db), None, before, as_json, trigger=f"bank remove {name}")


def _change_entries(done: str, name: str, values: Optional[list[str]], ids: list[int], file: Optional[Path],
                    db: Optional[str], as_json: bool, change) -> None:
    """Resolve the named entries, apply ``change(store, values, ids)`` and report how many it touched."""
    from ..banks.store import BankError, BankStore

    vals, id_list = _targets(values or [], ids, file)
    database = _db(db)
    try:
        n = change(BankStore(database), vals, id_list)
    except BankError as exc:
        _fail(str(exc))
    if as_json:
        _echo_json({"bank": name, done: n})
    else:
        err.print(f"{name}: {done} {n} entries", highlight=False)


@bank_app.command("restore")
def restore(
    name: str = typer.Argument(..., help="Bank."),
    values: list[str] = typer.Argument(None, help="Hash values to restore."),
    ids: list[int] = typer.Option([], "--id", help="Entry id to restore (repeatable)."),
    file: Optional[Path] = typer.Option(None, "--file", help="File with one value per line."),
    db: Optional[str] = DbOption,
    as_json: bool = JsonOption,
) -> None:
    """Undo removals."""
    _change_entries("restored", name, values, ids, file, db, as_json,
                    lambda store, vals, id_list: store.restore_entries(name, ids=id_list, values=vals))


@bank_app.command("delete")
def delete(
    name: str = typer.Argument(..., help="Bank to delete with all its entries."),
    yes: bool = typer.Option(False, "--yes", help="Confirm."),
    db: Optional[str] = DbOption,
) -> None:
    """Delete a bank and every entry in it (no tombstones: use `bank remove` to keep history)."""
    from ..banks.store import BankError, BankStore

    if not yes:
        _fail("deleting a bank drops all its entries: add --yes to confirm")
    database = _db(db)
    try:
        n = BankStore(database).delete_bank(name)
    except BankError as exc:
        _fail(str(exc))
    err.print(f"deleted bank {name!r} and its {n} entries", highlight=False)


@bank_app.command("reindex")
def reindex(db: Optional[str] = DbOption, config: Optional[Path] = ConfigOption, as_json: bool = JsonOption) -> None:
    """Rebuild the persisted PDQ index from the database (it normally keeps itself up to date)."""
    from ..match.matcher import Matcher

    cfg = _config(config)
    database = _db(db)
    matcher = Matcher.from_config(database, cfg)
    stats = matcher.rebuild()
    data = {"hashes": len(matcher.bank_index), "seconds": round(stats.seconds, 3),
            "path": str(matcher.bank_index.path) if matcher.bank_index.path else None,
            "memory_bytes": matcher.bank_index.index.memory_bytes()}
    if as_json:
        _echo_json(data)
    else:
        err.print(f"PDQ index rebuilt: {data['hashes']} hashes in {stats.seconds:.2f} s ({data['path']})", highlight=False)


def match_command(
    files: list[Path] = typer.Argument(None, help="Files (or archives) to match."),
    pdq: list[str] = typer.Option([], "--pdq", help="A PDQ hash (64 hex) to match (repeatable)."),
    quality: Optional[int] = typer.Option(None, "--quality", help="Quality of the --pdq hashes (default: unknown, floors not applied)."),
    sha256: list[str] = typer.Option([], "--sha256", help="A SHA-256 to look up (repeatable)."),
    sha1: list[str] = typer.Option([], "--sha1", help="A SHA-1 to look up (repeatable)."),
    md5: list[str] = typer.Option([], "--md5", help="An MD5 to look up (repeatable)."),
    no_variants: bool = typer.Option(False, "--no-variants", help="Match only the image as it is (no rotations/flips)."),
    no_unletterbox: bool = typer.Option(False, "--no-unletterbox", help="Do not also match the image with its borders trimmed."),
    db: Optional[str] = DbOption,
    config: Optional[Path] = ConfigOption,
    as_json: bool = typer.Option(False, "--json", help="Print JSON (one result per file or hash) instead of a table."),
) -> None:
    """Match files or hashes against every enabled bank and print a table of the matches.

    Exit status, like grep: 0 something matched, 1 nothing matched, 2 usage errors (and a database that cannot be
    opened)."""
    from ..match.matcher import Matcher, PdqQuery

    if not files and not pdq and not sha256 and not sha1 and not md5:
        _fail("give files, or hashes with --pdq/--sha256/--sha1/--md5")
    for f in files or []:
        if not f.exists():
            _fail(f"no such file: {f}")
        if f.is_dir():
            _fail(f"{f} is a folder: match takes files and archives (scan a folder with `tripwire scan`)")
    cfg = _config(config)
    try:
        database = _db(db)
    except typer.Exit as exc:  # unreachable database: 1 means "no match" here, so it is an error like any other
        raise typer.Exit(2 if exc.exit_code == 1 else exc.exit_code) from None
    matcher = Matcher.from_config(database, cfg, use_variants=not no_variants, use_unletterbox=not no_unletterbox)
    matcher.open()
    results: list[dict[str, Any]] = []

    def emit(query: dict[str, Any], result) -> None:
        results.append({**query, **result.as_dict()})

    for h in pdq:
        from ..signals.registry import registry

        value = registry.get("pdq").valid(h)
        if value is None:
            _fail(f"--pdq {h!r} is not 64 hex characters")
        emit({"query": {"pdq": value, "quality": quality}}, matcher.match(pdq=[PdqQuery("original", value, quality)]))
    for kind, values in (("sha256", sha256), ("sha1", sha1), ("md5", md5)):
        for v in values:
            emit({"query": {kind: v.strip().lower()}}, matcher.match(digests={kind: v}))
    if files:
        from ..pipeline.inspect import inspect_file

        for f in files:
            for record in inspect_file(str(f), cfg, None):
                query = {k: record.get(k) for k in ("path", "media_type", "md5", "sha1", "sha256", "pdq", "pdq_quality", "error")}
                emit({"query": query}, matcher.match_record(record))
    if as_json:
        _echo_json(results)
    else:
        _print_matches(results)
    if not any(r.get("matches") for r in results):
        raise typer.Exit(EXIT_NO_MATCH)


def _print_matches(results: list[dict[str, Any]]) -> None:
    """``match``'s table: one row per match (file or query, bank, category, signal, distance, variant); a query
    without a match gets one dim row saying so (and why, when an allow-list suppressed it)."""
    from rich.table import Table

    from ..records import shown_path
    from ..termsafe import console, safe_markup

    table = Table()
    for col in ("file / query", "bank", "category", "signal", "distance", "variant"):
        table.add_column(col, overflow="fold")
    matched = 0
    for r in results:
        q = r.get("query") or {}
        if "path" in q:
            what = safe_markup(shown_path(str(q["path"])))
        else:
            kind = next(k for k in ("pdq", "sha256", "sha1", "md5") if k in q)
            what = f"{kind} {safe_markup(q[kind])}"
        matches = r.get("matches") or []
        if matches:
            matched += 1
        for m in matches:
            category = " ".join(str(v) for v in (m.get("category"), m.get("category_label")) if v)
            table.add_row(what, safe_markup(m.get("bank")), safe_markup(category or "—"), safe_markup(m.get("signal_type")),
                          str(m.get("distance", "—")), safe_markup(m.get("variant") or "—"))
            what = ""  # the file or query once, on its first row
        if not matches:
            error = q.get("error")
            allowed = sorted({str(m.get("bank")) for m in (r.get("allowed_by") or [])})
            why = (f"not read: {error.get('code')}" if isinstance(error, dict) else
                   f"no match (suppressed by allow-list {', '.join(allowed)})" if allowed else "no match")
            table.add_row(what, f"[dim]{safe_markup(why)}[/]", "", "", "", "")
        elif r.get("truncated"):
            table.add_row("", f"[dim]… and {r['truncated']} more match(es) (--json lists the same)[/]", "", "", "", "")
    console().print(table)
    err.print(f"{matched} of {len(results)} quer{'y' if len(results) == 1 else 'ies'} matched (files and hashes)", highlight=False)
