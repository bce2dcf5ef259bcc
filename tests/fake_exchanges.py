"""Local stand-ins for NCMEC's hash-sharing API, ThreatExchange's Graph API and StopNCII's FetchHashes, for tests
and bench/exchange_fetch.py.

Each speaks its protocol the way python-threatexchange's clients expect it, so tripwire's fetcher runs the
real clients against them (pointed here with an exchange's ``base_url``):

* **NCMEC** (``/v2/entries``, XML, HTTP Basic auth): ``from``/``to`` select updates by timestamp (from
  inclusive, to exclusive), pages of ``page_size`` with ``<paging><next>/v2/entries?...&start=&size=&max=</next>``
  (``start`` 1-based), ``<images maxTimestamp=...>`` / ``<videos ...>``, ``<image>``/``<deletedImage>`` entries with
  ``<member id>``, ``<id>``, ``<timestamp>``, ``<classification>``, ``<fingerprints>``.
* **ThreatExchange** (``/<privacy group>/threat_updates/``, JSON, ``access_token``): updates ordered by
  ``last_updated``, ``start_time`` inclusive, ``limit`` per page, ``paging.next`` an absolute URL with an
  ``after`` cursor; ``should_delete`` tombstones.
* **StopNCII** (``/FetchHashes``, JSON, function and subscription key headers): ``startTimestamp``, pages with
  ``nextPageToken``/``hasMoreRecords``/``nextSetTimestamp``.

Faults: ``throttle(n)`` answers the next ``n`` requests with HTTP 429 (``Retry-After: 0``); ``malformed`` holds
NCMEC ``start`` values (or ThreatExchange ``after`` cursors) whose page is answered with a truncated body every
time; ``delay`` seconds are spent before each answer. ``served`` counts answered data pages.
"""

from __future__ import annotations

import base64
import json
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from xml.sax.saxutils import escape

NCMEC_USER, NCMEC_PASSWORD = "tester", "not-a-real-password"
#: shaped like a real app token (python-threatexchange checks the shape)
TE_TOKEN = "1234567890|abcdefghijklmnopqrstuvwxyz012345"
_FMT = "%Y-%m-%dT%H:%M:%SZ"


@dataclass
class NcmecUpdate:
    ts: int
    member: int
    entry_id: str
    kind: str = "image"  # image | video
    deleted: bool = False
    fingerprints: dict[str, str] = field(default_factory=dict)
    classification: str | None = "A1"


