"""An HMA-compatible subset, so existing Hasher-Matcher-Actioner clients work unchanged (with a key).

Shapes follow HMA's OpenMediaMatch blueprints (facebook/ThreatExchange, hasher-matcher-actioner):

* ``POST /h/hash`` — one multipart file whose field name is the content type (``photo`` or ``video``);
  returns ``{"pdq": "<hex>"}`` for a photo, ``{"video_md5": "<hex>", "vpdq": "<json>"}`` for a video
  (``?types=`` selects; a video that cannot be decoded gets its ``video_md5`` alone unless ``vpdq`` was asked for).
  ``GET /h/hash?url=`` would fetch from the network and is not offered (the service works offline).
* ``GET /m/lookup?signal=…&signal_type=pdq`` — ``{"<bank>": [{"bank_content_id": id, "distance": "d"}]}``
  for enabled banks (``banks=`` restricts); allow-list suppression applies.
* ``GET /m/raw_lookup?signal=…&signal_type=pdq[&include_distance=true]`` — ``{"matches": [id, …]}`` or
  ``{"matches": [{"bank_content_id": id, "distance": "d"}]}``, the raw index answer (enabled or not).
* ``GET /c/banks`` — ``[{"name": …, "matching_enabled_ratio": 1.0}]``.
* ``POST /c/bank/<name>/signal`` with ``{"pdq": "<hex>"}`` — ``{"id": …, "signals": {"pdq": "<hex>"}}``.

Errors are ``{"message": …}`` with HMA's status codes. ``bank_content_id`` is tripwire's bank entry id.
Signal types: ``pdq``, ``video_md5`` (stored as md5), ``vpdq``, and tripwire's ``md5``, ``sha1``, ``sha256``.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from ..banks.models import BankEntry
from ..banks.store import BankError, BankStore
from ..jsonl import MAX_DEPTH, nesting_error
from ..media.item import Item
from ..media.sniff import SNIFF_BYTES, is_image, sniff
from ..review import audit
from ..signals.digests import digest_bytes
from .deps import need, service_of
from .auth import Principal
from .bankops import joined_store, validate_entries
from .lookups import lookup
from ..match.lookup import parse_query
from ..signals.registry import registry

router = APIRouter(tags=["hma"])
CONTENT_TYPES = {"photo": ("pdq",), "video": ("video_md5", "vpdq")}


def _err(status: int, message: str) -> JSONResponse:
    return JSONResponse({"message": message}, status_code=status)


def _truthy(value: str | None) -> bool:
    return str(value or "").strip().lower() in ("1", "true", "yes", "t", "y")


def _hash_bytes(content_type: str, data: bytes, types: list[str], limits, picked: bool = False) -> dict[str, str]:
    out: dict[str, str] = {}
    if "pdq" in types:
        from ..signals.pdq import PdqExtractor

        media_type = sniff(data[:SNIFF_BYTES])
        if not is_image(media_type):
            raise ValueError(f"not an image ({media_type or 'unknown type'}): no PDQ")
        facts = PdqExtractor().extract(Item("upload", data, len(data), limits, media_type))
        if facts.get("pdq"):
            out["pdq"] = str(facts["pdq"])
    if "video_md5" in types:
        out["video_md5"] = digest_bytes(data)["md5"]
    if "vpdq" in types:
        from ..errors import ItemError
        from ..signals.vpdq import VideoExtractor

        try:
            facts = VideoExtractor().extract(Item("upload", data, len(data), limits))
        except ItemError as exc:
            if picked:
                raise ValueError(exc.message) from None
            facts = {}
        if facts.get("vpdq"):
            out["vpdq"] = str(facts["vpdq"])
        elif picked:
            raise ValueError("not a video: no vPDQ")
    return out


@router.post("/h/hash")
async def hash_post(request: Request, _: Principal = need("lookup")) -> JSONResponse:
    """Hash one uploaded file (field name = content type: photo or video). Nothing is stored."""
    svc = service_of(request)
    form = await request.form()
    files = [(k, v) for k, v in form.multi_items() if hasattr(v, "read")]
    if not files:
        return _err(400, "Missing multipart/form-data file upload")
    if len(files) > 1:
        return _err(400, "Only one file allowed per request")
    field, upload = files[0]
    if field not in CONTENT_TYPES:
        return _err(400, f"no such content_type: '{field}'")
    wanted = list(CONTENT_TYPES[field])
    types_arg = request.query_params.get("types")
    if types_arg is not None:
        picked = [t.strip() for t in types_arg.split(",") if t.strip()]
        bad = [t for t in picked if t not in wanted]
        if bad:
            return _err(400, f"signal type '{bad[0]}' doesn't exist or is disabled")
        if not picked:
            return _err(400, "empty signal type selection")
        wanted = picked
    data = await upload.read()
    try:
        result = await run_in_threadpool(_hash_bytes, field, data, wanted, svc.config.limits, types_arg is not None)
    except Exception as exc:  # undecodable image: HMA answers 400 as well
        return _err(400, f"cannot hash this file: {exc}")
    return JSONResponse(result)


def _query(request: Request) -> tuple[Any, JSONResponse | None]:
    signal = request.query_params.get("signal")
    signal_type = request.query_params.get("signal_type")
    if request.query_params.get("url"):
        return None, _err(400, "url lookups are not supported offline: hash the file with POST /h/hash")
    if not signal or not signal_type:
        return None, _err(400, "Either url or both signal and signal_type are required")
    hma_types = registry.hma_names()
    if signal_type not in hma_types:
        return None, _err(400, f"No such SignalType '{signal_type}'")
    try:
        return parse_query(hma_types[signal_type], signal), None
    except ValueError as exc:
        return None, _err(400, f"invalid signal: {exc}")


def _banks_filter(request: Request) -> set[str] | None:
    banks = request.query_params.get("banks")
    return {b for b in banks.split(",") if b} if banks else None


@router.get("/m/lookup")
async def lookup_get(request: Request, _: Principal = need("lookup")) -> JSONResponse:
    """Matches by bank for one signal: ``{bank: [{bank_content_id, distance}]}``."""
    svc = service_of(request)
    query, error = _query(request)
    if error is not None:
        return error
    result = (await lookup(svc, [query]))[0]
    wanted = _banks_filter(request)
    out: dict[str, list[dict[str, Any]]] = {}
    for m in result["matches"]:
        if wanted is not None and m["bank"] not in wanted:
            continue
        out.setdefault(m["bank"], []).append({"bank_content_id": m["entry_id"], "distance": str(m["distance"])})
    return JSONResponse(out)


@router.get("/m/raw_lookup")
async def raw_lookup(request: Request, _: Principal = need("lookup")) -> JSONResponse:
    """Raw index answer for one signal: bank content ids (with distances if ``include_distance``)."""
    svc = service_of(request)
    query, error = _query(request)
    if error is not None:
        return error
    result = (await lookup(svc, [query], check_enabled=False))[0]
    wanted = _banks_filter(request)
    hits = [m for m in result["matches"] if wanted is None or m["bank"] in wanted]
    if _truthy(request.query_params.get("include_distance")):
        return JSONResponse({"matches": [{"bank_content_id": m["entry_id"], "distance": str(m["distance"])} for m in hits]})
    return JSONResponse({"matches": [m["entry_id"] for m in hits]})


@router.get("/c/banks")
def banks_index(request: Request, _: Principal = need("banks.read")) -> JSONResponse:
    """Banks as HMA lists them."""
    svc = service_of(request)
    return JSONResponse([{"name": b.name, "matching_enabled_ratio": 1.0 if b.enabled else 0.0}
                         for b in BankStore(svc.db).banks()])


@router.post("/c/bank/{bank_name}/signal")
async def bank_add_signal(request: Request, bank_name: str, principal: Principal = need("banks.write")) -> JSONResponse:
    """Add signals to a bank: body ``{"pdq": "<hex>", ...}``; returns ``{id, signals}`` (audited)."""
    svc = service_of(request)
    try:
        raw = await request.body()
        if nesting_error(raw.decode("utf-8", "replace")):  # json.loads would recurse (RecursionError: a 500)
            return _err(400, f"the body nests deeper than {MAX_DEPTH} levels")
        body = json.loads(raw)
    except ValueError:
        return _err(400, "the body must be a JSON object of signal type -> signal")
    if not isinstance(body, dict) or not body:
        return _err(400, "No signals given")
    entries = []
    hma_types = registry.hma_names()
    for name, value in body.items():
        if name not in hma_types:
            return _err(400, f"No such signal type {name}")
        entries.append({"signal_type": hma_types[name], "value": value})

    def add() -> JSONResponse:
        with svc.db.session() as s:
            store = joined_store(svc.db, s)
            try:
                info = store.get_bank(bank_name)
            except BankError:
                return _err(404, f"bank '{bank_name}' not found")
            rows, errors = validate_entries(info, entries)
            if errors:
                return _err(400, f"Invalid signal: {errors[0]['message']}")
            result = store.insert_batch(info.id, rows)
            first = s.scalar(select(BankEntry.id).where(BankEntry.bank_id == info.id,
                                                        BankEntry.signal_type == rows[0]["signal_type"],
                                                        BankEntry.value == registry.kind(rows[0]["signal_type"]).storage_key(rows[0]["value"])))
            audit.append(s, "bank.add", principal.actor, subject=f"bank:{info.name}",
                         data={"bank": info.name, "added": result.added, "existing": result.existing, "via": "hma",
                               "values": [{"signal_type": r["signal_type"], "value": r["value"]} for r in rows]})
        svc.refresh_now()
        return JSONResponse({"id": first, "signals": {name: rows[i]["value"] for i, name in enumerate(body)}})

    return await run_in_threadpool(add)
