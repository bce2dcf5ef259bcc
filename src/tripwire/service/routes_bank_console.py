"""Bank management in the review console (what HMA's UI offers): banks with counts and settings, their entries
page by page, adding by hash or by file, test-matching a hash or a file against a bank, and the exchanges with
their last fetch.

Same rules as the other console pages (:mod:`.routes_console`): a session with the ``console`` permission (plus
``banks.read`` to look, ``banks.write`` to add), every POST carrying the session's CSRF token. An uploaded file is
hashed in memory and dropped: only its hashes are kept (when added) or shown (when tested); no picture is ever
displayed here. Additions are audited with the bank change (:mod:`.bankops`) and re-match the stored items.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Form, HTTPException, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool

from ..banks.exchanges.store import ExchangeStore
from ..banks.store import BankError, BankStore
from ..match.lookup import parse_query
from ..signals.registry import registry
from . import bankops
from .auth import Principal, csrf_ok
from .deps import need, service_of
from .hma_exchanges import fetch_status
from .routes_console import _check_csrf, _page, add_section

router = APIRouter(prefix="/console", include_in_schema=False)
# one nav and one page renderer for the whole console
add_section("/console/banks", "Banks", "banks.read")
add_section("/console/exchanges", "Exchanges", "banks.read")

PAGE_SIZE = 50
#: the signal types a file adds to a bank: its SHA-256 always, its PDQ when it is an image
FILE_SIGNALS = ("sha256", "pdq")


def _check(principal: Principal, token: str | None) -> None:
    _check_csrf(principal, token)
    if not principal.can("console"):
        raise HTTPException(403, f"the {principal.role} role cannot use the console")


def file_signals(svc: Any, data: bytes) -> dict[str, Any]:
    """The hashes a scan would compute for ``data`` (digests, PDQ), computed in memory; nothing is kept. PDQ is
    the exact hash whatever ``[scan] pdq_decode`` says: these values go into banks, which are shared."""
    from ..config import with_scan_settings
    from ..media.item import Item
    from ..pipeline.extractors import default_extractors
    from ..pipeline.worker import new_record, run_extractors
    from ..records import flatten

    raw = run_extractors(Item("upload", data, len(data), svc.config.limits),
                         default_extractors(with_scan_settings(svc.config, pdq_decode="exact")),
                         new_record("upload", "upload", len(data)))
    record: dict[str, Any] = dict(flatten("upload", len(data), raw.get("media_type"), None, raw["facts"], None))
    return record


def _test(svc: Any, bank: str, data: bytes | None, signal_type: str, value: str) -> dict[str, Any]:
    """Test-match a file (its record, variants included, as a scan would match it) or one hash against ``bank``."""
    if data is not None:
        record = file_signals(svc, data)
        result = svc.matcher.match_record(record)
        matches = [m for m in result.matches + result.suppressed if m["bank"] == bank]
        shown = {k: record[k] for k in ("sha256", "md5", "pdq", "pdq_quality") if record.get(k) is not None}
        return {"what": "the uploaded file", "hashes": shown, "matches": matches}
    query = parse_query(signal_type, value)
    (found,) = svc.matcher.lookup_many([query], check_enabled=False)
    return {"what": f"{query.signal_type} {query.value}", "hashes": {query.signal_type: query.value},
            "matches": [m for m in found["matches"] if m["bank"] == bank]}


@router.get("/banks")
def banks_page(request: Request, principal: Principal = need("banks.read")) -> HTMLResponse:
    svc = service_of(request)
    summaries = BankStore(svc.db).list_banks()
    fed = {i.bank: i.name for i in ExchangeStore(svc.db).exchanges()}
    return _page(request, "banks.html", principal, banks=summaries, fed=fed)


@router.get("/banks/{name}")
def bank_page(request: Request, name: str, after: int = 0, q: str = "", hide: int = 0,
              principal: Principal = need("banks.read")) -> HTMLResponse:
    """A bank's counts and settings, its entries 50 at a time, and the add and test-match forms."""
    return _bank(request, name, principal, after=after, q=q, hide=hide)


