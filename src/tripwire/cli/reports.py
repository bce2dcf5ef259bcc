"""``tripwire report ncmec ...``, ``tripwire export vics``, ``tripwire import vics``.

``tripwire report CASE`` (the case reports: items.jsonl, items.csv, the triage report report.html; with
``--pdf [FILE]`` the investigator handover PDF) stays what it was: ``report`` is a group whose default command
is that one, so ``tripwire report c1 --out DIR`` still works, and ``tripwire report ncmec ...`` reaches the
CyberTipline commands.

Exit codes: 0 success; 1 the database or the CyberTipline cannot be reached (an unfinished submission is
resumed by ``tripwire report ncmec-resume``); 2 usage errors, including items without a recorded human
decision; 3 some reports ended retracted or failed (listed with the reason).
"""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Optional

import typer
from typer.core import TyperGroup

from ..errors import UsageError
from .common import ActorOption, ConfigOption, DbOption, JsonOption, case_name, err, warn_draft_pdq
from .common import actor_name as _actor
from .common import echo_json as _echo_json
from .common import fail as _fail
from .common import get_config as _config
from .common import open_database as _db

EXIT_UNREACHABLE = 1
EXIT_INCOMPLETE = 3


class DefaultCommandGroup(TyperGroup):
    """A group that runs its ``case`` command when the first argument is not one of its commands."""

    default_command = "case"

    def parse_args(self, ctx, args):
        if self.default_command in self.commands and (
            not args or (args[0] not in self.commands and args[0] not in ("--help", "-h"))
        ):
            args = [self.default_command, *args]
        return super().parse_args(ctx, args)


report_app = typer.Typer(
    cls=DefaultCommandGroup,
    help="Case reports (the default: `tripwire report CASE`) and NCMEC CyberTipline reports (`tripwire report ncmec`).",
)
export_app = typer.Typer(help="Export a case for other tools (VICS 2.0 JSON for Griffeye / Project VIC).", no_args_is_help=True)
import_app = typer.Typer(help="Import a case or hash set from other tools (VICS 2.0 JSON).", no_args_is_help=True)


def _evidence_store(cfg, required: bool):
    """The configured evidence store, or None when none is configured (and it is not required)."""
    from ..evidence.store import DIR_ENV, EvidenceError, EvidenceStore

    section = (cfg.sections or {}).get("evidence") if cfg is not None else None
    if not section and not os.environ.get(DIR_ENV):
        if required:
            _fail(f"no evidence store configured: set [evidence] root or ${DIR_ENV}")
        return None
    try:
        return EvidenceStore.from_config(cfg)
    except EvidenceError as exc:
        _fail(str(exc))


def _items_for(database, target: str, allowed):
    """Reviewed items named by ITEM_OR_CASE (``item:12``, ``case:NAME``, a bare id or a case name).

    A bare number is always an item id, never a case name (a case whose name is a number is ``case:NAME``)."""
    from ..report.reviewed import parse_target, reviewed_items

    kind, value = parse_target(target)
    with database.session() as s:
        if kind == "item":
            if not value.isdigit():
                raise UsageError(f"item:{value}: an item id is a number")
            return reviewed_items(s, item_ids=[int(value)], allowed=allowed)
        return reviewed_items(s, case=value, allowed=allowed)


