"""``tripwire evidence ...``: keygen, preserve, get, list, hold, release, purge.

The store is ``[evidence] root`` (or ``$TRIPWIRE_EVIDENCE_DIR``); the key is ``$TRIPWIRE_EVIDENCE_KEY`` or a key
file (``$TRIPWIRE_EVIDENCE_KEY_FILE`` / ``[evidence] key_file``). Listing, holds and purges need no key; only
``preserve`` and ``get`` decrypt or encrypt. Every command that changes or reads evidence is recorded in the
audit trail with ``--actor``.
"""

from __future__ import annotations

import os
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Optional

import typer

from ..errors import UsageError
from .common import ActorOption, ConfigOption, DbOption, JsonOption, err, open_database
from .common import actor_name as _actor
from .common import echo_json as _echo_json
from .common import fail as _fail

evidence_app = typer.Typer(help="Preserved evidence: encrypted, retained (1 year after a report by default), legal holds, audited reads.",
                           no_args_is_help=True)


def _open(db: Optional[str], config: Optional[Path], require_key: bool):
    from ..config import load_config
    from ..evidence.store import EvidenceError, EvidenceStore

    try:
        cfg = load_config(config)
        store = EvidenceStore.from_config(cfg, require_key=require_key)
    except (UsageError, EvidenceError) as exc:
        _fail(str(exc))
    for warning in store.warnings:
        err.print(f"[bold yellow]warning:[/] {warning}", highlight=False)
    return store, open_database(db)


def _shas(store, database, sha256: list[str], item: list[int]) -> list[str]:
    out = list(sha256)
    if item:
        with database.session() as s:
            found = store.shas_of_items(s, item)
        if not found:
            _fail(f"no preserved evidence for item(s) {', '.join(map(str, item))}")
        out.extend(found)
    if not out:
        _fail("name the evidence by SHA-256 or with --item ID")
    return sorted(set(out))


@evidence_app.command("keygen")
def keygen(out: Path = typer.Option(..., "--out", help="Key file to create (mode 0600; refuses to overwrite).")) -> None:
    """Create a random AES-256 key file for the evidence store (keep it outside the database and its backups)."""
    from ..evidence.store import generate_key

    try:
        fd = _create_private(out)
    except FileExistsError:
        _fail(f"{out} exists: a key is never overwritten (evidence encrypted with it would become unreadable)")
    except OSError as exc:
        _fail(f"cannot create {out}: {exc.strerror or exc}")
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(generate_key() + "\n")
    err.print(f"key written to {out}; set TRIPWIRE_EVIDENCE_KEY_FILE={out} or [evidence] key_file", highlight=False)


@evidence_app.command("preserve")
def preserve(
    file: Path = typer.Argument(..., help="File whose bytes to preserve."),
    reason: str = typer.Option(..., "--reason", help="Why it is preserved (audit trail)."),
    item: Optional[int] = typer.Option(None, "--item", help="The item (case occurrence) it belongs to."),
    actor: Optional[str] = ActorOption,
    db: Optional[str] = DbOption,
    config: Optional[Path] = ConfigOption,
) -> None:
    """Preserve a file's bytes, encrypted, for the retention period."""
    from ..evidence.store import EvidenceError

    if not file.is_file():
        _fail(f"no such file: {file}")
    store, database = _open(db, config, require_key=True)
    try:
        with database.session() as s:
            sha = store.preserve(s, file.read_bytes(), _actor(actor), reason, item_id=item)
            info = store.info(s, sha)
    except EvidenceError as exc:
        _fail(str(exc))
    typer.echo(f"{sha} preserved until {info.retain_until.isoformat() if info.retain_until else '?'}")


@evidence_app.command("get")
def get(
    sha256: str = typer.Argument(..., help="SHA-256 of the evidence."),
    out: Path = typer.Option(..., "--out", help="Where to write the decrypted bytes (- for stdout when piped)."),
    reason: str = typer.Option(..., "--reason", help="Why it is read (audit trail), e.g. a legal request reference."),
    actor: Optional[str] = ActorOption,
    db: Optional[str] = DbOption,
    config: Optional[Path] = ConfigOption,
) -> None:
    """Decrypt preserved evidence to a NEW file (mode 0600; an existing file or a symbolic link is refused);
    the read is recorded in the audit trail, and so is a read that fails."""
    from ..evidence.store import EvidenceError

    to_stdout = str(out) == "-"
    if to_stdout and sys.stdout.isatty():
        _fail("refusing to write media to a terminal: give --out FILE or pipe stdout")
    store, database = _open(db, config, require_key=True)
    fd = -1
    if not to_stdout:  # before anything is decrypted or audited: a refusal reads nothing
        try:
            fd = _create_private(out)
        except FileExistsError:
            _fail(f"{out} exists (or is a symbolic link): evidence is never written over an existing file; "
                  "give a new file name")
        except OSError as exc:
            _fail(f"cannot create {out}: {exc.strerror or exc}")
    try:
        with database.session() as s:
            data = store.read(s, sha256, _actor(actor), reason=reason)
    except BaseException as exc:
        if fd >= 0:
            os.close(fd)
            out.unlink(missing_ok=True)  # the empty file this command created
        if isinstance(exc, EvidenceError):
            _fail(f"{exc} (the failed read is recorded in the audit trail)")
        raise
    if to_stdout:
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        return
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    err.print(f"{len(data)} bytes written to {out} (read recorded in the audit trail)", highlight=False)


