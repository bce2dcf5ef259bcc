"""Open a case database by URL or file name, bring its schema up to date, hand out sessions."""

from __future__ import annotations

import hashlib
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Literal, overload

from sqlalchemy import Engine, create_engine, event, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from ..records import os_bytes
from .models import Case

DEFAULT_DB = "tripwire.db"
MIGRATIONS = Path(__file__).with_name("migrations")


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


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cur = dbapi_connection.cursor()
    cur.execute("PRAGMA journal_mode=WAL")  # committed transactions survive a killed process
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


class Database:
    """An engine plus a session factory, migrated to the newest schema on open."""

    def __init__(self, url: str) -> None:
        self.url = url
        try:
            self.engine: Engine = create_engine(url, future=True, pool_pre_ping=True)
        except (SQLAlchemyError, ImportError, ValueError) as exc:
            raise DatabaseError(f"cannot use database {url!r}: {exc}") from exc
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def migrate(self) -> None:
        from alembic import command
        from alembic.config import Config as AlembicConfig

        cfg = AlembicConfig()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        try:
            with self.engine.begin() as connection:
                cfg.attributes["connection"] = connection
                command.upgrade(cfg, "head")
        except SQLAlchemyError as exc:
            raise DatabaseError(f"cannot open database {self.engine.url!r}: {exc.__class__.__name__}: {exc}") from exc

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
        """The case's id, created when missing unless ``create`` is false (then None for an unknown case)."""
        with self.session() as session:
            found = session.scalar(select(Case.id).where(Case.name == name))
            if found is not None or not create:
                return found
            case = Case(name=name)
            session.add(case)
            session.flush()
            return case.id

    def dispose(self) -> None:
        self.engine.dispose()


def open_db(db: str | None = None, migrate: bool = True) -> Database:
    """Open (and by default migrate) the database named by ``--db`` (URL or SQLite file)."""
    database = Database(resolve_url(db))
    if migrate:
        database.migrate()
    return database
