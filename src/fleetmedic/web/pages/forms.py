"""Form posts from the Actions page: approve, reject, kill switch, breaker reset.

Each checks the CSRF field against the caller's cookie and the role before doing anything, then
does exactly what the API endpoint does and sends the browser back to the Actions page (303), with
a short note of what happened. A refusal is a page with the reason and the right status code.
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import quote

from fastapi import APIRouter, Depends, Path, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse

from fleetmedic.web.api.actions import answer, set_kill_switch
from fleetmedic.web.auth import Role
from fleetmedic.web.control import reset_breaker as reset
from fleetmedic.web.errors import ApiError
from fleetmedic.web.pages.render import page_caller, render
from fleetmedic.web.security import CSRF_FIELD, Caller, csrf_valid
from fleetmedic.web.state import web_state

router = APIRouter(include_in_schema=False)

ACTION_ID = Path(..., min_length=1, max_length=64, pattern="^[0-9a-f]+$")


async def _checked(request: Request, caller: Caller, role: Role) -> dict[str, str]:
    form = await request.form(max_fields=10, max_files=0)
    if not csrf_valid(request, caller, str(form.get(CSRF_FIELD) or "")):
        raise ApiError(403, "the form's CSRF token is missing or wrong; reload the page", "csrf")
    if not caller.principal.may(role):
        raise ApiError(403, f"this needs the {role.name} role")
    return {key: str(value) for key, value in form.items() if isinstance(value, str)}


async def _do(
    request: Request, caller: Caller, role: Role, work: Callable[[dict[str, str]], str]
) -> Response:
    try:
        form = await _checked(request, caller, role)
        note = await run_in_threadpool(work, form)
    except ApiError as exc:
        return render(
            request, "refused.html", {"message": exc.message}, caller=caller, status=exc.status
        )
    return RedirectResponse(f"/actions?done={quote(note)}", status_code=303)


@router.post("/actions/{action_id}/approve")
async def approve(
    request: Request, action_id: str = ACTION_ID, caller: Caller = Depends(page_caller)
) -> Response:
    state = web_state(request)

    def work(_: dict[str, str]) -> str:
        done = answer(state, action_id, True, caller.principal.name)
        return f"approved {done.kind} on {done.target}"

    return await _do(request, caller, Role.operator, work)


@router.post("/actions/{action_id}/reject")
async def reject(
    request: Request, action_id: str = ACTION_ID, caller: Caller = Depends(page_caller)
) -> Response:
    state = web_state(request)

    def work(form: dict[str, str]) -> str:
        done = answer(state, action_id, False, caller.principal.name, form.get("why", "")[:500])
        return f"rejected {done.kind} on {done.target}"

    return await _do(request, caller, Role.operator, work)


@router.post("/control/kill-switch")
async def kill_switch(request: Request, caller: Caller = Depends(page_caller)) -> Response:
    state = web_state(request)

    def work(form: dict[str, str]) -> str:
        engaged = form.get("engaged") == "on"
        set_kill_switch(state, caller, engaged, form.get("reason", "")[:500])
        return "kill switch " + ("engaged" if engaged else "released")

    return await _do(request, caller, Role.operator, work)


@router.post("/control/reset-breaker")
async def reset_breaker(request: Request, caller: Caller = Depends(page_caller)) -> Response:
    state = web_state(request)

    def work(_: dict[str, str]) -> str:
        with state.control.open() as store:
            if store is None:
                raise ApiError(404, "no control store")
            reset(store, caller.principal.name)
        return "circuit breaker reset"

    return await _do(request, caller, Role.admin, work)
