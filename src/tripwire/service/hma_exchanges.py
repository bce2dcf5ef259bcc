"""HMA's exchange routes (OpenMediaMatch ``blueprints/curation.py``), over tripwire's exchanges
(:mod:`tripwire.banks.exchanges`): the same state ``tripwire exchange ...`` and the background fetcher use.

* ``GET /c/exchanges/apis`` — ``["fb_threatexchange", "ncmec", "stop_ncii", "local_file"]``.
* ``GET|POST /c/exchanges/api/<api>`` — ``{"supports_authentification": bool, "has_set_authentification": bool}``;
  unknown API: 400. **Difference:** a POST carrying ``credential_json`` is refused (400): tripwire reads
  credentials from its configuration or environment and never stores them in the database (docs/exchanges.md).
* ``GET /c/exchanges/api/<api>/schema`` — ``{"config_schema": {"fields": [...]}, "credentials_schema": ...}``;
  unknown API: 404.
* ``POST /c/exchanges`` ``{"bank": "NAME", "api": "...", "api_json": {...}}`` — 201 ``{"message": "Created
  successfully"}``; the bank of that name is created. 400 for a name not matching ``^[A-Z0-9_]+$``, a missing or
  unknown API, ``api_json`` that is not an object or does not fit the API, or an existing bank or exchange of that
  name. **Difference:** ``local_file`` exchanges (which read a file on the server) are configured only with
  ``tripwire exchange add``.
* ``GET /c/exchanges`` — the names. ``GET /c/exchange/<name>`` — the collaboration config as HMA serialises it.
  ``GET /c/exchange/<name>/status`` — HMA's ``FetchStatus`` (``checkpoint_ts``, ``running_fetch_start_ts``,
  ``last_fetch_complete_ts``, ``last_fetch_succeeded``, ``up_to_date``, ``fetched_items``) plus tripwire's
  ``pages_skipped`` and ``last_error``. ``PUT /c/exchange/<name>`` ``{"enabled": bool}`` — the config.
  ``DELETE /c/exchange/<name>`` — ``{"message": "Exchange deleted"}`` (the bank stays; an unknown name is not an
  error, as in HMA). Other routes answer 404 for an unknown exchange.

The router's lifespan runs the background fetcher (:mod:`.exchange_fetcher`) when ``[exchanges] fetch_interval``
is set.

Errors are ``{"message": ...}``. Changes are audited (``exchange.create``/``update``/``delete``).
"""

from __future__ import annotations

import re
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from ..banks.exchanges.apis import (API_NAMES, ExchangeApiError, ExchangeSettings, api_class, config_fields,
                                    credential_fields, credentials_for, dump, uses_credentials)
from ..banks.exchanges.store import ExchangeInfo, ExchangeStore
from ..banks.store import BankError, BankStore
from ..review import audit
from .auth import Principal
from .deps import need, service_of
from .exchange_fetcher import ExchangeFetcher
from .hma import HmaError, err, read_json

@asynccontextmanager
async def _lifespan(app: Any) -> AsyncIterator[None]:
    fetcher = ExchangeFetcher.for_service(app.state.service)
    if fetcher is not None:
        fetcher.start()
    try:
        yield
    finally:
        if fetcher is not None:
            await run_in_threadpool(fetcher.stop)


router = APIRouter(tags=["hma"], lifespan=_lifespan)
#: exchanges the API may create (a local_file exchange reads a server-side path: command line only)
API_CREATABLE = tuple(a for a in API_NAMES if a != "local_file")
_NAME = re.compile(r"^[A-Z0-9_]+$")


async def _object_body(request: Request, refusal: str = "the body must be a JSON object") -> dict[str, Any]:
    """The request body as a JSON object (HmaError 400 with ``refusal`` otherwise, as HMA words it)."""
    try:
        body = await read_json(request)
    except HmaError:
        raise HmaError(400, refusal) from None
    if not isinstance(body, dict):
        raise HmaError(400, refusal)
    return body


def _has_credentials(svc: Any, api: str) -> bool:
    """Whether a fetch of this API would find credentials (for one of its exchanges, or the API-wide ones);
    False for an API without credentials, as HMA answers."""
    if not uses_credentials(api):
        return False
    settings = ExchangeSettings.from_config(svc.config)
    names = [i.name for i in ExchangeStore(svc.db).exchanges() if i.api == api] or [""]
    for name in names:
        try:
            credentials_for(name, api, settings)
            return True
        except ExchangeApiError:
            continue
    return False


def _collab_json(info: ExchangeInfo) -> dict[str, Any]:
    return dump(info.collab())


@router.get("/c/exchanges/apis")
def exchange_apis(_: Principal = need("banks.read")) -> JSONResponse:
    return JSONResponse(list(API_NAMES))


# one route per method: a two-method route gives both operations one OpenAPI operation id
@router.get("/c/exchanges/api/{api_name}")
@router.post("/c/exchanges/api/{api_name}")
async def exchange_api_config(request: Request, api_name: str, _: Principal = need("banks.write")) -> JSONResponse:
    """Whether the API takes credentials and whether they are set (credentials are not accepted here)."""
    svc = service_of(request)
    if api_name not in API_NAMES:
        return err(400, f"no such Exchange API '{api_name}'")
    if request.method == "POST":
        try:
            body = await _object_body(request, "this endpoint expects a json object payload")
        except HmaError as exc:
            return exc.response()
        if body.get("credential_json") is not None:
            return err(400, "tripwire does not store exchange credentials: set them in the configuration "
                             "([exchanges.credentials]) or the environment (TRIPWIRE_EXCHANGE_CREDENTIALS_<NAME>)")
    has = await run_in_threadpool(_has_credentials, svc, api_name)
    return JSONResponse({"supports_authentification": uses_credentials(api_name), "has_set_authentification": has})