def _create_private(path: Path) -> int:
    """A new file only this user can read: never an existing file, never through a symbolic link (O_EXCL with
    O_CREAT refuses both; O_NOFOLLOW says so twice), mode 0600 whatever the umask."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(path, flags, 0o600)
    os.fchmod(fd, 0o600)
    return fd


@evidence_app.command("list")
def list_(
    include_purged: bool = typer.Option(False, "--all", help="Include purged objects."),
    item: Optional[int] = typer.Option(None, "--item", help="Only evidence of this item."),
    db: Optional[str] = DbOption,
    config: Optional[Path] = ConfigOption,
    as_json: bool = JsonOption,
) -> None:
    """List preserved evidence with its retention and holds (metadata only: nothing is decrypted)."""
    store, database = _open(db, config, require_key=False)
    with database.session() as s:
        rows = store.list(s, include_purged=include_purged, item_id=item)
    if as_json:
        _echo_json([r.as_dict() for r in rows])
        return
    if not rows:
        typer.echo("no preserved evidence")
    for r in rows:
        state = "PURGED " + r.purged_at.date().isoformat() if r.purged_at else ("HOLD" if r.legal_hold else "kept")
        typer.echo(f"{r.sha256}  {r.size:>10}  {state:<18} until {r.retain_until.date().isoformat() if r.retain_until else '?'}"
                   f"  items {','.join(map(str, r.item_ids)) or '-'}  {r.reason}")


@evidence_app.command("hold")
def hold(
    sha256: list[str] = typer.Argument(None, help="SHA-256 of the evidence (or use --item)."),
    item: list[int] = typer.Option([], "--item", help="Hold all evidence of this item; repeatable."),
    reason: str = typer.Option(..., "--reason", help="The legal process or reason for the hold."),
    actor: Optional[str] = ActorOption,
    db: Optional[str] = DbOption,
    config: Optional[Path] = ConfigOption,
) -> None:
    """Put a legal hold on evidence: it is not purged until released."""
    _change_hold("hold", "held", sha256, item, reason, actor, db, config)


@evidence_app.command("release")
def release(
    sha256: list[str] = typer.Argument(None, help="SHA-256 of the evidence (or use --item)."),
    item: list[int] = typer.Option([], "--item", help="Release all evidence of this item; repeatable."),
    reason: str = typer.Option(..., "--reason", help="Why the hold ends (audit trail)."),
    actor: Optional[str] = ActorOption,
    db: Optional[str] = DbOption,
    config: Optional[Path] = ConfigOption,
) -> None:
    """Lift a legal hold; the evidence is purged once its retention has ended."""
    _change_hold("release", "released", sha256, item, reason, actor, db, config)


def _change_hold(operation: str, done: str, sha256: Optional[list[str]], item: list[int], reason: str,
                 actor: Optional[str], db: Optional[str], config: Optional[Path]) -> None:
    """Apply ``store.hold`` or ``store.release`` to the selected evidence, in one audited transaction."""
    from ..evidence.store import EvidenceError

    store, database = _open(db, config, require_key=False)
    who = _actor(actor)
    try:
        with database.session() as s:
            for sha in _shas(store, database, sha256 or [], item):
                getattr(store, operation)(s, sha, who, reason)
                typer.echo(f"{sha} {done}")
    except EvidenceError as exc:
        _fail(str(exc))


@evidence_app.command("purge")
def purge(
    now: Optional[str] = typer.Option(None, "--now", help="Purge as of this ISO time instead of now (e.g. to preview with --dry-run)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Show what would be purged; change nothing."),
    actor: Optional[str] = ActorOption,
    db: Optional[str] = DbOption,
    config: Optional[Path] = ConfigOption,
    as_json: bool = JsonOption,
) -> None:
    """Delete evidence whose retention has ended and that has no legal hold (run it daily)."""
    when = None
    if now:
        try:
            when = datetime.fromisoformat(now.replace("Z", "+00:00"))
        except ValueError:
            _fail(f"--now {now!r} is not an ISO date/time")
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
    store, database = _open(db, config, require_key=False)
    if dry_run:
        with database.session() as s:
            cutoff = when or datetime.now(timezone.utc)
            due = [r for r in store.list(s) if not r.legal_hold and r.retain_until and r.retain_until <= cutoff]
        rows = [{"sha256": r.sha256, "size": r.size, "retain_until": r.retain_until.isoformat()} for r in due]
        if as_json:
            _echo_json(rows)
        else:
            typer.echo(f"{len(rows)} object(s) would be purged")
            for r in rows:
                typer.echo(f"  {r['sha256']}  until {r['retain_until']}")
        return
    with database.session() as s:
        purged = store.purge(s, now=when, actor=_actor(actor))
    if as_json:
        _echo_json([p.as_dict() for p in purged])
        return
    typer.echo(f"{len([p for p in purged if not p.orphan])} object(s) purged"
               + (f", {len([p for p in purged if p.orphan])} leftover file(s) removed" if any(p.orphan for p in purged) else ""))
