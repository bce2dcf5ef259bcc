"""HMA's matching blueprint (``/m``): look-ups answered by tripwire's matcher, by content item.

* ``GET /m/lookup?signal=…&signal_type=…[&banks=a,b]`` — ``{bank: [{bank_content_id, distance}]}`` from
  enabled banks and enabled content items (allow-list suppression applies); ``POST /m/lookup`` hashes one
  upload (:mod:`.hma_hashing`) and answers ``{signal_type: {bank: [...]}}`` (``bypass_coinflip=true``
  includes disabled banks, as HMA's coin flip at 0 does).
* ``GET /m/raw_lookup`` — ``{"matches": [id, …]}`` (``include_distance``: ``[{bank_content_id, distance}]``),
  the index's answer: disabled banks and items included, as HMA's raw index.
* ``GET /m/index/status`` — ``{type: {present, built_to, size}}`` from the matcher's indexes;
  ``POST /m/compare`` — ``{type: [match, {"distance": d}]}`` with each type's own distance and radius.

A hit names a bank entry; the service's :class:`~tripwire.banks.contents.ContentMap` maps it to its content
item from memory (an entry never seen before is read once). ``distance`` is a string, as HMA writes it.
"""

from __future__ import annotations

import time
from datetime import timezone
from typing import Any, Callable

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy import func, select
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import QueryParams

from ..banks.contents import is_enabled
from ..banks.models import BankEntry
from ..match.lookup import parse_query
from ..signals.registry import registry
from ..signals.types.base import Query
from .auth import Principal
from .deps import need, service_of
from .hma import HmaError, err, hma_name, hma_types, read_json, truthy
from .hma_hashing import URL_REFUSED, hash_upload
from .hot_routes import HotAnswer
from .lookups import lookup
from .state import Service

router = APIRouter(tags=["hma"])

#: {bank: [{"bank_content_id": id, "distance": "d"}]}
ByBank = dict[str, list[dict[str, Any]]]


def _query(signal_type: str, signal: str) -> Query:
    canonical = hma_types().get(signal_type)
    if canonical is None:
        raise HmaError(400, f"No such SignalType '{signal_type}'")
    try:
        return parse_query(canonical, signal)
    except ValueError as exc:
        raise HmaError(400, f"invalid signal: {exc}") from None


def _banks_filter(params: QueryParams) -> set[str] | None:
    banks = params.get("banks")
    return {b for b in banks.split(",") if b} if banks else None


async def _hits(svc: Service, query: Query, *, check_enabled: bool, banks: set[str] | None) -> list[tuple[str, int, int, bool]]:
    """(bank, content id, distance, item enabled) per content item hit, closest first, one per item."""
    if svc.index_problem() == "INDEX-NOT-LOADED":
        raise HmaError(503, "index not yet ready")
    matches = [m for m in (await lookup(svc, [query], check_enabled=check_enabled))[0]["matches"]
               if banks is None or m["bank"] in banks]
    if not matches:
        return []
    ids = [m["entry_id"] for m in matches]
    contents = svc.contents.get(ids)
    if contents is None:  # entries never read before: read their items off the event loop
        await run_in_threadpool(svc.contents.load, ids)
        contents = svc.contents.get(ids)
    if contents is None:  # the map was started afresh meanwhile (full): ask the database directly
        contents = await run_in_threadpool(svc.contents.read, ids)
    out: dict[tuple[str, int], tuple[str, int, int, bool]] = {}
    now = time.time()
    for m in matches:
        content_id, disable = contents[m["entry_id"]]
        key = (m["bank"], content_id)
        if key not in out or m["distance"] < out[key][2]:
            out[key] = (m["bank"], content_id, int(m["distance"]), is_enabled(disable, now))
    return sorted(out.values(), key=lambda h: (h[2], h[0], h[1]))


async def _by_bank(svc: Service, query: Query, banks: set[str] | None, check_enabled: bool = True) -> ByBank:
    out: ByBank = {}
    for bank, content_id, distance, enabled in await _hits(svc, query, check_enabled=check_enabled, banks=banks):
        if enabled:
            out.setdefault(bank, []).append({"bank_content_id": content_id, "distance": str(distance)})
    return out


@router.get("/m/lookup")
async def lookup_get(request: Request, _: Principal = need("lookup")) -> Response:
    """Matches by bank for one signal: ``{bank: [{bank_content_id, distance}]}``."""
    return await lookup_get_answer(service_of(request), request.query_params)


async def lookup_get_answer(svc: Service, params: QueryParams) -> Response:
    """``GET /m/lookup``'s answer, for the declared route and for :mod:`.hot_routes`."""
    if params.get("url"):
        return err(400, URL_REFUSED)
    signal, signal_type = params.get("signal"), params.get("signal_type")
    if not signal or not signal_type:
        return err(400, "Either url or both signal and signal_type are required")
    try:
        return JSONResponse(await _by_bank(svc, _query(signal_type, signal), _banks_filter(params)))
    except HmaError as exc:
        return exc.response()


@router.post("/m/lookup")
async def lookup_post(request: Request, _: Principal = need("lookup")) -> JSONResponse:
    """Hash one uploaded file and look every hash up: ``{signal_type: {bank: [...]}}``."""
    svc = service_of(request)
    try:
        hashes = await hash_upload(request)
        bypass = truthy(request.query_params.get("bypass_coinflip"))
        out: dict[str, ByBank] = {}
        for name, value in hashes.items():
            # "" is a hash below its quality floor: nothing to match (HMA would answer 400 for it)
            out[name] = await _by_bank(svc, _query(name, value), _banks_filter(request.query_params), not bypass) if value else {}
        return JSONResponse(out)
    except HmaError as exc:
        return exc.response()


