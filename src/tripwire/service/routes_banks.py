"""Banks over HTTP: list, show, create, update, delete, add and remove entries, import a list file.

Every change is one transaction with its audit event (see :mod:`.bankops`), and becomes visible to PDQ
matching before the response is sent (exact digests are looked up in the database, always current).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, File, Form, HTTPException, Request, UploadFile
from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..banks.categories import SCHEMES
from ..banks.importer import FORMATS
from ..signals.registry import AmbiguousSignalType
from ..banks.store import BankError, BankStore
from . import bankops
from .deps import need, service_of
from .auth import Principal

router = APIRouter(prefix="/v1/banks", tags=["banks"])


class BankIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200)
    source: str = Field(default="", max_length=200)
    description: str = Field(default="", max_length=10_000)
    category_scheme: str = Field(default="vics", description=f"one of {', '.join(SCHEMES)}")
    negative: bool = Field(default=False, description="an allow-list: its matches suppress other banks' matches")
    pdq_radius: int = Field(default=31, ge=0, le=128)
    min_quality: int = Field(default=50, ge=0, le=100)
    enabled: bool = True


class BankPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rename: str | None = Field(default=None, min_length=1, max_length=200)
    source: str | None = Field(default=None, max_length=200)
    description: str | None = Field(default=None, max_length=10_000)
    category_scheme: str | None = None
    negative: bool | None = None
    pdq_radius: int | None = Field(default=None, ge=0, le=128)
    min_quality: int | None = Field(default=None, ge=0, le=100)
    enabled: bool | None = None


class EntriesIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    entries: list[dict[str, Any]] = Field(description="[{signal_type, value, category?, source_id?, series?, tags?, notes?}]")


class RemoveIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    values: list[str] | None = Field(default=None, max_length=10_000)
    ids: list[int] | None = Field(default=None, max_length=10_000)
    signal_type: str | None = None
    reason: str | None = Field(default=None, max_length=2000)

    @model_validator(mode="after")
    def _one_of(self) -> "RemoveIn":
        if bool(self.values) == bool(self.ids):
            raise ValueError("name the entries either by values or by ids")
        return self


def _bank_error(exc: BankError) -> HTTPException:
    text = str(exc)
    status = 404 if text.startswith("no bank named") else 409 if "already exists" in text else 400
    return HTTPException(status, text)


@router.get("")
def list_banks(request: Request, _: Principal = need("banks.read")) -> dict[str, Any]:
    """Every bank with its settings and active entry counts per signal type."""
    svc = service_of(request)
    return {"banks": [s.as_dict() for s in BankStore(svc.db).list_banks()]}


@router.get("/{name}")
def show_bank(request: Request, name: str, _: Principal = need("banks.read")) -> dict[str, Any]:
    svc = service_of(request)
    found = [s for s in BankStore(svc.db).list_banks() if s.bank.name == name]
    if not found:
        raise HTTPException(404, f"no bank named {name!r}")
    return found[0].as_dict()


@router.post("", status_code=201)
def create_bank(request: Request, body: BankIn, principal: Principal = need("banks.write")) -> dict[str, Any]:
    """Create a bank (audited)."""
    svc = service_of(request)
    try:
        info = bankops.create_bank(svc.db, principal.actor, body.name, source=body.source, description=body.description,
                                   category_scheme=body.category_scheme, negative=body.negative,
                                   pdq_radius=body.pdq_radius, min_quality=body.min_quality, enabled=body.enabled)
    except BankError as exc:
        raise _bank_error(exc) from None
    svc.refresh_now()
    return info.as_dict()


@router.patch("/{name}")
def update_bank(request: Request, name: str, body: BankPatch, principal: Principal = need("banks.write")) -> dict[str, Any]:
    """Change a bank's settings (audited); matching uses them at once."""
    svc = service_of(request)
    changes = body.model_dump(exclude_none=True)
    if "rename" in changes:
        changes["name"] = changes.pop("rename")
    try:
        info = bankops.update_bank(svc.db, principal.actor, name, **changes)
    except BankError as exc:
        raise _bank_error(exc) from None
    svc.refresh_now()
    return info.as_dict()


