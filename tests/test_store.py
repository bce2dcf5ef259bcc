"""The case database on SQLite and PostgreSQL: schema from migrations, dedup by SHA-256, resume markers."""

from __future__ import annotations

import shutil

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import func, select

from tripwire.config import Config
from tripwire.pipeline.scan import run_scan
from tripwire.store import queries
from tripwire.store.db import open_db, resolve_url
from tripwire.store.models import Content, ItemRow, SourceRow
from tripwire.service.schema import all_tables

from conftest import database_url
from helpers import read_jsonl, tripwire, write_images


def test_migrations_match_the_models(db_url):
    db = open_db(db_url)
    with db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), all_tables())
    db.dispose()
    assert diff == []


def _schema_of(url: str) -> dict:
    """Everything the database says about its schema: per table the columns in order (type, nullability,
    server default, autoincrement), primary key, foreign keys, indexes, unique and check constraints and the
    table options; plus the rest of the catalogue (SQLite: every sqlite_master object, and whether it has
    AUTOINCREMENT; PostgreSQL: sequences, triggers and functions) and the stamped revision."""
    engine = sa.create_engine(url)
    try:
        insp = sa.inspect(engine)
        tables = {}
        for name in sorted(insp.get_table_names()):
            tables[name] = {
                "columns": [(c["name"], str(c["type"]), c["nullable"], c.get("default"), c.get("autoincrement"))
                            for c in insp.get_columns(name)],
                "pk": insp.get_pk_constraint(name),
                "fks": sorted(insp.get_foreign_keys(name), key=repr),
                "indexes": sorted(insp.get_indexes(name), key=repr),
                "uniques": sorted(insp.get_unique_constraints(name), key=repr),
                "checks": sorted(insp.get_check_constraints(name), key=repr),
                "options": insp.get_table_options(name),
            }
        with engine.connect() as conn:
            if engine.dialect.name == "sqlite":
                catalogue = sorted(conn.execute(sa.text(  # AUTOINCREMENT is only in the SQL text
                    "SELECT type, name, tbl_name, instr(upper(sql), 'AUTOINCREMENT') > 0 FROM sqlite_master")).all())
            else:
                catalogue = sorted(conn.execute(sa.text(
                    "SELECT 'sequence', sequencename, data_type::text || ' ' || start_value || ' ' || increment_by"
                    " FROM pg_sequences WHERE schemaname = current_schema()"
                    " UNION ALL SELECT 'trigger', tgname, pg_get_triggerdef(t.oid) FROM pg_trigger t"
                    " JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace"
                    " WHERE n.nspname = current_schema() AND NOT t.tgisinternal"
                    " UNION ALL SELECT 'function', p.proname, pg_get_functiondef(p.oid) FROM pg_proc p"
                    " JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = current_schema()")).all())
            revisions = sorted(conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalars())
    finally:
        engine.dispose()
    return {"tables": tables, "catalogue": catalogue, "revisions": revisions}


