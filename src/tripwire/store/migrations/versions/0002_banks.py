"""Hash banks: banks, bank_entries (with tombstones) and bank_changes.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "banks",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(200), nullable=False, unique=True),
        sa.Column("source", sa.String(200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("category_scheme", sa.String(20), nullable=False),
        sa.Column("negative", sa.Boolean(), nullable=False),
        sa.Column("pdq_radius", sa.Integer(), nullable=False),
        sa.Column("min_quality", sa.Integer(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "bank_entries",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("bank_id", sa.Integer(), sa.ForeignKey("banks.id", ondelete="CASCADE"), nullable=False),
        sa.Column("signal_type", sa.String(32), nullable=False),
        sa.Column("value", sa.String(1024), nullable=False),
        sa.Column("category", sa.String(100), nullable=True),
        sa.Column("source_id", sa.String(200), nullable=True),
        sa.Column("series", sa.String(200), nullable=True),
        sa.Column("tags", sa.JSON(), nullable=True),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("removed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("removed_reason", sa.Text(), nullable=True),
        sa.UniqueConstraint("value", "signal_type", "bank_id", name="uq_bank_entries_value"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_bank_entries_sync", "bank_entries", ["signal_type", "removed_at", "id"])
    op.create_index("ix_bank_entries_bank", "bank_entries", ["bank_id", "source_id"])
    op.create_table(
        "bank_changes",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("bank_id", sa.Integer(), nullable=False),
        sa.Column("entry_id", sa.BigInteger(), nullable=True),
        sa.Column("op", sa.String(20), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sqlite_autoincrement=True,
    )


def downgrade() -> None:
    op.drop_table("bank_changes")
    op.drop_index("ix_bank_entries_bank", table_name="bank_entries")
    op.drop_index("ix_bank_entries_sync", table_name="bank_entries")
    op.drop_table("bank_entries")
    op.drop_table("banks")