def _bank(request: Request, name: str, principal: Principal, *, after: int = 0, q: str = "", hide: int = 0,
          message: str = "", result: dict[str, Any] | None = None) -> HTMLResponse:
    svc = service_of(request)
    store = BankStore(svc.db)
    try:
        summary = next(b for b in store.list_banks() if b.bank.name == name)
        entries = store.page_entries(name, after_id=max(0, after), limit=PAGE_SIZE + 1, include_removed=not hide,
                                     value=q or None)
    except (StopIteration, BankError):
        raise HTTPException(404, f"no bank named {name!r}") from None
    more = len(entries) > PAGE_SIZE
    entries = entries[:PAGE_SIZE]
    exchange = next((i for i in ExchangeStore(svc.db).exchanges() if i.bank == name), None)
    return _page(request, "bank.html", principal, summary=summary, entries=entries, after=after, q=q, hide=hide,
                 next_after=entries[-1].id if more and entries else None, types=registry.names(), message=message,
                 result=result, exchange=exchange, quote=quote)


@router.post("/banks/{name}/add")
async def bank_add(request: Request, name: str, csrf: str = Form(""), signal_type: str = Form(""), value: str = Form(""),
                   file: UploadFile | None = None, principal: Principal = need("banks.write")) -> Response:
    """Add one hash, or the SHA-256 and PDQ of an uploaded file; audited, then the stored items are re-matched."""
    _check(principal, csrf)
    svc = service_of(request)
    data = await file.read() if file is not None and file.filename else None

    def add() -> str:
        from ..pipeline.rematch import mark

        if data is not None:
            hashes = file_signals(svc, data)
            entries = [{"signal_type": t, "value": hashes[t]} for t in FILE_SIGNALS if hashes.get(t)]
            via = "file"
        elif value.strip():
            entries = [{"signal_type": signal_type or "", "value": value.strip()}]
            via = "hash"
        else:
            return "Give a hash or choose a file."
        before = mark(svc.db)
        try:
            result = bankops.add_entries(svc.db, principal.actor, name, entries, extra={"via": f"console {via}"})
        except bankops.EntryErrors as exc:
            return "Not added: " + "; ".join(e["message"] for e in exc.errors)
        except BankError as exc:
            return f"Not added: {exc}"
        svc.refresh_now()
        rematched = bankops.rematch_since(svc, principal.actor, before, f"console bank add {name}")
        kinds = ", ".join(e["signal_type"] for e in entries)
        return f"Added {result['added']} ({kinds}; {result['existing']} already present). {rematched['summary']}"

    message = await run_in_threadpool(add)
    return RedirectResponse(f"/console/banks/{quote(name)}?message={quote(message)}", status_code=303)


@router.post("/banks/{name}/test")
async def bank_test(request: Request, name: str, csrf: str = Form(""), signal_type: str = Form(""), value: str = Form(""),
                    file: UploadFile | None = None, principal: Principal = need("banks.read")) -> HTMLResponse:
    """Test-match against this bank, nothing stored: a hash as ``/m/raw_lookup`` answers it (a disabled bank too),
    a file as a scan would match it (its PDQ rotations and flips included; enabled banks, allow-lists applied)."""
    _check(principal, csrf)
    svc = service_of(request)
    data = await file.read() if file is not None and file.filename else None
    if data is None and not value.strip():
        return _bank(request, name, principal, message="Give a hash or choose a file to test.")
    try:
        result = await run_in_threadpool(_test, svc, name, data, signal_type or "pdq", value.strip())
    except ValueError as exc:
        return _bank(request, name, principal, message=f"Cannot test: {exc}")
    return _bank(request, name, principal, result=result)


@router.get("/exchanges")
def exchanges_page(request: Request, principal: Principal = need("banks.read")) -> HTMLResponse:
    svc = service_of(request)
    infos = ExchangeStore(svc.db).exchanges()
    return _page(request, "exchanges.html", principal, exchanges=[(i, fetch_status(i)) for i in infos])


@router.post("/exchanges/{name}/enabled")
def exchange_enabled(request: Request, name: str, enabled: int = Form(...), csrf: str = Form(""),
                     principal: Principal = need("banks.write")) -> Response:
    """Enable or disable an exchange (audited as HMA's PUT /c/exchange/<name> is)."""
    from ..banks.exchanges.apis import ExchangeApiError
    from ..review import audit

    _check(principal, csrf)
    try:
        def record(s: Any) -> None:
            audit.append(s, "exchange.update", principal.actor, subject=f"exchange:{name}",
                         data={"exchange": name, "enabled": bool(enabled), "via": "console"})

        ExchangeStore(service_of(request).db).update(name, enabled=bool(enabled), on_commit=record)
    except ExchangeApiError as exc:
        raise HTTPException(404, str(exc)) from None
    return RedirectResponse("/console/exchanges", status_code=303)
