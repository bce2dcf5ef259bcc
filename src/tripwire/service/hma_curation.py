"""HMA's curation blueprint (``/c``) without the exchanges (``hma_exchanges``): banks, content items and the
configuration routes, over tripwire's banks, content items (:mod:`tripwire.banks.contents`) and
signal-type registry.

Every change is one transaction with its audit event (as :mod:`.bankops`), is visible to matching before
the answer is sent (HMA rebuilds its index every 60 s), and re-matches the stored items as the ``/v1`` bank
routes do. Deliberate differences from HMA (docs/service.md): a bank is on or off (``enabled_ratio`` 0 or 1),
every registered signal type is on, content is added from an upload or hashes, never from a URL.
"""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from ..banks.contents import ContentItem, add_content, get_content, update_content
from ..banks.store import BankError, BankInfo, BankStore
from ..review import audit
from ..signals.registry import registry
from . import bankops
from .auth import Principal
from .deps import need, service_of
from .hma import HmaError, err, hma_name, hma_types, parse_json, read_json
from .hma_hashing import URL_REFUSED, hash_upload
from .hma_matching import per_type
from .state import Service

router = APIRouter(prefix="/c", tags=["hma"])

NOTE_MAX = 255
#: metadata is the client's own bookkeeping (ids, a URI, a small JSON object), not a store for documents
METADATA_MAX = 64 * 1024
#: HMA's bank names (its storage refuses others)
_NAME_CHARS = set("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")
_METADATA_KEYS = {"content_id": str, "content_uri": str, "json": dict}


def _bank_json(bank: BankInfo) -> dict[str, Any]:
    return {"name": bank.name, "matching_enabled_ratio": 1.0 if bank.enabled else 0.0}


def _check_name(name: Any) -> str:
    if not isinstance(name, str) or not name or name[0].isdigit() or not set(name) <= _NAME_CHARS:
        raise HmaError(400, "Bank names must be UPPER_WITH_UNDERSCORE")
    return name


def _enabled(body: dict[str, Any]) -> bool | None:
    """A bank's on/off from HMA's ``enabled_ratio`` (wins) or ``enabled``; None when neither is given."""
    ratio = body.get("enabled_ratio")
    if ratio is not None:
        if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or ratio not in (0, 1):
            raise HmaError(400, "tripwire banks are on or off: enabled_ratio must be 0 or 1 (no sampled matching)")
        return ratio == 1
    if body.get("enabled") is not None:
        return bool(body["enabled"])
    return None


def _object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise HmaError(400, "this endpoint expects a json object payload")
    return body


def _bank(svc: Service, name: str) -> BankInfo:
    try:
        return BankStore(svc.db).get_bank(name)
    except BankError:
        raise HmaError(404, f"bank '{name}' not found") from None


def _answer(fn: Any) -> Any:
    """Run a route body, turning an HmaError into HMA's ``{"message"}`` answer."""
    try:
        return fn()
    except HmaError as exc:
        return exc.response()


# -- banks ----------------------------------------------------------------------------------------------

@router.get("/banks")
def banks_index(request: Request, _: Principal = need("banks.read")) -> JSONResponse:
    """Banks as HMA lists them: ``[{name, matching_enabled_ratio}]``."""
    return JSONResponse([_bank_json(b) for b in BankStore(service_of(request).db).banks()])


@router.get("/bank/{bank_name}")
def bank_show(request: Request, bank_name: str, _: Principal = need("banks.read")) -> JSONResponse:
    return _answer(lambda: JSONResponse(_bank_json(_bank(service_of(request), bank_name))))


@router.post("/banks")
async def bank_create(request: Request, principal: Principal = need("banks.write")) -> JSONResponse:
    """Create a bank: ``{name, enabled_ratio?, enabled?}`` -> 201 ``{name, matching_enabled_ratio}``."""
    svc = service_of(request)
    try:
        body = _object(await read_json(request))
        if body.get("name") is None:  # HMA validates BankCreateRequest first
            raise HmaError(422, "name is required")
        name = _check_name(body["name"])
        enabled = _enabled(body)
    except HmaError as exc:
        return exc.response()

    def create() -> JSONResponse:
        try:
            info = bankops.create_bank(svc.db, principal.actor, name, enabled=True if enabled is None else enabled)
        except BankError as exc:
            return err(403, "Bank already exists") if "already exists" in str(exc) else err(400, str(exc))
        svc.refresh_now()
        return JSONResponse(_bank_json(info), status_code=201)

    return await run_in_threadpool(create)