@report_app.command("ncmec")
def ncmec(
    target: str = typer.Argument(..., metavar="ITEM_OR_CASE", help="An item id (a number, or item:ID: item_id in items.csv) "
                                 "or a case name (case:NAME when the name is a number: a number is always an item id)."),
    dry_run: bool = typer.Option(True, "--dry-run/--submit", help="Print the validated XML (default), or submit it to the CyberTipline."),
    out: Optional[Path] = typer.Option(None, "--out", help="Dry run: also write report-N.xml and report-N-file-M.xml (fileDetails) here."),
    annotation: list[str] = typer.Option([], "--annotation", help="Report annotation a person asserts (sextortion, csamSolicitation, minorToMinorInteraction, spam, sadisticOnlineExploitation); repeatable."),
    escalate: Optional[str] = typer.Option(None, "--escalate", help="Ask NCMEC for high priority, with the reason (immediate risk to a child)."),
    actor: Optional[str] = ActorOption,
    db: Optional[str] = DbOption,
    config: Optional[Path] = ConfigOption,
    as_json: bool = JsonOption,
) -> None:
    """Build (and with --submit, send) NCMEC CyberTipline reports for human-confirmed items.

    Only items whose latest decision is confirmed_abuse or ai_generated are reported; naming an item without
    one is refused. One report per reported account; each validates against NCMEC's schema before anything
    is sent. Re-running resumes an unfinished submission and never sends a second report for an item.
    """
    from ..report.cybertip import CyberTiplineClient, CyberTiplineError, SubmissionBusy, Submitter
    from ..report.ncmec import NcmecSettings, ReportValidationError, dry_run_documents, plan_reports, pretty_xml
    from ..report.reviewed import REPORTABLE
    from ..termsafe import safe_markup

    cfg = _config(config)
    try:
        settings = NcmecSettings.from_config(cfg)
    except UsageError as exc:
        _fail(str(exc))
    database = _db(db)
    try:
        items = _items_for(database, target, REPORTABLE)
    except UsageError as exc:
        _fail(str(exc))
    if not items:
        _fail(f"{target}: no items with a recorded human decision of {' or '.join(REPORTABLE)}: nothing to report")
    warn_draft_pdq(sum(i.pdq_draft for i in items))  # their reports say so too ("PDQ decode")
    if dry_run:
        try:
            plans = plan_reports(items, annotations=annotation, escalate=escalate)
            documents = [dry_run_documents(plan, settings) for plan in plans]
        except (UsageError, ReportValidationError) as exc:
            _fail(str(exc))
        if out is not None:
            out.mkdir(parents=True, exist_ok=True)
            for n, (report, details) in enumerate(documents, 1):
                (out / f"report-{n}.xml").write_bytes(report)
                for m, doc in enumerate(details, 1):
                    (out / f"report-{n}-file-{m}.xml").write_bytes(doc)
        if as_json:
            _echo_json([{"key": p.key, "subject": p.subject, "items": [i.item_id for i in p.items],
                         "decisions": p.decision_ids, "report_xml": r.decode("utf-8"),
                         "file_details_xml": [d.decode("utf-8") for d in ds]} for p, (r, ds) in zip(plans, documents)])
        else:
            for n, (report, _) in enumerate(documents):
                if n:
                    sys.stdout.write("\n")
                sys.stdout.write(pretty_xml(report).decode("utf-8"))
        files = sum(len(ds) for _, ds in documents)
        err.print(f"dry run: {len(documents)} report(s) and {files} fileDetails document(s) valid against "
                  f"cyber_tipline.xsd; nothing sent" + (f"; written to {out}" if out else ""), highlight=False)
        problems = settings.submission_problems()
        for p in problems:
            err.print(f"[yellow]before --submit:[/] {safe_markup(p)}", highlight=False)
        return
    problems = settings.submission_problems()
    if problems:
        _fail("; ".join(problems))
    evidence = _evidence_store(cfg, required=False)
    if evidence is None and settings.preserve_evidence:
        err.print("[yellow]warning:[/] no evidence store configured: reported media is not preserved "
                  "(US law requires one year since the REPORT Act; see \\[evidence])", highlight=False)
    who = _actor(actor)
    client = CyberTiplineClient.from_settings(settings)
    try:
        submitter = Submitter(database, client, settings, actor=who, evidence=evidence)
        outcomes = submitter.submit(items, annotations=annotation, escalate=escalate)
    except CyberTiplineError as exc:
        _fail(f"{exc} (the submission is kept; `tripwire report ncmec-resume` continues it)", code=EXIT_UNREACHABLE)
    except (SubmissionBusy, UsageError, ReportValidationError) as exc:
        _fail(str(exc))
    finally:
        client.close()
    _print_outcomes(outcomes, as_json)
    if any(o.state != "finished" for o in outcomes):
        raise typer.Exit(EXIT_INCOMPLETE)


