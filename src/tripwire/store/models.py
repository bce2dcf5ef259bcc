"""Tables of the case database.

Content is stored once per SHA-256 (``contents`` + ``facts``); every place it occurs is an ``items`` row
(one per path in a case). ``sources`` marks top-level inputs whose items are all committed, which is what
makes a re-run skip finished work and a killed run resume without duplicates: a source's items and its
``sources`` row are written in the same transaction.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def iso(value: datetime | None) -> str | None:
    """A stored time as ISO 8601 with its UTC offset (SQLite hands back naive datetimes; they are UTC)."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.isoformat()


class Base(DeclarativeBase):
    pass


class Case(Base):
    __tablename__ = "cases"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Content(Base):
    __tablename__ = "contents"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    md5: Mapped[str] = mapped_column(String(32), index=True)
    sha1: Mapped[str] = mapped_column(String(40), index=True)
    size: Mapped[int] = mapped_column(BigInteger)
    media_type: Mapped[str] = mapped_column(String(100))
    width: Mapped[int | None] = mapped_column(Integer, nullable=True)
    height: Mapped[int | None] = mapped_column(Integer, nullable=True)
    pdq: Mapped[str | None] = mapped_column(String(64), nullable=True)
    pdq_quality: Mapped[int | None] = mapped_column(Integer, nullable=True)
    first_seen: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Fact(Base):
    """What one extractor (name + version) found in one content."""

    __tablename__ = "facts"

    sha256: Mapped[str] = mapped_column(ForeignKey("contents.sha256", ondelete="CASCADE"), primary_key=True)
    extractor: Mapped[str] = mapped_column(String(100), primary_key=True)
    version: Mapped[str] = mapped_column(String(50))
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    error_code: Mapped[str | None] = mapped_column(String(50), nullable=True)
    error_message: Mapped[str | None] = mapped_column(Text, nullable=True)


class ItemRow(Base):
    """One occurrence of a file (or archive member) in a case."""

    __tablename__ = "items"
    __table_args__ = (UniqueConstraint("case_id", "path_key", name="uq_items_case_path"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    #: sha256 of the path: a fixed-width unique key (paths can exceed index size limits)
    path_key: Mapped[str] = mapped_column(String(64))
    #: the display form (valid UTF-8; bytes that are not UTF-8 as ``\xNN``, see records.shown_path)
    path: Mapped[str] = mapped_column(Text)
    #: the path's exact bytes when ``path`` is not exact (a name that is not UTF-8), else NULL; the table's last
    #: column (``sort_order``), where migration 0006 added it, so that a new database has the migrated layout
    path_raw: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True, sort_order=1)
    source_path: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str | None] = mapped_column(ForeignKey("contents.sha256"), nullable=True, index=True)
    size: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    media_type: Mapped[str | None] = mapped_column(String(100), nullable=True)
    error_code: Mapped[str | None] = mapped_column(String(50), nullable=True, index=True)
    error_message: Mapped[str | None] = mapped_column(Text, nullable=True)
    #: fields set by pipeline stages after extraction (matching, triage): item-level, not content-level
    stage_data: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    priority: Mapped[float | None] = mapped_column(Float, nullable=True, index=True)
    scanned_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class SourceRow(Base):
    """A top-level input (file given or found by walking) whose items are all committed."""

    __tablename__ = "sources"

    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), primary_key=True)
    path_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    path: Mapped[str] = mapped_column(Text)
    #: as ``ItemRow.path_raw`` (last in the table, like the migrated one)
    path_raw: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True, sort_order=1)
    item_count: Mapped[int] = mapped_column(Integer)
    finished_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
