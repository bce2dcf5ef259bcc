"""Tables for reporting: CyberTipline submissions (preserved evidence has its own, :mod:`tripwire.evidence.models`).

``ncmec_submissions`` / ``ncmec_submission_items`` make CyberTipline submission idempotent. A submission
walks ``pending -> submitting -> opened -> finished`` (or ``retracted`` / ``failed``); every transition is
committed before the next request, so a crash resumes where it stopped. ``live_item_id`` is the item id while
the submission can still become (or is) a complete report and NULL once it is retracted or failed: its unique
index makes a second live report for the same item, and so for the same decision, impossible even for two
processes racing each other.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from ..review import models as _review  # noqa: F401  (the decisions table a submission item refers to)
from ..store.models import Base, utcnow

#: states of a submission, in order
SUBMISSION_STATES = ("pending", "submitting", "opened", "finished", "retracted", "failed")
#: states in which the submission still holds its items (a second report for them is refused)
LIVE_STATES = ("pending", "submitting", "opened", "finished")
#: states of one file inside a submission
FILE_STATES = ("pending", "uploaded", "detailed")


class NcmecSubmission(Base):
    """One CyberTipline report as tripwire drives it through the API."""

    __tablename__ = "ncmec_submissions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    #: tripwire's reference for this report (also written into the report's additionalInfo)
    key: Mapped[str] = mapped_column(String(36), unique=True)
    state: Mapped[str] = mapped_column(String(20), index=True)
    base_url: Mapped[str] = mapped_column(Text)
    report_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True, index=True)
    report_xml: Mapped[str] = mapped_column(Text)
    #: who the report is about (platform / account), for listings
    subject: Mapped[str | None] = mapped_column(String(400), nullable=True)
    options: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    submitted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    retracted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    #: /submit requests sent (more than one means an earlier response was lost)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    #: the process driving it now; another process waits for the lease to expire
    lease_owner: Mapped[str | None] = mapped_column(String(100), nullable=True)
    lease_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class NcmecSubmissionItem(Base):
    """One reviewed item (and its file) inside a submission."""

    __tablename__ = "ncmec_submission_items"
    __table_args__ = (
        UniqueConstraint("submission_id", "item_id", name="uq_ncmec_submission_items_item"),
        UniqueConstraint("live_item_id", name="uq_ncmec_submission_items_live"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    submission_id: Mapped[int] = mapped_column(ForeignKey("ncmec_submissions.id", ondelete="CASCADE"), index=True)
    #: no cascade: an item that was reported cannot silently disappear with its case
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id"))
    decision_id: Mapped[int] = mapped_column(ForeignKey("decisions.id"), index=True)
    live_item_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    sha256: Mapped[str] = mapped_column(String(64))
    file_name: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(20), default="pending")
    file_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    #: MD5 the server computed on upload (checked against ours)
    uploaded_md5: Mapped[str | None] = mapped_column(String(32), nullable=True)
    details_xml: Mapped[str | None] = mapped_column(Text, nullable=True)
