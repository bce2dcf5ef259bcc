"""An index on series_buckets.series_id: merging two series reads and deletes the folded series' buckets,
which without it scanned the whole table (a merge's cost grew with the database; docs/series.md).

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30
"""

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_series_buckets_series_id", "series_buckets", ["series_id"])


def downgrade() -> None:
    op.drop_index("ix_series_buckets_series_id", table_name="series_buckets")
