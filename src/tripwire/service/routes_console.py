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
from ..review.models import WITHDRAWN, AuditEvent
from ..review.vics import category_map, decision_from
from .auth import (LOGIN_CSRF_MAX_AGE_S, SESSION_COOKIE, AuthError, Principal, csrf_ok, login_csrf_cookie,
                   login_csrf_ok, login_csrf_token)
from .case_view import VIEWS, bulk_decide, case_items, case_name, cases, next_in_case, related_items, withdraw
from .deps import need, service_of
from .reviewing import ReviewError, decide, item_detail, next_item, queue, queue_counts, record_reveal
from .series_view import decide_series, series_detail
from .state import Service

router = APIRouter(prefix="/console", include_in_schema=False)
templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))

DECISION_KEYS = [("confirmed_abuse", "c", "Confirmed abuse"), ("not_abuse", "n", "Not abuse"),
                 ("ai_generated", "a", "AI-generated"), ("needs_escalation", "e", "Escalate")]
#: VICS category numbers and their names, as the grid offers them
VICS_CATEGORIES = [(0, "non-pertinent"), (1, "CAM"), (2, "exploitive / age difficult"), (3, "CGI / animation"),
                   (4, "comparison")]

#: the console's sections, in nav order: (href, label, permission). Other console modules add theirs with
#: :func:`add_section` when their router is included (the nav is built from this list).
SECTIONS: list[tuple[str, str, str]] = [("/console/cases", "Cases", "review.read")]


def add_section(href: str, label: str, permission: str) -> None:
    """Put a page in the console's nav (once), for principals with ``permission``."""
    if all(href != h for h, _, _ in SECTIONS):
        SECTIONS.append((href, label, permission))


def _page(request: Request, name: str, principal: Principal | None, status: int = 200, **ctx: Any) -> HTMLResponse:
    svc = service_of(request)
    counts = queue_counts(svc.db) if principal is not None else {}
    sections = [(h, label) for h, label, perm in SECTIONS if principal is not None and principal.can(perm)]
    return templates.TemplateResponse(request, name, {"me": principal, "counts": counts, "sections": sections, **ctx},
                                      status_code=status)


def _check_csrf(principal: Principal, token: str | None) -> None:
    if principal.via != "session" or not csrf_ok(principal.csrf, token):
        raise HTTPException(403, "missing or wrong CSRF token: reload the page and try again")


def _safe_next(target: str | None) -> str:
    """Only redirect within the console or to the API docs (no open redirects); the query is kept."""
    if not target:
        return "/console/queue"
    parsed = urlparse(target)
    inside = parsed.path.startswith("/console/") and not parsed.path.startswith("/console/login")
    if parsed.scheme or parsed.netloc or not (inside or parsed.path == "/docs"):
        return "/console/queue"
    return parsed.path + (f"?{parsed.query}" if parsed.query and inside else "")


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
def queue_page(request: Request, state: str = "open", done: int | None = None, case_id: int | None = None,
               principal: Principal = need("review.read")) -> HTMLResponse:
    """The review queue (what the policy sent to a person), or with ``case_id`` that case's share of it."""
    svc = service_of(request)
    try:
        data = queue(svc.db, state, limit=200, case_id=case_id)
        case = case_name(svc.db, case_id) if case_id is not None else None
    except ReviewError as exc:
        raise HTTPException(exc.status, str(exc)) from None
    return _page(request, "queue.html", principal, data=data, state=state, done=_done(svc, done), case=case)


@router.get("/items/{item_id}")
def item_page(request: Request, item_id: int, case_id: int | None = None, done: int | None = None,
              principal: Principal = need("review.read")) -> HTMLResponse:
    """One item; ``case_id``: reviewed as part of that case (next = the case's next item to do); ``done``:
    the item decided just before (its decision is shown with an Undo button)."""
    svc = service_of(request)
    try:
        detail = item_detail(svc.db, item_id)
    except ReviewError as exc:
        raise HTTPException(exc.status, str(exc)) from None
    record = detail["record"]
    has_media = principal.can("media") and svc.media.has_media(item_id)
    banks = BankStore(svc.db).banks() if principal.can("review.decide") else []
    if case_id is not None:
        nxt = next_in_case(svc.db, case_id, after=item_id)
    else:
        state = (detail.get("queue") or {}).get("state") or "open"
        nxt = next_item(svc.db, after=item_id, state=state if state in ("open", "escalated") else "open")
    return _page(request, "item.html", principal, item=detail, record=record, has_media=has_media,
                 media_type=record.get("media_type") or "", positive_banks=[b for b in banks if not b.negative and b.enabled],
                 negative_banks=[b for b in banks if b.negative and b.enabled], decisions=DECISION_KEYS, next_id=nxt,
                 related=related_items(svc.db, item_id, svc.config), case_id=case_id, done=_done(svc, done))


def _done(svc: Service, item_id: int | None) -> dict[str, Any] | None:
    """The decision just recorded on ``item_id`` (shown with its Undo button), if any."""
    if item_id is None:
        return None
    try:
        decisions = item_detail(svc.db, item_id)["decisions"]
    except ReviewError:
        return None
    return {"item": item_id, **decisions[-1]} if decisions else None


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
             category: str = Form(""), case_id: str = Form(""), csrf: str = Form(""),
             principal: Principal = need("review.decide")) -> Response:
    """Record a decision and open the next item (of the case when reviewing one), which offers an Undo."""
    _check_csrf(principal, csrf)
    svc = service_of(request)
    if decision == WITHDRAWN:
        raise HTTPException(400, "use Undo to take a decision back")
    try:
        before = item_detail(svc.db, item_id).get("queue") or {}
        result = decide(svc.db, item_id, decision, principal.actor, note, bank or None, category or None, via="console")
    except ReviewError as exc:
        raise HTTPException(exc.status, str(exc)) from None
    if result.get("bank"):
        svc.refresh_now()
    if case_id.isdigit():
        nxt = next_in_case(svc.db, int(case_id), after=item_id)
        target = (f"/console/items/{nxt}?case_id={case_id}&done={item_id}" if nxt is not None
                  else f"/console/cases/{case_id}?done={item_id}")
        return RedirectResponse(target, status_code=303)
    state = "escalated" if before.get("state") == "escalated" else "open"
    nxt = next_item(svc.db, after=item_id, state=state)
    target = f"/console/items/{nxt}?done={item_id}" if nxt is not None else f"/console/queue?state={state}&done={item_id}"
    return RedirectResponse(target, status_code=303)


