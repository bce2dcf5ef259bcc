"""The background fetcher of ``tripwire serve``: every ``[exchanges] fetch_interval`` seconds, fetch every enabled
exchange (:func:`tripwire.pipeline.exchanges.fetch_enabled`: pages audited, stored items re-matched with the
service's own matcher) and make the new entries visible to matching at once.

Off by default (``fetch_interval = 0``): a deployment turns it on deliberately, or runs ``tripwire exchange fetch
--all`` from its own scheduler. With ``serve --workers N`` every process runs one; they cannot apply the same page
twice (each page checks the checkpoint it started from), the slower one stops at its first page.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from ..banks.exchanges.apis import ExchangeSettings

__all__ = ["ExchangeFetcher"]

log = logging.getLogger("uvicorn.error")


class ExchangeFetcher:
    def __init__(self, service: Any, interval: float) -> None:
        self.service = service
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        #: the last round's reports (exchange name -> as_dict), for the console
        self.last: dict[str, Any] = {}

    @classmethod
    def for_service(cls, service: Any) -> "ExchangeFetcher | None":
        """A fetcher for ``service`` when ``[exchanges] fetch_interval`` is set, else None."""
        interval = ExchangeSettings.from_config(service.config).fetch_interval
        return cls(service, interval) if interval > 0 else None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="tripwire-exchange-fetch", daemon=True)
        self._thread.start()
        log.info("exchange fetcher: every %.0f s", self.interval)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.run_once()
            if self._stop.wait(self.interval):
                return

    def run_once(self) -> None:
        from ..pipeline.exchanges import fetch_enabled

        svc = self.service
        try:
            runs = fetch_enabled(svc.db, svc.config, actor="tripwire-fetcher", stop=self._stop, matcher=svc.matcher)
        except Exception as exc:  # a bad configuration must not kill the thread: log, try next round
            log.warning("exchange fetcher: %s: %s", type(exc).__name__, exc)
            return
        for run in runs:
            self.last[run.fetch.exchange] = run.as_dict()
            log.info("exchange fetcher: %s", run.fetch.summary())
        if any(r.fetch.changed for r in runs):
            svc.refresh_now()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
