"""The versioned REST API under ``/api/v1``: one router per resource (docs/web.md)."""

from __future__ import annotations

from fastapi import APIRouter

from fleetmedic.web.api import actions, failures, jobs, kpi, me, nodes, tickets
from fleetmedic.web.errors import ERROR_RESPONSES

PREFIX = "/api/v1"


def build_router() -> APIRouter:
    router = APIRouter(prefix=PREFIX, responses=ERROR_RESPONSES)
    for module in (me, kpi, failures, jobs, nodes, actions, tickets):
        router.include_router(module.router)
    return router
