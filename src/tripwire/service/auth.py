"""API keys, roles, console sessions and CSRF tokens.

A key looks like ``twk_<key id>_<secret>``: the key id (12 hex digits) is public and names the key in logs
and in the audit trail; the secret is 256 random bits. Only ``HMAC-SHA256(salt, key)`` with a random
per-key salt is stored, so the database never holds a working key. Clients send the key as
``Authorization: Bearer <key>``.

Roles, and what each may do:

=============  =============================================================================
``admin``      everything: banks, keys, review, audit, metrics
``reviewer``   scan and look up, read banks, the review queue and console, decisions, media
``submitter``  scan and look up only (a platform's upload path)
``auditor``    read-only: the audit trail and its verification, banks, items, metrics
=============  =============================================================================

The console logs in with a key and gets a server-side session: a random token in a ``Secure; HttpOnly;
SameSite=Strict`` cookie, stored as its SHA-256 with a CSRF token that every console POST must echo.

The login form comes before any session, so its CSRF token is bound to a random nonce in a cookie instead,
and *signed* with the server's secret (``HMAC(secret, nonce, issued-at)``): a cookie+field pair a sibling
subdomain makes up does not verify. Over HTTPS the cookie is ``__Host-``-prefixed, which browsers refuse to
accept from any other host, so a pair taken from the real form cannot be planted either.
"""

from __future__ import annotations

import getpass
import hashlib
import hmac
import os
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from ..review import audit
from ..store.db import Database
from ..store.models import iso as _iso
from .models import ROLES, ApiKey, ConsoleSession

KEY_PREFIX = "twk"
SESSION_COOKIE = "tw_session"
LOGIN_CSRF_COOKIE = "tw_login_csrf"
#: the login form's token is accepted for this long after the form was served
LOGIN_CSRF_MAX_AGE_S = 3600
#: how long a verified key stays cached in the process (revocation elsewhere takes effect within this)
KEY_CACHE_S = 5.0
#: how often ``last_used_at`` is written for a key that keeps being used
LAST_USED_EVERY_S = 300.0

#: what each role may do; routes name the permission they need
PERMISSIONS: dict[str, frozenset[str]] = {
    "admin": frozenset({"scan", "lookup", "banks.read", "banks.write", "review.read", "review.decide", "media",
                        "audit.read", "keys", "metrics", "console"}),
    "reviewer": frozenset({"scan", "lookup", "banks.read", "review.read", "review.decide", "media", "console"}),
    "submitter": frozenset({"scan", "lookup"}),
    "auditor": frozenset({"banks.read", "review.read", "audit.read", "metrics", "console"}),
}


class AuthError(Exception):
    """A key or session is missing, malformed, unknown, revoked or expired (HTTP 401)."""


@dataclass(frozen=True)
class Principal:
    """Who is calling: the key (by its public id), its name and role, and how it was presented."""

    key_id: str
    name: str
    role: str
    rate_per_s: float | None = None
    #: "bearer" or "session"
    via: str = "bearer"
    csrf: str | None = None

    @property
    def actor(self) -> str:
        """How this caller appears in the audit trail and in decisions."""
        return f"{self.name}#{self.key_id}"

    def can(self, permission: str) -> bool:
        return permission in PERMISSIONS.get(self.role, frozenset())


@dataclass(frozen=True)
class CreatedKey:
    key: str
    key_id: str
    name: str
    role: str


def _hash(salt: str, key: str) -> str:
    return hmac.new(bytes.fromhex(salt), key.encode("utf-8"), hashlib.sha256).hexdigest()


def parse_key(key: str) -> str:
    """The key id of a well-formed key; AuthError otherwise."""
    parts = key.strip().split("_", 2)
    if len(parts) != 3 or parts[0] != KEY_PREFIX or len(parts[1]) != 12 or len(parts[2]) < 32:
        raise AuthError("malformed API key")
    try:
        int(parts[1], 16)
    except ValueError:
        raise AuthError("malformed API key") from None
    return parts[1]


def check_role(role: str) -> str:
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r} (expected one of {', '.join(ROLES)})")
    return role


def cli_actor() -> str:
    """The audit actor for commands run on the server's command line."""
    try:
        user = getpass.getuser()
    except Exception:  # no user name in a bare container
        user = str(os.getuid()) if hasattr(os, "getuid") else "unknown"
    return f"cli:{user}"


