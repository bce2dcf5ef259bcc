"""Creating or migrating a case database is atomic: a ``kill -9`` at any moment leaves it openable (issue 11).

Before the fix, pysqlite ran every ``CREATE TABLE`` of the first migration in autocommit mode; a process
killed between two of them left tables without the ``alembic_version`` row, and every later run failed with
"table cases already exists". These tests kill a real migrating process: once deterministically, from a real
Alembic ``on_version_apply`` callback between two revisions, and then at random moments of the migration.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from tripwire.service.schema import all_tables
from tripwire.store.db import MIGRATIONS, open_db

SRC = str(Path(__file__).resolve().parents[1] / "src")

# Brings up the database in argv[1]: argv[2] "migrate" runs Alembic, "create" creates a new database from the
# models (store.db.create_schema). With argv[3], SIGKILLs itself right after that revision was applied
# (Alembic's on_version_apply callback) or that table was created (its after_create event; "*": all of them).
CHILD = r"""
import os, signal, sys
import sqlalchemy, alembic.command  # imported before "ready" so that the kill lands in the migration
from alembic.runtime.environment import EnvironmentContext
from tripwire.service.schema import all_tables
from tripwire.store.db import open_db

mode, kill_after = sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else ""
if kill_after and mode == "migrate":
    original = EnvironmentContext.configure

    def configure(self, *args, **kwargs):
        def hook(ctx, step, heads, run_args):
            if step.up_revision_id == kill_after:
                os.kill(os.getpid(), signal.SIGKILL)
        kwargs["on_version_apply"] = [hook]
        return original(self, *args, **kwargs)

    EnvironmentContext.configure = configure
elif kill_after:  # "*": after every table (and trigger), before the stamp
    target = all_tables() if kill_after == "*" else all_tables().tables[kill_after]
    sqlalchemy.event.listen(target, "after_create", lambda *_a, **_k: os.kill(os.getpid(), signal.SIGKILL))
print("ready", flush=True)
open_db(sys.argv[1], schema=all_tables if mode == "create" else None).dispose()
print("done", flush=True)
"""


def _child(url: str, *extra: str) -> subprocess.Popen[str]:
    env = dict(os.environ, PYTHONPATH=SRC + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, url, *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )


def _reset(url: str) -> None:
    """Empty the database (PostgreSQL: the fixture's database is reused between tries)."""
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.begin() as conn:
        conn.execute(sa.text("DROP SCHEMA public CASCADE"))
        conn.execute(sa.text("CREATE SCHEMA public"))
    engine.dispose()


def _urls(db_url: str, tmp_path: Path, n: int):
    for i in range(n):
        if db_url.startswith("sqlite"):
            yield f"sqlite:///{tmp_path / f'try{i}.db'}"
        else:
            _reset(db_url)
            yield db_url


def _alembic_heads() -> set[str]:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return set(ScriptDirectory.from_config(cfg).get_heads())


def _check_usable(url: str, schema=None) -> None:
    db = open_db(url, schema=schema)  # must migrate (or create) from what the killed process left, whatever that is
    try:
        first = db.case_id("kill-test")
        assert first is not None and db.case_id("kill-test") == first
        with db.engine.connect() as conn:
            assert set(conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalars()) == _alembic_heads()
    finally:
        db.dispose()


def test_script_heads_read_from_text():
    from tripwire.store.db import script_heads

    assert script_heads() == frozenset(_alembic_heads())


def test_kill_between_two_migration_steps(db_url, tmp_path):
    for url in _urls(db_url, tmp_path, 1):
        child = _child(url, "migrate", "0001")  # killed after the first revision, before the others
        out, err = child.communicate(timeout=60)
        assert child.returncode == -signal.SIGKILL, (out, err)
        assert "done" not in out
        _check_usable(url)


def test_kill_at_random_moments_of_the_first_migration(db_url, tmp_path):
    # how long a migration takes here, measured from "ready": the kills land inside that window
    probe_url = next(_urls(db_url, tmp_path / "probe" if db_url.startswith("sqlite") else tmp_path, 1))
    (tmp_path / "probe").mkdir(exist_ok=True)
    child = _child(probe_url, "migrate")
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "ready"
    started = time.monotonic()
    out, err = child.communicate(timeout=60)
    window = time.monotonic() - started
    assert child.returncode == 0, err
    rng = random.Random(11)
    killed = 0
    for url in _urls(db_url, tmp_path, 10):
        child = _child(url, "migrate")
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "ready"
        time.sleep(rng.uniform(0, window))
        child.send_signal(signal.SIGKILL)
        child.communicate(timeout=60)
        killed += child.returncode == -signal.SIGKILL
        _check_usable(url)
    assert killed >= 5  # most tries really were killed mid-way


@pytest.mark.parametrize("kill_after", ["items", "*"])
def test_kill_in_the_middle_of_creating_a_new_database(db_url, tmp_path, kill_after):
    """A new database created from the models (issue 12) is as atomic as a migrated one: killed after some of
    its tables exist, or after all of them but before the stamp, it is left without any, and the next open
    creates the whole schema."""
    for url in _urls(db_url, tmp_path, 1):
        child = _child(url, "create", kill_after)
        out, err = child.communicate(timeout=60)
        assert child.returncode == -signal.SIGKILL, (out, err)
        assert "done" not in out
        engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
        try:
            assert sa.inspect(engine).get_table_names() == []  # rolled back: nothing half-made
        finally:
            engine.dispose()
        _check_usable(url, all_tables)


def test_current_schema_skips_alembic(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'c.db'}"
    open_db(url).dispose()
    from tripwire.store import db as dbmod

    def fail(self, engine):  # pragma: no cover - reached only if the fast path is broken
        raise AssertionError("Alembic ran on an up-to-date database")

    monkeypatch.setattr(dbmod.Database, "_upgrade", fail)
    database = open_db(url)
    assert database.is_current()
    database.dispose()


def test_new_database_is_created_without_alembic_and_an_old_one_still_migrated(tmp_path, monkeypatch):
    """With the complete schema given, a new database is created from the models (no Alembic: issue 12's
    start-up cost); a database that holds tripwire tables, here one left at revision 0011, is migrated."""
    from alembic import command
    from alembic.config import Config

    from tripwire.store import db as dbmod

    old_url = f"sqlite:///{tmp_path / 'old.db'}"
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", old_url)
    command.upgrade(cfg, "0011")
    upgrades: list[object] = []
    original = dbmod.Database._upgrade
    monkeypatch.setattr(dbmod.Database, "_upgrade", lambda self, conn: upgrades.append(conn) or original(self, conn))

    new = open_db(f"sqlite:///{tmp_path / 'new.db'}", schema=all_tables)
    assert new.is_current() and upgrades == []
    new.dispose()
    old = open_db(old_url, schema=all_tables)
    assert old.is_current() and len(upgrades) == 1
    with old.engine.connect() as conn:
        assert "data" in {c["name"] for c in sa.inspect(conn).get_columns("bank_entries")}  # 0012 applied
    old.dispose()