@router.get("/c/exchanges/api/{api_name}/schema")
def exchange_api_schema(api_name: str, _: Principal = need("banks.read")) -> JSONResponse:
    if api_name not in API_NAMES:
        return err(404, f"Exchange API '{api_name}' not found")
    creds = credential_fields(api_name)
    return JSONResponse({"config_schema": {"fields": config_fields(api_name)},
                         "credentials_schema": {"fields": creds} if creds is not None else None})


@router.post("/c/exchanges")
async def exchange_create(request: Request, principal: Principal = need("banks.write")) -> JSONResponse:
    svc = service_of(request)
    try:
        body = await _object_body(request)
    except HmaError as exc:
        return exc.response()
    bank = body.get("bank")
    if not bank:
        return err(400, "Field `bank` is required")
    if not isinstance(bank, str) or not _NAME.match(bank):
        return err(400, "Field `bank` must match /^[A-Z0-9_]+$/")
    api_json = body.get("api_json", {})
    if not isinstance(api_json, dict):
        return err(400, "Field `api_json` must be object")
    api = body.get("api")
    if api is None:
        return err(400, "Field `api_type` is required")
    if api not in API_NAMES:
        return err(400, f"No such exchange type '{api}'")
    if api not in API_CREATABLE:
        return err(400, f"a {api} exchange reads a file on the server: configure it with `tripwire exchange add`")
    settings = {k: v for k, v in api_json.items() if k not in ("name", "api", "enabled")}
    enabled = bool(api_json.get("enabled", True))

    def create() -> JSONResponse:
        store = ExchangeStore(svc.db)
        try:
            api_class(api)
            BankStore(svc.db).get_bank(bank)
            return err(400, f"a bank named {bank} already exists")
        except BankError:
            pass
        try:
            store.create(bank, api, settings=settings, enabled=enabled,
                         on_commit=lambda s: _audit(s, principal, "exchange.create", bank, {"api": api, "settings": settings}))
        except (ExchangeApiError, BankError) as exc:
            return err(400, f"Failed to parse `api_json` - {exc}" if "settings do not fit" in str(exc) else str(exc))
        return JSONResponse({"message": "Created successfully"}, status_code=201)

    return await run_in_threadpool(create)


def _audit(s: Session, principal: Principal, kind: str, name: str, data: dict[str, Any]) -> None:
    audit.append(s, kind, principal.actor, subject=f"exchange:{name}", data={"exchange": name, "via": "hma", **data})


@router.get("/c/exchanges")
def exchange_list(request: Request, _: Principal = need("banks.read")) -> JSONResponse:
    return JSONResponse([i.name for i in ExchangeStore(service_of(request).db).exchanges()])


@router.get("/c/exchange/{name}")
def exchange_show(request: Request, name: str, _: Principal = need("banks.read")) -> JSONResponse:
    info = ExchangeStore(service_of(request).db).find(name)
    if info is None:
        return err(404, f"Exchange '{name}' not found")
    return JSONResponse(_collab_json(info))


@router.get("/c/exchange/{name}/status")
def exchange_status(request: Request, name: str, _: Principal = need("banks.read")) -> JSONResponse:
    info = ExchangeStore(service_of(request).db).find(name)
    if info is None:
        return err(404, f"Exchange '{name}' not found")
    return JSONResponse(fetch_status(info))


def fetch_status(info: ExchangeInfo) -> dict[str, Any]:
    """HMA's ``FetchStatus`` for an exchange (times in Unix seconds), plus tripwire's skip count and error."""
    def ts(d: Any) -> int | None:
        return int(d.timestamp()) if d is not None else None

    running = info.last_fetch_started is not None and info.last_success is None
    return {"checkpoint_ts": info.checkpoint_time(), "running_fetch_start_ts": ts(info.last_fetch_started) if running else None,
            "last_fetch_complete_ts": ts(info.last_fetch_finished), "last_fetch_succeeded": info.last_success,
            "up_to_date": bool(info.last_success), "fetched_items": info.records,
            "pages_skipped": info.pages_skipped, "last_error": info.last_error}


@router.put("/c/exchange/{name}")
async def exchange_update(request: Request, name: str, principal: Principal = need("banks.write")) -> JSONResponse:
    svc = service_of(request)
    try:
        body = await _object_body(request)
    except HmaError as exc:
        return exc.response()
    enabled = body.get("enabled")
    if enabled is not None and not isinstance(enabled, bool):
        return err(400, "Field `enabled` must be a boolean")

    def update() -> JSONResponse:
        store = ExchangeStore(svc.db)
        if store.find(name) is None:
            return err(404, f"Exchange '{name}' not found")
        info = store.update(name, enabled=enabled,
                            on_commit=lambda s: _audit(s, principal, "exchange.update", name, {"enabled": enabled}))
        return JSONResponse(_collab_json(info))

    return await run_in_threadpool(update)


@router.delete("/c/exchange/{name}")
async def exchange_delete(request: Request, name: str, principal: Principal = need("banks.write")) -> JSONResponse:
    svc = service_of(request)

    def remove() -> JSONResponse:
        store = ExchangeStore(svc.db)
        if store.find(name) is not None:  # as HMA: deleting an unknown exchange is not an error
            store.delete(name, on_commit=lambda s: _audit(s, principal, "exchange.delete", name, {}))
        return JSONResponse({"message": "Exchange deleted"})

    return await run_in_threadpool(remove)