def create_key(session: Session, name: str, role: str, actor: str, rate_per_s: float | None = None) -> CreatedKey:
    """Create a key in ``session``'s transaction, with its audit event; the secret is returned once."""
    name = (name or "").strip()
    if not name or len(name) > 200:
        raise ValueError("a key name must be 1-200 characters")
    check_role(role)
    if rate_per_s is not None and rate_per_s <= 0:
        raise ValueError("the rate limit must be positive")
    key_id = secrets.token_hex(6)
    key = f"{KEY_PREFIX}_{key_id}_{secrets.token_urlsafe(32)}"
    salt = secrets.token_hex(16)
    session.add(ApiKey(key_id=key_id, name=name, role=role, salt=salt, key_hash=_hash(salt, key),
                       rate_per_s=rate_per_s, created_at=datetime.now(timezone.utc), created_by=actor))
    session.flush()
    audit.append(session, "key.create", actor, subject=f"key:{key_id}",
                 data={"key_id": key_id, "name": name, "role": role, "rate_per_s": rate_per_s})
    return CreatedKey(key, key_id, name, role)


def revoke_key(session: Session, key_id: str, actor: str) -> bool:
    """Revoke a key and end its console sessions (with an audit event); False when no active key has that id."""
    now = datetime.now(timezone.utc)
    row = session.scalar(select(ApiKey).where(ApiKey.key_id == key_id))
    if row is None or row.revoked_at is not None:
        return False
    row.revoked_at = now
    session.execute(update(ConsoleSession).where(ConsoleSession.key_id == key_id, ConsoleSession.revoked_at.is_(None))
                    .values(revoked_at=now))
    audit.append(session, "key.revoke", actor, subject=f"key:{key_id}", data={"key_id": key_id, "name": row.name, "role": row.role})
    return True


def list_keys(session: Session) -> list[dict[str, Any]]:
    rows = session.scalars(select(ApiKey).order_by(ApiKey.created_at, ApiKey.id))
    return [{"key_id": r.key_id, "name": r.name, "role": r.role, "rate_per_s": r.rate_per_s,
             "created_at": _iso(r.created_at), "created_by": r.created_by, "revoked_at": _iso(r.revoked_at),
             "last_used_at": _iso(r.last_used_at)} for r in rows]


@dataclass
class _CachedKey:
    salt: str
    key_hash: str
    principal: Principal
    revoked: bool
    fetched: float


