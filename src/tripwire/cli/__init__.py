"""The ``tripwire`` command line: one Typer app, one thin module per command group.

Command modules import only Typer/Click and :mod:`tripwire.cli.common` at module level; each command imports
the domain code it drives inside its body, so ``tripwire --help`` and ``--version`` load none of numpy, numba,
SQLAlchemy, networkx, c2pa or FastAPI. This package is the only one in tripwire that imports Typer.
"""

from __future__ import annotations

import os

import typer

from .. import __version__
from . import banks, detector, evidence, exchange, rematch, reports, review, scan, service, sharing, trade

__all__ = ["app"]

# tripwire runs a process per core (scan and serve workers): a BLAS thread pool in each would oversubscribe
# the cores, and PDQ's small matrix products (signals/pdq.py) then slow down 10-50x on a busy machine. Set
# before anything imports numpy; an explicit setting in the environment wins.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

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


# Registration order is the order `tripwire --help` lists the commands in.
app.command()(scan.scan)
app.command()(scan.inspect)
app.add_typer(detector.detector_app, name="detector")
app.add_typer(banks.bank_app, name="bank")
app.command("match")(banks.match_command)
app.command("rematch")(rematch.rematch_command)
app.add_typer(trade.posts_app, name="posts")
app.add_typer(trade.prompt_app, name="prompt")
app.add_typer(service.keys_app, name="keys")
app.add_typer(service.audit_app, name="audit")
app.command("serve")(service.serve_command)
app.command("decide")(review.decide_command)
reports.report_app.command("case")(scan.report)  # `tripwire report CASE` stays the default; `report ncmec ...` beside it
app.add_typer(reports.report_app, name="report")
app.add_typer(reports.export_app, name="export")
app.add_typer(reports.import_app, name="import")
app.add_typer(evidence.evidence_app, name="evidence")
app.add_typer(sharing.signals_app, name="signals")
app.add_typer(exchange.exchange_app, name="exchange")
