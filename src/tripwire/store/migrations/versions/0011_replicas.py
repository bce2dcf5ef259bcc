"""Replicas on one PostgreSQL: shared rate-limit buckets; bank writes announced (NOTIFY) and serialised.

``rate_buckets`` holds one token bucket per API key (and per login address): every replica reconciles its
local buckets with it (docs/replicas.md).

On PostgreSQL only, a statement trigger on ``banks``, ``bank_entries`` and ``bank_changes``:

* ``pg_notify('tripwire_banks', <table>)``: delivered when the writing transaction commits, so every replica
  LISTENing (``service/replicas.py``) catches its match index up at once instead of at its next poll;
* ``pg_advisory_xact_lock(8392226331192879987)`` ("tw-banks") before the statement allocates any id: bank
  writers commit in id order, so a reader that has applied entries and changes up to id N never sees one below
  N commit later (two replicas adding entries at once would otherwise let a reader skip the slower one's rows
  for good: the match index follows ids). Held to the end of the writing transaction; a transaction takes it
  before the audit chain's lock (its event is appended last).

A trigger catches every writer — the service, ``tripwire bank`` commands, a SQL session — not only those
that remember to. SQLite needs neither: its writers are serialised by the database lock and one host polls.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

BANK_TABLES = ("banks", "bank_entries", "bank_changes")


def upgrade() -> None:
    op.create_table(
        "rate_buckets",
        sa.Column("name", sa.String(300), primary_key=True),
        sa.Column("tokens", sa.Float(), nullable=False),
        sa.Column("rate", sa.Float(), nullable=False),
        sa.Column("burst", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
    )
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("""
        CREATE FUNCTION tripwire_bank_write() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_advisory_xact_lock(8392226331192879987);
            PERFORM pg_notify('tripwire_banks', TG_TABLE_NAME);
            RETURN NULL;
        END $$""")
    for table in BANK_TABLES:
        op.execute(f"CREATE TRIGGER tripwire_bank_write BEFORE INSERT OR UPDATE OR DELETE ON {table} "
                   "FOR EACH STATEMENT EXECUTE FUNCTION tripwire_bank_write()")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in BANK_TABLES:
            op.execute(f"DROP TRIGGER IF EXISTS tripwire_bank_write ON {table}")
        op.execute("DROP FUNCTION IF EXISTS tripwire_bank_write()")
    op.drop_table("rate_buckets")
