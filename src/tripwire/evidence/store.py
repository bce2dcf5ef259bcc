"""The evidence store: encrypted, content-addressed media with retention, legal hold and audited reads.

Layout: ``ROOT/objects/ab/cd/<sha256>`` holds one object, written atomically (temporary file, fsync, rename)::

    b"TWEV" | version (1 byte) | key id (8 bytes) | nonce (12 bytes) | AES-256-GCM ciphertext + tag

The associated data is the object's SHA-256 (hex), so a file renamed onto another object's address fails
authentication instead of decrypting as the wrong evidence. Every object gets a fresh random nonce. The key is
32 bytes given as base64 or hex in ``$TRIPWIRE_EVIDENCE_KEY`` or in a file named by
``$TRIPWIRE_EVIDENCE_KEY_FILE`` / ``[evidence] key_file``; it is never accepted from the TOML itself and never
written to the database (only an 8-byte fingerprint, so a wrong key is named instead of failing obscurely).

Metadata lives in ``evidence_objects`` (see :mod:`tripwire.report.models`): every change — preserve, read,
hold, release, reported, purge — is written in the caller's transaction together with its audit event
(:func:`tripwire.review.audit.append`), so the trail and the state cannot disagree. A read is audited before
its bytes are handed out; the caller commits the session (a read whose session rolls back disclosed nothing
that the trail does not show, because the exception that causes the rollback also stops the bytes being used
— callers must not swallow it). A read that fails — unknown or purged object, wrong key, missing or altered
file — is audited as ``evidence.read_failed`` with the reason, in a transaction of its own, because the
caller's transaction is about to roll back with the error. Purged files are unlinked only after the purge commits, and a later purge
removes any file whose row says purged (a crash in between) or that has no row at all (a preserve whose
transaction rolled back) once it is older than a grace period.
"""

from __future__ import annotations

import base64
import builtins
import binascii
import hashlib
import os
import re
import secrets
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Mapping, overload

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import Connection, event, select
from sqlalchemy import text as sql_text
from sqlalchemy.orm import Session

from .models import EvidenceItem, EvidenceObject
from ..review import audit
from ..signals.registry import registry

KEY_ENV = "TRIPWIRE_EVIDENCE_KEY"
KEY_FILE_ENV = "TRIPWIRE_EVIDENCE_KEY_FILE"
DIR_ENV = "TRIPWIRE_EVIDENCE_DIR"
#: REPORT Act (2024): reported material is preserved for one year
DEFAULT_RETENTION = timedelta(days=365)
#: files without a row younger than this may belong to a preserve whose transaction is still open
ORPHAN_GRACE = timedelta(hours=1)
MAGIC = b"TWEV"
VERSION = 1
_HEADER = len(MAGIC) + 1 + 8 + 12
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class EvidenceError(Exception):
    """An evidence operation cannot be done (no key, wrong key, not preserved, tampered file)."""


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


@overload
def aware(dt: datetime) -> datetime: ...
@overload
def aware(dt: None) -> None: ...
@overload
def aware(dt: datetime | None) -> datetime | None: ...


def aware(dt: datetime | None) -> datetime | None:
    """SQLite hands timezone-aware columns back naive (in UTC): make every datetime comparable."""
    if dt is None:
        return None
    return dt if dt.tzinfo is not None else dt.replace(tzinfo=timezone.utc)


def parse_key(raw: bytes | str) -> bytes:
    """A 32-byte key from base64 (standard or URL-safe), 64 hex characters, or 32 raw bytes."""
    if isinstance(raw, bytes):
        if len(raw) == 32:
            try:
                text = raw.decode("ascii").strip()
            except UnicodeDecodeError:
                return raw
        else:
            try:
                text = raw.decode("ascii").strip()
            except UnicodeDecodeError as exc:
                raise EvidenceError("the evidence key file must hold 32 raw bytes, or base64 or hex text") from exc
    else:
        text = raw.strip()
    if re.fullmatch(r"[0-9a-fA-F]{64}", text):
        return bytes.fromhex(text)
    padded = text + "=" * (-len(text) % 4)
    for altchars in (None, b"-_"):
        try:
            key = base64.b64decode(padded, altchars=altchars, validate=True)
        except (binascii.Error, ValueError):
            continue
        if len(key) == 32:
            return key
    if isinstance(raw, bytes) and len(raw) == 32:
        return raw
    raise EvidenceError("the evidence key must be 32 bytes (AES-256), given as base64 or 64 hex characters")


