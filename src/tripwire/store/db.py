"""Open a case database by URL or file name, bring its schema up to date, hand out sessions."""

from __future__ import annotations

import hashlib
import re
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Iterator, Literal, overload

from sqlalchemy import (
    Column,
    Connection,
    Engine,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    create_engine,
    event,
    inspect,
    insert,
    select,
    text,
)
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import NullPool

from ..records import os_bytes
from .models import Case

DEFAULT_DB = "tripwire.db"
MIGRATIONS = Path(__file__).with_name("migrations")
#: key of the PostgreSQL advisory lock that serialises concurrent migrations of one database
_PG_MIGRATION_LOCK = 0x7472_6970_7769_7265 & 0x7FFF_FFFF_FFFF_FFFF  # "tripwire"
_REVISION_RE = re.compile(r"""^revision\s*(?::[^=]*)?=\s*["']([^"']+)["']""", re.M)
_DOWN_RE = re.compile(r"^down_revision\s*(?::[^=]*)?=\s*(.+)$", re.M)
#: where Alembic keeps the revision a database is at
VERSION_TABLE = "alembic_version"


class DatabaseError(Exception):
    """The case database cannot be opened or migrated: a system error, the command exits non-zero."""


def resolve_url(db: str | None) -> str:
    """A SQLAlchemy URL from ``--db``: a URL is used as is, anything else is a SQLite file path."""
    db = db or DEFAULT_DB
    if "://" in db:
        if db.startswith("postgresql://"):
            return "postgresql+psycopg://" + db[len("postgresql://") :]
        if db.startswith("postgres://"):
            return "postgresql+psycopg://" + db[len("postgres://") :]
        return db
    return f"sqlite:///{Path(db).expanduser().resolve()}"


def path_key(path: str) -> str:
    """sha256 of the path's exact bytes (a name that is not UTF-8 included): the rows' unique key."""
    return hashlib.sha256(os_bytes(path)).hexdigest()


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cur = dbapi_connection.cursor()
    cur.execute("PRAGMA journal_mode=WAL")  # committed transactions survive a killed process
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


def _sqlite_transactional_ddl(dbapi_connection: Any, _record: Any) -> None:
    """Stop pysqlite from managing transactions, so that the ``BEGIN`` below covers DDL too.

    pysqlite's legacy transaction control opens a transaction only before INSERT/UPDATE/DELETE: every
    ``CREATE TABLE`` of a migration ran in autocommit mode, so a process killed half-way through the first
    migration left tables without the ``alembic_version`` row that says they exist, and every later run failed
    with "table cases already exists" (issue 11). SQLAlchemy's documented recipe for SQLite transactional DDL.
    """
    dbapi_connection.isolation_level = None


def _sqlite_begin_immediate(connection: Connection) -> None:
    # IMMEDIATE takes the write lock now: two processes migrating one new file wait for each other (busy_timeout)
    # instead of both creating the same tables
    connection.exec_driver_sql("BEGIN IMMEDIATE")


@lru_cache(maxsize=1)
def script_heads() -> frozenset[str]:
    """The head revision(s) of the migration scripts, read from their text (no Alembic import, no module load).

    Used only to skip Alembic when a database is already up to date; anything unexpected returns an empty
    set, and the caller then lets Alembic decide.
    """
    revisions: set[str] = set()
    downs: set[str] = set()
    try:
        for path in sorted((MIGRATIONS / "versions").glob("*.py")):
            source = path.read_text(encoding="utf-8")
            found = _REVISION_RE.search(source)
            down = _DOWN_RE.search(source)
            if found is None or down is None:
                return frozenset()
            revisions.add(found.group(1))
            downs.update(re.findall(r"""["']([^"']+)["']""", down.group(1)))
    except OSError:
        return frozenset()
    return frozenset(revisions - downs)


def stored_revisions(connection: Connection) -> frozenset[str] | None:
    """The revision(s) in ``alembic_version``, or None when the table is missing or unreadable."""
    try:
        rows = connection.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    except SQLAlchemyError:
        return None
    return frozenset(str(r) for r in rows)


def create_schema(connection: Connection, metadata: MetaData, heads: frozenset[str]) -> None:
    """Create every table of ``metadata`` and stamp ``heads`` as Alembic would, on ``connection``'s transaction.

    Only for a database without tripwire tables (:meth:`Database.migrate` checks). What the migrations do
    besides creating tables is declared with the models, so that ``create_all`` does it too (the PostgreSQL
    bank-write triggers: ``banks.models``). The version table is Alembic's own definition (``MigrationContext``:
    a 32-character key named ``alembic_version_pkc``), so that a later ``alembic upgrade`` reads it as usual.
    """
    metadata.create_all(connection, checkfirst=False)
    version = Table(VERSION_TABLE, MetaData(), Column("version_num", String(32), nullable=False),
                    PrimaryKeyConstraint("version_num", name=f"{VERSION_TABLE}_pkc"))
    version.create(connection)
    connection.execute(insert(version), [{"version_num": head} for head in sorted(heads)])


