"""The :class:`Service`: what every route shares (database, pipeline stages, matcher, policy, keys, limits,
metrics), and the background thread that keeps the match index caught up with the database.

The refresh runs every :data:`REFRESH_EVERY_S`, at once after a change made through this process, and — on
PostgreSQL — at once when another replica or writer commits a bank change (:mod:`.replicas`: LISTEN/NOTIFY;
the poll is the fallback for a missed notification). ``/readyz`` reports how far the index lags the bank change
log and is not ready beyond ``[service] index_lag_bound_s``.

Kept out of :mod:`.app` so that routes and dependencies (:mod:`.deps`) can name it without importing the
application factory that imports them.
"""

from __future__ import annotations

import logging
import os
import secrets
import threading
import time
from typing import Any

from sqlalchemy import text

from ..banks.contents import ContentMap
from ..config import Config
from ..match.matcher import Matcher, MatchStage
from ..pipeline.stages import default_stages
from ..policy.policy import Policy
from ..store.db import Database
from .auth import KeyVerifier
from .media import MediaAccess, MediaSource
from .metrics import Metrics
from .ratelimit import RateLimiter, SharedRateLimiter
from .replicas import BankChangeListener, replica_id
from .reviewing import queue_counts
from .scanning import Scanner
from .settings import ServiceSettings, sized_scan_concurrency

__all__ = ["REFRESH_EVERY_S", "Service"]

log = logging.getLogger(__name__)

#: how often the background thread catches the match index up with the database
REFRESH_EVERY_S = 1.0
#: an index not caught up for this long makes the service not ready (/readyz, HMA's /status)
STALE_AFTER_S = max(30.0, 10 * REFRESH_EVERY_S)


