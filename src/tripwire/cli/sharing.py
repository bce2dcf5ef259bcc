"""``tripwire signals export|import``: share human-confirmed signals with peers, load theirs into a bank."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

from ..errors import UsageError
from .common import ConfigOption, DbOption, err, open_database, warn_draft_pdq
from .common import fail as _fail

signals_app = typer.Typer(help="Share human-confirmed signals (hashes, URLs, accounts, keywords) with peers; load theirs.",
                          no_args_is_help=True)


@signals_app.command("export")
def export(
    case: Optional[str] = typer.Option(None, "--case", help="Signals of this case's human-confirmed items."),
    item: list[int] = typer.Option([], "--item", help="Signals of these items (each must be human-confirmed); repeatable."),
    posts_scan: Optional[Path] = typer.Option(None, "--posts-scan", help="A `tripwire posts scan` output folder (with --decisions)."),
    decisions: Optional[Path] = typer.Option(None, "--decisions", help="Reviewers' trade decisions (JSONL) confirming posts-scan signals."),
    fmt: str = typer.Option("te", "--format", help="te (threatexchange local file), te-csv, lantern (CSV) or jsonl."),
    out: Optional[Path] = typer.Option(None, "--out", help="Output file (default: stdout)."),
    collab: str = typer.Option("tripwire", "--collab", help="Collaboration name written into te-csv rows."),
    min_pdq_quality: int = typer.Option(50, "--min-pdq-quality", min=0, max=100, help="Leave out PDQ hashes below this quality."),
    model_bank: list[str] = typer.Option([], "--model-bank", help="Also the model hashes of this bank (made with `bank add-model`); repeatable."),
    db: Optional[str] = DbOption,
    config: Optional[Path] = ConfigOption,
) -> None:
    """Export signals; only items and trade subjects with a recorded human decision, and the model hashes a
    person put into a model bank, are ever included."""
    from ..config import load_config
    from ..sharing.indicators import FORMATS, collect_signals, write_signals

    if fmt not in FORMATS:
        _fail(f"unknown format {fmt!r} (expected one of {', '.join(FORMATS)})")
    if case is None and not item and posts_scan is None and not model_bank:
        _fail("name what to export: --case NAME, --item ID, --posts-scan DIR --decisions FILE or --model-bank NAME")
    if case is not None and item:
        _fail("give --case or --item, not both")
    if (posts_scan is None) != (decisions is None):
        _fail("--posts-scan and --decisions go together (trade signals need the reviewers' decisions)")
    try:
        cfg = load_config(config)
        categories = dict(((cfg.sections.get("sharing") or {}).get("categories")) or {})
        trade = []
        if posts_scan is not None and decisions is not None:  # together or neither, checked above
            from ..trade.confirmed import load_decisions, signals_from_scan

            trade = signals_from_scan(posts_scan, load_decisions(decisions))
        database = None
        if case is not None or item or model_bank:
            database = open_database(db)
        signals = collect_signals(database, case=case, item_ids=item or None, trade_signals=trade,
                                  min_pdq_quality=min_pdq_quality, categories=categories, model_banks=model_bank)
    except UsageError as exc:
        _fail(str(exc))
    if out is None:
        written, skipped = write_signals(signals, fmt, sys.stdout, collab)
    else:
        with open(out, "w", encoding="utf-8", newline="") as fh:
            written, skipped = write_signals(signals, fmt, fh, collab)
    extra = "; not representable in this format: " + ", ".join(f"{k} {v}" for k, v in sorted(skipped.items())) if skipped else ""
    err.print(f"{written} signal(s) written ({fmt}){extra}", highlight=False)
    warn_draft_pdq(sum(s.draft_pdq for s in signals))


@signals_app.command("import")
def import_(
    file: Path = typer.Argument(..., help="Signal file (te, te-csv, lantern or jsonl; guessed from the content)."),
    bank: str = typer.Option(..., "--bank", help="Bank to load into (created if new, free-text categories)."),
    fmt: Optional[str] = typer.Option(None, "--format", help="te, te-csv, lantern or jsonl (default: guessed)."),
    db: Optional[str] = DbOption,
) -> None:
    """Load a peer's signals into a bank: hashes become matchable entries, URLs/accounts/keywords are kept."""
    from ..banks.importer import run_import
    from ..banks.store import BankError, BankStore
    from ..sharing.indicators import read_signals

    if not file.is_file():
        _fail(f"no such file: {file}")
    database = open_database(db)
    store = BankStore(database)
    try:
        try:
            info = store.get_bank(bank)
        except BankError:
            info = store.create_bank(bank, source=f"shared signals {file.name}", category_scheme="none")
        with open(file, "rb") as fh:
            report = run_import(store, bank, read_signals(fh, fmt, free_text_category=info.category_scheme == "none"),
                                fmt or "signals")
    except (BankError, UsageError) as exc:
        _fail(str(exc))
    kept = ", ".join(f"{k} {v}" for k, v in sorted(report.unsupported.items()))
    err.print(f"bank {bank}: {report.added} added, {report.existing} already present, {report.error_count} malformed"
              + (f"; kept (not matched against media): {kept}" if kept else ""), highlight=False)
    for e in report.errors[:20]:
        err.print(f"  {e.position}: {e.message}", highlight=False, markup=False)
    if report.error_count:
        raise typer.Exit(3)