class Database:
    """An engine plus a session factory, migrated to the newest schema on open."""

    def __init__(self, url: str, **engine_options: Any) -> None:
        """``engine_options`` go to :func:`sqlalchemy.create_engine` (a pool class for an in-memory database)."""
        self.url = url
        try:
            # a ping before each checkout finds a server connection that died (PostgreSQL restarted, a proxy
            # timed out); a SQLite file has no server, and the ping would cost a statement per session
            pre_ping = not url.startswith("sqlite")
            self.engine: Engine = create_engine(url, future=True, pool_pre_ping=pre_ping, **engine_options)
        except (SQLAlchemyError, ImportError, ValueError) as exc:
            raise DatabaseError(f"cannot use database {url!r}: {exc}") from exc
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def is_current(self) -> bool:
        """Whether the schema is at the scripts' head (a quick read; no Alembic)."""
        heads = script_heads()
        if not heads:
            return False
        try:
            with self.engine.connect() as connection:
                return stored_revisions(connection) == heads
        except SQLAlchemyError:
            return False

    def migrate(self, schema: Callable[[], MetaData] | None = None) -> None:
        """Bring the schema to the newest revision, atomically: all of it or, after a crash, none of it.

        Skipped without loading Alembic when the stored revision already is the head. Otherwise everything runs
        in one transaction: PostgreSQL has transactional DDL (and an advisory lock serialises concurrent
        migrators); SQLite gets it from a connection whose transactions tripwire opens itself (``BEGIN
        IMMEDIATE``), since pysqlite's own transaction handling leaves DDL in autocommit.

        ``schema`` returns the complete schema (every package's tables: ``tripwire.service.schema.all_tables``;
        the store cannot import them). With it, a database holding no tripwire table at all is created from the
        models and stamped at the head in that transaction (:func:`create_schema`) instead of replaying every
        migration, which costs a new case database most of its start-up (issue 12); a database with any
        tripwire table is migrated. tests/test_store.py checks that both give the same schema.
        """
        if self.is_current():
            return
        try:
            if self.dialect == "sqlite" and self.engine.url.database not in (None, "", ":memory:"):
                # an in-memory database dies with the process, so it needs no crash safety; and a second
                # engine would open a second, empty memory database
                engine = create_engine(self.engine.url, poolclass=NullPool)
                event.listen(engine, "connect", _sqlite_pragmas)
                event.listen(engine, "connect", _sqlite_transactional_ddl)
                event.listen(engine, "begin", _sqlite_begin_immediate)
                try:
                    self._bring_up(engine, schema)
                finally:
                    engine.dispose()
            else:
                self._bring_up(self.engine, schema)
        except SQLAlchemyError as exc:
            raise DatabaseError(f"cannot open database {self.engine.url!r}: {exc.__class__.__name__}: {exc}") from exc

    def _bring_up(self, engine: Engine, schema: Callable[[], MetaData] | None) -> None:
        """Create or migrate in one transaction, under the lock: a rival may have done either meanwhile."""
        with engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_MIGRATION_LOCK})
            existing = set(inspect(connection).get_table_names())
            heads = script_heads()
            if heads and VERSION_TABLE in existing and stored_revisions(connection) == heads:
                return  # a rival process brought it up while this one waited for the lock
            metadata = schema() if schema is not None else None
            if heads and metadata is not None and not existing & (set(metadata.tables) | {VERSION_TABLE}):
                create_schema(connection, metadata, heads)
            else:
                self._upgrade(connection)

    def _upgrade(self, connection: Connection) -> None:
        from alembic import command
        from alembic.config import Config as AlembicConfig

        cfg = AlembicConfig()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, "head")

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session in one transaction: committed on success, rolled back on any exception."""
        with self._sessions() as session, session.begin():
            yield session

    @overload
    def case_id(self, name: str, create: Literal[True] = ...) -> int: ...
    @overload
    def case_id(self, name: str, create: bool) -> int | None: ...

    def case_id(self, name: str, create: bool = True) -> int | None:
        """The case's id, created when missing unless ``create`` is false (then None for an unknown case).

        Several processes may open a new case at once (``serve --workers N``, a scan beside the service): the
        loser of the insert race reads the winner's row instead of failing on the unique name."""
        for _attempt in range(2):
            try:
                with self.session() as session:
                    found = session.scalar(select(Case.id).where(Case.name == name))
                    if found is not None or not create:
                        return found
                    case = Case(name=name)
                    session.add(case)
                    session.flush()
                    return case.id
            except IntegrityError:
                continue  # another process created it between our read and our insert: read it now
        raise DatabaseError(f"cannot create case {name!r}")

    def dispose(self) -> None:
        self.engine.dispose()


def open_db(db: str | None = None, migrate: bool = True, schema: Callable[[], MetaData] | None = None) -> Database:
    """Open (and by default migrate) the database named by ``--db`` (URL or SQLite file); ``schema`` as in
    :meth:`Database.migrate` (a new database is then created from it instead of migrated)."""
    database = Database(resolve_url(db))
    if migrate:
        database.migrate(schema)
    return database