def generate_key() -> str:
    """A fresh random key as URL-safe base64 (what ``tripwire evidence keygen`` writes)."""
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode("ascii")


def key_fingerprint(key: bytes) -> str:
    """16 hex characters that name a key without revealing it."""
    return hashlib.sha256(b"tripwire-evidence-key-id\0" + key).hexdigest()[:16]


def check_sha256(value: str) -> str:
    sha = registry.get("sha256").valid(value or "")
    if sha is None:
        raise EvidenceError(f"{value!r} is not a SHA-256 (64 hex characters)")
    return sha


@dataclass
class EvidenceInfo:
    """What the database knows about one preserved object (never its bytes)."""

    sha256: str
    size: int
    media_type: str | None
    preserved_at: datetime | None
    preserved_by: str
    reason: str
    reported_at: datetime | None
    retain_until: datetime | None
    legal_hold: bool
    hold_reason: str | None
    purged_at: datetime | None
    item_ids: list[int] = field(default_factory=list)
    on_disk: bool = False

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = dict(self.__dict__)
        for key in ("preserved_at", "reported_at", "retain_until", "purged_at"):
            out[key] = out[key].isoformat() if out[key] else None
        return out


@dataclass
class PurgedEvidence:
    sha256: str
    size: int | None
    retain_until: datetime | None
    reported_at: datetime | None
    #: a file with no live row (crash after a purge, or a preserve that rolled back)
    orphan: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {"sha256": self.sha256, "size": self.size, "orphan": self.orphan,
                "retain_until": self.retain_until.isoformat() if self.retain_until else None,
                "reported_at": self.reported_at.isoformat() if self.reported_at else None}


