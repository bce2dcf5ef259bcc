"""Tables for review: item context, the review queue, decisions, and the hash-chained audit trail.

Automated output only prioritises and recommends; a report or a shared signal about a person needs a
recorded human decision (../shared/SAFETY.md, rule 8). ``decisions`` is that record. ``audit_events`` is
append-only and hash-chained (each event's hash covers the previous event's hash), so an edited, deleted
or reordered event is detectable by ``tripwire audit verify``. ``review_queue`` holds the items the policy
sent to a person, with the state of their review: ``open`` (waiting), ``escalated`` (a reviewer asked for a
second look) and ``decided``; the pipeline's actions step writes it with the items.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, DateTime, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from ..store.models import Base, utcnow

DECISIONS = ("confirmed_abuse", "not_abuse", "ai_generated", "needs_escalation")
#: an undo: takes back the item's newest decision (recorded as a decision of its own, never a rewrite); the
#: item is to be reviewed again and nothing downstream treats it as decided
WITHDRAWN = "withdrawn"
QUEUE_STATES: tuple[str, ...] = ("open", "escalated", "decided")


class ItemContext(Base):
    """Where an item came from on a platform (sent with an upload or a post feed): report material."""

    __tablename__ = "item_context"

    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"), primary_key=True)
    platform: Mapped[str | None] = mapped_column(String(100), nullable=True)
    post_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    url: Mapped[str | None] = mapped_column(Text, nullable=True)
    account_id: Mapped[str | None] = mapped_column(String(200), nullable=True, index=True)
    account_handle: Mapped[str | None] = mapped_column(String(200), nullable=True)
    profile_url: Mapped[str | None] = mapped_column(Text, nullable=True)
    #: [{"ip": "203.0.113.5", "at": "2026-11-25T10:00:00Z", "event": "Upload"}] when the platform supplies them
    ip_events: Mapped[list | None] = mapped_column(JSON, nullable=True)
    extra: Mapped[dict | None] = mapped_column(JSON, nullable=True)


class QueueEntry(Base):
    __tablename__ = "review_queue"
    __table_args__ = (Index("ix_review_queue_state_priority", "state", "priority"),)

    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"), primary_key=True)
    state: Mapped[str] = mapped_column(String(20))
    #: what the policy did with the item, and the rule that decided it
    action: Mapped[str] = mapped_column(String(20))
    rule: Mapped[str | None] = mapped_column(String(200), nullable=True)
    priority: Mapped[float] = mapped_column(Float)
    queued_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Decision(Base):
    """A reviewer's decision on one item. Append-only: a new decision supersedes, never overwrites."""

    __tablename__ = "decisions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"), index=True)
    decision: Mapped[str] = mapped_column(String(40))
    note: Mapped[str | None] = mapped_column(Text, nullable=True)
    reviewer: Mapped[str] = mapped_column(String(200))
    #: bank the item's hashes were added to on a confirmed decision, if any
    bank: Mapped[str | None] = mapped_column(String(200), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class AuditEvent(Base):
    __tablename__ = "audit_events"

    seq: Mapped[int] = mapped_column(BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=False)
    at: Mapped[str] = mapped_column(String(40))  # ISO-8601 UTC text: hashed exactly as stored
    kind: Mapped[str] = mapped_column(String(60), index=True)
    actor: Mapped[str] = mapped_column(String(200))
    subject: Mapped[str | None] = mapped_column(String(400), nullable=True)
    data: Mapped[dict] = mapped_column(JSON)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditHead(Base):
    """One row: the last sequence number and hash. Updating it first serialises concurrent appenders."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger().with_variant(Integer(), "sqlite"))
    hash: Mapped[str] = mapped_column(String(64))
