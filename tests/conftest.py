"""Shared fixtures: paths to ../shared/fixtures, database URLs (SQLite always, PostgreSQL in CI)."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO.parent / "shared" / "fixtures"
PG_URL = os.environ.get("TRIPWIRE_TEST_PG_URL")


@pytest.fixture(scope="session")
def fixtures() -> Path:
    assert FIXTURES.is_dir(), f"shared fixtures not found at {FIXTURES}"
    return FIXTURES


def _pg_database():
    """Create a throw-away PostgreSQL database; yields its URL, drops it afterwards."""
    import sqlalchemy as sa

    admin_url = PG_URL.replace("postgresql://", "postgresql+psycopg://", 1)
    name = f"tw_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = admin_url.rsplit("/", 1)[0] + "/" + name
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    """A fresh, empty database URL: SQLite always; PostgreSQL when TRIPWIRE_TEST_PG_URL is set (CI sets it)."""
    yield from database_url(request.param, tmp_path)


def database_url(kind: str, folder: Path):
    """Yields a fresh database URL of ``kind`` ("sqlite" in ``folder``, or "postgresql"), for fixtures of any scope."""
    if kind == "sqlite":
        yield f"sqlite:///{folder / 'case.db'}"
        return
    if not PG_URL:
        if os.environ.get("CI") == "true":
            pytest.fail("CI must run the database tests on PostgreSQL: TRIPWIRE_TEST_PG_URL is not set")
        pytest.skip("PostgreSQL not configured (set TRIPWIRE_TEST_PG_URL)")
    yield from _pg_database()


@pytest.fixture
def pg_url():
    """A fresh PostgreSQL database URL, for what only PostgreSQL does (replicas sharing one database)."""
    if not PG_URL:
        if os.environ.get("CI") == "true":
            pytest.fail("CI must run the PostgreSQL-only tests: TRIPWIRE_TEST_PG_URL is not set")
        pytest.skip("PostgreSQL not configured (set TRIPWIRE_TEST_PG_URL)")
    yield from _pg_database()
