"""The FastAPI application: :func:`create_app` wires the pipeline, banks, policy, auth and console together.

Request path, outermost first:

1. :class:`ObserveMiddleware` — timing and counting per route (Prometheus), security headers
   (``nosniff``, no framing, no referrer, ``no-store`` on anything that carries case data, a strict CSP on
   the console);
2. :class:`AuthMiddleware` — every path except ``/healthz``, the console login form and static assets
   needs a key (``Authorization: Bearer``) or, for the console and the API docs, a session cookie; then
   the per-key rate limit (429). Authentication happens *before* the body is read, so an anonymous client
   cannot make the server parse an upload;
3. :class:`BodyLimitMiddleware` — 413 for bodies over the limit, by ``Content-Length`` or while streaming;
4. :class:`~.hot_routes.HotRoutes` — the one-hash look-ups (``GET /m/raw_lookup``, ``GET /m/lookup``) answered
   without FastAPI's per-request routing, with the permission check their declared routes make;
5. the routes, each of which names the permission it needs (403 for the wrong role).

There is no CORS middleware unless ``[service] cors_origins`` lists origins.
"""

from __future__ import annotations

import json
import time
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Awaitable, Callable
from urllib.parse import quote

import anyio
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.datastructures import Headers
from starlette.requests import cookie_parser

from ..config import Config, load_config
from ..policy.policy import Policy
from ..store.db import Database, open_db
from .auth import SESSION_COOKIE, AuthError, Principal
from .deps import need, need_any, service_of
from .hot_routes import HotRoutes
from .media import DirectoryMedia, MediaSource, evidence_source
from .metrics import Metrics
from .ratelimit import RateLimiter
from .schema import all_tables
from .settings import ServiceSettings
from .state import Service

HERE = Path(__file__).parent
#: reachable without a key
PUBLIC_PATHS = frozenset({"/healthz", "/console/login", "/favicon.ico", "/status", "/status/live"})  # /status*: HMA's
PUBLIC_PREFIXES = ("/static/", "/docs-static/")
#: where a console session cookie is accepted instead of a Bearer key
COOKIE_PREFIXES = ("/console", "/docs", "/redoc", "/openapi.json")
#: API documentation pages: a browser without a session is sent to the console's login, then back to /docs
DOC_PAGES = frozenset({"/docs", "/redoc"})
CONSOLE_CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; media-src 'self'; "
               "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
DOCS_CSP = ("default-src 'none'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
            "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'")
# -- middleware ------------------------------------------------------------------------------------------

Scope = dict[str, Any]
ASGIApp = Callable[[Scope, Callable, Callable], Awaitable[None]]


async def _send_json(send: Callable, status: int, body: dict[str, Any], headers: list[tuple[bytes, bytes]] | None = None) -> None:
    payload = json.dumps(body).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
                + list(headers or [])})
    await send({"type": "http.response.body", "body": payload})


def _is_public(path: str) -> bool:
    return path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES)


class AuthMiddleware:
    def __init__(self, app: ASGIApp, service: Service) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http" or _is_public(scope["path"]):
            await self.app(scope, receive, send)
            return
        svc = self.service
        path = scope["path"]
        headers = Headers(scope=scope)
        principal: Principal | None = None
        problem = "an API key is required (Authorization: Bearer <key>)"
        authorization = headers.get("authorization")
        try:
            if authorization:
                scheme, _, token = authorization.partition(" ")
                if scheme.lower() != "bearer" or not token.strip():
                    raise AuthError("use Authorization: Bearer <key>")
                token = token.strip()
                from .auth import parse_key

                if svc.keys.needs_db(parse_key(token)):
                    principal = await anyio.to_thread.run_sync(svc.keys.verify_key, token)
                else:
                    principal = svc.keys.verify_key(token)
            elif path.startswith(COOKIE_PREFIXES):
                cookie = cookie_parser(headers.get("cookie", "")).get(SESSION_COOKIE)
                if cookie:
                    principal = await anyio.to_thread.run_sync(svc.keys.verify_session, cookie)
        except AuthError as exc:
            problem = str(exc)
        if principal is None:
            svc.metrics.auth_failures.inc()
            browser_docs = path in DOC_PAGES and "text/html" in headers.get("accept", "")
            if (path.startswith("/console") or browser_docs) and scope["method"] in ("GET", "HEAD"):
                target = "/console/login?next=" + quote("/docs" if browser_docs else path, safe="/")
                await send({"type": "http.response.start", "status": 303,
                            "headers": [(b"location", target.encode()), (b"content-length", b"0")]})
                await send({"type": "http.response.body", "body": b""})
                return
            await _send_json(send, 401, {"detail": problem}, [(b"www-authenticate", b'Bearer realm="tripwire"')])
            return
        wait = svc.limiter.take(principal.key_id, principal.rate_per_s)
        if wait > 0:
            svc.metrics.rate_limited.inc()
            await _send_json(send, 429, {"detail": "rate limit exceeded for this key"},
                             [(b"retry-after", RateLimiter.retry_after(wait).encode())])
            return
        scope.setdefault("state", {})["principal"] = principal
        await self.app(scope, receive, send)


