"""The review console's video contact sheet: a grid of sampled frames, greyscale and blurred, made on the fly
from the preserved content and never stored (SAFETY.md rules 6 and 7). Like the media route it needs the
``media`` permission and reads through :meth:`Service.media.media_for_item`, which audits the read; the full
video stays behind the console's deliberate reveal."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response

from ..errors import ItemError
from ..media.item import Item
from ..media.sniff import is_video
from ..media.video import contact_sheet
from .auth import Principal
from .deps import need, service_of

router = APIRouter(prefix="/console", include_in_schema=False)


@router.get("/items/{item_id}/contact-sheet")
def item_contact_sheet(request: Request, item_id: int, principal: Principal = need("media")) -> Response:
    svc = service_of(request)
    found = svc.media.media_for_item(item_id, principal.actor)
    if found is None or not is_video(found[1]):
        raise HTTPException(404, "no preserved video for this item")
    data, media_type = found
    try:
        png = contact_sheet(Item(f"item {item_id}", data, len(data), svc.config.limits, media_type))
    except ItemError as exc:
        raise HTTPException(422, exc.message) from None
    return Response(png, media_type="image/png", headers={
        "Cache-Control": "no-store", "Content-Disposition": "inline", "Content-Security-Policy": "sandbox; default-src 'none'"})
