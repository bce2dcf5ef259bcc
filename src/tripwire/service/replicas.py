"""What several ``tripwire serve`` replicas on one PostgreSQL database need from each other (docs/replicas.md).

* :func:`replica_id`: the name a replica's metrics carry (``replica`` label);
* :class:`BankChangeListener`: ``LISTEN tripwire_banks`` on a connection of its own. Migration 0011's trigger
  NOTIFYs that channel whenever a transaction that wrote ``banks``, ``bank_entries`` or ``bank_changes``
  commits, on any replica or from any other writer; the listener wakes the service's index refresh at once. A
  notification can be missed (a dropped connection, a restart of the listener): the refresh also polls the bank
  change log every second, and after every reconnect the listener wakes it once, so nothing waits longer than
  that.

Rate limits shared through the database are in :mod:`.ratelimit`; the audit chain's serialisation across
processes is in :mod:`tripwire.review.audit`.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from typing import Any, Callable

from ..store.db import Database
from .settings import ServiceSettings

__all__ = ["BANK_CHANNEL", "BankChangeListener", "replica_id"]

log = logging.getLogger(__name__)

#: the channel migration 0011's trigger notifies (its name is written there as well)
BANK_CHANNEL = "tripwire_banks"
#: how long the listener waits for notifications before checking whether it should stop
_WAIT_S = 0.5
#: pause before reconnecting after the connection failed
_RECONNECT_S = 1.0


def replica_id(settings: ServiceSettings, environ: dict[str, str] | None = None) -> str:
    """``[service] replica_id``, else ``$TRIPWIRE_REPLICA_ID``, else ``<hostname>:<port>`` (the port ``tripwire
    serve`` listens on; the process id when the app runs without it)."""
    env = os.environ if environ is None else environ
    return (settings.replica_id or env.get("TRIPWIRE_REPLICA_ID")
            or f"{socket.gethostname()}:{env.get('TRIPWIRE_SERVE_PORT') or os.getpid()}")


class BankChangeListener:
    """Calls ``on_change`` for every bank-change notification, and once after each (re)connection."""

    def __init__(self, db: Database, on_change: Callable[[], None], channel: str = BANK_CHANNEL) -> None:
        if db.dialect != "postgresql":
            raise ValueError("LISTEN/NOTIFY needs PostgreSQL")
        self.db = db
        self.on_change = on_change
        self.channel = channel
        self.listening = False
        self.notifications = 0
        self.last_error: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="tripwire-bank-listen", daemon=True)
            self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _connect(self) -> Any:
        """A connection of its own (same URL and options as the engine's), out of the pool, in autocommit."""
        raw = self.db.engine.raw_connection()
        conn: Any = raw.driver_connection
        raw.detach()
        conn.autocommit = True
        conn.execute(f'LISTEN "{self.channel}"')
        return conn

    def _run(self) -> None:
        while not self._stop.is_set():
            conn = None
            try:
                conn = self._connect()
                self.listening = True
                self.last_error = None
                self.on_change()  # whatever was committed while nobody listened
                while not self._stop.is_set():
                    for _ in conn.notifies(timeout=_WAIT_S):
                        self.notifications += 1
                        self.on_change()
            except Exception as exc:  # the database went away: poll meanwhile, reconnect
                self.last_error = f"{exc.__class__.__name__}: {exc}"
                if not self._stop.is_set():
                    log.warning("bank change listener: %s; reconnecting", self.last_error)
            finally:
                self.listening = False
                if conn is not None:
                    try:
                        conn.close()
                    except Exception:  # already broken
                        pass
            self._stop.wait(_RECONNECT_S)
