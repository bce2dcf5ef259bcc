"""Series of generated images (same checkpoint, LoRA set and prompt template): series, membership and the
persisted LSH buckets that let a later scan place new items without re-reading the old ones
(tripwire.match.series, docs/series.md).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-17
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "series",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("block", sa.String(32), nullable=False),
        sa.Column("checkpoint", sa.String(300), nullable=True),
        sa.Column("model", sa.Text(), nullable=True),
        sa.Column("model_hash", sa.String(64), nullable=True),
        sa.Column("loras", sa.JSON(), nullable=False),
        sa.Column("template", sa.Text(), nullable=False),
        sa.Column("seed_min", sa.BigInteger(), nullable=True),
        sa.Column("seed_max", sa.BigInteger(), nullable=True),
        sa.Column("members", sa.Integer(), nullable=False),
        sa.Column("first_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_series_block", "series", ["block"])
    op.create_table(
        "series_members",
        sa.Column("item_id", sa.Integer(), sa.ForeignKey("items.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("series_id", sa.Integer(), sa.ForeignKey("series.id", ondelete="CASCADE"), nullable=True),
        sa.Column("case_id", sa.Integer(), sa.ForeignKey("cases.id", ondelete="CASCADE"), nullable=False),
        sa.Column("seed", sa.BigInteger(), nullable=True),
        sa.Column("signature", sa.LargeBinary(), nullable=True),
        sa.Column("joined_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_series_members_series_id", "series_members", ["series_id"])
    op.create_index("ix_series_members_case_id", "series_members", ["case_id"])
    op.create_table(
        "series_buckets",
        sa.Column("bucket", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("series_id", sa.Integer(), sa.ForeignKey("series.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("item_id", sa.Integer(), sa.ForeignKey("series_members.item_id", ondelete="CASCADE"),
                  nullable=False),
    )
    op.create_index("ix_series_buckets_item_id", "series_buckets", ["item_id"])


def downgrade() -> None:
    op.drop_table("series_buckets")
    op.drop_table("series_members")
    op.drop_table("series")
