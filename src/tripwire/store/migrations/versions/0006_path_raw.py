"""Paths that are not UTF-8: items.path_raw and sources.path_raw keep the exact bytes.

``path`` holds the display form (valid UTF-8, undecodable bytes as ``\\xNN``); ``path_raw`` is NULL unless
that form is not the exact path. ``path_key`` was already the sha256 of the exact bytes, so existing rows
stay as they are.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("items", sa.Column("path_raw", sa.LargeBinary(), nullable=True))
    op.add_column("sources", sa.Column("path_raw", sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("sources") as batch:
        batch.drop_column("path_raw")
    with op.batch_alter_table("items") as batch:
        batch.drop_column("path_raw")
