"""Fetching exchanges with their consequences: every page in the audit trail, stored items re-matched.

:func:`tripwire.banks.exchanges.fetch.fetch_exchange` stores what a source delivers; this layer adds what the
banks layer may not import: each committed page appends an ``exchange_page`` audit event in the page's own
transaction (what entered and left the bank, the checkpoint), a skipped or failed page an ``exchange_error``,
and once the fetch ends the stored items of every case are re-matched against what changed (:mod:`.rematch`:
newly matching items are queued for review). The re-match starts from the banks' position kept in the exchange
row before its first page, so a fetch killed before it re-matched is re-matched by the next one.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, Callable

from sqlalchemy.orm import Session

from ..banks.exchanges.apis import ExchangeSettings
from ..banks.exchanges.fetch import FetchReport, fetch_exchange
from ..banks.exchanges.store import ExchangeStore, PageResult
from ..config import Config
from ..review import audit
from ..store.db import Database
from .rematch import Mark, RematchReport, mark, rematch

__all__ = ["ExchangeRun", "fetch_and_rematch", "fetch_enabled"]


@dataclass
class ExchangeRun:
    fetch: FetchReport
    rematch: RematchReport | None = None
    rematch_error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {**self.fetch.as_dict(), "rematch": self.rematch.as_dict() if self.rematch else None,
                "rematch_error": self.rematch_error}


def _audit(actor: str) -> Callable[[Session, PageResult], None]:
    def record(s: Session, page: PageResult) -> None:
        kind = "exchange_error" if page.error else "exchange_page"
        audit.append(s, kind, actor, subject=f"exchange:{page.exchange}", data=page.as_dict())

    return record


def fetch_and_rematch(db: Database, config: Config, name: str, *, actor: str = "tripwire",
                      settings: ExchangeSettings | None = None, progress: Callable[[FetchReport], None] | None = None,
                      stop: threading.Event | None = None, matcher: Any = None, index: Any = None) -> ExchangeRun:
    """Fetch one exchange (see :func:`fetch_exchange`), audit each page, then re-match stored items.

    ``matcher``/``index``: the service's open ones, reused by the re-match."""
    settings = settings or ExchangeSettings.from_config(config)
    before = mark(db)
    report = fetch_exchange(db, name, settings, on_page=_audit(actor), progress=progress, stop=stop,
                            mark=(before.entry_id, before.change_id))
    run = ExchangeRun(report)
    store = ExchangeStore(db)
    pending = store.get(name).rematch_pending
    if pending is None:
        return run
    try:
        run.rematch = rematch(db, config, since=Mark(*pending), actor=actor, trigger=f"exchange fetch {name}",
                              matcher=matcher, index=index)
        store.rematched(name, pending)
    except Exception as exc:  # the entries are committed; the pending mark stays for the next fetch
        run.rematch_error = f"{type(exc).__name__}: {exc}"
    return run


def fetch_enabled(db: Database, config: Config, *, actor: str = "tripwire", names: list[str] | None = None,
                  progress: Callable[[FetchReport], None] | None = None, stop: threading.Event | None = None,
                  matcher: Any = None, index: Any = None) -> list[ExchangeRun]:
    """Fetch every enabled exchange (or those named), one after another."""
    settings = ExchangeSettings.from_config(config)
    runs = []
    for info in ExchangeStore(db).exchanges():
        if (names is None and not info.enabled) or (names is not None and info.name not in names):
            continue
        if stop is not None and stop.is_set():
            break
        runs.append(fetch_and_rematch(db, config, info.name, actor=actor, settings=settings, progress=progress,
                                      stop=stop, matcher=matcher, index=index))
    return runs
