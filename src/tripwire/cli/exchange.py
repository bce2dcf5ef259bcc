"""``tripwire exchange ...``: banks that keep themselves current from ThreatExchange, NCMEC, StopNCII or a list file.

``add`` configures an exchange (credentials come from the configuration or the environment, never the command
line: docs/exchanges.md); ``fetch`` fetches from the last committed checkpoint, one transaction per page, records
each page in the audit trail and re-matches the stored items of every case against what changed.

Exit codes: 0 success; 1 the database cannot be used; 2 usage errors (unknown exchange or API, bad settings);
3 ``fetch`` stopped before a source was exhausted (the error is recorded; the next fetch resumes).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

import typer

from .common import ActorOption, ConfigOption, DbOption, JsonOption, actor_name, echo_json, err, fail, get_config, open_database

exchange_app = typer.Typer(
    help="Exchanges: fetch hash lists from ThreatExchange, NCMEC, StopNCII or a list file into a bank, incrementally.",
    no_args_is_help=True,
)

EXIT_INCOMPLETE = 3


def _settings(pairs: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            fail(f"--set takes KEY=VALUE, not {pair!r}")
        try:
            out[key.strip()] = json.loads(value)
        except ValueError:
            out[key.strip()] = value
    return out


def _store(db: Optional[str]) -> Any:
    from ..banks.exchanges.store import ExchangeStore

    return ExchangeStore(open_database(db))


@exchange_app.command("apis")
def apis_command(as_json: bool = JsonOption) -> None:
    """The exchange APIs and the settings each takes (--set NAME=VALUE on `exchange add`)."""
    from ..banks.exchanges.apis import API_NAMES, config_fields, uses_credentials

    data: dict[str, dict[str, Any]] = {name: {"settings": config_fields(name), "credentials": uses_credentials(name)}
                                       for name in API_NAMES}
    if as_json:
        echo_json(data)
        return
    for name, info in data.items():
        fields = ", ".join(f"{f['name']}{'' if f['required'] else '?'}" + (f" ({'|'.join(f['choices'])})" if f["choices"] else "")
                           for f in info["settings"])
        typer.echo(f"{name}: {fields or 'no settings'}{'; needs credentials' if info['credentials'] else ''}")


@exchange_app.command("add")
def add_command(
    name: str = typer.Argument(..., help="Exchange name (HMA uses UPPER_CASE; the bank gets the same name by default)."),
    api: str = typer.Option(..., "--api", help="fb_threatexchange, ncmec, stop_ncii or local_file (see `exchange apis`)."),
    bank: Optional[str] = typer.Option(None, "--bank", help="Bank to fill (created when missing; default: the exchange's name)."),
    setting: list[str] = typer.Option([], "--set", help="An API setting, KEY=VALUE (JSON values allowed), e.g. privacy_group=123, environment=NGO."),
    base_url: Optional[str] = typer.Option(None, "--base-url", help="Connect the API's client here instead of its built-in address (a proxy)."),
    disabled: bool = typer.Option(False, "--disabled", help="Add it disabled (fetch --all skips it)."),
    db: Optional[str] = DbOption,
    as_json: bool = JsonOption,
) -> None:
    """Configure an exchange; its credentials come from the configuration or the environment (docs/exchanges.md)."""
    from ..banks.exchanges.apis import ExchangeApiError
    from ..banks.store import BankError

    try:
        info = _store(db).create(name, api, bank=bank, settings=_settings(setting), enabled=not disabled, base_url=base_url)
    except (ExchangeApiError, BankError) as exc:
        fail(str(exc))
    if as_json:
        echo_json(info.as_dict())
    else:
        err.print(f"exchange {info.name} ({info.api}) fills bank {info.bank}; `tripwire exchange fetch {info.name}` fetches it",
                  highlight=False, markup=False)


@exchange_app.command("list")
def list_command(db: Optional[str] = DbOption, as_json: bool = JsonOption) -> None:
    """Exchanges with their bank, checkpoint and last fetch."""
    infos = _store(db).exchanges()
    if as_json:
        echo_json([i.as_dict() for i in infos])
        return
    if not infos:
        err.print("no exchanges (add one with `tripwire exchange add NAME --api ...`)")
        return
    for i in infos:
        last = "never fetched" if i.last_fetch_started is None else (
            "fetching or killed" if i.last_success is None else ("ok" if i.last_success else f"failed: {i.last_error}"))
        when = i.last_fetch_finished.isoformat(timespec="seconds") if i.last_fetch_finished else "-"
        typer.echo(f"{i.name}\t{i.api}\tbank={i.bank}\t{'enabled' if i.enabled else 'disabled'}\trecords={i.records}\t"
                   f"pages={i.pages}\tskipped={i.pages_skipped}\tcheckpoint={i.checkpoint_time() or '-'}\tlast={when} {last}")


def _set_enabled(name: str, enabled: bool, db: Optional[str]) -> None:
    from ..banks.exchanges.apis import ExchangeApiError

    try:
        _store(db).update(name, enabled=enabled)
    except ExchangeApiError as exc:
        fail(str(exc))
    err.print(f"exchange {name} {'enabled' if enabled else 'disabled'}", highlight=False, markup=False)


@exchange_app.command("enable")
def enable_command(name: str = typer.Argument(...), db: Optional[str] = DbOption) -> None:
    """Fetch this exchange with `fetch --all` and in the background."""
    _set_enabled(name, True, db)


@exchange_app.command("disable")
def disable_command(name: str = typer.Argument(...), db: Optional[str] = DbOption) -> None:
    """Stop fetching this exchange (its bank and checkpoint stay)."""
    _set_enabled(name, False, db)


@exchange_app.command("remove")
def remove_command(name: str = typer.Argument(...), db: Optional[str] = DbOption) -> None:
    """Forget an exchange and its checkpoint; its bank and entries stay."""
    from ..banks.exchanges.apis import ExchangeApiError

    try:
        _store(db).delete(name)
    except ExchangeApiError as exc:
        fail(str(exc))
    err.print(f"exchange {name} removed (its bank stays)", highlight=False, markup=False)


@exchange_app.command("reset")
def reset_command(name: str = typer.Argument(...), db: Optional[str] = DbOption) -> None:
    """Drop the checkpoint: the next fetch reads the source from the start (nothing is added twice)."""
    from ..banks.exchanges.apis import ExchangeApiError

    try:
        _store(db).reset(name)
    except ExchangeApiError as exc:
        fail(str(exc))
    err.print(f"exchange {name}: checkpoint dropped", highlight=False, markup=False)


@exchange_app.command("fetch")
def fetch_command(
    names: Optional[list[str]] = typer.Argument(None, help="Exchanges to fetch (default with --all: every enabled one)."),
    fetch_all: bool = typer.Option(False, "--all", help="Fetch every enabled exchange."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress output."),
    db: Optional[str] = DbOption,
    config: Optional[Path] = ConfigOption,
    actor: Optional[str] = ActorOption,
    as_json: bool = JsonOption,
) -> None:
    """Fetch from the last checkpoint; each page commits with its checkpoint (a killed fetch resumes), lands in
    the audit trail, and stored items newly matching what arrived are queued for review."""
    from ..banks.exchanges.apis import ExchangeApiError
    from ..banks.exchanges.fetch import FetchReport
    from ..pipeline.exchanges import fetch_enabled
    from .banks import _sync_index

    if not names and not fetch_all:
        fail("name the exchanges to fetch, or use --all")
    cfg = get_config(config)
    database = open_database(db)
    who = actor_name(actor)
    from ..banks.exchanges.store import ExchangeStore

    store = ExchangeStore(database)
    for n in names or []:
        if store.find(n) is None:
            fail(f"no exchange named {n!r}")
    show = not quiet and not as_json

    def progress(report: FetchReport) -> None:
        if show and (report.pages <= 3 or report.pages % 10 == 0):
            err.print(f"{report.exchange}: page {report.pages}, {report.records} records, +{report.added} "
                      f"-{report.removed} entries", highlight=False, markup=False)

    try:
        runs = fetch_enabled(database, cfg, actor=who, names=list(names) if names else None, progress=progress)
    except ExchangeApiError as exc:
        fail(str(exc))
    if any(r.fetch.changed for r in runs):
        _sync_index(database, cfg, not show)
    if as_json:
        echo_json([r.as_dict() for r in runs])
    else:
        for r in runs:
            err.print(r.fetch.summary(), highlight=False, markup=False)
            if r.rematch is not None:
                err.print(r.rematch.summary(), highlight=False, markup=False)
            if r.rematch_error:
                err.print(f"re-match failed ({r.rematch_error}); the next fetch or `tripwire rematch` retries",
                          highlight=False, markup=False)
    if any(not r.fetch.complete for r in runs):
        raise typer.Exit(EXIT_INCOMPLETE)
