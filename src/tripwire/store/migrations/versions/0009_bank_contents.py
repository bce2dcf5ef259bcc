"""Content items (HMA's bank_content): bank_contents and bank_content_entries group bank entries into one
item with a note, metadata and a disable time (tripwire.banks.contents).

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "bank_contents",
        sa.Column("id", BigId, primary_key=True, autoincrement=False),
        sa.Column("bank_id", sa.Integer(), sa.ForeignKey("banks.id", ondelete="CASCADE"), nullable=False),
        sa.Column("note", sa.String(255), nullable=True),
        sa.Column("user_metadata", sa.JSON(), nullable=True),
        sa.Column("disable_until_ts", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_bank_contents_bank_id", "bank_contents", ["bank_id"])
    op.create_index("ix_bank_contents_updated_at", "bank_contents", ["updated_at"])
    op.create_table(
        "bank_content_entries",
        sa.Column("entry_id", BigId, sa.ForeignKey("bank_entries.id", ondelete="CASCADE"), primary_key=True,
                  autoincrement=False),
        sa.Column("content_id", sa.BigInteger(), sa.ForeignKey("bank_contents.id", ondelete="CASCADE"), nullable=False),
    )
    op.create_index("ix_bank_content_entries_content_id", "bank_content_entries", ["content_id"])


def downgrade() -> None:
    op.drop_index("ix_bank_content_entries_content_id", table_name="bank_content_entries")
    op.drop_table("bank_content_entries")
    op.drop_index("ix_bank_contents_updated_at", table_name="bank_contents")
    op.drop_index("ix_bank_contents_bank_id", table_name="bank_contents")
    op.drop_table("bank_contents")