@router.post("/items/{item_id}/undo")
def undo(request: Request, item_id: int, note: str = Form(""), back: str = Form(""), csrf: str = Form(""),
         principal: Principal = need("review.decide")) -> Response:
    """Take the item's newest decision back: a new, audited ``withdrawn`` decision (nothing is rewritten);
    the item is to be reviewed again, and bank entries its decisions added are taken out. Opens the item."""
    _check_csrf(principal, csrf)
    svc = service_of(request)
    try:
        result = withdraw(svc.db, item_id, principal.actor, note)
    except ReviewError as exc:
        raise HTTPException(exc.status, str(exc)) from None
    if result and result.get("retracted"):
        svc.refresh_now()
    target = _safe_next(back) if back else f"/console/items/{item_id}"
    return RedirectResponse(target, status_code=303)


# -- case work --------------------------------------------------------------------------------------------

@router.get("/cases")
def cases_page(request: Request, principal: Principal = need("review.read")) -> HTMLResponse:
    """Every case in the database: pick one to review (case mode: every item, highest priority first)."""
    return _page(request, "cases.html", principal, cases=cases(service_of(request).db))


@router.get("/cases/{case_id}")
def case_page(request: Request, case_id: int, view: str = "todo", page: int = 1, done: int | None = None,
              decided: int | None = None, principal: Principal = need("review.read")) -> HTMLResponse:
    """A case as a grid of blurred greyscale thumbnails (made now from the case's files, see casefiles.py),
    a page at a time, highest priority first; select tiles and categorise them together."""
    svc = service_of(request)
    try:
        data = case_items(svc.db, case_id, view, page)
    except ReviewError as exc:
        raise HTTPException(exc.status, str(exc)) from None
    thumbs = svc.media.case_files is not None and principal.can("media")
    shown = [it["id"] for it in data["items"] if it["image"]]
    if shown and thumbs:
        with svc.db.session() as s:  # one audit event per grid page: which items' (blurred) pictures were shown
            audit.append(s, "media.grid", principal.actor, subject=f"case:{data['case']['name']}",
                         data={"items": shown, "view": view, "page": data["page"]})
    banks = BankStore(svc.db).banks() if principal.can("review.decide") else []
    return _page(request, "case.html", principal, data=data, views=VIEWS, decisions=DECISION_KEYS,
                 categories=VICS_CATEGORIES, vics_of=category_map(svc.config),
                 thumbs=thumbs, done=_done(svc, done),
                 decided=decided, positive_banks=[b for b in banks if not b.negative and b.enabled],
                 negative_banks=[b for b in banks if b.negative and b.enabled])


@router.get("/items/{item_id}/thumb")
def item_thumb(request: Request, item_id: int, principal: Principal = need("media")) -> Response:
    """The item's grid thumbnail: greyscale and blurred on the server, made now, stored nowhere."""
    data = service_of(request).media.thumbnail(item_id)
    if data is None:
        raise HTTPException(404, "no picture: the file is gone, changed since the scan, or not an image")
    return Response(data, media_type="image/jpeg", headers={"Cache-Control": "no-store", "Content-Disposition": "inline"})


@router.post("/cases/{case_id}/decisions")
def case_decisions(request: Request, case_id: int, item: list[int] = Form(default=[]), decision: str = Form(""),
                   vics: str = Form(""), note: str = Form(""), bank: str = Form(""), view: str = Form("todo"),
                   page: int = Form(1), csrf: str = Form(""), principal: Principal = need("review.decide")) -> Response:
    """One decision for the selected items, each recorded on its own (:func:`.case_view.bulk_decide`). A VICS
    category stands for its decision (``[reporting.vics.categories]``) and is the category of any bank entries."""
    _check_csrf(principal, csrf)
    svc = service_of(request)
    category = None
    if vics.strip() and decision == WITHDRAWN:
        raise HTTPException(400, "an undo takes no VICS category")
    if vics.strip():
        if not vics.strip().isdigit() or not 0 <= int(vics) <= 4:
            raise HTTPException(400, "a VICS category is a number from 0 to 4")
        category = vics.strip()
        implied = decision_from({"Category": int(category)}, category_map(svc.config))
        if decision and decision != implied:
            raise HTTPException(400, f"VICS category {category} stands for {implied}, not {decision}")
        decision = implied or ""
        note = f"VICS category {category}. {note}".strip()
    if not decision:
        raise HTTPException(400, "choose a decision or a VICS category")
    try:
        result = bulk_decide(svc.db, case_id, item, decision, principal.actor, note, bank or None, category)
    except ReviewError as exc:
        raise HTTPException(exc.status, str(exc)) from None
    if bank or decision == WITHDRAWN:  # bank entries added, or taken out again by an undo
        svc.refresh_now()
    view = view if view in VIEWS else "todo"
    return RedirectResponse(f"/console/cases/{case_id}?view={view}&page={max(1, page)}&decided={result['decided']}",
                            status_code=303)


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
