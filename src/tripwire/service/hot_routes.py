"""The look-up routes answered without FastAPI's per-request routing and dependency solving.

A ``GET /m/raw_lookup`` is ~50 µs of index work, but reaching it through FastAPI cost about as much again
several times over: the router walks its route list matching each path pattern, builds a ``Request``,
solves the route's dependencies (the permission check) and validates the answer's type, for every request
(``bench/README.md``, service.py: about 100 µs of a ~200 µs request in process). HMA clients send look-ups
one hash per request, so that overhead is the service's price per look-up.

:class:`HotRoutes` sits inside the middleware stack (after the body limit, the key check and the rate limit,
which it relies on: the principal is in ``scope["state"]``) and answers the routes listed in
:data:`HOT_ROUTES` by exact method and path, calling the same answer function the routers' declared route
calls. The routes stay declared in their routers, so the API documentation, ``HEAD``, trailing-slash
redirects and every other method or path are FastAPI's as before; metrics label a hot request with the
declared route, exactly as FastAPI's routing would.
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable

from starlette.datastructures import QueryParams
from starlette.responses import JSONResponse, Response

from .deps import refusal
from .state import Service

__all__ = ["HotAnswer", "HotRoutes"]

#: an answer function: the service and the query string's parameters -> the response
HotAnswer = Callable[[Service, QueryParams], Awaitable[Response]]

Scope = dict[str, Any]


class HotRoutes:
    """ASGI middleware: ``(method, path) -> (permission, answer)`` for the hot routes, everything else passed on.

    ``routes`` is the declaring router's route list, from which each hot route's declared route is taken for the
    metrics label (``scope["route"]``, as FastAPI sets it)."""

    def __init__(self, app: Callable[..., Awaitable[None]], service: Service,
                 hot: dict[tuple[str, str], tuple[str, HotAnswer]], routes: list[Any]) -> None:
        self.app = app
        self.service = service
        declared = {(method, getattr(r, "path", None)): r for r in routes for method in getattr(r, "methods", None) or ()}
        missing = [key for key in hot if key not in declared]
        if missing:  # a hot route must also be declared: the docs and every other path depend on it
            raise ValueError(f"hot routes not declared in any router: {missing}")
        self.hot = {key: (permission, answer, declared[key]) for key, (permission, answer) in hot.items()}

    async def __call__(self, scope: Scope, receive: Callable[..., Any], send: Callable[..., Any]) -> None:
        found = self.hot.get((scope.get("method", ""), scope.get("path", ""))) if scope["type"] == "http" else None
        if found is None:
            await self.app(scope, receive, send)
            return
        permission, answer, route = found
        scope["route"] = route
        problem = refusal(scope.get("state", {}).get("principal"), permission)
        if problem is not None:
            response: Response = JSONResponse({"detail": problem[1]}, status_code=problem[0])
        else:
            response = await answer(self.service, QueryParams(scope["query_string"]))
        await response(scope, receive, send)
