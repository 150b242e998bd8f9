"""Request-level security: who the caller is, whether the role suffices, and the CSRF check.

A request is identified, in this order, by an ``Authorization: Bearer`` header (tools), a session
cookie (browsers after ``/login``), or, only with ``--insecure-local``, as the local user with the
admin role. A bad bearer token is a 401 even when a session cookie is also sent: the header says
what the caller meant. State-changing requests that did not come with a bearer header must carry
the CSRF token bound to their cookie, and a cross-site ``Origin`` is refused outright.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from fleetmedic.web.auth import Principal, Role
from fleetmedic.web.errors import ApiError
from fleetmedic.web.state import WebState, web_state

SESSION_COOKIE = "fm_session"
BINDING_COOKIE = "fm_csrf"
"""Before login (the login form) and with ``--insecure-local``: what the CSRF token is bound to."""
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
LOCAL = Principal("local", Role.admin)

bearer_scheme = HTTPBearer(
    auto_error=False,
    description="A token from FLEETMEDIC_TOKENS (name:role:token). Browsers use /login instead.",
)


@dataclass(frozen=True)
class Caller:
    principal: Principal
    via: Literal["bearer", "session", "local"]
    binding: str | None
    """The cookie value the CSRF token is derived from (None for bearer callers)."""


def identify(request: Request) -> Caller | None:
    state = web_state(request)
    header = request.headers.get("authorization")
    if header:
        found = state.authority.from_bearer(header)
        return Caller(found, "bearer", None) if found else None
    if state.insecure_local:
        return Caller(LOCAL, "local", request.cookies.get(BINDING_COOKIE))
    cookie = request.cookies.get(SESSION_COOKIE)
    found = state.authority.from_session(cookie)
    return Caller(found, "session", cookie) if found else None


def same_origin(request: Request) -> bool:
    """No ``Origin`` (same-origin GETs, tools) or one naming this very host."""
    origin = request.headers.get("origin")
    if not origin:
        return True
    return urlsplit(origin).netloc == request.headers.get("host", "")


def csrf_valid(request: Request, caller: Caller, offered: str | None) -> bool:
    if caller.via == "bearer":
        return True
    if not same_origin(request):
        return False
    return web_state(request).authority.csrf_ok(caller.binding, offered)


def csrf_token(state: WebState, caller: Caller | None) -> str | None:
    if caller is None or caller.binding is None:
        return None
    return state.authority.csrf_for(caller.binding)


def new_binding() -> str:
    return secrets.token_urlsafe(24)


def api_caller(
    request: Request,
    _: HTTPAuthorizationCredentials | None = Security(bearer_scheme),
) -> Caller:
    found = identify(request)
    if found is None:
        raise ApiError(401, "a valid token is needed: Authorization: Bearer TOKEN, or log in")
    return found


def require(role: Role) -> Callable[..., Caller]:
    """An API dependency: the caller has at least ``role``; unsafe methods also pass CSRF."""

    def dependency(request: Request, caller: Caller = Depends(api_caller)) -> Caller:
        if not caller.principal.may(role):
            raise ApiError(
                403,
                f"this needs the {role.name} role; {caller.principal.name} is a "
                f"{caller.principal.role.name}",
            )
        offered = request.headers.get(CSRF_HEADER)
        if request.method not in SAFE_METHODS and not csrf_valid(request, caller, offered):
            raise ApiError(403, f"missing or wrong CSRF token (send it as {CSRF_HEADER})", "csrf")
        return caller

    return dependency


def local_host(host: str | None) -> bool:
    """With ``--insecure-local``, only loopback names: a rebound DNS name must not get in."""
    host = host or ""
    name = host[1 : host.find("]")] if host.startswith("[") else host.rsplit(":", 1)[0]
    return name in {"127.0.0.1", "localhost", "::1"}
