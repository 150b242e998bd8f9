"""Actions: the approval queue and audit trail, approve/reject (operator), the guard's switches.

Engaging the kill switch is an operator's call (stopping is always safe); releasing it or
resetting the circuit breaker lets the controller act again, so it needs an admin.
"""

from __future__ import annotations

from fastapi import APIRouter, Body, Depends, Path, Query, Request

from fleetmedic.model.errors import InputError
from fleetmedic.web import control as control_reads
from fleetmedic.web.api.common import Paging, paging
from fleetmedic.web.auth import Role
from fleetmedic.web.errors import ApiError
from fleetmedic.web.schemas import ActionOut, ControlOut, KillSwitchIn, Page, RejectIn, page
from fleetmedic.web.security import Caller, require
from fleetmedic.web.state import WebState, web_state

router = APIRouter(tags=["actions"])

STATES = "^(proposed|approved|rejected|refused|executing|done|failed|rolled_back)$"
ACTION_ID = Path(..., min_length=1, max_length=64, pattern="^[0-9a-f]+$")


@router.get(
    "/actions",
    response_model=Page[ActionOut],
    summary="The audit trail, newest first",
    dependencies=[Depends(require(Role.viewer))],
)
def actions(
    request: Request,
    state: str | None = Query(None, pattern=STATES),
    mode: str | None = Query(None, pattern="^(dry-run|approval|auto)$"),
    kind: str | None = Query(None, max_length=64),
    target: str | None = Query(None, max_length=500),
    paged: Paging = Depends(paging),
) -> Page[ActionOut]:
    with web_state(request).control.open() as control:
        if control is None:
            return page([], 0, paged.limit, paged.offset)
        items, total = control_reads.list_actions(
            control,
            state=state,
            mode=mode,
            kind=kind,
            target=target,
            limit=paged.limit,
            offset=paged.offset,
        )
    return page(items, total, paged.limit, paged.offset)


@router.get(
    "/actions/{action_id}",
    response_model=ActionOut,
    summary="One action",
    dependencies=[Depends(require(Role.viewer))],
)
def action(request: Request, action_id: str = ACTION_ID) -> ActionOut:
    with web_state(request).control.open() as control:
        found = control_reads.get_action(control, action_id) if control is not None else None
    if found is None:
        raise ApiError(404, "no such action")
    return found


def answer(state: WebState, action_id: str, approve: bool, who: str, why: str = "") -> ActionOut:
    """Approve or reject through the audit's state machine; a 409 when it is not waiting."""
    with state.control.open() as control:
        if control is None:
            raise ApiError(404, "no such action")
        try:
            return control_reads.decide(control, action_id, approve, who, why)
        except InputError as exc:
            status = 404 if str(exc).startswith("no action") else 409
            raise ApiError(status, str(exc)) from None


@router.post("/actions/{action_id}/approve", response_model=ActionOut, summary="Approve (operator)")
def approve(
    request: Request,
    action_id: str = ACTION_ID,
    caller: Caller = Depends(require(Role.operator)),
) -> ActionOut:
    return answer(web_state(request), action_id, True, caller.principal.name)


@router.post("/actions/{action_id}/reject", response_model=ActionOut, summary="Reject (operator)")
def reject(
    request: Request,
    action_id: str = ACTION_ID,
    body: RejectIn | None = Body(None),
    caller: Caller = Depends(require(Role.operator)),
) -> ActionOut:
    why = body.why if body is not None else ""
    return answer(web_state(request), action_id, False, caller.principal.name, why)


@router.get(
    "/control",
    response_model=ControlOut,
    summary="Guard state: switches, actions per state, limits",
    dependencies=[Depends(require(Role.viewer))],
)
def control(request: Request) -> ControlOut:
    state = web_state(request)
    with state.control.open() as store:
        return control_reads.summary(store, str(state.control.path))


def set_kill_switch(state: WebState, caller: Caller, engaged: bool, reason: str) -> None:
    if not engaged and not caller.principal.may(Role.admin):
        raise ApiError(403, "releasing the kill switch needs the admin role")
    with state.control.open(create=engaged) as store:
        if store is None:
            raise ApiError(404, f"no control store at {state.control.path}", "no_control_store")
        control_reads.set_kill_switch(store, engaged, caller.principal.name, reason)


@router.post("/control/kill-switch", response_model=ControlOut, summary="Kill switch (operator)")
def kill_switch(
    request: Request,
    body: KillSwitchIn,
    caller: Caller = Depends(require(Role.operator)),
) -> ControlOut:
    state = web_state(request)
    set_kill_switch(state, caller, body.engaged, body.reason)
    return control(request)


@router.post(
    "/control/reset-breaker", response_model=ControlOut, summary="Reset the breaker (admin)"
)
def reset_breaker(request: Request, caller: Caller = Depends(require(Role.admin))) -> ControlOut:
    state = web_state(request)
    with state.control.open() as store:
        if store is None:
            raise ApiError(404, f"no control store at {state.control.path}", "no_control_store")
        control_reads.reset_breaker(store, caller.principal.name)
    return control(request)
