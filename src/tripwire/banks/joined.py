"""A BankStore that joins the caller's transaction, so a bank change and its audit event commit together.

:class:`~tripwire.banks.store.BankStore` opens one transaction per operation (per batch, for imports). A
caller that must record the change and its audit event as one unit (the service's bank routes, a review
decision that banks an item's hashes) hands it a :class:`JoinedDatabase`: a Database look-alike whose
``session()`` hands out one already-open session, so every BankStore call made through it joins the
caller's transaction. Its engine stand-in does the same for code that opens connections (``engine.begin()``).
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator

from sqlalchemy.orm import Session

from ..store.db import Database
from .store import BankStore

__all__ = ["JoinedDatabase", "joined_store"]


class _JoinedEngine:
    """The engine as BankStore uses it (``begin()``, ``connect()``), handing out the session's connection:
    whatever BankStore executes lands in the caller's transaction and commits (or not) with it."""

    def __init__(self, engine: Any, session: Session) -> None:
        self._engine = engine
        self._session = session
        self.dialect = engine.dialect
        self.url = engine.url

    @contextmanager
    def begin(self) -> Iterator[Any]:
        yield self._session.connection()

    @contextmanager
    def connect(self) -> Iterator[Any]:
        yield self._session.connection()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._engine, name)


class JoinedDatabase:
    """Looks like :class:`~tripwire.store.db.Database` to BankStore and the store queries; every session is
    ``session`` and every engine connection is that session's connection."""

    def __init__(self, db: Database, session: Session) -> None:
        self._db = db
        self._session = session
        self.url = db.url
        self.engine = _JoinedEngine(db.engine, session)

    @property
    def dialect(self) -> str:
        return self._db.dialect

    @contextmanager
    def session(self) -> Iterator[Session]:
        yield self._session


def joined_store(db: Database, session: Session) -> BankStore:
    return BankStore(JoinedDatabase(db, session))  # type: ignore[arg-type]
