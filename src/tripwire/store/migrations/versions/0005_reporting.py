"""Reporting and preservation: evidence_objects, evidence_items, ncmec_submissions, ncmec_submission_items.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "evidence_objects",
        sa.Column("sha256", sa.String(64), primary_key=True),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("media_type", sa.String(100), nullable=True),
        sa.Column("key_id", sa.String(16), nullable=False),
        sa.Column("preserved_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("preserved_by", sa.String(200), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("reported_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("retain_until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("legal_hold", sa.Boolean(), nullable=False),
        sa.Column("hold_reason", sa.Text(), nullable=True),
        sa.Column("hold_by", sa.String(200), nullable=True),
        sa.Column("hold_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("purged_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_evidence_objects_retain_until", "evidence_objects", ["retain_until"])
    op.create_table(
        "evidence_items",
        sa.Column("sha256", sa.String(64), sa.ForeignKey("evidence_objects.sha256", ondelete="CASCADE"), primary_key=True),
        sa.Column("item_id", sa.Integer(), sa.ForeignKey("items.id", ondelete="CASCADE"), primary_key=True),
    )
    op.create_index("ix_evidence_items_item_id", "evidence_items", ["item_id"])
    op.create_table(
        "ncmec_submissions",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("key", sa.String(36), nullable=False, unique=True),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("base_url", sa.Text(), nullable=False),
        sa.Column("report_id", sa.BigInteger(), nullable=True),
        sa.Column("report_xml", sa.Text(), nullable=False),
        sa.Column("subject", sa.String(400), nullable=True),
        sa.Column("options", sa.JSON(), nullable=True),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("retracted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("lease_owner", sa.String(100), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_ncmec_submissions_state", "ncmec_submissions", ["state"])
    op.create_index("ix_ncmec_submissions_report_id", "ncmec_submissions", ["report_id"])
    op.create_table(
        "ncmec_submission_items",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("submission_id", sa.Integer(), sa.ForeignKey("ncmec_submissions.id", ondelete="CASCADE"), nullable=False),
        sa.Column("item_id", sa.Integer(), sa.ForeignKey("items.id"), nullable=False),
        sa.Column("decision_id", sa.Integer(), sa.ForeignKey("decisions.id"), nullable=False),
        sa.Column("live_item_id", sa.Integer(), nullable=True),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("file_name", sa.Text(), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("file_id", sa.String(200), nullable=True),
        sa.Column("uploaded_md5", sa.String(32), nullable=True),
        sa.Column("details_xml", sa.Text(), nullable=True),
        sa.UniqueConstraint("submission_id", "item_id", name="uq_ncmec_submission_items_item"),
        sa.UniqueConstraint("live_item_id", name="uq_ncmec_submission_items_live"),
    )
    op.create_index("ix_ncmec_submission_items_submission_id", "ncmec_submission_items", ["submission_id"])
    op.create_index("ix_ncmec_submission_items_decision_id", "ncmec_submission_items", ["decision_id"])


def downgrade() -> None:
    for table in ("ncmec_submission_items", "ncmec_submissions", "evidence_items", "evidence_objects"):
        op.drop_table(table)