@router.delete("/{name}")
def delete_bank(request: Request, name: str, principal: Principal = need("banks.write")) -> dict[str, Any]:
    """Delete a bank and all its entries (audited; use entry removal to keep tombstones)."""
    svc = service_of(request)
    try:
        n = bankops.delete_bank(svc.db, principal.actor, name)
    except BankError as exc:
        raise _bank_error(exc) from None
    svc.refresh_now()
    return {"bank": name, "deleted_entries": n}


@router.post("/{name}/entries")
def add_entries(request: Request, name: str, body: EntriesIn, principal: Principal = need("banks.write")) -> dict[str, Any]:
    """Add entries (audited). All-or-nothing: one malformed entry refuses the request, listing every error."""
    svc = service_of(request)
    if len(body.entries) > svc.settings.max_entries_per_request:
        raise HTTPException(413, f"at most {svc.settings.max_entries_per_request} entries per request (import a file for more)")
    from ..pipeline.rematch import mark

    before = mark(svc.db)
    try:
        result = bankops.add_entries(svc.db, principal.actor, name, body.entries)
    except bankops.EntryErrors as exc:
        raise HTTPException(422, exc.errors) from None
    except BankError as exc:
        raise _bank_error(exc) from None
    svc.refresh_now()
    return {**result, "rematch": bankops.rematch_since(svc, principal.actor, before, f"api bank add {name}")}


@router.post("/{name}/remove")
def remove_entries(request: Request, name: str, body: RemoveIn, principal: Principal = need("banks.write")) -> dict[str, Any]:
    """Remove entries by value or id (audited). A tombstone is kept; matching stops at once."""
    svc = service_of(request)
    from ..pipeline.rematch import mark

    before = mark(svc.db)
    try:
        n = bankops.remove_entries(svc.db, principal.actor, name, ids=body.ids, values=body.values,
                                   signal_type=body.signal_type, reason=body.reason)
    except (BankError, ValueError) as exc:
        raise (_bank_error(exc) if isinstance(exc, BankError) else HTTPException(400, str(exc))) from None
    svc.refresh_now()
    return {"bank": name, "removed": n, "rematch": bankops.rematch_since(svc, principal.actor, before, f"api bank remove {name}")}


@router.post("/{name}/import")
def import_file(request: Request, name: str, file: UploadFile = File(..., description="VICS JSON, CSV, lines or TE file (.gz ok)"),
                format: str | None = Form(None, description=f"one of {', '.join(FORMATS)} (default: guessed)"),
                signal_type: str | None = Form(None, description="type of untyped values (needed for 64-hex lists)"),
                principal: Principal = need("banks.write")) -> dict[str, Any]:
    """Import a hash-list file, as ``tripwire bank import`` does, in one transaction with its audit event.

    Malformed rows are reported with their position; every valid row is stored."""
    svc = service_of(request)
    if format is not None and format not in FORMATS:
        raise HTTPException(400, f"unknown format {format!r} (expected one of {', '.join(FORMATS)})")
    from ..pipeline.rematch import mark

    before = mark(svc.db)
    try:
        report = bankops.import_stream(svc.db, principal.actor, name, file.file, file.filename or "upload",
                                       format, signal_type)
    except AmbiguousSignalType as exc:
        raise HTTPException(400, f"{exc} (nothing was stored)") from None
    except BankError as exc:
        raise _bank_error(exc) from None
    except ValueError as exc:
        raise HTTPException(400, str(exc)) from None
    svc.refresh_now()
    return {**report.as_dict(), "rematch": bankops.rematch_since(svc, principal.actor, before, f"api bank import {name}")}