@router.put("/bank/{bank_name}")
async def bank_update(request: Request, bank_name: str, principal: Principal = need("banks.write")) -> JSONResponse:
    """Rename and/or switch a bank: ``{name?, enabled?, enabled_ratio?}``."""
    svc = service_of(request)
    try:
        body = _object(await read_json(request))
        await run_in_threadpool(_bank, svc, bank_name)
        rename = _check_name(body["name"]) if body.get("name") is not None else None
        enabled = _enabled(body)
    except HmaError as exc:
        return exc.response()

    def update() -> JSONResponse:
        try:
            info = bankops.update_bank(svc.db, principal.actor, bank_name, **{"name": rename, "enabled": enabled})
        except BankError as exc:
            return err(403, "Bank name already exists") if "already exists" in str(exc) else err(400, str(exc))
        svc.refresh_now()
        return JSONResponse(_bank_json(info))

    return await run_in_threadpool(update)


@router.delete("/bank/{bank_name}")
def bank_delete(request: Request, bank_name: str, principal: Principal = need("banks.write")) -> JSONResponse:
    """Delete a bank and its entries (audited); deleting a bank that does not exist succeeds, as in HMA."""
    svc = service_of(request)
    try:
        bankops.delete_bank(svc.db, principal.actor, bank_name)
        svc.refresh_now()
    except BankError:
        pass
    return JSONResponse({"message": "Done"})


# -- content ----------------------------------------------------------------------------------------------

def _note(value: Any) -> str | None:
    if not value:
        return None
    if not isinstance(value, str):
        raise HmaError(400, "note should be a string")
    if len(value) > NOTE_MAX:
        raise HmaError(400, f"note must be at most {NOTE_MAX} characters")
    return value


