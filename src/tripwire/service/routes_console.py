"""The review console: server-rendered pages (Jinja2) with a little vanilla JavaScript for shortcuts.

Reviewer wellbeing (../shared/SAFETY.md rule 7): media is shown only when preserved content exists, always
blurred and greyscale at first, revealed for the current item only by a deliberate click (recorded in
the audit trail before the picture is unblurred), and video never autoplays. Without media the page
shows hashes and metadata, which is all most items have.

Every POST carries the session's CSRF token (a form field, or the ``X-CSRF-Token`` header for the reveal
call); the session cookie is ``SameSite=Strict`` as well. The login form, which comes before any session,
carries a token signed with the server's secret for the nonce in its own cookie (:func:`.auth.login_csrf_ok`).
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool

from ..banks.store import BankStore
from ..review import audit
from ..review.models import AuditEvent
from .auth import (LOGIN_CSRF_MAX_AGE_S, SESSION_COOKIE, AuthError, Principal, csrf_ok, login_csrf_cookie,
                   login_csrf_ok, login_csrf_token)
from .deps import need, service_of
from .reviewing import ReviewError, decide, item_detail, next_item, queue, queue_counts, record_reveal
from .series_view import decide_series, series_detail

router = APIRouter(prefix="/console", include_in_schema=False)
templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))

DECISION_KEYS = [("confirmed_abuse", "c", "Confirmed abuse"), ("not_abuse", "n", "Not abuse"),
                 ("ai_generated", "a", "AI-generated"), ("needs_escalation", "e", "Escalate")]


def _page(request: Request, name: str, principal: Principal | None, status: int = 200, **ctx: Any) -> HTMLResponse:
    svc = service_of(request)
    counts = queue_counts(svc.db) if principal is not None else {}
    return templates.TemplateResponse(request, name, {"me": principal, "counts": counts, **ctx}, status_code=status)


def _check_csrf(principal: Principal, token: str | None) -> None:
    if principal.via != "session" or not csrf_ok(principal.csrf, token):
        raise HTTPException(403, "missing or wrong CSRF token: reload the page and try again")


def _safe_next(target: str | None) -> str:
    """Only redirect within the console (no open redirects)."""
    if not target:
        return "/console/queue"
    parsed = urlparse(target)
    if parsed.scheme or parsed.netloc or not parsed.path.startswith("/console/") or parsed.path.startswith("/console/login"):
        return "/console/queue"
    return parsed.path


# -- login ----------------------------------------------------------------------------------------------------

@router.get("/login")
def login_form(request: Request, next: str | None = None, error: str | None = None) -> HTMLResponse:
    svc = service_of(request)
    nonce = secrets.token_urlsafe(24)
    response = _page(request, "login.html", None, status=401 if error else 200,
                     login_csrf=login_csrf_token(svc.secret, nonce), next=_safe_next(next), error=error)
    response.set_cookie(login_csrf_cookie(svc.settings.cookie_secure), nonce, max_age=LOGIN_CSRF_MAX_AGE_S, path="/",
                        httponly=True, secure=svc.settings.cookie_secure, samesite="strict")
    return response


@router.post("/login")
async def login(request: Request, key: str = Form(""), csrf: str = Form(""), next: str = Form("")) -> Response:
    svc = service_of(request)
    client = request.client.host if request.client else "unknown"
    if await run_in_threadpool(svc.limiter.throttle_login, client) > 0:
        return login_form(request, next, "Too many attempts: wait a few seconds.")
    nonce = request.cookies.get(login_csrf_cookie(svc.settings.cookie_secure))
    if not login_csrf_ok(svc.secret, nonce, csrf):
        return login_form(request, next, "The form expired: try again.")
    try:
        token, principal = await run_in_threadpool(svc.keys.open_session, key)
    except AuthError:
        return login_form(request, next, "That key is not valid.")
    if not principal.can("console"):
        await run_in_threadpool(svc.keys.close_session, token)
        return login_form(request, next, f"The {principal.role} role cannot use the console.")
    response = RedirectResponse(_safe_next(next), status_code=303)
    response.set_cookie(SESSION_COOKIE, token, max_age=int(svc.settings.session_hours * 3600), path="/", httponly=True,
                        secure=svc.settings.cookie_secure, samesite="strict")
    response.delete_cookie(login_csrf_cookie(svc.settings.cookie_secure), path="/", httponly=True,
                           secure=svc.settings.cookie_secure, samesite="strict")
    return response


@router.post("/logout")
def logout(request: Request, csrf: str = Form(""), principal: Principal = need("console")) -> Response:
    _check_csrf(principal, csrf)
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        service_of(request).keys.close_session(token)
    response = RedirectResponse("/console/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


# -- pages ------------------------------------------------------------------------------------------------------

@router.get("")
@router.get("/")
def home(principal: Principal = need("console")) -> Response:
    if principal.can("review.read") and principal.role != "auditor":
        return RedirectResponse("/console/queue", status_code=303)
    return RedirectResponse("/console/audit", status_code=303)


@router.get("/queue")
def queue_page(request: Request, state: str = "open", principal: Principal = need("review.read")) -> HTMLResponse:
    svc = service_of(request)
    try:
        data = queue(svc.db, state, limit=200)
    except ReviewError as exc:
        raise HTTPException(exc.status, str(exc)) from None
    return _page(request, "queue.html", principal, data=data, state=state)


@router.get("/items/{item_id}")
def item_page(request: Request, item_id: int, principal: Principal = need("review.read")) -> HTMLResponse:
    svc = service_of(request)
    try:
        detail = item_detail(svc.db, item_id)
    except ReviewError as exc:
        raise HTTPException(exc.status, str(exc)) from None
    record = detail["record"]
    has_media = principal.can("media") and svc.media.has_media(item_id)
    banks = BankStore(svc.db).banks() if principal.can("review.decide") else []
    state = (detail.get("queue") or {}).get("state") or "open"
    nxt = next_item(svc.db, after=item_id, state=state if state in ("open", "escalated") else "open")
    return _page(request, "item.html", principal, item=detail, record=record, has_media=has_media,
                 media_type=record.get("media_type") or "", positive_banks=[b for b in banks if not b.negative and b.enabled],
                 negative_banks=[b for b in banks if b.negative and b.enabled], decisions=DECISION_KEYS, next_id=nxt)


@router.get("/items/{item_id}/media")
def item_media(request: Request, item_id: int, principal: Principal = need("media")) -> Response:
    svc = service_of(request)
    found = svc.media.media_for_item(item_id, principal.actor)
    if found is None:
        raise HTTPException(404, "no preserved media for this item")
    data, media_type = found
    return Response(data, media_type=media_type, headers={
        "Cache-Control": "no-store", "Content-Disposition": "inline", "Content-Security-Policy": "sandbox; default-src 'none'"})


@router.post("/items/{item_id}/reveal", status_code=204)
def reveal(request: Request, item_id: int, principal: Principal = need("media")) -> Response:
    _check_csrf(principal, request.headers.get("x-csrf-token"))
    try:
        record_reveal(service_of(request).db, item_id, principal.actor)
    except ReviewError as exc:
        raise HTTPException(exc.status, str(exc)) from None
    return Response(status_code=204)


@router.post("/items/{item_id}/decision")
def decision(request: Request, item_id: int, decision: str = Form(...), note: str = Form(""), bank: str = Form(""),
             category: str = Form(""), csrf: str = Form(""), principal: Principal = need("review.decide")) -> Response:
    _check_csrf(principal, csrf)
    svc = service_of(request)
    try:
        before = item_detail(svc.db, item_id).get("queue") or {}
        result = decide(svc.db, item_id, decision, principal.actor, note, bank or None, category or None)
    except ReviewError as exc:
        raise HTTPException(exc.status, str(exc)) from None
    if result.get("bank"):
        svc.refresh_now()
    state = "escalated" if before.get("state") == "escalated" else "open"
    nxt = next_item(svc.db, after=item_id, state=state)
    target = f"/console/items/{nxt}" if nxt is not None else f"/console/queue?state={state}&done={item_id}"
    return RedirectResponse(target, status_code=303)


@router.get("/series/{series_id}")
def series_page(request: Request, series_id: int, done: int | None = None,
                principal: Principal = need("review.read")) -> HTMLResponse:
    """A series as one unit: shared facts, a concealed grid of the members that have preserved media,
    every member with its state, the accounts and cases it spans, and the bulk decision form."""
    svc = service_of(request)
    try:
        detail = series_detail(svc.db, series_id)
    except ReviewError as exc:
        raise HTTPException(exc.status, str(exc)) from None
    can_media = principal.can("media")
    grid = [m for m in detail["items"] if can_media and svc.media.has_media(m["id"])][:60]
    return _page(request, "series.html", principal, series=detail, grid=grid, decisions=DECISION_KEYS, done=done)


@router.post("/series/{series_id}/decision")
def series_decision(request: Request, series_id: int, decision: str = Form(...), note: str = Form(""),
                    csrf: str = Form(""), principal: Principal = need("review.decide")) -> Response:
    """One decision for every member; each member gets its own audited decision row."""
    _check_csrf(principal, csrf)
    try:
        result = decide_series(service_of(request).db, series_id, decision, principal.actor, note)
    except ReviewError as exc:
        raise HTTPException(exc.status, str(exc)) from None
    return RedirectResponse(f"/console/series/{series_id}?done={result['decided']}", status_code=303)


@router.get("/audit")
def audit_page(request: Request, principal: Principal = need("audit.read")) -> HTMLResponse:
    from sqlalchemy import select

    svc = service_of(request)
    with svc.db.session() as s:
        verification = audit.verify(s)
        rows = list(s.scalars(select(AuditEvent).order_by(AuditEvent.seq.desc()).limit(200)))
        events = [{"seq": e.seq, "at": e.at, "kind": e.kind, "actor": e.actor, "subject": e.subject, "data": e.data,
                   "hash": e.hash} for e in rows]
    return _page(request, "audit.html", principal, verification=verification, events=events)
