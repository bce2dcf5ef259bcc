"""Prometheus metrics (``GET /metrics``): requests, latencies, scans by outcome, index size and age.

Each app has its own registry (several apps can live in one test process). Gauges that describe state
outside the process — the PDQ index, the review queue — are read at scrape time by a custom collector,
so they are never stale. With ``tripwire serve --workers N`` each worker keeps its own counters; a scrape
reaches one worker (see docs/service.md).

Every sample carries a ``replica`` label (:func:`tripwire.service.replicas.replica_id`): replicas behind one
load balancer are scraped each on its own address, and their series stay apart when summed (docs/replicas.md).
"""

from __future__ import annotations

import time
from typing import Any, Callable, Iterator

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class _StateCollector:
    """Reads live state when Prometheus scrapes."""

    def __init__(self, state: Callable[[], dict[str, Any]]) -> None:
        self._state = state

    def collect(self) -> Iterator[GaugeMetricFamily]:
        try:
            st = self._state()
        except Exception:  # a scrape must not fail because the database is briefly unavailable
            st = {}
        g = GaugeMetricFamily("tripwire_index_hashes", "PDQ hashes in the in-memory match index")
        g.add_metric([], float(st.get("index_hashes", 0)))
        yield g
        g = GaugeMetricFamily("tripwire_index_age_seconds", "Seconds since the match index last caught up with the database")
        g.add_metric([], float(st.get("index_age_s", -1)))
        yield g
        g = GaugeMetricFamily("tripwire_review_queue_items", "Items waiting in the review queue", labels=["state"])
        for state, n in (st.get("queue") or {}).items():
            g.add_metric([state], float(n))
        yield g
        g = GaugeMetricFamily("tripwire_uptime_seconds", "Seconds since the service started")
        g.add_metric([], float(st.get("uptime_s", 0)))
        yield g


class _ReplicaRegistry(CollectorRegistry):
    """A registry whose every sample is labelled with the replica that produced it."""

    def __init__(self, replica: str) -> None:
        super().__init__(auto_describe=True)
        self.replica = replica

    def collect(self) -> Iterator[Metric]:
        for family in super().collect():
            family.samples = [s._replace(labels={**s.labels, "replica": self.replica}) for s in family.samples]
            yield family


#: request series whose children :meth:`Metrics.observe_request` keeps at hand (routes x methods x statuses)
MAX_REMEMBERED_SERIES = 1024


class Metrics:
    def __init__(self, state: Callable[[], dict[str, Any]], replica: str) -> None:
        self.replica = replica
        self.registry = _ReplicaRegistry(replica)
        self.requests = Counter("tripwire_http_requests", "HTTP requests by route, method and status",
                                ["method", "route", "status"], registry=self.registry)
        self.latency = Histogram("tripwire_http_request_duration_seconds", "Request latency by route",
                                 ["method", "route"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self.scans = Counter("tripwire_scan_files", "Files scanned, by the policy's action", ["action"], registry=self.registry)
        self.scan_items = Counter("tripwire_scan_items", "Items (files and archive members) scanned, by outcome",
                                  ["outcome"], registry=self.registry)
        self.scan_seconds = Histogram("tripwire_scan_duration_seconds", "Time to process one scan request",
                                      buckets=LATENCY_BUCKETS, registry=self.registry)
        self.lookups = Counter("tripwire_lookup_hashes", "Hashes looked up, by whether they matched",
                               ["result"], registry=self.registry)
        self.rate_limited = Counter("tripwire_rate_limited", "Requests refused by the per-key rate limit",
                                    registry=self.registry)
        self.auth_failures = Counter("tripwire_auth_failures", "Requests refused for a missing or bad key",
                                     registry=self.registry)
        self.registry.register(_StateCollector(state))
        self.started = time.time()
        # each series' children resolved once: prometheus_client's labels() takes a lock and builds the label
        # tuple on every call, which was a visible share of a ~100 µs look-up request
        self._request_series: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        series = self._request_series.get((method, route, status))
        if series is None:
            series = (self.requests.labels(method, route, str(status)), self.latency.labels(method, route))
            if len(self._request_series) < MAX_REMEMBERED_SERIES:  # methods are client-chosen words
                self._request_series[(method, route, status)] = series
        series[0].inc()
        series[1].observe(seconds)

    def observe_scan(self, actions: list[str], ok: int, errors: int, seconds: float) -> None:
        for action in actions:
            self.scans.labels(action).inc()
        if ok:
            self.scan_items.labels("ok").inc(ok)
        if errors:
            self.scan_items.labels("error").inc(errors)
        self.scan_seconds.observe(seconds)

    def render(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
