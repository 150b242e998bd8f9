"""``/login`` and ``/logout``: trade a token for an HttpOnly, SameSite=Strict session cookie.

The login form itself carries a CSRF token bound to a pre-login cookie, so another site cannot
log a visitor in under its own token (login CSRF). ``next`` must be a path on this server.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse

from fleetmedic.web.auth import SESSION_SECONDS
from fleetmedic.web.pages.render import render, secure
from fleetmedic.web.security import (
    BINDING_COOKIE,
    CSRF_FIELD,
    SESSION_COOKIE,
    Caller,
    identify,
    new_binding,
    same_origin,
)
from fleetmedic.web.state import web_state

router = APIRouter(include_in_schema=False)


def local_path(value: str | None) -> str:
    """Only a path on this server (``/jobs/x``), never ``//evil.example`` or a full URL."""
    if not value or not value.startswith("/") or "\\" in value:
        return "/"
    if any(ord(c) < 32 or ord(c) == 127 for c in value):  # browsers drop tabs: "/\t/evil"
        return "/"
    return "/" if value.startswith("//") else value


def _form(request: Request, error: str | None, status: int, next_path: str) -> Response:
    binding = request.cookies.get(BINDING_COOKIE) or new_binding()
    state = web_state(request)
    response = render(
        request,
        "login.html",
        {
            "error": error,
            "next": next_path,
            "login_csrf": state.authority.csrf_for(binding),
        },
        caller=None,
        status=status,
    )
    response.set_cookie(
        BINDING_COOKIE, binding, httponly=True, samesite="strict", secure=secure(request)
    )
    return response


@router.get("/login")
def login_form(request: Request, next: str | None = None) -> Response:
    if web_state(request).insecure_local or identify(request) is not None:
        return RedirectResponse(local_path(next), status_code=303)
    return _form(request, None, 200, local_path(next))


@router.post("/login")
async def login(request: Request) -> Response:
    form = await request.form(max_fields=10, max_files=0)
    state = web_state(request)
    next_path = local_path(str(form.get("next") or "/"))
    binding = request.cookies.get(BINDING_COOKIE)
    offered = str(form.get(CSRF_FIELD) or "")
    if not same_origin(request) or not state.authority.csrf_ok(binding, offered):
        return _form(request, "The form expired; please try again.", 403, next_path)
    principal = state.authority.from_token(str(form.get("token") or "").strip())
    if principal is None:
        return _form(request, "Unknown token.", 401, next_path)
    response = RedirectResponse(next_path, status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        state.authority.session_for(principal),
        max_age=SESSION_SECONDS,
        httponly=True,
        samesite="strict",
        secure=secure(request),
    )
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    form = await request.form(max_fields=10, max_files=0)
    caller = identify(request)
    state = web_state(request)
    ok = isinstance(caller, Caller) and state.authority.csrf_ok(
        caller.binding, str(form.get(CSRF_FIELD) or "")
    )
    response = RedirectResponse("/login", status_code=303)
    if ok:
        response.delete_cookie(SESSION_COOKIE)
    return response
