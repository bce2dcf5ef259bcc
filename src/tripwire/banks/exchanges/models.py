"""Tables for exchanges: their configuration and fetch state, and which source record holds which value.

``exchanges`` holds one row per configured exchange: the API (python-threatexchange's name for it), the bank it
fills, the collaboration settings (python-threatexchange's config dataclass as JSON, never credentials: those
come from the configuration file or the environment, see docs/exchanges.md), the last committed checkpoint and
the last fetch's status.

``exchange_records`` maps each source record key (NCMEC ``<member>-<entry id>``, ThreatExchange
``(type, indicator)``, a file's ``(type, value)``) to the values it contributed to the bank: a deletion or an
update names a key, not a value, and a value leaves the bank only when no record of the exchange still holds it.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, Boolean, DateTime, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ...store.models import Base, utcnow
from ..models import BigId


class Exchange(Base):
    __tablename__ = "exchanges"
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    api: Mapped[str] = mapped_column(String(64))
    bank_id: Mapped[int] = mapped_column(ForeignKey("banks.id", ondelete="CASCADE"))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    #: the API's collaboration settings (without name/api/enabled), JSON of its config dataclass
    settings: Mapped[dict] = mapped_column(JSON, default=dict)
    #: where the API's client connects instead of its built-in address (a proxy, a test server)
    base_url: Mapped[str | None] = mapped_column(String(500), nullable=True)
    #: the last committed checkpoint (JSON of the API's checkpoint dataclass); None: fetch from the start
    checkpoint: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    checkpoint_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    #: records (keys) currently held
    records: Mapped[int] = mapped_column(BigInteger, default=0)
    pages: Mapped[int] = mapped_column(BigInteger, default=0)
    pages_skipped: Mapped[int] = mapped_column(Integer, default=0)
    last_fetch_started: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    last_fetch_finished: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    #: None: never fetched (or a fetch is running); True/False: how the last one ended
    last_success: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    #: the banks' position (entry id, change id) before the first page not yet re-matched; None: all re-matched
    rematch_entry_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    rematch_change_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ExchangeRecord(Base):
    """One (source record key, signal type, value) an exchange put in its bank."""

    __tablename__ = "exchange_records"
    __table_args__ = (
        UniqueConstraint("exchange_id", "key", "signal_type", "value", name="uq_exchange_records"),
        # "does another record of this exchange still hold the value?"
        Index("ix_exchange_records_value", "value", "exchange_id"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    exchange_id: Mapped[int] = mapped_column(ForeignKey("exchanges.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(300))
    signal_type: Mapped[str] = mapped_column(String(32))
    value: Mapped[str] = mapped_column(String(1024))
