"""Tables for hash banks: banks, their entries (with tombstones), and a change log for index sync.

``bank_entries`` holds one row per (bank, signal type, value). A removed entry keeps its row with
``removed_at`` set (a tombstone): the audit trail survives, a re-import of the same list does not bring a
deliberately removed false positive back, and the matcher sees removals through ``bank_changes``.

``bank_changes`` is an append-only log of the operations that the PDQ index cannot see by watching new
entry ids (removals, restores, dropped banks). A persisted index remembers the last entry id and the last
change id it has applied, so reopening it costs two indexed range queries, not a rebuild.

``bank_contents`` and ``bank_content_entries`` group entries into content items as HMA keeps them (one
piece of content carrying several signals, a note, metadata and a disable time): see
:mod:`tripwire.banks.contents`. An entry in no item is an item of its own, whose id is the entry's id.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    event,
)
from sqlalchemy.orm import Mapped, mapped_column

from ..store.models import Base, utcnow

#: 64-bit ids on PostgreSQL; SQLite needs INTEGER for the rowid alias that makes autoincrement work
BigId = BigInteger().with_variant(Integer(), "sqlite")


class Bank(Base):
    __tablename__ = "banks"
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    source: Mapped[str] = mapped_column(String(200), default="")
    description: Mapped[str] = mapped_column(Text, default="")
    category_scheme: Mapped[str] = mapped_column(String(20), default="vics")
    #: an allow-list: its matches suppress matches from the other banks
    negative: Mapped[bool] = mapped_column(Boolean, default=False)
    pdq_radius: Mapped[int] = mapped_column(Integer, default=31)
    min_quality: Mapped[int] = mapped_column(Integer, default=50)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class BankEntry(Base):
    __tablename__ = "bank_entries"
    __table_args__ = (
        # leading ``value`` makes this the exact-digest lookup index as well as the dedupe key
        UniqueConstraint("value", "signal_type", "bank_id", name="uq_bank_entries_value"),
        # PDQ index sync (new active pdq rows by id) and the active-count consistency check
        Index("ix_bank_entries_sync", "signal_type", "removed_at", "id"),
        Index("ix_bank_entries_bank", "bank_id", "source_id"),
        # ids are never reused on SQLite either: a persisted PDQ index refers to entries by id
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    bank_id: Mapped[int] = mapped_column(ForeignKey("banks.id", ondelete="CASCADE"))
    signal_type: Mapped[str] = mapped_column(String(32))
    value: Mapped[str] = mapped_column(String(1024))
    category: Mapped[str | None] = mapped_column(String(100), nullable=True)
    source_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    series: Mapped[str | None] = mapped_column(String(200), nullable=True)
    tags: Mapped[list | None] = mapped_column(JSON, nullable=True)
    notes: Mapped[str | None] = mapped_column(Text, nullable=True)
    added_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    removed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    removed_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    #: the whole value when ``value`` holds only its key (``SignalType.storage_key``: vPDQ's frame list is
    #: too long for the key column and its index); NULL for every other type
    data: Mapped[str | None] = mapped_column(Text, nullable=True)


class BankChange(Base):
    """One removal, restore or bank drop, in order (the PDQ index replays these)."""

    __tablename__ = "bank_changes"
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    #: no foreign key: the log outlives a dropped bank
    bank_id: Mapped[int] = mapped_column(Integer)
    entry_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    op: Mapped[str] = mapped_column(String(20))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class BankContent(Base):
    """One content item (HMA's ``bank_content``): the entries added together, with a note and metadata.

    Its id is the smallest id of its entries, so content ids and the ids of entries in no item never clash
    (entry ids are never reused) and an HMA client sees one id space."""

    __tablename__ = "bank_contents"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=False)
    bank_id: Mapped[int] = mapped_column(ForeignKey("banks.id", ondelete="CASCADE"), index=True)
    note: Mapped[str | None] = mapped_column(String(255), nullable=True)
    #: HMA's user metadata (content_id, content_uri, json)
    user_metadata: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    #: HMA's magic values: 1 enabled, 0 disabled, else a Unix time until which look-ups skip the item
    disable_until_ts: Mapped[int] = mapped_column(BigInteger, default=1)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    #: indexed: look-up processes read the items changed since they last looked (contents.ContentMap)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)


class BankContentEntry(Base):
    """Which content item an entry belongs to (an entry belongs to at most one)."""

    __tablename__ = "bank_content_entries"

    entry_id: Mapped[int] = mapped_column(BigId, ForeignKey("bank_entries.id", ondelete="CASCADE"), primary_key=True,
                                          autoincrement=False)
    content_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("bank_contents.id", ondelete="CASCADE"), index=True)


#: PostgreSQL only (migration 0011): a statement trigger on these tables takes the bank-write lock, so that
#: bank writers commit in id order, and NOTIFYs ``tripwire_banks`` for the replicas (service/replicas.py)
BANK_WRITE_TABLES = ("banks", "bank_entries", "bank_changes")
_BANK_WRITE_FUNCTION = """
        CREATE FUNCTION tripwire_bank_write() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_advisory_xact_lock(8392226331192879987);
            PERFORM pg_notify('tripwire_banks', TG_TABLE_NAME);
            RETURN NULL;
        END $$"""


@event.listens_for(Base.metadata, "after_create")
def _bank_write_triggers(_metadata: Any, connection: Any, tables: Any = (), **_kw: Any) -> None:
    """Give a schema created from the models (``store.db.create_schema``) the triggers migration 0011 creates:
    ``create_all`` knows only tables. The function's text is the migration's, byte for byte (tests/test_store.py
    compares the two schemas' triggers and functions)."""
    if connection.dialect.name != "postgresql" or not set(BANK_WRITE_TABLES) <= {t.name for t in tables}:
        return
    connection.exec_driver_sql(_BANK_WRITE_FUNCTION)
    for table in BANK_WRITE_TABLES:
        connection.exec_driver_sql(f"CREATE TRIGGER tripwire_bank_write BEFORE INSERT OR UPDATE OR DELETE ON {table} "
                                   "FOR EACH STATEMENT EXECUTE FUNCTION tripwire_bank_write()")
