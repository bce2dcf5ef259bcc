"""Tables the service adds: API keys (salted hashes only) and console sessions.

An API key is shown once when it is created and never stored: the table keeps its public id, a random
salt and HMAC-SHA256(salt, key). Keys are 256-bit random secrets, so a slow password hash buys nothing;
what matters is that a copy of the database does not hand out working keys.

Console sessions live server-side: the browser holds a random token (cookie), the table holds its
SHA-256, so logging out or revoking the key ends the session at once.

Rate-limit buckets shared by replicas on PostgreSQL (:mod:`.ratelimit`): one row per API key or login
address, its tokens as of ``updated_at`` (the database's clock, so hosts' clocks never disagree).

The review queue moved to :mod:`tripwire.review.models` (the pipeline's actions step writes it).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Float, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from ..store.models import Base, utcnow

ROLES: tuple[str, ...] = ("admin", "reviewer", "submitter", "auditor")


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    #: the public part of the key (``twk_<key_id>_<secret>``): how a key is named in logs and the audit trail
    key_id: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(20))
    salt: Mapped[str] = mapped_column(String(64))
    key_hash: Mapped[str] = mapped_column(String(64))
    #: requests per second allowed for this key (None: the service default)
    rate_per_s: Mapped[float | None] = mapped_column(Float, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    created_by: Mapped[str] = mapped_column(String(200))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class ConsoleSession(Base):
    __tablename__ = "console_sessions"

    #: SHA-256 of the cookie's token (the token itself is never stored)
    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    key_id: Mapped[str] = mapped_column(String(32), index=True)
    csrf: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class RateBucket(Base):
    """A token bucket every replica spends from (see :class:`~tripwire.service.ratelimit.SharedRateLimiter`)."""

    __tablename__ = "rate_buckets"

    #: an API key id, or ``login:<client address>``
    name: Mapped[str] = mapped_column(String(300), primary_key=True)
    #: may be negative: requests replicas admitted before they heard of each other, repaid by the refill
    tokens: Mapped[float] = mapped_column(Float)
    rate: Mapped[float] = mapped_column(Float)
    burst: Mapped[float] = mapped_column(Float)
    #: seconds since the epoch, by the database's clock
    updated_at: Mapped[float] = mapped_column(Float)
