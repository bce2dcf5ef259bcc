"""Per-key token buckets: each key may make ``rate`` requests per second on average, ``burst`` at once.

A client that runs away (a retry loop, a leaked key) slows down instead of starving everyone else. The
buckets live in the process; with several server workers each has its own, so the effective limit is
``workers x rate`` (documented in docs/service.md).
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """Token buckets keyed by API key id; :meth:`take` returns 0 when allowed, else seconds to wait."""

    def __init__(self, rate: float = 50.0, burst: float | None = None, clock=time.monotonic) -> None:
        if rate <= 0:
            raise ValueError("the rate must be positive")
        self.rate = float(rate)
        self.burst = float(burst) if burst is not None else max(1.0, 2.0 * self.rate)
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    def take(self, key: str, rate: float | None = None, cost: float = 1.0) -> float:
        """Spend ``cost`` tokens of ``key``'s bucket. Returns 0.0 if allowed, otherwise the seconds until
        enough tokens will have accumulated (what ``Retry-After`` reports)."""
        rate = float(rate) if rate else self.rate
        burst = max(self.burst, rate) if rate == self.rate else max(1.0, 2.0 * rate)
        now = self._clock()
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                bucket = self._buckets[key] = _Bucket(burst, now)
            bucket.tokens = min(burst, bucket.tokens + (now - bucket.updated) * rate)
            bucket.updated = now
            if bucket.tokens >= cost:
                bucket.tokens -= cost
                return 0.0
            return (cost - bucket.tokens) / rate

    @staticmethod
    def retry_after(wait: float) -> str:
        return str(max(1, math.ceil(wait)))
