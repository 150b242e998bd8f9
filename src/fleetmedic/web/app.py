"""``create_app``: the dashboard, the REST API and ``/metrics`` over one store, in one ASGI app.

Everything the app needs is built here and injected through ``app.state`` (stores, cache,
credentials, templates, metrics), so tests build one on a temporary store and call it in-process.
"""

from __future__ import annotations

import gzip
import hashlib
import time
from collections.abc import Sequence
from functools import cache
from importlib import resources
from pathlib import Path
from urllib.parse import quote

from fastapi import Depends, FastAPI, Request, Response
from fastapi.responses import JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

import fleetmedic
from fleetmedic.model.errors import InputError
from fleetmedic.web import errors
from fleetmedic.web.analytics import Analytics
from fleetmedic.web.api import PREFIX, build_router
from fleetmedic.web.auth import ENV_VAR, Authority, Credential, Role, parse_tokens
from fleetmedic.web.cache import ResultCache
from fleetmedic.web.metrics import DashboardCollector, Metrics
from fleetmedic.web.pages import forms, session, views
from fleetmedic.web.pages.render import LoginRequired, templates
from fleetmedic.web.periods import DEFAULT_PERIOD
from fleetmedic.web.security import local_host, require
from fleetmedic.web.state import WebState, web_state
from fleetmedic.web.stores import ControlAccess, StoreReader

DEFAULT_TTL = 300.0
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; font-src 'self' data:; object-src 'none'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def create_app(
    db_path: str | Path,
    control_path: str | Path,
    tokens: str | Sequence[Credential] | None,
    *,
    insecure_local: bool = False,
    cache_ttl: float = DEFAULT_TTL,
    warm: bool = True,
    secret: bytes | None = None,
) -> FastAPI:
    """The app over the store at ``db_path`` and the control store at ``control_path``.

    ``tokens`` is the ``FLEETMEDIC_TOKENS`` text or parsed credentials. Without any, the app is
    only built with ``insecure_local`` (every local caller is an admin; the caller binds it to
    127.0.0.1). ``warm`` starts the default period's KPIs in the background at once.
    """
    credentials = parse_tokens(tokens) if isinstance(tokens, str) else list(tokens or [])
    if not credentials and not insecure_local:
        raise InputError(f"no tokens: set {ENV_VAR}=name:role:token,... (or --insecure-local)")
    reader = StoreReader(Path(db_path))
    control = ControlAccess(Path(control_path))
    analytics = Analytics(reader, ResultCache(ttl=cache_ttl))
    state = WebState(
        authority=Authority(credentials, secret),
        insecure_local=insecure_local and not credentials,
        reader=reader,
        control=control,
        analytics=analytics,
        metrics=Metrics(DashboardCollector(lambda: _cached_kpis(analytics), control)),
        templates=templates(),
    )
    app = FastAPI(
        title="fleetmedic",
        version=fleetmedic.__version__,
        description="Fleet health, failures, priorities, jobs, nodes and healing actions.",
        openapi_url=f"{PREFIX}/openapi.json",
        docs_url=None,
        redoc_url=None,
    )
    app.state.fleetmedic = state
    errors.install(app)
    _routes(app)
    app.add_middleware(Guard, state=state)
    if warm:
        analytics.warm()
    return app


def _cached_kpis(analytics: Analytics) -> tuple[str, dict[str, object]] | None:
    found = analytics.cache.peek(("period", DEFAULT_PERIOD.value))
    return None if found is None else (DEFAULT_PERIOD.value, found["current"])


def _routes(app: FastAPI) -> None:
    app.include_router(build_router())
    app.include_router(session.router)
    app.include_router(forms.router)
    app.include_router(views.router)
    app.add_api_route(
        "/metrics", _metrics, include_in_schema=False, dependencies=[Depends(require(Role.viewer))]
    )
    app.add_api_route("/healthz", _health, include_in_schema=False)
    app.add_api_route("/vendor/plotly.min.js", _plotly, include_in_schema=False)
    app.mount("/static", StaticFiles(packages=[("fleetmedic.web", "static")]), name="static")

    @app.exception_handler(LoginRequired)
    async def _login(request: Request, _: LoginRequired) -> Response:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)


def _metrics(request: Request) -> Response:
    return Response(web_state(request).metrics.render(), media_type=CONTENT_TYPE_LATEST)


def _health() -> JSONResponse:
    return JSONResponse({"status": "ok"})


@cache
def _plotly_bytes() -> tuple[bytes, bytes, str]:
    """plotly.js from the installed ``plotly`` package (no CDN), plain and gzipped, and its ETag."""
    raw = resources.files("plotly").joinpath("package_data", "plotly.min.js").read_bytes()
    return raw, gzip.compress(raw, 6), hashlib.sha256(raw).hexdigest()[:16]


def _plotly(request: Request) -> Response:
    raw, packed, etag = _plotly_bytes()
    headers = {"Cache-Control": "public, max-age=86400", "ETag": f'"{etag}"'}
    if request.headers.get("if-none-match") == f'"{etag}"':
        return Response(status_code=304, headers=headers)
    if "gzip" in request.headers.get("accept-encoding", ""):
        headers["Content-Encoding"] = "gzip"
        return Response(packed, media_type="text/javascript", headers=headers)
    return Response(raw, media_type="text/javascript", headers=headers)


class Guard:
    """Pure ASGI middleware: security headers, the loopback check of --insecure-local, and the
    request metrics. (Starlette's ``BaseHTTPMiddleware`` costs a task per request, which shows
    in the tail latency under load.)"""

    def __init__(self, app: ASGIApp, state: WebState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started, status = time.perf_counter(), 500
        static = scope["path"].startswith(("/static/", "/vendor/"))

        async def send_with_headers(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = MutableHeaders(scope=message)
                if static:
                    headers.setdefault("Cache-Control", "public, max-age=3600")
                for name, value in HEADERS.items():
                    headers.setdefault(name, value)
            await send(message)

        try:
            if self.state.insecure_local and not local_host(Headers(scope=scope).get("host")):
                refused = errors.body(403, "this server only answers to 127.0.0.1/localhost")
                await refused(scope, receive, send_with_headers)
            else:
                await self.app(scope, receive, send_with_headers)
        finally:
            self.state.metrics.observe(
                scope["method"], route_template(scope), status, time.perf_counter() - started
            )


def route_template(scope: Scope) -> str:
    """``/api/v1/jobs/{job_id}`` for ``/api/v1/jobs/j-42``: a label that cannot explode.

    Routers included in routers keep their own relative paths, so the prefix is recovered from
    the request path minus the route's path with its parameters filled in.
    """
    route = scope.get("route")
    pattern = getattr(route, "path_format", None) or getattr(route, "path", None)
    if not pattern:
        return "unmatched"
    filled = pattern
    for name, value in scope.get("path_params", {}).items():
        filled = filled.replace("{" + name + "}", str(value))
    path = scope.get("path", "")
    prefix = path[: len(path) - len(filled)] if path.endswith(filled) else ""
    return str(prefix + pattern)
