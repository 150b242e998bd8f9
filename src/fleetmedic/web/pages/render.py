"""Rendering a page: the caller, its CSRF token, the navigation, and the binding cookie.

Templates are Jinja2 with autoescape on for every file, so any text from the store (job ids,
diagnosis summaries, evidence lines, action results) is HTML-escaped wherever it is printed;
nothing in a template is marked ``|safe``.
"""

from __future__ import annotations

from importlib import resources
from typing import Any
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader

import fleetmedic
from fleetmedic.web.auth import Role
from fleetmedic.web.security import (
    BINDING_COOKIE,
    Caller,
    csrf_token,
    identify,
    new_binding,
)
from fleetmedic.web.state import web_state

NAV: tuple[tuple[str, str], ...] = (
    ("/", "Overview"),
    ("/failures", "Failures"),
    ("/priorities", "Priorities"),
    ("/jobs", "Jobs"),
    ("/nodes", "Nodes"),
    ("/actions", "Actions"),
    ("/tickets", "Tickets"),
)


class LoginRequired(Exception):
    """A page was asked for without a session: the app answers with a redirect to /login."""


def _fmt_pct(value: Any) -> str:
    return "—" if value is None else f"{100 * float(value):.1f}%"


def _fmt_num(value: Any, digits: int = 1) -> str:
    return "—" if value is None else f"{float(value):,.{digits}f}"


def _fmt_time(value: Any) -> str:
    return "—" if value is None else value.strftime("%Y-%m-%d %H:%M:%S")


def templates() -> Jinja2Templates:
    folder = str(resources.files("fleetmedic.web").joinpath("templates"))
    env = Environment(loader=FileSystemLoader(folder), autoescape=True, auto_reload=False)
    env.filters["pct"] = _fmt_pct
    env.filters["num"] = _fmt_num
    env.filters["when"] = _fmt_time
    env.filters["pathq"] = lambda value: quote(str(value), safe="")
    env.globals["version"] = fleetmedic.__version__
    return Jinja2Templates(env=env)


def page_caller(request: Request) -> Caller:
    found = identify(request)
    if found is None:
        raise LoginRequired()
    return found


def secure(request: Request) -> bool:
    return request.url.scheme == "https"


def render(
    request: Request,
    template: str,
    context: dict[str, Any],
    *,
    caller: Caller | None,
    status: int = 200,
) -> HTMLResponse:
    """The page with the caller's name, role and CSRF token; sets the binding cookie if needed."""
    state = web_state(request)
    binding = None
    if caller is not None and caller.via == "local" and caller.binding is None:
        binding = new_binding()
        caller = Caller(caller.principal, caller.via, binding)
    page = {
        "request": request,
        "nav": NAV,
        "path": request.url.path,
        "caller": caller,
        "operator": caller is not None and caller.principal.may(Role.operator),
        "admin": caller is not None and caller.principal.may(Role.admin),
        "csrf_token": csrf_token(state, caller),
        "insecure_local": state.insecure_local,
        **context,
    }
    response = state.templates.TemplateResponse(request, template, page, status_code=status)
    if binding is not None:
        response.set_cookie(
            BINDING_COOKIE, binding, httponly=True, samesite="strict", secure=secure(request)
        )
    return response