def _print_outcomes(outcomes, as_json: bool) -> None:
    if as_json:
        _echo_json([o.as_dict() for o in outcomes])
        return
    for o in outcomes:
        line = f"submission {o.submission_id} ({o.key}): {o.state}"
        if o.report_id is not None:
            line += f", NCMEC report {o.report_id}"
        line += f", {o.files} file(s)"
        if o.message and o.state != "finished":
            line += f" — {o.message}"
        typer.echo(line)


@report_app.command("ncmec-list")
def ncmec_list(
    state: list[str] = typer.Option([], "--state", help="Only these states (pending, submitting, opened, finished, retracted, failed)."),
    db: Optional[str] = DbOption,
    as_json: bool = JsonOption,
) -> None:
    """List CyberTipline submissions and their state."""
    from ..report.cybertip import list_submissions

    rows = list_submissions(_db(db), state or None)
    if as_json:
        _echo_json(rows)
        return
    if not rows:
        typer.echo("no submissions")
    for r in rows:
        typer.echo(f"{r['id']:>5}  {r['state']:<10} report {r['report_id'] or '-':<10} {len(r['items'])} item(s)  "
                   f"{r['subject'] or ''}  {r['created_at']}" + (f"  ({r['last_error']})" if r['last_error'] else ""))


@contextmanager
def _submitting(cfg: Any, database: Any, actor: Optional[str]) -> Iterator[Any]:
    """A Submitter for the commands that continue or withdraw submissions: its client is closed afterwards, an
    unreachable CyberTipline exits EXIT_UNREACHABLE and a busy or refused submission exits 2."""
    from ..report.cybertip import CyberTiplineClient, CyberTiplineError, Submitter, SubmissionBusy
    from ..report.ncmec import NcmecSettings

    try:
        settings = NcmecSettings.from_config(cfg)
    except UsageError as exc:
        _fail(str(exc))
    problems = [p for p in settings.submission_problems() if "credentials" in p]
    if problems:
        _fail("; ".join(problems))
    client = CyberTiplineClient.from_settings(settings)
    try:
        yield Submitter(database, client, settings, actor=_actor(actor), evidence=_evidence_store(cfg, required=False))
    except CyberTiplineError as exc:
        _fail(str(exc), code=EXIT_UNREACHABLE)
    except (SubmissionBusy, UsageError) as exc:
        _fail(str(exc))
    finally:
        client.close()


@report_app.command("ncmec-resume")
def ncmec_resume(
    actor: Optional[str] = ActorOption,
    db: Optional[str] = DbOption,
    config: Optional[Path] = ConfigOption,
    as_json: bool = JsonOption,
) -> None:
    """Resume every unfinished submission after a crash or an outage; stale ones are retracted."""
    cfg = _config(config)
    with _submitting(cfg, _db(db), actor) as submitter:
        outcomes = submitter.recover()
    if not outcomes and not as_json:
        typer.echo("nothing to resume")
    _print_outcomes(outcomes, as_json)
    if any(o.state != "finished" for o in outcomes):
        raise typer.Exit(EXIT_INCOMPLETE)


@report_app.command("ncmec-retract")
def ncmec_retract(
    submission: int = typer.Argument(..., help="Submission id (see `tripwire report ncmec-list`)."),
    reason: str = typer.Option(..., "--reason", help="Why it is withdrawn (audit trail)."),
    actor: Optional[str] = ActorOption,
    db: Optional[str] = DbOption,
    config: Optional[Path] = ConfigOption,
    as_json: bool = JsonOption,
) -> None:
    """Withdraw an unfinished submission (a finished report cannot be retracted)."""
    cfg = _config(config)
    with _submitting(cfg, _db(db), actor) as submitter:
        outcome = submitter.retract(submission, reason)
    _print_outcomes([outcome], as_json)


@report_app.command("ncmec-status")
def ncmec_status(config: Optional[Path] = ConfigOption) -> None:
    """Check that the configured CyberTipline endpoint answers and accepts the credentials."""
    from ..report.cybertip import CyberTiplineClient, CyberTiplineError
    from ..report.ncmec import NcmecSettings

    cfg = _config(config)
    try:
        settings = NcmecSettings.from_config(cfg)
        client = CyberTiplineClient.from_settings(settings, retries=1)
    except UsageError as exc:
        _fail(str(exc))
    try:
        resp = client.status()
    except CyberTiplineError as exc:
        _fail(str(exc), code=EXIT_UNREACHABLE)
    finally:
        client.close()
    typer.echo(f"{settings.base_url}: ok ({resp.description})")


