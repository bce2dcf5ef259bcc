"""bank_entries.data: the whole value of a type whose values outgrow the key column (vPDQ's frame list,
kept under the SHA-256 of its canonical form in ``value``).

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("bank_entries", sa.Column("data", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("bank_entries") as batch:
        batch.drop_column("data")
