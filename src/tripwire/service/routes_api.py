"""The JSON API: scan, lookup, review queue, items, decisions, audit, keys, policy."""

from __future__ import annotations

import json
from typing import Any, Literal

from fastapi import APIRouter, File, Form, HTTPException, Query, Request, UploadFile
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ..review import audit as audit_trail
from ..review.models import DECISIONS, AuditEvent
from . import auth
from .deps import need, service_of
from .auth import Principal
from ..match.lookup import parse_query
from .reviewing import ReviewError, decide, item_detail, queue
from .scanning import Upload
from . import lookups
from .lookups import FastJSONResponse

router = APIRouter()


# -- models -------------------------------------------------------------------------------------------------

class IpEvent(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ip: str = Field(max_length=64)
    at: str | None = Field(default=None, max_length=64)
    event: str | None = Field(default=None, max_length=64)


class ScanContext(BaseModel):
    """Where the upload came from on the platform (kept with every item for review and reports)."""

    model_config = ConfigDict(extra="forbid")
    platform: str | None = Field(default=None, max_length=100)
    post_id: str | None = Field(default=None, max_length=200)
    url: str | None = Field(default=None, max_length=4000)
    account_id: str | None = Field(default=None, max_length=200)
    account_handle: str | None = Field(default=None, max_length=200)
    profile_url: str | None = Field(default=None, max_length=4000)
    ip_events: list[IpEvent] | None = Field(default=None, max_length=100)
    extra: dict[str, Any] | None = None

    @field_validator("extra")
    @classmethod
    def _small_extra(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None and len(json.dumps(value, default=str)) > 16_384:
            raise ValueError("extra is larger than 16 KiB")
        return value


class HashIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    signal_type: str = Field(max_length=32, description="md5, sha1, sha256 or pdq")
    value: str = Field(max_length=200)
    quality: int | None = Field(default=None, ge=0, le=100, description="PDQ quality, if known (applies bank floors)")


class LookupIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    hashes: list[HashIn] = Field(description="Up to the service's limit (default 1,000) hashes")


class DecisionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    decision: Literal["confirmed_abuse", "not_abuse", "ai_generated", "needs_escalation", "withdrawn"] = Field(
        description="withdrawn: take the newest decision back (a new audited decision; bank entries it added removed)")
    note: str | None = Field(default=None, max_length=10_000)
    bank: str | None = Field(default=None, max_length=200,
                             description="confirmed_abuse: a positive bank; not_abuse: an allow-list bank")
    category: str | None = Field(default=None, max_length=100, description="Category code for the bank entries")
    signals: list[Literal["md5", "sha1", "sha256", "pdq"]] | None = Field(default=None, description="Hashes to bank (default all)")


class KeyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200)
    role: Literal["admin", "reviewer", "submitter", "auditor"]
    rate_per_s: float | None = Field(default=None, gt=0)


def _review_error(exc: ReviewError) -> HTTPException:
    return HTTPException(exc.status, str(exc))


# -- scan and lookup ------------------------------------------------------------------------------------------

@router.post("/v1/scan", tags=["scan"])
def scan(request: Request, files: list[UploadFile] = File(..., description="One or more files"),
         context: str | None = Form(None, description="JSON: platform, post_id, url, account_id, account_handle, "
                                                        "profile_url, ip_events, extra"),
         principal: Principal = need("scan")) -> dict[str, Any]:
    """Run the pipeline on uploaded files; returns each file's records and the policy's action.

    Items are stored in the service case with their context; items the policy queues appear in the review
    queue. Media bytes are processed in a temporary file and deleted; they are never stored.
    """
    svc = service_of(request)
    if not files:
        raise HTTPException(400, "no files")
    if len(files) > svc.settings.max_files_per_scan:
        raise HTTPException(413, f"at most {svc.settings.max_files_per_scan} files per request")
    ctx: dict[str, Any] = {}
    if context:
        try:
            ctx = ScanContext.model_validate_json(context).model_dump(exclude_none=True)
        except ValidationError as exc:
            raise HTTPException(422, f"invalid context: {exc.errors(include_url=False)}") from None
    uploads = [Upload(f.filename or "", f.file) for f in files]
    result = svc.scanner.scan(uploads, ctx)
    result["submitted_by"] = principal.key_id
    return result


@router.post("/v1/lookup", tags=["scan"], response_class=FastJSONResponse)
async def lookup(request: Request, body: LookupIn, _: Principal = need("lookup")) -> FastJSONResponse:
    """Look up to 1,000 hashes (md5, sha1, sha256, pdq) against every enabled bank, in one pass."""
    svc = service_of(request)
    if len(body.hashes) > svc.settings.max_lookup_hashes:
        raise HTTPException(413, f"at most {svc.settings.max_lookup_hashes} hashes per request")
    queries = []
    errors = []
    for n, h in enumerate(body.hashes):
        try:
            queries.append(parse_query(h.signal_type, h.value, h.quality))
        except ValueError as exc:
            errors.append({"position": f"hashes[{n}]", "message": str(exc)})
    if errors:
        raise HTTPException(422, errors)
    results = await lookups.lookup(svc, queries)
    matched = sum(1 for r in results if r["matches"])
    if matched:
        svc.metrics.lookups.labels("match").inc(matched)
    if len(results) - matched:
        svc.metrics.lookups.labels("no_match").inc(len(results) - matched)
    return FastJSONResponse({"results": results, "matched": matched})


# -- review -----------------------------------------------------------------------------------------------------

@router.get("/v1/review/queue", tags=["review"])
def review_queue(request: Request, state: str = Query("open", description="open, escalated or decided"),
                 limit: int = Query(50, ge=1, le=500), offset: int = Query(0, ge=0),
                 _: Principal = need("review.read")) -> dict[str, Any]:
    """Items waiting for review, highest priority first."""
    try:
        return queue(service_of(request).db, state, limit, offset)
    except ReviewError as exc:
        raise _review_error(exc) from None


@router.get("/v1/items/{item_id}", tags=["review"])
def get_item(request: Request, item_id: int, _: Principal = need("review.read")) -> dict[str, Any]:
    """One item: its record (hashes, provenance, matches, priority, policy), context, queue state, decisions."""
    svc = service_of(request)
    try:
        detail = item_detail(svc.db, item_id)
    except ReviewError as exc:
        raise _review_error(exc) from None
    detail["media_available"] = svc.media.has_media(item_id)
    return detail


@router.post("/v1/items/{item_id}/decision", tags=["review"])
def post_decision(request: Request, item_id: int, body: DecisionIn, principal: Principal = need("review.decide")) -> dict[str, Any]:
    """Record a reviewer's decision (audited). ``confirmed_abuse`` with ``bank`` adds the item's hashes to that
    bank, so the next upload of the file matches; ``not_abuse`` with an allow-list bank suppresses it."""
    svc = service_of(request)
    try:
        result = decide(svc.db, item_id, body.decision, principal.actor, body.note, body.bank, body.category,
                        list(body.signals) if body.signals else None)
    except ReviewError as exc:
        raise _review_error(exc) from None
    if result.get("bank"):
        svc.refresh_now()
    return result


@router.get("/v1/decisions", tags=["review"])
def decisions_schema(_: Principal = need("review.read")) -> dict[str, Any]:
    """The decisions a reviewer can record."""
    return {"decisions": list(DECISIONS)}


@router.get("/v1/policy", tags=["review"])
def policy(request: Request, _: Principal = need("review.read")) -> dict[str, Any]:
    """The policy in force: its rules in order and the default."""
    svc = service_of(request)
    return {"source": svc.policy.source, "rules": svc.policy.describe()}


# -- audit ------------------------------------------------------------------------------------------------------

@router.get("/v1/audit", tags=["audit"])
def audit_events(request: Request, after: int = Query(0, ge=0, description="Events after this sequence number"),
                 limit: int = Query(100, ge=1, le=1000), kind: str | None = Query(None),
                 _: Principal = need("audit.read")) -> dict[str, Any]:
    """Audit events in order (page with ``after``)."""
    from sqlalchemy import select

    svc = service_of(request)
    with svc.db.session() as s:
        q = select(AuditEvent).where(AuditEvent.seq > after)
        if kind:
            q = q.where(AuditEvent.kind == kind)
        rows = list(s.scalars(q.order_by(AuditEvent.seq).limit(limit)))
        events = [{"seq": e.seq, "at": e.at, "kind": e.kind, "actor": e.actor, "subject": e.subject, "data": e.data,
                   "prev_hash": e.prev_hash, "hash": e.hash} for e in rows]
    return {"events": events, "next_after": events[-1]["seq"] if events else after}


@router.get("/v1/audit/verify", tags=["audit"])
def audit_verify(request: Request, _: Principal = need("audit.read")) -> dict[str, Any]:
    """Recompute the hash chain: ``ok`` and the head, or the first event that was edited, removed or reordered."""
    svc = service_of(request)
    with svc.db.session() as s:
        v = audit_trail.verify(s)
    return {"ok": v.ok, "events": v.events, "head": v.head, "first_bad_seq": v.first_bad_seq, "problem": v.problem}


# -- keys -------------------------------------------------------------------------------------------------------

@router.get("/v1/keys", tags=["keys"])
def keys_list(request: Request, _: Principal = need("keys")) -> dict[str, Any]:
    """API keys (ids, names, roles, state; never the keys)."""
    svc = service_of(request)
    with svc.db.session() as s:
        return {"keys": auth.list_keys(s)}


@router.post("/v1/keys", tags=["keys"], status_code=201)
def keys_create(request: Request, body: KeyIn, principal: Principal = need("keys")) -> dict[str, Any]:
    """Create a key (audited). The key is in this response only: it is not stored and cannot be shown again."""
    svc = service_of(request)
    try:
        with svc.db.session() as s:
            created = auth.create_key(s, body.name, body.role, principal.actor, body.rate_per_s)
    except ValueError as exc:
        raise HTTPException(400, str(exc)) from None
    return {"key": created.key, "key_id": created.key_id, "name": created.name, "role": created.role}


@router.delete("/v1/keys/{key_id}", tags=["keys"])
def keys_revoke(request: Request, key_id: str, principal: Principal = need("keys")) -> dict[str, Any]:
    """Revoke a key (audited); its console sessions end at once."""
    svc = service_of(request)
    with svc.db.session() as s:
        done = auth.revoke_key(s, key_id, principal.actor)
    if not done:
        raise HTTPException(404, f"no active key {key_id!r}")
    svc.keys.forget(key_id)
    return {"key_id": key_id, "revoked": True}