class Service:
    """Everything the routes share: database, pipeline stages, matcher, policy, keys, limits, metrics."""

    def __init__(self, db: Database, config: Config, settings: ServiceSettings, policy: Policy,
                 media_sources: list[MediaSource]) -> None:
        self.db = db
        self.config = config
        self.settings = settings
        self.policy = policy
        self.started = time.time()
        #: signs what must survive a round trip through the browser (the login form's CSRF token)
        self.secret: bytes = (settings.secret_key or secrets.token_urlsafe(32)).encode("utf-8")
        self.stages = default_stages(config, db)
        matcher = next((st.matcher for st in self.stages if isinstance(st, MatchStage) and st.matcher is not None), None)
        self.matcher: Matcher = matcher if matcher is not None else Matcher.from_config(db, config)
        # look-ups verify candidates against rows kept in memory, refreshed every REFRESH_EVERY_S by the
        # background thread (and at once after a change made here): no database query per look-up
        self.matcher.enable_cache()
        #: content items of the hits (the HMA routes), from memory like the look-ups themselves
        self.contents = ContentMap(db)
        self.keys = KeyVerifier(db, settings.session_hours)
        #: on PostgreSQL every process (replica or worker) spends from buckets shared through the database
        self.limiter: RateLimiter = (
            SharedRateLimiter(db, settings.rate_per_s, settings.rate_burst, settings.rate_sync_s)
            if db.dialect == "postgresql" and settings.rate_sync_s > 0
            else RateLimiter(settings.rate_per_s, settings.rate_burst))
        self.replica = replica_id(settings)
        self.metrics = Metrics(self.state, self.replica)
        self.media = MediaAccess(db, media_sources, config.limits if settings.case_files else None)
        # scan slots from CPUs and memory (settings.py); `tripwire serve --workers N` shares them among N processes
        processes = int(os.environ.get("TRIPWIRE_SERVE_WORKERS") or 1)
        self.scan_concurrency, how = sized_scan_concurrency(settings, processes, config.limits.max_decode_pixels)
        # on uvicorn's logger, which `tripwire serve` shows at --log-level info (tripwire's own is not configured)
        logging.getLogger("uvicorn.error").info("scan concurrency %d: %s; %d extraction worker processes",
                                                self.scan_concurrency, how, self.scan_concurrency + 1)
        self.scanner = Scanner(db, config, policy, self.stages, settings.case, self.scan_concurrency,
                               settings.spool_dir, bank_schemes=self.bank_schemes, observe=self.metrics.observe_scan,
                               item_timeout_s=settings.item_timeout_s)
        self._stop = threading.Event()
        #: set to refresh now (a bank change was announced) instead of at the next poll
        self._wake = threading.Event()
        self._refresher: threading.Thread | None = None
        self.last_refresh_ok = time.monotonic()
        #: when the last successful refresh began: the index reflects the database at least as of then
        self.fresh_as_of = time.monotonic()
        self.last_refresh_error: str | None = None
        self.listener = (BankChangeListener(db, self._wake.set)
                         if db.dialect == "postgresql" and settings.bank_notify else None)

    # -- match index ---------------------------------------------------------------------------------------

    def bank_schemes(self) -> dict[str, str]:
        return {b.name: b.category_scheme for b in self.matcher.banks.values()}

    def start(self) -> None:
        """Open the match index (load or build; default_stages may have opened it already) and keep it caught
        up in the background."""
        self.refresh_now()
        self.matcher.warm()
        self._refresher = threading.Thread(target=self._refresh_loop, name="tripwire-index-refresh", daemon=True)
        self._refresher.start()
        self.limiter.start()
        if self.listener is not None:
            self.listener.start()

    def _refresh_loop(self) -> None:
        while True:
            self._wake.wait(REFRESH_EVERY_S)
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                self.refresh_now()
                self.last_refresh_error = None
            except Exception as exc:  # the database may be briefly away: report through /readyz, keep trying
                self.last_refresh_error = f"{exc.__class__.__name__}: {exc}"
                log.warning("match index refresh failed: %s", self.last_refresh_error)

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self.listener is not None:
            self.listener.close()
        self.limiter.close()
        self.scanner.close()
        if self._refresher is not None:
            self._refresher.join(timeout=5)
        try:
            self.matcher.close()
        except Exception as exc:
            log.warning("could not save the match index: %s", exc)

    def refresh_now(self) -> None:
        """Make a bank change visible to matching at once (this process's, or one announced by another)."""
        began = time.monotonic()
        self.matcher.refresh(force=True)
        self.contents.sync()
        self.last_refresh_ok = time.monotonic()
        self.fresh_as_of = max(self.fresh_as_of, began)

    def index_age(self) -> float:
        return time.monotonic() - self.last_refresh_ok

    def index_problem(self) -> str | None:
        """Why look-ups cannot be trusted now (HMA's words: ``INDEX-NOT-LOADED``, ``INDEX-STALE``), or None."""
        if not self.matcher._opened:
            return "INDEX-NOT-LOADED"
        if self.index_age() >= STALE_AFTER_S:
            return "INDEX-STALE"
        return None

    def state(self) -> dict[str, Any]:
        return {"index_hashes": len(self.matcher.bank_index), "index_age_s": self.index_age(),
                "queue": queue_counts(self.db), "uptime_s": time.time() - self.started}

    def freshness(self) -> dict[str, Any]:
        """How far the match index lags the bank change log: the entry and change ids the database holds beyond
        what the index applied, and ``lag_s`` — 0 when caught up, else the seconds since the last refresh that
        began (what the index reflects at least; an upper bound on the staleness, by this host's clock only);
        None when the database cannot be read."""
        try:
            entries, changes = self.matcher.behind()
        except Exception as exc:
            return {"behind": None, "lag_s": None, "lag_error": f"{exc.__class__.__name__}: {exc}"[:300],
                    "lag_bound_s": self.settings.index_lag_bound_s}
        lag = 0.0 if not (entries or changes) else time.monotonic() - self.fresh_as_of
        return {"behind": {"entry_ids": entries, "change_ids": changes}, "lag_s": round(lag, 3),
                "lag_bound_s": self.settings.index_lag_bound_s}

    def readiness(self) -> tuple[bool, dict[str, Any]]:
        checks: dict[str, Any] = {}
        ok = True
        try:
            with self.db.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            checks["database"] = {"ok": True, "dialect": self.db.dialect}
        except Exception as exc:
            ok = False
            checks["database"] = {"ok": False, "error": f"{exc.__class__.__name__}: {exc}"[:300]}
        age = self.index_age()
        fresh = self.freshness()
        index_ok = (self.index_problem() is None
                    and fresh["lag_s"] is not None and fresh["lag_s"] <= self.settings.index_lag_bound_s)
        checks["index"] = {"ok": index_ok, "hashes": len(self.matcher.bank_index), "age_s": round(age, 3),
                           "banks": len(self.matcher.banks), "error": self.last_refresh_error, **fresh}
        ok = ok and index_ok
        checks["replica"] = {"id": self.replica, "listening": self.listener.listening if self.listener else None,
                             "shared_rate_limits": isinstance(self.limiter, SharedRateLimiter)}
        checks["scans"] = {"concurrency": self.scan_concurrency, "workers": self.scanner.workers.size}
        return ok, checks