@router.get("/m/raw_lookup")
async def raw_lookup(request: Request, _: Principal = need("lookup")) -> Response:
    """The index's answer for one signal: content ids (with distances if ``include_distance``)."""
    return await raw_lookup_answer(service_of(request), request.query_params)


async def raw_lookup_answer(svc: Service, params: QueryParams) -> Response:
    """``GET /m/raw_lookup``'s answer, for the declared route and for :mod:`.hot_routes`."""
    missing = [p for p in ("signal", "signal_type") if not params.get(p)]
    if missing:  # HMA validates the query string first: 422
        return err(422, f"{' and '.join(missing)} required")
    try:
        hits = await _hits(svc, _query(params["signal_type"], params["signal"]),
                           check_enabled=False, banks=_banks_filter(params))
    except HmaError as exc:
        return exc.response()
    if truthy(params.get("include_distance")):
        return JSONResponse({"matches": [{"bank_content_id": c, "distance": str(d)} for _, c, d, _ in hits]})
    return JSONResponse({"matches": [c for _, c, _, _ in hits]})


#: the look-ups HMA clients send one hash at a time, answered by :class:`.hot_routes.HotRoutes` without
#: FastAPI's per-request routing (the routes above stay their declaration: docs, HEAD, errors)
HOT: dict[tuple[str, str], tuple[str, HotAnswer]] = {
    ("GET", "/m/raw_lookup"): ("lookup", raw_lookup_answer),
    ("GET", "/m/lookup"): ("lookup", lookup_get_answer),
}


def _unix(value: Any) -> int:
    if value is None:
        return 0
    if value.tzinfo is None:  # SQLite hands back naive UTC
        value = value.replace(tzinfo=timezone.utc)
    return int(value.timestamp())


def index_facts(svc: Service, canonical: str) -> dict[str, Any]:
    """One type's index against the database: sizes and the newest entry each holds (Unix times).

    A distance type's index is the matcher's; an exact type is looked up in the database itself, so its
    "index" is always the database."""
    active = (BankEntry.signal_type == canonical, BankEntry.removed_at.is_(None))
    index = svc.matcher.indexes.get(canonical)
    with svc.db.session() as s:
        db_size = s.scalar(select(func.count()).select_from(BankEntry).where(*active)) or 0
        newest = s.scalar(select(func.max(BankEntry.id)).where(*active))
        built = newest if index is None else s.scalar(select(func.max(BankEntry.id)).where(
            *active, BankEntry.id <= index.last_entry_id))
        times: dict[int | None, Any] = dict(s.execute(select(BankEntry.id, BankEntry.added_at).where(
            BankEntry.id.in_([i for i in (newest, built) if i is not None]))).all())
    return {"present": svc.index_problem() != "INDEX-NOT-LOADED", "db_size": int(db_size),
            "index_size": int(db_size) if index is None else len(index),
            "newest_db_item": _unix(times.get(newest)), "index_built_to": _unix(times.get(built))}


def selected_types(request: Request) -> list[str]:
    """Canonical names of the types a configuration route reports (``signal_type`` narrows to one)."""
    wanted = request.query_params.get("signal_type")
    names = [t.name for t in registry.matchable()]
    if wanted is None:
        return names
    canonical = hma_types().get(wanted)
    if canonical is None:
        raise HmaError(400, f"No such signal type '{wanted}'")
    return [canonical]


def per_type(request: Request, answer: Callable[[dict[str, Any]], dict[str, Any]]) -> JSONResponse:
    """``{HMA type name: answer(index_facts)}`` for the types the request selects (``signal_type``): the shape of
    HMA's index status and signal-type index routes."""
    svc = service_of(request)
    try:
        names = selected_types(request)
    except HmaError as exc:
        return exc.response()
    return JSONResponse({hma_name(name): answer(index_facts(svc, name)) for name in names})


@router.get("/m/index/status")
def index_status(request: Request, _: Principal = need("lookup")) -> JSONResponse:
    """Per signal type: ``{present, built_to, size}`` of the index look-ups use now."""
    return per_type(request, lambda facts: {
        "present": facts["present"], "built_to": facts["index_built_to"] if facts["present"] else -1,
        "size": facts["index_size"]})


@router.post("/m/compare")
async def compare(request: Request, _: Principal = need("lookup")) -> JSONResponse:
    """Compare pairs of hashes: ``{"pdq": [a, b]}`` -> ``{"pdq": [match, {"distance": d}]}`` (each type's
    radius decides ``match``; exact types answer ``[equal, {}]``)."""
    try:
        body = await read_json(request, "a JSON object of signal type -> [hash, hash]")
        if not isinstance(body, dict):
            raise HmaError(400, "Request input was not a dict")
        out: dict[str, Any] = {}
        for name, pair in body.items():
            if not isinstance(pair, list):
                raise HmaError(400, f"Comparison hashes for {name} was not a list")
            if len(pair) != 2:
                raise HmaError(400, "Comparison hash list length must be exactly 2")
            canonical = hma_types().get(name)
            if canonical is None:
                raise HmaError(400, f"No such SignalType '{name}'")
            kind = registry.get(canonical)
            try:
                left, right = (kind.normalise(v) for v in pair)
            except ValueError as exc:
                raise HmaError(400, f"Invalid {name} hash: {exc}") from None
            if kind.matching == "distance":
                distance = kind.distance(left, right)
                out[name] = [distance <= kind.radius, {"distance": distance}]
            else:
                out[name] = [kind.same(left, right), {}]
        return JSONResponse(out)
    except HmaError as exc:
        return exc.response()
