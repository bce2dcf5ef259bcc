"""Fetching an exchange: python-threatexchange's ``fetch_iter`` from the last committed checkpoint, one
transaction per page.

* **Resume.** The fetch starts from the stored checkpoint; each page commits with the checkpoint after it
  (:meth:`ExchangeStore.apply_page`), so a fetch killed at any point (``kill -9`` included) resumes where the
  last committed page ended: nothing is lost and, because records are keyed and values unique per bank, nothing
  is added twice.
* **Throttling and transient failures** (HTTP 429, 5xx, connection errors, time-outs): the fetch waits
  (``Retry-After`` when the source sends it, else an exponential back-off) and starts ``fetch_iter`` again from
  the committed checkpoint, up to ``retries`` times in a row.
* **A malformed page** (one the API's client cannot parse) is recorded — in the fetch status and, through
  ``on_page``, the audit trail — and stepped over when the API's position says where the next page starts
  (:func:`~.apis.skip_checkpoint`); a malformed *record* inside a good page is skipped alone. Otherwise the fetch
  stops with the error recorded and the next one retries: one bad page never silently stalls an exchange.
* **Refusals** (HTTP 4xx other than 429: bad credentials, no access) stop the fetch at once, recorded; nothing is
  skipped.
* **Deletions** (NCMEC's ``deleted`` entries, ThreatExchange's ``should_delete``,
  a list that no longer names a value) tombstone the bank entry once no record of the exchange holds the value.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from sqlalchemy.orm import Session

from ...store.db import Database
from .apis import (SNAPSHOT_APIS, ExchangeApiError, ExchangeSettings, build_api, convert_record, credentials_for, dump,
                   load_checkpoint, skip_checkpoint, te_types)
from .store import ConcurrentFetch, ExchangeStore, PageResult, Values

__all__ = ["FetchReport", "fetch_exchange", "is_transient"]

log = logging.getLogger(__name__)

OnPage = Callable[[Session, PageResult], None]


@dataclass
class FetchReport:
    exchange: str
    api: str
    pages: int = 0
    skipped_pages: int = 0
    records: int = 0
    added: int = 0
    restored: int = 0
    removed: int = 0
    bad_records: int = 0
    #: waits after a throttled or failed request
    retries: int = 0
    complete: bool = False
    error: str | None = None
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def changed(self) -> int:
        return self.added + self.restored + self.removed

    def summary(self) -> str:
        state = "up to date" if self.complete else f"stopped: {self.error}"
        return (f"{self.exchange} ({self.api}): {self.pages} pages, {self.records} records: {self.added} entries added, "
                f"{self.restored} restored, {self.removed} removed, {self.bad_records} malformed records, "
                f"{self.skipped_pages} pages skipped, {self.retries} retries in {self.seconds:.1f} s; {state}")

    def as_dict(self) -> dict[str, Any]:
        return {"exchange": self.exchange, "api": self.api, "pages": self.pages, "skipped_pages": self.skipped_pages,
                "records": self.records, "added": self.added, "restored": self.restored, "removed": self.removed,
                "bad_records": self.bad_records, "retries": self.retries, "complete": self.complete,
                "error": self.error, "errors": self.errors[:50], "seconds": round(self.seconds, 3)}


def is_transient(exc: BaseException) -> tuple[bool, float | None]:
    """(worth retrying, the source's Retry-After in seconds) for an exception out of a fetch."""
    import requests

    if isinstance(exc, (requests.ConnectionError, requests.Timeout, requests.exceptions.RetryError)):
        return True, None
    if isinstance(exc, requests.HTTPError) and exc.response is not None:
        status = exc.response.status_code
        if status == 429 or status >= 500:
            after = exc.response.headers.get("Retry-After")
            try:
                return True, float(after) if after is not None else None
            except ValueError:
                return True, None
    return False, None


def _refused(exc: BaseException) -> bool:
    """An HTTP error other than throttling or a server failure (401, 403, 404, 400): not a malformed page, and
    never skipped — retrying or skipping would not make the source say yes."""
    import requests

    return isinstance(exc, requests.HTTPError) and exc.response is not None and 400 <= exc.response.status_code < 500


def _describe(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) <= 500 else text[:500] + "…"


def fetch_exchange(db: Database, name: str, settings: ExchangeSettings, *, on_page: OnPage | None = None,
                   progress: Callable[[FetchReport], None] | None = None, stop: threading.Event | None = None,
                   sleep: Callable[[float], Any] = time.sleep, mark: tuple[int, int] = (0, 0)) -> FetchReport:
    """Fetch ``name`` from its committed checkpoint until the source has no more (see the module docs).

    ``on_page(session, page)`` runs inside each page's transaction; ``progress(report)`` after each page;
    ``stop`` ends the fetch after the current page; ``mark``: the banks' position before the fetch (kept as the
    pending re-match start, see :meth:`ExchangeStore.start_fetch`)."""
    store = ExchangeStore(db)
    info = store.start_fetch(name, mark)
    report = FetchReport(exchange=info.name, api=info.api)
    started = time.monotonic()
    concurrent = False
    try:
        _run(store, info.name, settings, report, on_page, progress, stop, sleep)
    except ConcurrentFetch as exc:  # the other fetch owns the status
        report.error, concurrent = str(exc), True
    except Exception as exc:  # recorded in the status; the caller decides how to show it
        report.error = report.error or _describe(exc)
        log.warning("exchange %s: %s", name, report.error)
    finally:
        report.seconds = time.monotonic() - started
        if not concurrent:
            store.finish_fetch(info.name, report.complete, report.error if not report.complete else
                               ("; ".join(report.errors[-3:]) or None))
    return report


def _run(store: ExchangeStore, name: str, settings: ExchangeSettings, report: FetchReport, on_page: OnPage | None,
         progress: Callable[[FetchReport], None] | None, stop: threading.Event | None, sleep: Callable[[float], Any]) -> None:
    info = store.get(name)
    collab = info.collab()
    api = build_api(info.api, collab, credentials_for(info.name, info.api, settings), info.base_url)
    types = te_types()
    failures = 0
    while True:
        committed = store.get(name).checkpoint
        checkpoint = load_checkpoint(info.api, committed)
        if checkpoint is not None and checkpoint.is_stale():
            checkpoint = None  # the API says its position has expired: fetch everything again (keys dedupe)
        try:
            for delta in api.fetch_iter(types[0], checkpoint):
                updates: dict[str, Values | None] = {}
                bad: list[tuple[str, str]] = []
                for key, value in delta.updates.items():
                    try:
                        stored, values = convert_record(info.api, collab, key, value, types)
                    except Exception as exc:  # one malformed record: skip it, keep the page
                        bad.append((str(key)[:300], _describe(exc)))
                        continue
                    updates[stored] = values
                after = dump(delta.checkpoint) if delta.checkpoint is not None else None
                page = store.apply_page(name, committed, after, updates, page=report.pages + 1,
                                        snapshot=info.api in SNAPSHOT_APIS, bad_records=bad, on_commit=on_page)
                committed = after
                failures = 0
                _count(report, page)
                if progress is not None:
                    progress(report)
                if stop is not None and stop.is_set():
                    report.error = "stopped before the source was exhausted (the next fetch resumes here)"
                    return
            report.complete = True
            return
        except (ExchangeApiError, ConcurrentFetch):
            raise
        except Exception as exc:
            transient, after_s = is_transient(exc)
            what = _describe(exc)
            report.errors.append(what)
            if transient:
                failures += 1
                if failures > settings.retries:
                    report.error = f"gave up after {settings.retries} retries: {what}"
                    return
                wait = after_s if after_s is not None else min(settings.max_backoff, settings.backoff * 2 ** (failures - 1))
                report.retries += 1
                log.info("exchange %s: %s; retrying in %.1f s", name, what, wait)
                if stop is not None and stop.wait(wait):
                    report.error = "stopped while waiting to retry"
                    return
                if stop is None:
                    sleep(wait)
                continue
            if _refused(exc):  # the source answered, and said no (credentials, permissions, a bad request)
                report.error = f"the source refused the request: {what}"
                if on_page is not None:
                    store.record_error(name, committed, report.error, on_page, page=report.pages + 1)
                return
            skip = skip_checkpoint(info.api, load_checkpoint(info.api, committed))
            if skip is None or report.skipped_pages >= settings.max_skips:
                why = "no position past it" if skip is None else f"{settings.max_skips} pages skipped already"
                report.error = f"malformed page at the committed checkpoint, not skipped ({why}): {what}"
                if on_page is not None:
                    store.record_error(name, committed, what, on_page, page=report.pages + 1)
                return
            nxt, skipped = skip
            page = store.apply_page(name, committed, dump(nxt), {}, page=report.pages + 1, skipped=skipped,
                                    on_commit=_with_error(on_page, what))
            report.skipped_pages += 1
            _count(report, page)


def _with_error(on_page: OnPage | None, error: str) -> OnPage | None:
    if on_page is None:
        return None

    def call(s: Session, page: PageResult) -> None:
        page.error = error
        on_page(s, page)

    return call


def _count(report: FetchReport, page: PageResult) -> None:
    report.pages += 1
    report.records += page.records
    report.added += page.added
    report.restored += page.restored
    report.removed += page.removed
    report.bad_records += len(page.bad_records)
    report.errors += [f"record {k}: {m}" for k, m in page.bad_records[:5]]