@dataclass
class TeUpdate:
    ts: int
    indicator: str
    threat_type: str = "HASH_PDQ"
    deleted: bool = False
    status: str = "MALICIOUS"
    tags: list[str] = field(default_factory=list)
    owner: int = 4242


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class FakeExchange:
    """Base: a threaded HTTP server on 127.0.0.1 with fault injection."""

    def __init__(self, page_size: int = 500, delay: float = 0.0) -> None:
        self.page_size = page_size
        self.delay = delay
        self.lock = threading.Lock()
        self.served = 0
        #: entries (updates) answered in data pages so far
        self.entries_served = 0
        self.requests = 0
        self.throttled = 0
        self._throttle = 0
        self.malformed: set[str] = set()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                with fake.lock:
                    fake.requests += 1
                    throttle = fake._throttle > 0
                    if throttle:
                        fake._throttle -= 1
                        fake.throttled += 1
                if throttle:
                    self._send(429, b"slow down", "text/plain", {"Retry-After": "0"})
                    return
                if fake.delay:
                    time.sleep(fake.delay)
                status, body, ctype = fake.handle(self)
                self._send(status, body, ctype)

            def _send(self, status: int, body: bytes, ctype: str, headers: dict[str, str] | None = None) -> None:
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

        self.server = _Server(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def throttle(self, n: int) -> None:
        with self.lock:
            self._throttle = n

    def handle(self, request: BaseHTTPRequestHandler) -> tuple[int, bytes, str]:
        raise NotImplementedError

    def __enter__(self) -> "FakeExchange":
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()


class FakeNcmec(FakeExchange):
    """NCMEC's hash-sharing API (v2 entries) over ``updates``."""

    def __init__(self, updates: list[NcmecUpdate], **kw: Any) -> None:
        super().__init__(**kw)
        self.updates = sorted(updates, key=lambda u: u.ts)

    def add(self, updates: list[NcmecUpdate]) -> None:
        with self.lock:
            self.updates = sorted(self.updates + updates, key=lambda u: u.ts)

    def handle(self, request: BaseHTTPRequestHandler) -> tuple[int, bytes, str]:
        expected = "Basic " + base64.b64encode(f"{NCMEC_USER}:{NCMEC_PASSWORD}".encode()).decode()
        if request.headers.get("Authorization") != expected:
            return 401, b"unauthorized", "text/plain"
        parts = urllib.parse.urlsplit(request.path)
        if parts.path != "/v2/entries":
            return 404, b"not found", "text/plain"
        q = {k: v[0] for k, v in urllib.parse.parse_qs(parts.query).items()}
        # the client formats times with datetime.fromtimestamp (local time): read them back the same way
        start_ts = int(datetime.strptime(q["from"], _FMT).timestamp())
        end_ts = int(datetime.strptime(q["to"], _FMT).timestamp())
        start = int(q.get("start", "1"))
        size = int(q.get("size", str(self.page_size)))
        with self.lock:
            window = [u for u in self.updates if start_ts <= u.ts < end_ts]
            self.served += 1
        if q.get("start") in self.malformed:
            return 200, b'<?xml version="1.0"?><queryResult xmlns="https://hashsharing.ncmec.org/hashsharing/v2"><images', \
                "application/xml"
        page = window[start - 1 : start - 1 + size]
        with self.lock:
            self.entries_served += len(page)
        top = len(window)
        nxt = ""
        if start - 1 + size < top:
            query = urllib.parse.urlencode({"from": q["from"], "to": q["to"], "start": start + size, "size": size, "max": top})
            nxt = f"<paging><next>{escape('/v2/entries?' + query)}</next></paging>"
        return 200, self._xml(page, nxt).encode(), "application/xml"

    @staticmethod
    def _xml(page: list[NcmecUpdate], paging: str) -> str:
        blocks = []
        for kind in ("image", "video"):
            mine = [u for u in page if u.kind == kind]
            if not mine:
                continue
            top = datetime.fromtimestamp(max(u.ts for u in mine), timezone.utc).strftime(_FMT)
            items = []
            for u in mine:
                ts = datetime.fromtimestamp(u.ts, timezone.utc).strftime(_FMT)
                head = f'<member id="{u.member}">Member {u.member}</member><timestamp>{ts}</timestamp><id>{escape(u.entry_id)}</id>'
                if u.deleted:
                    tag = "deleted" + kind.capitalize()
                    items.append(f"<{tag}>{head}</{tag}>")
                    continue
                prints = "".join(f"<{k}>{escape(v)}</{k}>" for k, v in u.fingerprints.items())
                cls = f"<classification>{escape(u.classification)}</classification>" if u.classification else ""
                items.append(f"<{kind}>{head}{cls}<fingerprints>{prints}</fingerprints></{kind}>")
            blocks.append(f'<{kind}s count="{len(mine)}" maxTimestamp="{top}">{"".join(items)}</{kind}s>')
        return ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
                f'<queryResult xmlns="https://hashsharing.ncmec.org/hashsharing/v2">{"".join(blocks)}{paging}</queryResult>')


