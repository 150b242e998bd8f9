"""``GET /api/v1/me``: who the server thinks the caller is, and the CSRF token for its POSTs."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request

from fleetmedic.web.auth import Role
from fleetmedic.web.schemas import Me
from fleetmedic.web.security import Caller, csrf_token, require
from fleetmedic.web.state import web_state

router = APIRouter(tags=["session"])


@router.get("/me", response_model=Me)
def me(request: Request, caller: Caller = Depends(require(Role.viewer))) -> Me:
    return Me(
        name=caller.principal.name,
        role=caller.principal.role.name,
        csrf_token=csrf_token(web_state(request), caller),
    )