class EvidenceStore:
    """Encrypted media under ``root``; metadata and the audit trail in the case database."""

    def __init__(self, root: str | Path, key: bytes | None = None, retention: timedelta = DEFAULT_RETENTION) -> None:
        self.root = Path(root).expanduser()
        self._key = key
        self.key_id = key_fingerprint(key) if key is not None else None
        self.retention = retention
        #: problems worth telling the operator about (a key file others can read); commands print them
        self.warnings: list[str] = []

    # -- construction --------------------------------------------------------------------------------

    @classmethod
    def from_config(cls, config: Any = None, environ: Mapping[str, str] | None = None, *,
                    root: str | Path | None = None, require_key: bool = True) -> "EvidenceStore":
        """The store named by ``[evidence]`` and the environment.

        ``[evidence] root`` (or ``$TRIPWIRE_EVIDENCE_DIR``) is the folder; the key comes from
        ``$TRIPWIRE_EVIDENCE_KEY`` or a key file (``$TRIPWIRE_EVIDENCE_KEY_FILE``, ``[evidence] key_file``);
        ``[evidence] retention_days`` (default 365) is the retention after preservation and after a report.
        """
        environ = os.environ if environ is None else environ
        section = dict(((getattr(config, "sections", None) or {}).get("evidence")) or {})
        unknown = set(section) - {"root", "key_file", "retention_days"}
        if "key" in section:
            raise EvidenceError("[evidence] key: never put the evidence key in the configuration file; "
                                f"use ${KEY_ENV} or a key file (${KEY_FILE_ENV}, [evidence] key_file)")
        if unknown:
            raise EvidenceError(f"unknown setting(s) in [evidence]: {', '.join(sorted(unknown))}")
        folder = root or environ.get(DIR_ENV) or section.get("root")
        if not folder:
            raise EvidenceError(f"no evidence folder configured: set [evidence] root or ${DIR_ENV}")
        try:
            days = int(section.get("retention_days", DEFAULT_RETENTION.days))
        except (TypeError, ValueError) as exc:
            raise EvidenceError("[evidence] retention_days must be a whole number of days") from exc
        if days < 1:
            raise EvidenceError("[evidence] retention_days must be at least 1")
        warnings: list[str] = []
        key = load_key(environ, section.get("key_file"), required=require_key, warn=warnings.append)
        store = cls(folder, key, timedelta(days=days))
        store.warnings = warnings
        return store

    # -- paths and crypto ----------------------------------------------------------------------------

    def path_of(self, sha256: str) -> Path:
        sha = check_sha256(sha256)
        return self.root / "objects" / sha[:2] / sha[2:4] / sha

    def _need_key(self) -> bytes:
        if self._key is None:
            raise EvidenceError(f"no evidence key: set ${KEY_ENV} or ${KEY_FILE_ENV} (or [evidence] key_file)")
        return self._key

    def _encrypt(self, sha: str, data: bytes) -> bytes:
        key = self._need_key()
        nonce = secrets.token_bytes(12)
        sealed = AESGCM(key).encrypt(nonce, data, sha.encode("ascii"))
        return MAGIC + bytes([VERSION]) + bytes.fromhex(self.key_id or "") + nonce + sealed

    def _decrypt(self, sha: str, blob: bytes) -> bytes:
        key = self._need_key()
        if len(blob) < _HEADER + 16 or blob[:4] != MAGIC:
            raise EvidenceError(f"evidence {sha}: not a tripwire evidence file")
        if blob[4] != VERSION:
            raise EvidenceError(f"evidence {sha}: unknown format version {blob[4]}")
        file_key_id = blob[5:13].hex()
        if file_key_id != self.key_id:
            raise EvidenceError(f"evidence {sha} was encrypted with key {file_key_id}; the configured key is {self.key_id}")
        nonce = blob[13:25]
        try:
            plain = AESGCM(key).decrypt(nonce, blob[25:], sha.encode("ascii"))
        except InvalidTag as exc:
            raise EvidenceError(f"evidence {sha}: authentication failed (wrong key, or the file was altered)") from exc
        if hashlib.sha256(plain).hexdigest() != sha:
            raise EvidenceError(f"evidence {sha}: decrypted bytes do not match their SHA-256")
        return plain

    def _write(self, sha: str, data: bytes) -> None:
        blob = self._encrypt(sha, data)
        path = self.path_of(sha)
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = path.parent / f".{sha}.{secrets.token_hex(6)}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(blob)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        _fsync_dir(path.parent)

    # -- operations ----------------------------------------------------------------------------------

    def has(self, sha256: str) -> bool:
        """Whether the encrypted bytes of ``sha256`` are on disk (metadata aside)."""
        try:
            return self.path_of(sha256).is_file()
        except EvidenceError:
            return False

    def preserve(self, session: Session, data: bytes, actor: str, reason: str, item_id: int | None = None,
                 retain_until: datetime | None = None, media_type: str | None = None) -> str:
        """Keep ``data`` encrypted; returns its SHA-256. Re-preserving extends retention, never shortens it."""
        if not reason or not reason.strip():
            raise EvidenceError("preserving evidence needs a reason (it is recorded in the audit trail)")
        self._need_key()
        assert self.key_id is not None  # set whenever there is a key
        sha = hashlib.sha256(data).hexdigest()
        now = utcnow()
        until = aware(retain_until) or now + self.retention
        row = session.get(EvidenceObject, sha)
        rewrite = row is None or row.purged_at is not None or not self.has(sha)
        if rewrite:
            self._write(sha, data)
        if row is None:
            row = EvidenceObject(sha256=sha, size=len(data), media_type=media_type, key_id=self.key_id,
                                 preserved_at=now, preserved_by=actor, reason=reason, reported_at=None,
                                 retain_until=until, legal_hold=False)
            session.add(row)
        else:
            if rewrite:
                row.key_id = self.key_id
                if row.purged_at is not None:
                    row.purged_at = None
                    row.preserved_at, row.preserved_by, row.reason = now, actor, reason
                    row.retain_until = until
            if aware(row.retain_until) < until:
                row.retain_until = until
            if media_type and not row.media_type:
                row.media_type = media_type
        session.flush()
        if item_id is not None and session.get(EvidenceItem, (sha, item_id)) is None:
            session.add(EvidenceItem(sha256=sha, item_id=item_id))
            session.flush()
        audit.append(session, "evidence.preserve", actor, subject=f"evidence:{sha}",
                     data={"reason": reason, "size": len(data), "item_id": item_id,
                           "retain_until": aware(row.retain_until).isoformat(), "written": rewrite})
        return sha

    def read(self, session: Session, sha256: str, actor: str, reason: str | None = None) -> bytes:
        """The decrypted bytes; the read is an audit event in ``session`` (commit it).

        Nothing is written before the bytes are known to be good, so a failure leaves ``session`` untouched
        and is recorded as ``evidence.read_failed`` (with the error) in a separate, committed transaction.
        """
        sha = check_sha256(sha256)
        try:
            row, plain = self._open(session, sha)
        except EvidenceError as exc:
            self._audit_failure(session, sha, actor, reason, exc)
            raise
        audit.append(session, "evidence.read", actor, subject=f"evidence:{sha}", data={"reason": reason, "size": row.size})
        session.flush()
        return plain

    def _open(self, session: Session, sha: str) -> tuple[EvidenceObject, bytes]:
        """The object's row and decrypted, verified bytes (reads only: nothing is written)."""
        row = session.get(EvidenceObject, sha)
        if row is None:
            raise EvidenceError(f"no preserved evidence {sha}")
        if row.purged_at is not None:
            raise EvidenceError(f"evidence {sha} was purged on {_iso(row.purged_at)}")
        self._need_key()
        if row.key_id != self.key_id:
            raise EvidenceError(f"evidence {sha} was encrypted with key {row.key_id}; the configured key is {self.key_id}")
        try:
            blob = self.path_of(sha).read_bytes()
        except FileNotFoundError as exc:
            raise EvidenceError(f"evidence {sha}: the encrypted file is missing from {self.root}") from exc
        except OSError as exc:
            raise EvidenceError(f"evidence {sha}: cannot read the encrypted file: {exc.strerror or exc}") from exc
        return row, self._decrypt(sha, blob)

    def _audit_failure(self, session: Session, sha: str, actor: str, reason: str | None, error: EvidenceError) -> None:
        """``evidence.read_failed``, in its own committed transaction: the caller's rolls back with the error.

        If the caller's transaction has already written (it holds the database's write lock, or the audit
        head's row lock), a second transaction would wait for it; the event then goes into the caller's
        transaction instead, and is kept if the caller handles the error and commits."""
        data = {"reason": reason, "error": str(error), "key_id": self.key_id}
        try:
            if _has_written(session):
                audit.append(session, "evidence.read_failed", actor, subject=f"evidence:{sha}", data=data)
                return
            bind = session.get_bind()
            engine = bind.engine if isinstance(bind, Connection) else bind
            with Session(engine) as side, side.begin():
                if engine.dialect.name == "postgresql":  # never wait long on a lock someone else holds
                    side.execute(sql_text("SET LOCAL lock_timeout = '10s'"))
                audit.append(side, "evidence.read_failed", actor, subject=f"evidence:{sha}", data=data)
        except Exception as exc:  # the read fails either way; say that its failure could not be recorded
            error.args = (f"{error} (and recording the failed read in the audit trail failed: "
                          f"{exc.__class__.__name__}: {exc})",)

    def _row(self, session: Session, sha256: str) -> EvidenceObject:
        sha = check_sha256(sha256)
        row = session.get(EvidenceObject, sha)
        if row is None:
            raise EvidenceError(f"no preserved evidence {sha}")
        return row

    def hold(self, session: Session, sha256: str, actor: str, reason: str) -> EvidenceInfo:
        """Put a legal hold on an object: purge skips it until released, whatever its retention."""
        if not reason or not reason.strip():
            raise EvidenceError("a legal hold needs a reason (for example the legal process it answers)")
        row = self._row(session, sha256)
        if row.purged_at is not None:
            raise EvidenceError(f"evidence {row.sha256} was already purged: nothing left to hold")
        row.legal_hold, row.hold_reason, row.hold_by, row.hold_at = True, reason, actor, utcnow()
        session.flush()
        audit.append(session, "evidence.hold", actor, subject=f"evidence:{row.sha256}", data={"reason": reason})
        return self._info(session, row)

    def release(self, session: Session, sha256: str, actor: str, reason: str) -> EvidenceInfo:
        """Lift a legal hold; the object is purged once its retention has ended."""
        row = self._row(session, sha256)
        if not row.legal_hold:
            raise EvidenceError(f"evidence {row.sha256} has no legal hold")
        row.legal_hold = False
        session.flush()
        audit.append(session, "evidence.release", actor, subject=f"evidence:{row.sha256}",
                     data={"reason": reason, "held_for": row.hold_reason})
        row.hold_reason = row.hold_by = None
        row.hold_at = None
        session.flush()
        return self._info(session, row)

    def mark_reported(self, session: Session, sha256: str, actor: str, reported_at: datetime | None = None,
                      reference: str | None = None) -> EvidenceInfo:
        """Record a report of this object: retention runs until ``reported_at`` + the retention period."""
        row = self._row(session, sha256)
        when = aware(reported_at) or utcnow()
        row.reported_at = when if row.reported_at is None or aware(row.reported_at) < when else row.reported_at
        until = when + self.retention
        if aware(row.retain_until) < until:
            row.retain_until = until
        session.flush()
        audit.append(session, "evidence.reported", actor, subject=f"evidence:{row.sha256}",
                     data={"reference": reference, "reported_at": when.isoformat(),
                           "retain_until": aware(row.retain_until).isoformat()})
        return self._info(session, row)

    def purge(self, session: Session, now: datetime | None = None, actor: str = "tripwire") -> list[PurgedEvidence]:
        """Delete every object whose retention has ended and that has no legal hold.

        Rows are marked purged (and audited) in ``session``; files are unlinked when it commits. Files left
        behind by a crash, and files with no row older than an hour, are removed as well.
        """
        now = aware(now) or utcnow()
        purged: list[PurgedEvidence] = []
        paths: list[Path] = []
        rows = session.scalars(
            select(EvidenceObject).where(EvidenceObject.purged_at.is_(None), EvidenceObject.legal_hold.is_(False),
                                         EvidenceObject.retain_until <= now).order_by(EvidenceObject.sha256)
        ).all()
        for row in rows:
            row.purged_at = now
            purged.append(PurgedEvidence(row.sha256, row.size, aware(row.retain_until), aware(row.reported_at)))
            paths.append(self.path_of(row.sha256))
            audit.append(session, "evidence.purge", actor, subject=f"evidence:{row.sha256}",
                         data={"retain_until": aware(row.retain_until).isoformat(),
                               "reported_at": aware(row.reported_at).isoformat() if row.reported_at else None,
                               "size": row.size})
        session.flush()
        for sha, path in self._leftovers(session, now, {p.sha256 for p in purged}):
            purged.append(PurgedEvidence(sha, None, None, None, orphan=True))
            paths.append(path)
        if purged:
            _unlink_after_commit(session, paths)
        return purged

    def _leftovers(self, session: Session, now: datetime, skip: set[str]) -> list[tuple[str, Path]]:
        objects = self.root / "objects"
        if not objects.is_dir():
            return []
        found: dict[str, Path] = {}
        for path in objects.glob("*/*/*"):
            if _SHA256.match(path.name) and path.name not in skip and path.is_file():
                found[path.name] = path
        if not found:
            return []
        live: dict[str, bool] = {}
        names = sorted(found)
        for start in range(0, len(names), 500):
            chunk = names[start : start + 500]
            for sha, purged_at in session.execute(
                select(EvidenceObject.sha256, EvidenceObject.purged_at).where(EvidenceObject.sha256.in_(chunk))
            ):
                live[sha] = purged_at is None
        out = []
        cutoff = time.time() - ORPHAN_GRACE.total_seconds()
        for sha, path in found.items():
            if sha in live:
                if not live[sha]:
                    out.append((sha, path))  # row says purged: a crash came between commit and unlink
            elif path.stat().st_mtime < cutoff:
                out.append((sha, path))
        return out

    def info(self, session: Session, sha256: str) -> EvidenceInfo:
        return self._info(session, self._row(session, sha256))

    def list(self, session: Session, include_purged: bool = False, item_id: int | None = None) -> list[EvidenceInfo]:
        q = select(EvidenceObject)
        if not include_purged:
            q = q.where(EvidenceObject.purged_at.is_(None))
        if item_id is not None:
            q = q.where(EvidenceObject.sha256.in_(select(EvidenceItem.sha256).where(EvidenceItem.item_id == item_id)))
        return [self._info(session, row) for row in session.scalars(q.order_by(EvidenceObject.preserved_at, EvidenceObject.sha256))]

    def shas_of_items(self, session: Session, item_ids: builtins.list[int]) -> builtins.list[str]:
        """Preserved objects that belong to any of ``item_ids``."""
        if not item_ids:
            return []
        return sorted(set(session.scalars(select(EvidenceItem.sha256).where(EvidenceItem.item_id.in_(item_ids)))))

    def _info(self, session: Session, row: EvidenceObject) -> EvidenceInfo:
        items = sorted(session.scalars(select(EvidenceItem.item_id).where(EvidenceItem.sha256 == row.sha256)))
        return EvidenceInfo(row.sha256, row.size, row.media_type, aware(row.preserved_at), row.preserved_by, row.reason,
                            aware(row.reported_at), aware(row.retain_until), bool(row.legal_hold), row.hold_reason,
                            aware(row.purged_at), items, self.has(row.sha256))


