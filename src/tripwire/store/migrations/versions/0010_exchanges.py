"""Exchanges (ThreatExchange, NCMEC, StopNCII, hash-list files): configuration, checkpoints, fetch status, and
the source records behind each value they put in a bank (tripwire.banks.exchanges, docs/exchanges.md).

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

_BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "exchanges",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(200), nullable=False, unique=True),
        sa.Column("api", sa.String(64), nullable=False),
        sa.Column("bank_id", sa.Integer(), sa.ForeignKey("banks.id", ondelete="CASCADE"), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("settings", sa.JSON(), nullable=False),
        sa.Column("base_url", sa.String(500), nullable=True),
        sa.Column("checkpoint", sa.JSON(), nullable=True),
        sa.Column("checkpoint_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("records", sa.BigInteger(), nullable=False),
        sa.Column("pages", sa.BigInteger(), nullable=False),
        sa.Column("pages_skipped", sa.Integer(), nullable=False),
        sa.Column("last_fetch_started", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_fetch_finished", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_success", sa.Boolean(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("rematch_entry_id", sa.BigInteger(), nullable=True),
        sa.Column("rematch_change_id", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "exchange_records",
        sa.Column("id", _BIG_ID, primary_key=True, autoincrement=True),
        sa.Column("exchange_id", sa.Integer(), sa.ForeignKey("exchanges.id", ondelete="CASCADE"), nullable=False),
        sa.Column("key", sa.String(300), nullable=False),
        sa.Column("signal_type", sa.String(32), nullable=False),
        sa.Column("value", sa.String(1024), nullable=False),
        sa.UniqueConstraint("exchange_id", "key", "signal_type", "value", name="uq_exchange_records"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_exchange_records_value", "exchange_records", ["value", "exchange_id"])


def downgrade() -> None:
    op.drop_table("exchange_records")
    op.drop_table("exchanges")
