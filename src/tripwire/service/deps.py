"""Route dependencies: the shared :class:`~.state.Service` and the caller's principal, with permission checks.

Every router imports these from here, never from :mod:`.app` (which imports the routers).
"""

from __future__ import annotations

from typing import Any

from fastapi import Depends, HTTPException, Request

from .auth import Principal
from .state import Service

__all__ = ["need", "need_any", "principal_of", "refusal", "service_of"]


def service_of(request: Request) -> Service:
    return request.app.state.service


def principal_of(request: Request) -> Principal:
    principal = getattr(request.state, "principal", None)
    if principal is None:  # the middleware lets no request through without one; belt and braces
        raise HTTPException(401, "an API key is required", headers={"WWW-Authenticate": "Bearer"})
    return principal


def need(permission: str) -> Any:
    """A dependency: the caller's principal, or 403 when its role lacks ``permission``."""

    # async: FastAPI runs a plain ``def`` dependency in the thread pool (a thread hop per request for a
    # dictionary lookup); this one does no I/O
    async def check(request: Request) -> Principal:
        principal = principal_of(request)
        problem = refusal(principal, permission)
        if problem is not None:
            raise HTTPException(*problem)
        return principal

    return Depends(check)


def refusal(principal: Principal | None, permission: str) -> tuple[int, str] | None:
    """(status, detail) when ``principal`` may not do ``permission``, else None: the one wording of a refusal
    for :func:`need` and the routes answered outside FastAPI's dependencies (:mod:`.hot_routes`)."""
    if principal is None:
        return 401, "an API key is required"
    if not principal.can(permission):
        return 403, f"the {principal.role} role may not do this ({permission})"
    return None


def need_any() -> Any:
    """A dependency satisfied by any valid key."""
    return Depends(_principal)


async def _principal(request: Request) -> Principal:
    return principal_of(request)
