"""Banks that live only in memory: hash-list files given on the command line become ordinary banks.

A post feed names plain hash-list files rather than case-database banks. They are imported into an
in-memory SQLite database through the normal bank importer, so the values are validated by their signal
types and matched by the same :class:`~tripwire.match.matcher.Matcher` as ``tripwire scan``.
"""

from __future__ import annotations

from sqlalchemy.pool import StaticPool

from ..store.db import Database


class MemoryDatabase(Database):
    """A private in-memory SQLite database, migrated. ``sqlite://`` gives every connection its own empty
    database, so all sessions share one connection (StaticPool)."""

    def __init__(self) -> None:
        super().__init__("sqlite://", poolclass=StaticPool, connect_args={"check_same_thread": False})
        self.migrate()