@pytest.fixture(params=["sqlite", "postgresql"])
def two_db_urls(request, tmp_path):
    """Two fresh, empty databases of one kind."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    for first in database_url(request.param, tmp_path / "a"):
        for second in database_url(request.param, tmp_path / "b"):
            yield first, second


def test_a_new_database_created_from_the_models_equals_a_migrated_one(two_db_urls):
    """A new case database is created from the models and stamped (issue 12: no 12 migrations at start-up);
    it must be the very schema the migrations build, or the next migration would meet a different database."""
    migrated_url, created_url = two_db_urls
    open_db(migrated_url).dispose()  # no complete schema given: Alembic runs every migration
    from tripwire.store import db as dbmod

    created = open_db(created_url, schema=all_tables)
    created.dispose()
    migrated, made = _schema_of(migrated_url), _schema_of(created_url)
    assert made["revisions"] == sorted(dbmod.script_heads())
    assert set(made["tables"]) == set(all_tables().tables) | {"alembic_version"}
    if not created_url.startswith("sqlite"):  # migration 0011's bank-write triggers, made by banks.models here
        assert sum(row[0] == "trigger" for row in made["catalogue"]) == 3
    for name in migrated["tables"]:
        assert made["tables"].get(name) == migrated["tables"][name], name
    assert made == migrated


def test_scan_stores_identical_content_once(db_url, tmp_path):
    root = tmp_path / "media"
    paths = write_images(root, 4)
    shutil.copy(paths[0], root / "copy_of_0.jpg")
    (root / "sub").mkdir()
    shutil.copy(paths[0], root / "sub" / "another_copy.jpg")
    db = open_db(db_url)
    result = run_scan([str(root)], db, "dedup", tmp_path / "out", Config(), workers=1, quiet=True)
    assert result.items_written == 6
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(ItemRow)) == 6
        assert s.scalar(select(func.count()).select_from(Content)) == 4
        assert s.scalar(select(func.count()).select_from(SourceRow)) == 6
    groups = queries.duplicate_groups(db, db.case_id("dedup"))
    assert len(groups) == 1 and groups[0]["count"] == 3
    # a second case sharing content: items are per case, content is not duplicated
    run_scan([str(root / "sub")], db, "other", tmp_path / "out2", Config(), workers=1, quiet=True)
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(Content)) == 4
        assert s.scalar(select(func.count()).select_from(ItemRow)) == 7
    # resume: nothing left to do
    again = run_scan([str(root)], db, "dedup", None, Config(), workers=1, quiet=True)
    assert again.sources_skipped == 6 and again.items_written == 0
    records = list(queries.iter_records(db, db.case_id("dedup")))
    db.dispose()
    assert [r["path"] for r in records] == [r["path"] for r in read_jsonl(tmp_path / "out" / "items.jsonl")]
    assert all({"digests", "image", "pdq"} <= set(r["extractors"]) for r in records)


def test_cli_scan_against_url(db_url, tmp_path):
    root = tmp_path / "media"
    write_images(root, 2)
    proc = tripwire("scan", str(root), "--db", db_url, "--out", str(tmp_path / "o"), "-q")
    assert proc.returncode == 0, proc.stderr
    assert len(read_jsonl(tmp_path / "o" / "items.jsonl")) == 2


def test_unreachable_database_is_a_system_error(tmp_path):
    root = tmp_path / "media"
    write_images(root, 1)
    proc = tripwire("scan", str(root), "--db", "postgresql://nobody:x@127.0.0.1:1/none", "--out", str(tmp_path / "o"))
    assert proc.returncode == 1
    assert "cannot open database" in proc.stderr
    assert not (tmp_path / "o").exists()


def test_resolve_url(tmp_path):
    assert resolve_url(str(tmp_path / "x.db")) == f"sqlite:///{tmp_path / 'x.db'}"
    assert resolve_url("postgresql://u@h/d") == "postgresql+psycopg://u@h/d"
    assert resolve_url("sqlite:///rel.db") == "sqlite:///rel.db"


def test_a_case_created_by_another_process_meanwhile_is_read_not_refused(db_url):
    """``serve --workers N`` opens its case in every process at once: the insert that loses the race on the
    unique case name must return the winner's id (it used to kill the worker with an IntegrityError)."""
    from sqlalchemy import event, insert
    from sqlalchemy.orm import Session

    from tripwire.store.models import Case

    db = open_db(db_url)
    rivals: list[int] = []

    def rival_inserts_first(session, _context, _instances):
        if not rivals:  # between our SELECT (nothing found) and our INSERT, another process creates the case
            with db.engine.begin() as conn:
                rivals.append(conn.execute(insert(Case.__table__).values(name="race").returning(Case.id)).scalar_one())

    event.listen(Session, "before_flush", rival_inserts_first)
    try:
        got = db.case_id("race")
    finally:
        event.remove(Session, "before_flush", rival_inserts_first)
    assert rivals and got == rivals[0] == db.case_id("race", create=False)
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(Case).where(Case.name == "race")) == 1
    db.dispose()