class FakeThreatExchange(FakeExchange):
    """ThreatExchange's ``/threat_updates`` over ``updates``."""

    def __init__(self, updates: list[TeUpdate], privacy_group: int = 1000, **kw: Any) -> None:
        super().__init__(**kw)
        self.updates = sorted(updates, key=lambda u: u.ts)
        self.privacy_group = privacy_group

    def add(self, updates: list[TeUpdate]) -> None:
        with self.lock:
            self.updates = sorted(self.updates + updates, key=lambda u: u.ts)

    def handle(self, request: BaseHTTPRequestHandler) -> tuple[int, bytes, str]:
        parts = urllib.parse.urlsplit(request.path)
        q = {k: v[0] for k, v in urllib.parse.parse_qs(parts.query).items()}
        if q.get("access_token") != TE_TOKEN:
            return 400, json.dumps({"error": {"message": "Invalid OAuth access token", "code": 190}}).encode(), "application/json"
        if parts.path.rstrip("/") != f"/{self.privacy_group}/threat_updates":
            return 404, b'{"error": {"message": "Unsupported get request"}}', "application/json"
        start_time = int(q["start_time"]) if q.get("start_time") else 0
        stop_time = int(q["stop_time"]) if q.get("stop_time") else None
        limit = int(q.get("limit") or self.page_size)
        offset = int(q.get("after") or 0)
        with self.lock:
            selected = [u for u in self.updates if u.ts >= start_time and (stop_time is None or u.ts < stop_time)]
            self.served += 1
        if q.get("after") in self.malformed:
            return 200, b'{"data": [{"id": "1", "indicator"', "application/json"
        page = selected[offset : offset + limit]
        with self.lock:
            self.entries_served += len(page)
        body: dict[str, Any] = {"data": [self._json(u, offset + i) for i, u in enumerate(page)]}
        if offset + limit < len(selected):
            keep = {k: v for k, v in q.items() if k != "after"}
            body["paging"] = {"cursors": {"after": str(offset + limit)},
                              "next": f"{self.url}{parts.path}?{urllib.parse.urlencode({**keep, 'after': offset + limit})}"}
        return 200, json.dumps(body).encode(), "application/json"

    @staticmethod
    def _json(u: TeUpdate, n: int) -> dict[str, Any]:
        out: dict[str, Any] = {"id": str(10_000_000 + n), "indicator": u.indicator, "type": u.threat_type,
                               "last_updated": u.ts, "should_delete": u.deleted}
        if not u.deleted:
            out["descriptors"] = {"data": [{"id": str(20_000_000 + n), "owner": {"id": str(u.owner)}, "status": u.status,
                                            "tags": u.tags, "reactions": []}]}
        return out


STOPNCII_KEYS = ("fetch-function-key", "subscription-key")


@dataclass
class StopNciiRecord:
    ts: int
    value: str
    signal_type: str = "ImagePDQ"
    status: str = "Active"
    feedback: list[str] = field(default_factory=list)


class FakeStopNcii(FakeExchange):
    """StopNCII's ``/FetchHashes`` (JSON; ``x-functions-key`` and ``Ocp-Apim-Subscription-Key`` headers):
    ``startTimestamp`` inclusive, pages of at most ``page_size`` (or the client's ``pageSize``), an opaque
    ``nextPageToken`` while ``hasMoreRecords``, and ``nextSetTimestamp`` to resume from."""

    def __init__(self, records: list[StopNciiRecord], **kw: Any) -> None:
        super().__init__(**kw)
        self.records = sorted(records, key=lambda r: r.ts)

    def add(self, records: list[StopNciiRecord]) -> None:
        with self.lock:
            self.records = sorted(self.records + records, key=lambda r: r.ts)

    def handle(self, request: BaseHTTPRequestHandler) -> tuple[int, bytes, str]:
        if (request.headers.get("x-functions-key"), request.headers.get("Ocp-Apim-Subscription-Key")) != STOPNCII_KEYS:
            return 401, b'{"message": "Access denied"}', "application/json"
        parts = urllib.parse.urlsplit(request.path)
        if parts.path != "/FetchHashes":
            return 404, b"{}", "application/json"
        q = {k: v[0] for k, v in urllib.parse.parse_qs(parts.query).items()}
        start = int(q.get("startTimestamp") or 0)
        size = min(int(q.get("pageSize") or self.page_size), self.page_size)
        offset = int(q.get("nextPageToken") or 0)
        with self.lock:
            selected = [r for r in self.records if r.ts >= start]
            self.served += 1
        page = selected[offset : offset + size]
        with self.lock:
            self.entries_served += len(page)
        more = offset + size < len(selected)
        body = {"count": len(page), "nextPageToken": str(offset + size) if more else None,
                "nextSetTimestamp": max((r.ts for r in page), default=start), "hasMoreRecords": more,
                "hashRecords": [{"lastModtimestamp": r.ts, "signalType": r.signal_type, "hashValue": r.value,
                                 "hashStatus": r.status, "caseNumbers": {"case-1": r.status},
                                 "CSPFeedbacks": [{"feedbackValue": f, "tags": [], "source": "csp-1"} for f in r.feedback]}
                                for r in page]}
        return 200, json.dumps(body).encode(), "application/json"