class KeyVerifier:
    """Verifies keys and sessions against the database, with a short in-process cache."""

    def __init__(self, db: Database, session_hours: float = 12.0) -> None:
        self.db = db
        self.session_hours = session_hours
        self._cache: dict[str, _CachedKey] = {}
        self._last_used: dict[str, float] = {}
        self._lock = threading.Lock()

    def forget(self, key_id: str | None = None) -> None:
        """Drop cached keys (all, or one that was just revoked)."""
        with self._lock:
            if key_id is None:
                self._cache.clear()
            else:
                self._cache.pop(key_id, None)

    def _lookup(self, key_id: str) -> _CachedKey | None:
        now = time.monotonic()
        with self._lock:
            cached = self._cache.get(key_id)
        if cached is not None and now - cached.fetched < KEY_CACHE_S:
            return cached
        with self.db.session() as s:
            row = s.scalar(select(ApiKey).where(ApiKey.key_id == key_id))
            if row is None:
                with self._lock:
                    self._cache.pop(key_id, None)
                return None
            entry = _CachedKey(row.salt, row.key_hash, Principal(row.key_id, row.name, row.role, row.rate_per_s),
                               row.revoked_at is not None, now)
        with self._lock:
            self._cache[key_id] = entry
        return entry

    def needs_db(self, key_id: str) -> bool:
        """True when verifying this key id would query the database (the caller may move off the event loop)."""
        with self._lock:
            cached = self._cache.get(key_id)
        return cached is None or time.monotonic() - cached.fetched >= KEY_CACHE_S

    def verify_key(self, key: str) -> Principal:
        key_id = parse_key(key)
        entry = self._lookup(key_id)
        if entry is None or not hmac.compare_digest(entry.key_hash, _hash(entry.salt, key.strip())):
            raise AuthError("unknown API key")
        if entry.revoked:
            raise AuthError("this API key has been revoked")
        self._touch(key_id)
        return entry.principal

    def _touch(self, key_id: str) -> None:
        now = time.monotonic()
        with self._lock:
            last = self._last_used.get(key_id)
            if last is not None and now - last < LAST_USED_EVERY_S:
                return
            self._last_used[key_id] = now
        try:
            with self.db.session() as s:
                s.execute(update(ApiKey).where(ApiKey.key_id == key_id).values(last_used_at=datetime.now(timezone.utc)))
        except Exception:  # bookkeeping only: never fail a request because of it
            pass

    # -- console sessions ---------------------------------------------------------------------------------

    def open_session(self, key: str) -> tuple[str, Principal]:
        """Log in with a key: returns the cookie token and the principal (with its CSRF token)."""
        principal = self.verify_key(key)
        token = secrets.token_urlsafe(32)
        csrf = secrets.token_urlsafe(32)
        now = datetime.now(timezone.utc)
        with self.db.session() as s:
            s.add(ConsoleSession(token_hash=hashlib.sha256(token.encode()).hexdigest(), key_id=principal.key_id,
                                 csrf=csrf, created_at=now, expires_at=now + timedelta(hours=self.session_hours)))
            audit.append(s, "session.login", principal.actor, subject=f"key:{principal.key_id}", data={"role": principal.role})
        return token, Principal(principal.key_id, principal.name, principal.role, principal.rate_per_s, "session", csrf)

    def verify_session(self, token: str) -> Principal:
        digest = hashlib.sha256(token.encode()).hexdigest()
        with self.db.session() as s:
            row = s.get(ConsoleSession, digest)
            if row is None or row.revoked_at is not None:
                raise AuthError("not logged in")
            expires = row.expires_at if row.expires_at.tzinfo else row.expires_at.replace(tzinfo=timezone.utc)
            if expires <= datetime.now(timezone.utc):
                raise AuthError("the session has expired")
            csrf, key_id = row.csrf, row.key_id
        entry = self._lookup(key_id)
        if entry is None or entry.revoked:
            raise AuthError("the key behind this session has been revoked")
        p = entry.principal
        return Principal(p.key_id, p.name, p.role, p.rate_per_s, "session", csrf)

    def close_session(self, token: str) -> None:
        digest = hashlib.sha256(token.encode()).hexdigest()
        with self.db.session() as s:
            s.execute(update(ConsoleSession).where(ConsoleSession.token_hash == digest)
                      .values(revoked_at=datetime.now(timezone.utc)))


def csrf_ok(expected: str | None, given: str | None) -> bool:
    return bool(expected) and bool(given) and hmac.compare_digest(str(expected), str(given))


def login_csrf_cookie(secure: bool) -> str:
    """The login nonce cookie's name: ``__Host-`` prefixed when cookies are ``Secure`` (a browser then accepts it
    only from this exact host, with ``Path=/`` and no ``Domain``: no sibling subdomain can set or replace it)."""
    return f"__Host-{LOGIN_CSRF_COOKIE}" if secure else LOGIN_CSRF_COOKIE


def _login_signature(secret: bytes, nonce: str, issued: int) -> str:
    mac = hmac.new(secret, b"tripwire-login-csrf\0" + nonce.encode("utf-8") + b"\0" + str(issued).encode(), hashlib.sha256)
    return mac.hexdigest()


def login_csrf_token(secret: bytes, nonce: str, now: float | None = None) -> str:
    """The login form's hidden field for the cookie's ``nonce``: ``<issued-at>.<HMAC(secret, nonce, issued-at)>``."""
    issued = int(time.time() if now is None else now)
    return f"{issued}.{_login_signature(secret, nonce, issued)}"


def login_csrf_ok(secret: bytes, nonce: str | None, token: str | None, now: float | None = None) -> bool:
    """Whether ``token`` was issued by this server (its secret) for ``nonce`` within the last hour."""
    if not nonce or not token:
        return False
    issued_text, _, signature = str(token).partition(".")
    try:
        issued = int(issued_text)
    except ValueError:
        return False
    age = (time.time() if now is None else now) - issued
    if not -60 <= age <= LOGIN_CSRF_MAX_AGE_S:
        return False
    return hmac.compare_digest(_login_signature(secret, str(nonce), issued), signature)
