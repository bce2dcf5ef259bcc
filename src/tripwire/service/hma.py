"""HMA (Meta's Hasher-Matcher-Actioner / OpenMediaMatch) compatibility: existing HMA clients work unchanged
(with a tripwire key). The routes follow HMA's blueprints one module each — :mod:`.hma_hashing` (``/h``),
:mod:`.hma_matching` (``/m``), :mod:`.hma_curation` (``/c`` banks, content, configuration) and, kept by the
exchanges work, ``hma_exchanges`` (``/c/exchange*``) — and this module holds what they share (HMA's error
shape and parsing) and HMA's ``/status`` routes. docs/service.md lists every route and each deliberate
difference (no URL fetching, keys, changes visible at once).

Errors are ``{"message": …}`` with HMA's status codes. ``bank_content_id`` / ``id`` is a content item's id
(:mod:`tripwire.banks.contents`): the entries added together share it.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse

from ..jsonl import MAX_DEPTH, nesting_error
from ..signals.registry import registry
from .deps import service_of

__all__ = ["HmaError", "err", "hma_name", "hma_types", "parse_json", "read_json", "router", "truthy"]

router = APIRouter(tags=["hma"])


class HmaError(Exception):
    """An HMA-style refusal raised from helpers: the route answers ``{"message": …}`` with ``status``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message

    def response(self) -> JSONResponse:
        return err(self.status, self.message)


def err(status: int, message: str) -> JSONResponse:
    return JSONResponse({"message": message}, status_code=status)


def truthy(value: str | None) -> bool:
    return str(value or "").strip().lower() in ("1", "true", "yes", "t", "y")


def hma_types() -> dict[str, str]:
    """{name an HMA client may send: canonical name}, from the signal-type registry."""
    return registry.hma_names()


def hma_name(canonical: str) -> str:
    """The name HMA answers with for a canonical type (``md5`` -> ``video_md5``)."""
    kind = registry.get(canonical)
    return kind.hma_name or kind.name


def parse_json(text: str, what: str) -> Any:
    """``text`` as JSON, None when blank (HmaError 400 when it is not JSON, or nests too deep to parse safely)."""
    if nesting_error(text):  # json.loads would recurse (RecursionError: a 500)
        raise HmaError(400, f"{what} nests deeper than {MAX_DEPTH} levels")
    try:
        return json.loads(text) if text.strip() else None
    except ValueError:
        raise HmaError(400, f"{what} must be valid JSON") from None


async def read_json(request: Request, what: str = "a JSON object") -> Any:
    """The request body as JSON (see :func:`parse_json`)."""
    raw = await request.body()
    return parse_json(raw.decode("utf-8", "replace"), f"the body ({what})")


@router.get("/status", response_class=PlainTextResponse)
def status(request: Request) -> PlainTextResponse:
    """HMA's readiness check for load balancers (no key, no information): ``I-AM-ALIVE``, or 503
    ``INDEX-NOT-LOADED`` / ``INDEX-STALE`` while the match index is not loaded or not catching up."""
    problem = service_of(request).index_problem()
    return PlainTextResponse(problem or "I-AM-ALIVE", status_code=503 if problem else 200)


@router.get("/status/live", response_class=PlainTextResponse)
def status_live() -> PlainTextResponse:
    """HMA's liveness check: 200 whenever the process answers (never restarts a cold start)."""
    return PlainTextResponse("I-AM-ALIVE")
