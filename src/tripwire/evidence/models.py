"""Tables of preserved evidence: the metadata of encrypted media kept by :mod:`tripwire.evidence.store`.

``evidence_objects``: the bytes live encrypted on disk, the key never in the database; the row says when it
was preserved and why, when it was reported, until when it must be kept, and whether a legal hold stops it
from being purged. A purged object keeps its row (``purged_at`` set) so the record of what was kept, and for
how long, outlives the bytes. ``evidence_items``: which items (occurrences in cases) an object belongs to.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, DateTime, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from ..store.models import Base, utcnow

__all__ = ["EvidenceItem", "EvidenceObject"]


class EvidenceObject(Base):
    """One preserved, encrypted media object (content-addressed by SHA-256)."""

    __tablename__ = "evidence_objects"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger)
    media_type: Mapped[str | None] = mapped_column(String(100), nullable=True)
    #: fingerprint of the key that encrypted it (never the key): a wrong key is named, not guessed at
    key_id: Mapped[str] = mapped_column(String(16))
    preserved_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    preserved_by: Mapped[str] = mapped_column(String(200))
    reason: Mapped[str] = mapped_column(Text)
    reported_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    retain_until: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    legal_hold: Mapped[bool] = mapped_column(Boolean, default=False)
    hold_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    hold_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    hold_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    purged_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class EvidenceItem(Base):
    """Which items (occurrences in cases) a preserved object belongs to."""

    __tablename__ = "evidence_items"

    sha256: Mapped[str] = mapped_column(ForeignKey("evidence_objects.sha256", ondelete="CASCADE"), primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"), primary_key=True, index=True)