def load_key(environ: Mapping[str, str], key_file: str | None = None, required: bool = True,
             warn: Callable[[str], None] | None = None) -> bytes | None:
    """The key from ``$TRIPWIRE_EVIDENCE_KEY``, else ``$TRIPWIRE_EVIDENCE_KEY_FILE``, else ``key_file``.

    ``warn`` hears about a key file that its group or other users can read (it should be mode 0600)."""
    value = environ.get(KEY_ENV)
    if value:
        return parse_key(value)
    path = environ.get(KEY_FILE_ENV) or key_file
    if path:
        file = Path(path).expanduser()
        try:
            raw = file.read_bytes()
            mode = file.stat().st_mode
        except OSError as exc:
            raise EvidenceError(f"cannot read the evidence key file {path}: {exc}") from exc
        if mode & 0o044 and warn is not None:
            who = " and ".join(w for w, bit in (("its group", 0o040), ("all users", 0o004)) if mode & bit)
            warn(f"the evidence key file {path} is readable by {who} (mode {mode & 0o777:04o}): "
                 f"anyone who can read it can decrypt all preserved evidence; run chmod 600 {path}")
        return parse_key(raw)
    if required:
        raise EvidenceError(f"no evidence key: set ${KEY_ENV} or ${KEY_FILE_ENV} (or [evidence] key_file)")
    return None


def _has_written(session: Session) -> bool:
    """Whether ``session``'s transaction has written anything yet (and so may hold locks a second transaction
    would wait for). Unknown databases are assumed to have."""
    conn = session.connection()
    dialect = conn.dialect.name
    if dialect == "sqlite":  # pysqlite opens a transaction only before the first write
        return bool(getattr(conn.connection.dbapi_connection, "in_transaction", True))
    if dialect == "postgresql":  # a transaction id is assigned at the first write
        return conn.execute(sql_text("SELECT txid_current_if_assigned()")).scalar() is not None
    return True


def _iso(value: datetime | None) -> str:
    dt = aware(value)
    return dt.isoformat() if dt is not None else "?"


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _unlink_after_commit(session: Session, paths: list[Path]) -> None:
    state = {"active": True}

    def on_commit(_session: Session) -> None:
        if not state["active"]:
            return
        state["active"] = False
        for path in paths:
            try:
                path.unlink()
            except FileNotFoundError:
                pass

    def on_rollback(_session: Session) -> None:
        state["active"] = False

    event.listen(session, "after_commit", on_commit, once=True)
    event.listen(session, "after_rollback", on_rollback, once=True)