class _TooLarge(Exception):
    pass


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, limit: int, import_limit: int) -> None:
        self.app = app
        self.limit = limit
        self.import_limit = import_limit

    def _limit_for(self, path: str) -> int:
        if path.startswith("/v1/banks/") and path.endswith("/import"):
            return self.import_limit
        return self.limit

    async def __call__(self, scope: Scope, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self._limit_for(scope["path"])
        declared = Headers(scope=scope).get("content-length")
        too_large = {"detail": f"request body larger than the limit of {limit} bytes"}
        if declared is not None:
            try:
                if int(declared) > limit:
                    await _send_json(send, 413, too_large)
                    return
            except ValueError:
                await _send_json(send, 400, {"detail": "invalid Content-Length"})
                return
        received = 0
        started = False
        exceeded = False
        answered = False

        async def limited_receive() -> dict[str, Any]:
            nonlocal received, exceeded
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    exceeded = True
                    raise _TooLarge()
            return message

        async def answer_413() -> None:
            nonlocal answered
            if not answered:
                answered = True
                await _send_json(send, 413, too_large)

        async def tracking_send(message: dict[str, Any]) -> None:
            nonlocal started
            if exceeded:
                # the app may have turned the aborted read into its own error (FastAPI answers 400): the
                # client gets the 413 it should, and the app's response is dropped
                if not started:
                    await answer_413()
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _TooLarge:
            if not started:
                await answer_413()


class ObserveMiddleware:
    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        started = time.perf_counter()
        status = 500

        async def send_with_headers(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                extra = [(b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"no-referrer"),
                         (b"x-frame-options", b"DENY")]
                existing = {k.lower() for k, _ in message.get("headers", [])}
                if path.startswith("/console"):
                    extra.append((b"content-security-policy", CONSOLE_CSP.encode()))
                elif path.startswith(("/docs", "/openapi.json")):
                    extra.append((b"content-security-policy", DOCS_CSP.encode()))
                if not path.startswith(PUBLIC_PREFIXES) and b"cache-control" not in existing:
                    extra.append((b"cache-control", b"no-store"))
                message = {**message, "headers": list(message.get("headers", [])) + extra}
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        finally:
            route = scope.get("route")
            label = getattr(route, "path", None)
            if label is None:
                if path.startswith(PUBLIC_PREFIXES):
                    label = "/static"
                elif status in (401, 413, 429):
                    label = "(refused)"  # answered by the middleware before routing
                else:
                    label = "(unmatched)"
            self.metrics.observe_request(scope.get("method", ""), label, status, time.perf_counter() - started)


# -- the factory ------------------------------------------------------------------------------------------

def _media_sources(db: Database, config: Config, settings: ServiceSettings,
                   extra: list[MediaSource] | None) -> list[MediaSource]:
    sources: list[MediaSource] = list(extra or [])
    evidence = evidence_source(db, config)
    if evidence is not None:
        sources.append(evidence)
    if settings.media_dir:
        sources.append(DirectoryMedia(settings.media_dir, db))
    return sources


def create_app(db_url: str | None = None, config: Config | None = None, *, policy: Policy | str | Path | None = None,
               settings: ServiceSettings | None = None, media: list[MediaSource] | None = None,
               database: Database | None = None) -> FastAPI:
    """The service as an ASGI app (``uvicorn.run(create_app(...))``); the database is migrated on creation.

    ``policy`` is a :class:`Policy`, a policy file, or None for ``[service] policy`` / the shipped default.
    """
    config = config if config is not None else load_config()
    settings = settings or ServiceSettings.from_config(config)
    db = database or open_db(db_url, schema=all_tables)
    if not isinstance(policy, Policy):
        policy = Policy.load(policy or settings.policy)
    service = Service(db, config, settings, policy, _media_sources(db, config, settings, media))

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        await anyio.to_thread.run_sync(service.start)
        try:
            yield
        finally:
            await anyio.to_thread.run_sync(service.stop)

    app = FastAPI(
        title="tripwire",
        version=_version(),
        description=("Scan uploads for known, AI-generated and traded abuse material; review queue; banks; "
                     "audit trail. Every endpoint except /healthz needs `Authorization: Bearer <key>`."),
        docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan,
    )
    app.state.service = service

    from . import (hma, hma_curation, hma_exchanges, hma_hashing, hma_matching, routes_api, routes_bank_console,
                   routes_banks, routes_console, routes_video)

    # the look-up routes first: a request walks the route list in order until one matches, and these are the
    # hot path (no two routers share a path, so the order changes nothing else)
    app.include_router(hma_matching.router)
    app.include_router(routes_api.router)
    app.include_router(routes_banks.router)
    # the rest of HMA's routes, one module per HMA blueprint
    for hma_router in (hma.router, hma_hashing.router, hma_curation.router, hma_exchanges.router):
        app.include_router(hma_router)
    app.include_router(routes_console.router)
    app.include_router(routes_bank_console.router)
    app.include_router(routes_video.router)
    _docs(app)
    _console_errors(app)
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> PlainTextResponse:
        """Liveness: the process answers. No key needed, no information given."""
        return PlainTextResponse("ok")

    @app.get("/readyz", tags=["service"])
    def readyz(request: Request, _: Principal = need_any()) -> JSONResponse:
        """Readiness: the database answers and the match index is loaded and catching up."""
        ok, checks = service_of(request).readiness()
        return JSONResponse({"ready": ok, **checks}, status_code=200 if ok else 503)

    @app.get("/metrics", tags=["service"], response_class=Response)
    def metrics(request: Request, _: Principal = need("metrics")) -> Response:
        """Prometheus metrics (text exposition format)."""
        body, content_type = service_of(request).metrics.render()
        return Response(body, media_type=content_type)

    # innermost: the look-ups HMA clients send one hash at a time, without FastAPI's routing (hot_routes.py)
    app.add_middleware(HotRoutes, service=service, hot=hma_matching.HOT, routes=hma_matching.router.routes)
    app.add_middleware(BodyLimitMiddleware, limit=settings.max_request_bytes, import_limit=settings.max_import_bytes)
    app.add_middleware(AuthMiddleware, service=service)
    if settings.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=list(settings.cors_origins), allow_credentials=False,
                           allow_methods=["GET", "POST"], allow_headers=["Authorization", "Content-Type"])
    app.add_middleware(ObserveMiddleware, metrics=service.metrics)
    return app


def _console_errors(app: FastAPI) -> None:
    """Console pages get an HTML error page; the API keeps FastAPI's JSON errors."""
    from fastapi.exception_handlers import http_exception_handler
    from starlette.exceptions import HTTPException as StarletteHTTPException

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        path = request.url.path
        if path.startswith("/console") and not path.endswith(("/reveal", "/media")):
            from .routes_console import templates

            principal = getattr(request.state, "principal", None)
            return templates.TemplateResponse(request, "error.html", {"me": principal, "counts": {}, "status": exc.status_code,
                                                                      "message": exc.detail}, status_code=exc.status_code)
        return await http_exception_handler(request, exc)


def _version() -> str:
    from .. import __version__

    return __version__


def _docs(app: FastAPI) -> None:
    """OpenAPI at /openapi.json and Swagger UI at /docs, both behind a key, with no CDN (assets from
    fastapi-offline's bundled Swagger UI)."""
    from fastapi.openapi.docs import get_swagger_ui_html

    try:
        import fastapi_offline

        assets = Path(fastapi_offline.__file__).parent / "static"
    except ImportError:  # pragma: no cover - a declared dependency
        assets = None
    if assets is not None and assets.is_dir():
        app.mount("/docs-static", StaticFiles(directory=str(assets)), name="docs-static")

    @app.get("/openapi.json", include_in_schema=False)
    def openapi(_: Principal = need_any()) -> JSONResponse:
        return JSONResponse(app.openapi())

    @app.get("/redoc", include_in_schema=False)
    def redoc(_: Principal = need_any()) -> Response:
        """One set of API docs (Swagger UI, no CDN): /redoc, where people look for it too, leads there."""
        return RedirectResponse("/docs", status_code=303)

    @app.get("/docs", include_in_schema=False)
    def docs(_: Principal = need_any()) -> Response:
        if assets is None:
            return get_swagger_ui_html(openapi_url="/openapi.json", title="tripwire API")
        return get_swagger_ui_html(openapi_url="/openapi.json", title="tripwire API",
                                   swagger_js_url="/docs-static/swagger-ui-bundle.js",
                                   swagger_css_url="/docs-static/swagger-ui.css",
                                   swagger_favicon_url="/docs-static/favicon.png")


def app_from_env() -> FastAPI:
    """Factory for ``uvicorn --factory`` with several workers: settings come from TRIPWIRE_SERVE_* variables
    that ``tripwire serve`` sets (database URL, config file, policy file)."""
    import os

    config = load_config(os.environ.get("TRIPWIRE_SERVE_CONFIG") or None)
    return create_app(os.environ.get("TRIPWIRE_SERVE_DB") or None, config,
                      policy=os.environ.get("TRIPWIRE_SERVE_POLICY") or None)
