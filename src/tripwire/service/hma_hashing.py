"""HMA's hashing blueprint (``/h``) and the upload hashing that ``POST /m/lookup`` and ``POST
/c/bank/<name>/content`` share with it.

An upload is one multipart file whose field name is an HMA content type; the signal types it is hashed
with come from the registry (each type's ``hma_content_types``), so a type registered later is offered
without a change here. ``?types=`` narrows the selection. A value is computed by the type's own extractor —
the one the scanning pipeline runs — so ``/h/hash`` and a scan of the same file agree. Like
python-threatexchange's ``PdqSignal``, a hash below its type's quality floor (PDQ: 50) is answered as ``""``.
These routes hash exactly whatever ``[scan] pdq_decode`` says (the drop-in contract: HMA's own hash).
``GET /h/hash?url=`` would fetch from the network and is refused: the service never fetches URLs.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from ..config import with_scan_settings
from ..media.item import Item
from ..media.sniff import SNIFF_BYTES, sniff
from ..signals.registry import registry
from .auth import Principal
from .deps import need, service_of
from .hma import HmaError, err, hma_name

router = APIRouter(tags=["hma"])

URL_REFUSED = "url fetching is not supported (the service works offline): upload the file as multipart/form-data"


def hash_bytes(data: bytes, types: list[str], config: Any, picked: bool = True) -> dict[str, str]:
    """{HMA name: value} of ``data`` for the canonical ``types``. ValueError when a type cannot be computed and was
    ``picked`` (asked for by ``?types=``); otherwise such a type is left out (a video that cannot be decoded still
    gets its ``video_md5``), and ValueError only when nothing could be computed."""
    from ..errors import ItemError

    config = with_scan_settings(config, pdq_decode="exact")  # HMA's hash, never the draft
    media_type = sniff(data[:SNIFF_BYTES])
    item = Item("upload", data, len(data), config.limits, media_type)
    out: dict[str, str] = {}
    for name in types:
        kind = registry.get(name)
        extractor = kind.extractor(config)
        try:
            facts: dict[str, Any] = dict(extractor.extract(item)) if extractor is not None else {}
        except ItemError as exc:
            if picked:
                raise ValueError(exc.message) from None
            facts = {}
        value, quality = facts.get(kind.name), facts.get(f"{kind.name}_quality")
        if not value:
            if picked or len(types) == 1:
                raise ValueError(f"no {hma_name(name)} for this file ({media_type or 'unknown type'})")
            continue
        low = isinstance(quality, int) and quality < kind.min_quality
        out[hma_name(name)] = "" if low else str(value)
    return out


def upload_types(content_type: str, selection: str | None) -> list[str]:
    """The canonical types to hash an upload of ``content_type`` with (``selection``: HMA's ``types``)."""
    by_content = registry.hma_content_types()
    if content_type not in by_content:
        raise HmaError(400, f"no such content_type: '{content_type}'")
    offered = {hma_name(t): t for t in by_content[content_type]}
    if selection is None:
        return list(offered.values())
    picked = [t.strip() for t in selection.split(",") if t.strip()]
    for name in picked:
        if name not in offered:
            raise HmaError(400, f"signal type '{name}' doesn't exist or is disabled")
    if not picked:
        raise HmaError(400, "empty signal type selection")
    return [offered[name] for name in picked]


async def hash_upload(request: Request, form: Any = None) -> dict[str, str]:
    """Hash the one file of a multipart request as HMA's ``hash_media_from_form_data`` (HmaError 400 otherwise)."""
    if form is None:
        form = await request.form()
    files = [(k, v) for k, v in form.multi_items() if hasattr(v, "read")]
    if not files:
        raise HmaError(400, "Missing multipart/form-data file upload")
    if len(files) > 1:
        raise HmaError(400, "Only one file allowed per request")
    field, upload = files[0]
    wanted = upload_types(field, request.query_params.get("types"))
    data = await upload.read()
    config = service_of(request).config
    try:
        result = await run_in_threadpool(hash_bytes, data, wanted, config, request.query_params.get("types") is not None)
    except Exception as exc:  # undecodable or wrong kind of file: HMA answers 400 as well
        raise HmaError(400, f"cannot hash this file: {exc}") from None
    if not result:
        raise HmaError(400, "cannot hash this file: no signal could be computed")
    return result


@router.post("/h/hash")
async def hash_post(request: Request, _: Principal = need("lookup")) -> JSONResponse:
    """Hash one uploaded file (field name = content type: photo or video). Nothing is stored."""
    try:
        return JSONResponse(await hash_upload(request))
    except HmaError as exc:
        return exc.response()


@router.get("/h/hash")
def hash_get(_: Principal = need("lookup")) -> JSONResponse:
    """HMA hashes ``?url=``; tripwire never fetches URLs (upload the file with POST instead)."""
    return err(400, URL_REFUSED)