@export_app.command("vics")
def export_vics(
    case: str = typer.Argument(..., help="Case name (or case:NAME)."),
    out: Optional[Path] = typer.Option(None, "--out", help="Output file (default: stdout)."),
    db: Optional[str] = DbOption,
    config: Optional[Path] = ConfigOption,
) -> None:
    """Write a case as VICS 2.0 JSON: one Media per unique file that carries a human decision."""
    from ..report.vics_case import export_case

    case = case_name(case)
    cfg = _config(config)
    database = _db(db)
    try:
        if out is None:
            summary = export_case(database, case, sys.stdout, cfg)
        else:
            with open(out, "w", encoding="utf-8") as fh:
                summary = export_case(database, case, fh, cfg)
    except UsageError as exc:
        _fail(str(exc))
    cats = ", ".join(f"category {k}: {v}" for k, v in sorted(summary.by_category.items()))
    err.print(f"case {case}: {summary.media} Media, {summary.files} file path(s)" + (f" ({cats})" if cats else "")
              + (f"; written to {out}" if out else ""), highlight=False)
    warn_draft_pdq(summary.draft_pdq)


@import_app.command("vics")
def import_vics(
    file: Path = typer.Argument(..., help="VICS JSON file (case or hash set, v1 or v2)."),
    case: Optional[str] = typer.Option(None, "--case", help="Load into this case (created if new): one item per path."),
    bank: Optional[str] = typer.Option(None, "--bank", help="Load the hashes into this bank (created, VICS scheme, if new)."),
    record_decisions: bool = typer.Option(False, "--record-decisions", help="With --case: record each Media's category as a decision by --reviewer."),
    reviewer: Optional[str] = typer.Option(None, "--reviewer", help="The person vouching for the imported categories (with --record-decisions)."),
    db: Optional[str] = DbOption,
    config: Optional[Path] = ConfigOption,
    as_json: bool = JsonOption,
) -> None:
    """Import a VICS case back into a case or a bank."""
    if (case is None) == (bank is None):
        _fail("give exactly one of --case NAME or --bank NAME")
    if record_decisions and (case is None or not reviewer):
        _fail("--record-decisions needs --case and --reviewer NAME (the person vouching for the categories)")
    if not file.is_file():
        _fail(f"no such file: {file}")
    cfg = _config(config)
    database = _db(db)
    if bank is not None:
        from ..banks.importer import import_file
        from ..banks.store import BankError, BankStore

        store = BankStore(database)
        try:
            try:
                store.get_bank(bank)
            except BankError:
                store.create_bank(bank, source=f"VICS import {file.name}", category_scheme="vics")
            report = import_file(store, bank, file, "vics")
        except BankError as exc:
            _fail(str(exc))
        data = report.as_dict()
        if as_json:
            _echo_json(data)
        else:
            err.print(f"bank {bank}: {report.added} added, {report.existing} already present, "
                      f"{report.error_count} malformed ({report.details.get('media', 0)} Media)", highlight=False)
        if report.error_count:
            raise typer.Exit(EXIT_INCOMPLETE)
        return
    from ..review.vics_import import import_case

    assert case is not None  # exactly one of --case and --bank, checked above
    try:
        with open(file, "rb") as fh:
            summary = import_case(database, fh, case, str(file), config=cfg, reviewer=reviewer if record_decisions else None)
    except UsageError as exc:
        _fail(str(exc))
    if as_json:
        _echo_json(summary.as_dict())
    else:
        err.print(f"case {case}: {summary.media} Media read, {summary.items} item(s) added, {summary.existing} already "
                  f"present, {summary.decisions} decision(s) recorded, {len(summary.errors)} malformed", highlight=False)
        for e in summary.errors[:20]:
            err.print(f"  {e['position']}: {e['message']}", highlight=False, markup=False)
    if summary.errors:
        raise typer.Exit(EXIT_INCOMPLETE)
