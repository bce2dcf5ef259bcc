"""Per-key token buckets: each key may make ``rate`` requests per second on average, ``burst`` at once.

A client that runs away (a retry loop, a leaked key) slows down instead of starving everyone else.

:class:`RateLimiter` keeps the buckets in the process (SQLite, one host): with ``tripwire serve --workers N``
each worker has its own, so the effective limit there is ``workers x rate`` (docs/service.md).

:class:`SharedRateLimiter` (PostgreSQL: replicas, or workers, on one database) shares them without a database
round trip per request. Each process still decides every request from its local bucket; a background thread
sends what it admitted since the last round to the ``rate_buckets`` table every ``sync_s`` (0.1 s by default)
in ONE statement, which refills the shared bucket by the database's clock, subtracts every process's spending,
and returns the shared level, which becomes the local level. So a key spent on replica A is short on replica B
one round later. The bound (docs/replicas.md): over any interval of D seconds, N processes admit a key at most
``rate x D + N x burst + N x rate x (sync_s + round trip)`` requests; the shared level goes negative by what was
over-admitted, and that debt is repaid before anything more is admitted, so the sustained rate stays ``rate``.

Login throttling (rare, and the one limit an attacker probes) is exact instead: each attempt spends from the
shared bucket in its own transaction (:meth:`SharedRateLimiter.throttle_login`).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

from sqlalchemy import delete, func, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert

from ..store.db import Database
from .models import RateBucket

__all__ = ["LOGIN_RATE_PER_S", "RateLimiter", "SharedRateLimiter"]

log = logging.getLogger(__name__)

#: console login attempts per second per client address (burst: twice that)
LOGIN_RATE_PER_S = 2.0
#: how often the shared table is swept of buckets that have refilled completely (absent means full)
PRUNE_EVERY_S = 30.0


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """Token buckets keyed by API key id; :meth:`take` returns 0 when allowed, else seconds to wait."""

    def __init__(self, rate: float = 50.0, burst: float | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        if rate <= 0:
            raise ValueError("the rate must be positive")
        self.rate = float(rate)
        self.burst = float(burst) if burst is not None else max(1.0, 2.0 * self.rate)
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    def limits(self, rate: float | None) -> tuple[float, float]:
        """(rate, burst) for a key's own rate (None: the default)."""
        rate = float(rate) if rate else self.rate
        return rate, (max(self.burst, rate) if rate == self.rate else max(1.0, 2.0 * rate))

    def take(self, key: str, rate: float | None = None, cost: float = 1.0) -> float:
        """Spend ``cost`` tokens of ``key``'s bucket. Returns 0.0 if allowed, otherwise the seconds until
        enough tokens will have accumulated (what ``Retry-After`` reports)."""
        rate, burst = self.limits(rate)
        now = self._clock()
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                bucket = self._buckets[key] = _Bucket(burst, now)
            bucket.tokens = min(burst, bucket.tokens + (now - bucket.updated) * rate)
            bucket.updated = now
            allowed = bucket.tokens >= cost
            if allowed:
                bucket.tokens -= cost
            self._spent(key, rate, burst, cost if allowed else 0.0)
            return 0.0 if allowed else (cost - bucket.tokens) / rate

    def _spent(self, key: str, rate: float, burst: float, cost: float) -> None:
        """Called under the lock after each decision; the process-local limiter has nobody to tell."""

    def throttle_login(self, client: str) -> float:
        """One console login attempt from ``client``: 0.0 when allowed, else seconds to wait."""
        return self.take(f"login:{client}", LOGIN_RATE_PER_S)

    def start(self) -> None:
        """Process-local buckets need no background work."""

    def close(self) -> None:
        """Process-local buckets need no background work."""

    @staticmethod
    def retry_after(wait: float) -> str:
        return str(max(1, math.ceil(wait)))