def _metadata(value: Any) -> dict[str, Any] | None:
    """HMA's ``BankedContentMetadata`` (content_id, content_uri, json; ``collab`` is the exchanges' own)."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise HmaError(400, "metadata should be a json object")
    value = {k: v for k, v in value.items() if k != "collab"}
    for key, v in value.items():
        if key not in _METADATA_KEYS:
            raise HmaError(400, f"Invalid metadata: unknown field '{key}'")
        if v is not None and not isinstance(v, _METADATA_KEYS[key]):
            raise HmaError(400, f"Invalid metadata: '{key}' must be a {_METADATA_KEYS[key].__name__}")
    if len(json.dumps(value)) > METADATA_MAX:
        raise HmaError(400, f"Invalid metadata: larger than {METADATA_MAX} bytes as JSON")
    return {k: v for k, v in value.items() if v is not None} or None


def _add(svc: Service, principal: Principal, bank_name: str, signals: dict[str, Any], note: str | None,
         metadata: dict[str, Any] | None) -> JSONResponse:
    """Store ``signals`` ({HMA name: value}) as one content item: ``{id, signals}``; every signal looks up to id."""
    if not signals:
        raise HmaError(400, "No signals given")
    names = list(signals)
    entries = []
    for name in names:
        canonical = hma_types().get(name)
        if canonical is None:
            raise HmaError(400, f"No such signal type {name}")
        entries.append({"signal_type": canonical, "value": signals[name]})
    from ..pipeline.rematch import mark

    before = mark(svc.db)
    with svc.db.session() as s:
        store = bankops.joined_store(svc.db, s)
        try:
            info = store.get_bank(bank_name)
        except BankError:
            raise HmaError(404, f"bank '{bank_name}' not found") from None
        rows = []
        for name, entry in zip(names, entries):
            valid, errors = bankops.validate_entries(info, [entry])
            if errors:
                raise HmaError(400, f"Invalid {name} signal: {errors[0]['message']}")
            rows.extend(valid)
        try:
            added = add_content(store, s, info, rows, note, metadata)
        except BankError as exc:
            raise HmaError(400, str(exc)) from None
        audit.append(s, "bank.add", principal.actor, subject=f"bank:{info.name}",
                     data={"bank": info.name, "content_id": added.id, "added": added.added,
                           "existing": len(added.existing), "tombstoned": added.tombstoned, "via": "hma",
                           "values": [{"signal_type": r["signal_type"], "value": r["value"]} for r in rows]})
    svc.refresh_now()
    bankops.rematch_since(svc, principal.actor, before, f"hma bank add {bank_name}")
    return JSONResponse({"id": added.id, "signals": {name: rows[i]["value"] for i, name in enumerate(names)}})


@router.post("/bank/{bank_name}/signal")
async def bank_add_signals(request: Request, bank_name: str, principal: Principal = need("banks.write")) -> JSONResponse:
    """Add one content item from hashes: ``{"pdq": "<hex>", "video_md5": "<hex>", "note"?: "…"}``."""
    svc = service_of(request)
    try:
        body = await read_json(request, "a JSON object of signal type -> signal")
        if not isinstance(body, dict):
            raise HmaError(400, "the body must be a JSON object of signal type -> signal")
        body = dict(body)
        note = _note(body.pop("note", None))
    except HmaError as exc:
        return exc.response()
    return await run_in_threadpool(lambda: _answer(lambda: _add(svc, principal, bank_name, body, note, None)))


@router.post("/bank/{bank_name}/content")
async def bank_add_content(request: Request, bank_name: str, principal: Principal = need("banks.write")) -> JSONResponse:
    """Add one content item from an upload (multipart, field name = content type; ``metadata`` and ``note``
    as form fields or a JSON body). ``?url=`` is refused: the service never fetches URLs."""
    svc = service_of(request)
    try:
        await run_in_threadpool(_bank, svc, bank_name)
        multipart = request.headers.get("content-type", "").startswith("multipart/")
        form = await request.form() if multipart else None
        if form is not None:
            raw_meta = form.get("metadata")
            metadata = _metadata(None if raw_meta is None else parse_json(str(raw_meta), "metadata form field"))
            note = _note(form.get("note"))
        else:
            body = await read_json(request)
            body = body if isinstance(body, dict) else {}
            metadata, note = _metadata(body.get("metadata")), _note(body.get("note"))
        if request.query_params.get("url"):
            raise HmaError(400, URL_REFUSED)
        if form is None or not any(hasattr(v, "read") for _, v in form.multi_items()):
            raise HmaError(400, "Neither `url` nor multipart file upload was received")
        hashes = await hash_upload(request, form)
    except HmaError as exc:
        return exc.response()
    return await run_in_threadpool(lambda: _answer(lambda: _add(svc, principal, bank_name, hashes, note, metadata)))


def _content(svc: Service, bank_name: str, content_id: str) -> ContentItem:
    """The item named in the path (HMA's ``<int:content_id>``: anything else is not found either)."""
    bank = _bank(svc, bank_name)
    if not content_id.isdigit() or len(content_id) > 18:
        raise HmaError(404, f"content '{content_id}' not found")
    with svc.db.session() as s:
        item = get_content(s, bank, int(content_id))
    if item is None:
        raise HmaError(404, f"content '{content_id}' not found")
    return item


@router.get("/bank/{bank_name}/content/{content_id}")
def content_show(request: Request, bank_name: str, content_id: str, _: Principal = need("banks.read")) -> JSONResponse:
    """One content item: ``{id, disable_until_ts, original_media_uri, bank, signals?, metadata?, note?}``
    (``include_signals=true`` adds the signals; ``include_metadata=false`` leaves the metadata out)."""
    def show() -> JSONResponse:
        item = _content(service_of(request), bank_name, content_id)
        out: dict[str, Any] = {"id": item.id, "disable_until_ts": item.disable_until_ts, "original_media_uri": None,
                               "bank": _bank_json(item.bank)}
        if request.query_params.get("include_signals", "false").lower() == "true":
            out["signals"] = {hma_name(st): value for st, value in item.signals.items()}
        if request.query_params.get("include_metadata", "true").lower() == "true" and item.metadata:
            out["metadata"] = item.metadata
        if item.note is not None:
            out["note"] = item.note
        return JSONResponse(out)

    return _answer(show)


def _disable_until(value: Any) -> int:
    try:
        ts = int(value)
    except (TypeError, ValueError):
        raise HmaError(400, f"Invalid int: '{value}'") from None
    if ts < 0:
        raise HmaError(400, "disable_until_ts must be a non-negative integer")
    if ts > int(time.mktime((datetime.now() + timedelta(days=365 * 5)).timetuple())):
        raise HmaError(400, "disable_until_ts must be less than 5 years in the future")
    return ts


@router.put("/bank/{bank_name}/content/{content_id}")
async def content_update(request: Request, bank_name: str, content_id: str,
                         principal: Principal = need("banks.write")) -> JSONResponse:
    """Set ``disable_until_ts`` (0 off, 1 on, else a Unix time; /m/lookup skips it until then) and ``note``."""
    svc = service_of(request)
    try:
        body = _object(await read_json(request))
        changes: dict[str, Any] = {}
        if "disable_until_ts" in body:
            changes["disable_until_ts"] = _disable_until(body["disable_until_ts"])
        if "note" in body:
            changes["note"] = _note(body["note"])
    except HmaError as exc:
        return exc.response()

    def update() -> JSONResponse:
        item = _content(svc, bank_name, content_id)
        with svc.db.session() as s:
            item = update_content(s, item, **changes)
            audit.append(s, "bank.update", principal.actor, subject=f"bank:{item.bank.name}",
                         data={"content_id": item.id, "changes": changes, "via": "hma"})
        svc.contents.sync()  # this process's look-ups see the new disable time at once
        return JSONResponse({"id": item.id, "disable_until_ts": item.disable_until_ts, "collab_metadata": {},
                             "original_media_uri": None, "bank": _bank_json(item.bank),
                             "user_metadata": item.metadata, "note": item.note})

    return await run_in_threadpool(lambda: _answer(update))


@router.delete("/bank/{bank_name}/content/{content_id}")
def content_delete(request: Request, bank_name: str, content_id: str,
                   principal: Principal = need("banks.write")) -> JSONResponse:
    """Remove a content item: its entries are tombstoned (audited); ``{"deleted": 1}`` (0: no such item)."""
    svc = service_of(request)

    def delete() -> JSONResponse:
        try:
            item = _content(svc, bank_name, content_id)
        except HmaError as exc:
            if exc.status == 404 and exc.message.startswith("content"):
                return JSONResponse({"deleted": 0})
            raise
        from ..pipeline.rematch import mark

        before = mark(svc.db)
        bankops.remove_entries(svc.db, principal.actor, item.bank.name, ids=list(item.entry_ids),
                               reason=f"content {item.id} deleted through the HMA API")
        svc.refresh_now()
        bankops.rematch_since(svc, principal.actor, before, f"hma bank remove {item.bank.name}")
        return JSONResponse({"deleted": 1})

    return _answer(delete)


# -- configuration --------------------------------------------------------------------------------------

@router.get("/signal_type")
def signal_types(_: Principal = need("banks.read")) -> JSONResponse:
    """Every registered signal type (all of them match: ``enabled_ratio`` 1)."""
    return JSONResponse([{"name": hma_name(t.name), "enabled_ratio": 1.0} for t in registry.matchable()])


@router.put("/signal_type/{signal_type_name}")
async def signal_type_update(request: Request, signal_type_name: str, _: Principal = need("banks.write")) -> Response:
    """HMA switches a signal type on or off; tripwire matches with every registered type, so only
    ``enabled_ratio`` 1 is accepted (204); to stop matching a type, remove its entries or disable the bank."""
    try:
        body = _object(await read_json(request))
        if body.get("enabled_ratio") is None:
            raise HmaError(400, "enabled_ratio is required")
        try:
            ratio = float(body["enabled_ratio"])
        except (TypeError, ValueError):
            raise HmaError(400, f"Invalid float: '{body['enabled_ratio']}'") from None
        if signal_type_name not in hma_types():
            raise HmaError(404, f"No such signal type '{signal_type_name}'")
        if ratio != 1.0:
            raise HmaError(400, "tripwire matches with every registered signal type: enabled_ratio must be 1")
    except HmaError as exc:
        return exc.response()
    return Response(status_code=204)


@router.get("/signal_type/index")
def signal_type_index(request: Request, _: Principal = need("banks.read")) -> JSONResponse:
    """Per type: ``{db_size, index_size, index_out_of_date, newest_db_item, index_built_to}``."""
    return per_type(request, lambda facts: {
        "db_size": facts["db_size"], "index_size": facts["index_size"],
        "index_out_of_date": (facts["db_size"], facts["newest_db_item"]) != (facts["index_size"], facts["index_built_to"]),
        "newest_db_item": facts["newest_db_item"], "index_built_to": facts["index_built_to"]})


@router.get("/content_type")
def content_types(_: Principal = need("banks.read")) -> JSONResponse:
    """The HMA content types uploads may be (from the registry's types)."""
    return JSONResponse([{"name": name, "enabled": True} for name in sorted(registry.hma_content_types())])
