"""``tripwire serve``, ``tripwire keys create|list|revoke`` and ``tripwire audit verify|log``.

Exit codes: 0 success; 1 the database cannot be used; 2 usage errors; ``audit verify`` exits 3 when the
chain is broken (and names the first bad event).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

import typer

from ..errors import UsageError
from .common import DbOption, err
from .common import fail as _fail
from .common import open_database as _db

if TYPE_CHECKING:
    from ..service.settings import ServiceSettings

EXIT_TAMPERED = 3

keys_app = typer.Typer(help="API keys for the service: create (printed once), list, revoke.", no_args_is_help=True)
audit_app = typer.Typer(help="The tamper-evident audit trail: verify the hash chain, list events.", no_args_is_help=True)


# -- keys -----------------------------------------------------------------------------------------------------

@keys_app.command("create")
def keys_create(
    role: str = typer.Option(..., "--role", help="admin, reviewer, submitter (scan/lookup only) or auditor (read-only)."),
    name: str = typer.Option(..., "--name", help="Who or what uses the key (a person, a platform's upload service)."),
    rate: Optional[float] = typer.Option(None, "--rate", min=0.001, help="Requests per second for this key (default: the service's)."),
    db: Optional[str] = DbOption,
    as_json: bool = typer.Option(False, "--json", help="Print {key, key_id, name, role} as JSON."),
) -> None:
    """Create an API key and print it ONCE (only a salted hash is stored; it cannot be shown again)."""
    from ..service.auth import check_role, cli_actor, create_key

    try:
        check_role(role)
    except ValueError as exc:
        _fail(str(exc))
    database = _db(db)
    try:
        with database.session() as s:
            created = create_key(s, name, role, cli_actor(), rate)
    except ValueError as exc:
        _fail(str(exc))
    finally:
        database.dispose()
    if as_json:
        typer.echo(json.dumps({"key": created.key, "key_id": created.key_id, "name": created.name, "role": created.role}))
        return
    typer.echo(created.key)
    err.print(f"created {created.role} key {created.key_id} for {created.name!r}: store it now, it is not kept and "
              f"cannot be shown again", highlight=False)


@keys_app.command("list")
def keys_list(db: Optional[str] = DbOption, as_json: bool = typer.Option(False, "--json")) -> None:
    """List keys (ids, names, roles, state) — never the keys themselves."""
    from ..termsafe import console
    from rich.table import Table

    from ..service.auth import list_keys

    database = _db(db)
    with database.session() as s:
        keys = list_keys(s)
    database.dispose()
    if as_json:
        typer.echo(json.dumps(keys, indent=2))
        return
    if not keys:
        err.print("no keys yet: create one with `tripwire keys create --role admin --name NAME`")
        return
    table = Table()
    # the key id whole, however narrow the terminal (`keys revoke` needs it); the other columns wrap instead
    table.add_column("key id", no_wrap=True, min_width=max(len(str(k["key_id"])) for k in keys))
    for col in ("name", "role", "rate/s", "created", "by", "last used", "revoked"):
        table.add_column(col, overflow="fold")
    for k in keys:
        table.add_row(k["key_id"], k["name"], k["role"], str(k["rate_per_s"] or "default"), (k["created_at"] or "")[:19],
                      k["created_by"], (k["last_used_at"] or "—")[:19], (k["revoked_at"] or "—")[:19])
    console().print(table)


@keys_app.command("revoke")
def keys_revoke(key_id: str = typer.Argument(..., help="The key id (the 12 hex digits after twk_), or the whole key."),
                db: Optional[str] = DbOption) -> None:
    """Revoke a key: requests with it fail at once (within seconds in a running server), sessions end."""
    from ..service.auth import AuthError, cli_actor, parse_key, revoke_key

    if key_id.startswith("twk_"):
        try:
            key_id = parse_key(key_id)
        except AuthError as exc:
            _fail(str(exc))
    database = _db(db)
    with database.session() as s:
        done = revoke_key(s, key_id, cli_actor())
    database.dispose()
    if not done:
        _fail(f"no active key {key_id!r}")
    err.print(f"revoked key {key_id}", highlight=False)


# -- audit ---------------------------------------------------------------------------------------------------

@audit_app.command("verify")
def audit_verify(db: Optional[str] = DbOption, as_json: bool = typer.Option(False, "--json")) -> None:
    """Recompute the audit hash chain; exit 3 and name the first bad event if anything was edited, deleted,
    inserted or reordered."""
    from ..review import audit
    from ..review.models import AuditEvent

    database = _db(db)
    with database.session() as s:
        v = audit.verify(s)
        bad = s.get(AuditEvent, v.first_bad_seq) if v.first_bad_seq is not None else None
        bad_desc = f"{bad.kind} by {bad.actor} at {bad.at}" if bad is not None else None
    database.dispose()
    if as_json:
        typer.echo(json.dumps({"ok": v.ok, "events": v.events, "head": v.head, "first_bad_seq": v.first_bad_seq,
                               "first_bad_event": bad_desc, "problem": v.problem}))
    elif v.ok:
        err.print(f"audit trail OK: {v.events} events, head {v.head}", highlight=False)
    else:
        err.print(f"[bold red]audit trail BROKEN[/] at event {v.first_bad_seq}"
                  + (f" ({bad_desc})" if bad_desc else "") + f": {v.problem}; {v.events} events before it verify",
                  highlight=False)
    if not v.ok:
        raise typer.Exit(EXIT_TAMPERED)


@audit_app.command("log")
def audit_log(
    after: int = typer.Option(0, "--after", help="Events after this sequence number."),
    limit: int = typer.Option(100, "--limit", min=1, max=100_000),
    kind: Optional[str] = typer.Option(None, "--kind", help="Only this kind (decision, bank.add, key.create, ...)."),
    db: Optional[str] = DbOption,
) -> None:
    """Print audit events as JSON lines, oldest first."""
    from sqlalchemy import select

    from ..review.models import AuditEvent

    database = _db(db)
    with database.session() as s:
        q = select(AuditEvent).where(AuditEvent.seq > after)
        if kind:
            q = q.where(AuditEvent.kind == kind)
        for e in s.scalars(q.order_by(AuditEvent.seq).limit(limit)):
            typer.echo(json.dumps({"seq": e.seq, "at": e.at, "kind": e.kind, "actor": e.actor, "subject": e.subject,
                                   "data": e.data, "prev_hash": e.prev_hash, "hash": e.hash}, ensure_ascii=False))
    database.dispose()


# -- serve ---------------------------------------------------------------------------------------------------

def serve_command(
    db: Optional[str] = DbOption,
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (default: loopback only)."),
    port: int = typer.Option(8000, "--port", min=0, max=65535),
    policy: Optional[Path] = typer.Option(None, "--policy", help="Policy TOML file (default: the shipped default policy)."),
    config: Optional[Path] = typer.Option(None, "--config", help="TOML configuration file (sections service, banks, limits, evidence, ...)."),
    workers: int = typer.Option(1, "--workers", min=1, help="Server processes (each keeps its own index copy; rate limits are per process on SQLite, shared on PostgreSQL)."),
    tls_cert: Optional[Path] = typer.Option(None, "--tls-cert", help="TLS certificate (PEM) to serve HTTPS directly."),
    tls_key: Optional[Path] = typer.Option(None, "--tls-key", help="TLS private key (PEM)."),
    log_level: str = typer.Option("info", "--log-level", help="critical, error, warning, info, debug."),
) -> None:
    """Run the HTTP API and the review console (OpenAPI docs at /docs; every endpoint but /healthz needs a key)."""
    import uvicorn

    from ..config import load_config
    from ..policy.policy import Policy
    from ..store.db import resolve_url

    if bool(tls_cert) != bool(tls_key):
        _fail("--tls-cert and --tls-key go together")
    from ..service.settings import ServiceSettings

    try:
        cfg = load_config(config)
        settings = ServiceSettings.from_config(cfg)
        Policy.load(policy)  # fail fast on a bad policy, before binding the port
    except UsageError as exc:
        _fail(str(exc))
    database = _db(db)
    with database.session() as s:
        from sqlalchemy import func, select

        from ..service.models import ApiKey

        active = s.scalar(select(func.count()).select_from(ApiKey).where(ApiKey.revoked_at.is_(None))) or 0
    if not active:
        err.print("no API keys yet: every request will be refused. Create one with "
                  "`tripwire keys create --role admin --name NAME`" + (f" --db {db}" if db else ""), highlight=False)
    scheme = "https" if tls_cert else "http"
    err.print(f"tripwire serving {resolve_url(db).split('@')[-1]} on {scheme}://{host}:{port} "
              f"(console {scheme}://{host}:{port}/console/, API docs /docs)", highlight=False)
    options = uvicorn_options(settings)
    os.environ["TRIPWIRE_SERVE_PORT"] = str(port)  # the default replica id is <hostname>:<port> (service/replicas.py)
    if tls_cert:
        options.update(ssl_certfile=str(tls_cert), ssl_keyfile=str(tls_key))
    if workers > 1:
        os.environ["TRIPWIRE_SERVE_DB"] = db or ""
        os.environ["TRIPWIRE_SERVE_CONFIG"] = str(config or "")
        os.environ["TRIPWIRE_SERVE_POLICY"] = str(policy or "")
        os.environ["TRIPWIRE_SERVE_WORKERS"] = str(workers)  # they share the memory for scan slots (settings.py)
        if not settings.secret_key:  # one login-form signing secret for all the server processes
            import secrets

            os.environ["TRIPWIRE_SERVICE_SECRET_KEY"] = secrets.token_urlsafe(32)
        database.dispose()
        from ..service.server import run_workers

        # not uvicorn.run(workers=N): its listening socket leaves TCP_NODELAY off (see service/server.py)
        run_workers("tripwire.service.app:app_from_env", workers=workers, host=host, port=port,
                    log_level=log_level, **options)
        return
    from ..service.app import create_app

    try:
        app = create_app(db, cfg, policy=policy, settings=settings, database=database)
    except UsageError as exc:
        _fail(str(exc))
    uvicorn.run(app, host=host, port=port, log_level=log_level, **options)


def uvicorn_options(settings: ServiceSettings) -> dict[str, Any]:
    """How uvicorn treats proxy headers: ``X-Forwarded-For``/``-Proto`` are believed only from
    ``[service] trusted_proxies``. With none configured they are ignored altogether — uvicorn's own default
    believes them from any loopback peer, so a client reaching the port through a local tunnel or a
    pass-through proxy could pick the address the login rate limit counts against."""
    trusted = list(settings.trusted_proxies)
    if not trusted:
        return {"proxy_headers": False, "server_header": False}
    return {"proxy_headers": True, "forwarded_allow_ips": trusted, "server_header": False}