class SharedRateLimiter(RateLimiter):
    """Local buckets reconciled with the ``rate_buckets`` table every ``sync_s`` (PostgreSQL; module docs)."""

    def __init__(self, db: Database, rate: float = 50.0, burst: float | None = None, sync_s: float = 0.1,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(rate, burst, clock)
        if db.dialect != "postgresql":
            raise ValueError("shared rate limits need PostgreSQL")
        self.db = db
        self.sync_s = sync_s
        #: per key, since the last round: [tokens admitted, rate, burst] (refused requests send 0: the key is
        #: still reconciled, so a replica that is refusing learns when the shared bucket has refilled)
        self._pending: dict[str, list[float]] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.last_sync_ok: float | None = None
        self.last_sync_error: str | None = None
        self._pruned = 0.0

    def _spent(self, key: str, rate: float, burst: float, cost: float) -> None:
        pending = self._pending.get(key)
        if pending is None:
            self._pending[key] = [cost, rate, burst]
        else:
            pending[0] += cost
            pending[1], pending[2] = rate, burst

    # -- reconciling ----------------------------------------------------------------------------------------

    def sync(self) -> int:
        """Send what was admitted since the last round, take the shared levels back; returns keys reconciled."""
        with self._lock:
            batch, self._pending = self._pending, {}
        if not batch:
            return 0
        names = sorted(batch)  # rows locked in one order by every replica: no deadlock between two rounds
        try:
            with self.db.engine.begin() as conn:
                rows = conn.execute(_SYNC_SQL, {"names": names, "spent": [batch[n][0] for n in names],
                                                "rates": [batch[n][1] for n in names],
                                                "bursts": [batch[n][2] for n in names]}).all()
        except Exception:
            with self._lock:  # keep the spending for the next round
                for name, (spent, rate, burst) in batch.items():
                    self._spent(name, rate, burst, spent)
            raise
        now = self._clock()
        with self._lock:
            for name, tokens in rows:
                bucket = self._buckets.get(name)
                if bucket is None:
                    continue
                since = self._pending.get(name)  # admitted here while the round was under way
                bucket.tokens = min(batch[name][2], float(tokens) - (since[0] if since else 0.0))
                bucket.updated = now
        return len(rows)

    def prune(self) -> int:
        """Delete buckets that have refilled completely by now (an absent bucket is a full one)."""
        now = func.extract("epoch", func.clock_timestamp())
        with self.db.session() as s:
            result: Any = s.execute(delete(RateBucket).where(
                RateBucket.updated_at + (RateBucket.burst - RateBucket.tokens) / RateBucket.rate < now))
            return int(result.rowcount or 0)

    def throttle_login(self, client: str) -> float:
        """Exact across replicas: the attempt spends from the shared bucket in one transaction (blocking: a
        few milliseconds; login attempts are rare). Falls back to this process's bucket if the database fails."""
        rate, burst = LOGIN_RATE_PER_S, max(1.0, 2.0 * LOGIN_RATE_PER_S)
        name = f"login:{client}"
        now_sql = func.extract("epoch", func.clock_timestamp())
        try:
            with self.db.session() as s:
                s.execute(pg_insert(RateBucket).values(name=name, tokens=burst, rate=rate, burst=burst, updated_at=now_sql)
                          .on_conflict_do_nothing(index_elements=["name"]))
                tokens, updated, now = s.execute(select(RateBucket.tokens, RateBucket.updated_at, now_sql)
                                                 .where(RateBucket.name == name).with_for_update()).one()
                tokens = min(burst, float(tokens) + max(0.0, float(now) - float(updated)) * rate)
                allowed = tokens >= 1.0
                s.execute(update(RateBucket).where(RateBucket.name == name)
                          .values(tokens=tokens - 1.0 if allowed else tokens, updated_at=float(now)))
                return 0.0 if allowed else (1.0 - tokens) / rate
        except Exception as exc:
            log.warning("shared login throttle unavailable (%s: %s); throttling in this process", exc.__class__.__name__, exc)
            return super().throttle_login(client)

    # -- the background round ---------------------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="tripwire-rate-sync", daemon=True)
            self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        try:
            self.sync()  # what this process admitted last still counts for the others
        except Exception as exc:
            log.warning("last rate-limit round failed: %s", exc)

    def _loop(self) -> None:
        while not self._stop.wait(self.sync_s):
            try:
                self.sync()
                if self._clock() - self._pruned >= PRUNE_EVERY_S:
                    self._pruned = self._clock()
                    self.prune()
                self.last_sync_ok = self._clock()
                self.last_sync_error = None
            except Exception as exc:  # the database may be briefly away: limits stay local meanwhile
                self.last_sync_error = f"{exc.__class__.__name__}: {exc}"
                log.warning("rate-limit round failed: %s", self.last_sync_error)


#: one round for every key touched: a new key's bucket starts full less what was spent; an existing one is
#: refilled by the database's clock (capped at its burst), then charged. ``EXCLUDED.burst - EXCLUDED.tokens``
#: is the spending carried in the proposed row. Rows are inserted in name order, so concurrent rounds of two
#: replicas lock them in the same order.
_SYNC_SQL = text("""
    INSERT INTO rate_buckets AS b (name, tokens, rate, burst, updated_at)
    SELECT v.name, v.burst - v.spent, v.rate, v.burst, CAST(extract(epoch FROM clock_timestamp()) AS float8)
    FROM unnest(CAST(:names AS text[]), CAST(:spent AS float8[]), CAST(:rates AS float8[]),
                CAST(:bursts AS float8[])) AS v(name, spent, rate, burst)
    ORDER BY v.name
    ON CONFLICT (name) DO UPDATE SET
        tokens = LEAST(EXCLUDED.burst, b.tokens + GREATEST(0, EXCLUDED.updated_at - b.updated_at) * EXCLUDED.rate)
                 - (EXCLUDED.burst - EXCLUDED.tokens),
        rate = EXCLUDED.rate, burst = EXCLUDED.burst, updated_at = GREATEST(b.updated_at, EXCLUDED.updated_at)
    RETURNING b.name, b.tokens
""")
