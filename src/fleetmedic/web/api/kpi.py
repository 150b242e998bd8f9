"""``GET /api/v1/kpi`` (the ``fleetmedic kpi --format json`` object) and ``GET /api/v1/overview``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, Query, Request, Response

from fleetmedic.kpi import GROUP_BY
from fleetmedic.kpi.period import to_datetime, to_epoch
from fleetmedic.model.errors import InputError
from fleetmedic.web.api.common import json_response
from fleetmedic.web.auth import Role
from fleetmedic.web.errors import ApiError
from fleetmedic.web.periods import DEFAULT_PERIOD, PeriodName
from fleetmedic.web.security import require
from fleetmedic.web.state import web_state

router = APIRouter(tags=["kpi"], dependencies=[Depends(require(Role.viewer))])

_BY_PATTERN = "^(" + "|".join(GROUP_BY) + ")$"


def _moment(value: str | None, name: str) -> datetime | None:
    """An ISO date or date-time as naive UTC, like the CLI's ``--since``/``--until``."""
    if value is None:
        return None
    try:
        return to_datetime(to_epoch(value))
    except InputError:
        raise ApiError(422, f"{name}: not an ISO date or date-time: {value[:40]!r}") from None


@router.get(
    "/kpi",
    response_model=dict[str, Any],
    summary="Fleet KPIs: the same object as `fleetmedic kpi --format json`",
)
async def kpi(
    request: Request,
    since: str | None = Query(None, max_length=40, description="ISO date/time (UTC)."),
    until: str | None = Query(None, max_length=40, description="ISO, exclusive (UTC)."),
    by: str | None = Query(None, pattern=_BY_PATTERN, description="Also per group."),
) -> Response:
    start, end = _moment(since, "since"), _moment(until, "until")
    if start is not None and end is not None and end < start:
        raise ApiError(422, "until is before since")
    found = await web_state(request).analytics.kpi_json(start, end, by)
    return json_response(found)


@router.get("/overview", response_model=dict[str, Any], summary="The Overview page's numbers")
async def overview(request: Request, period: PeriodName = Query(DEFAULT_PERIOD)) -> Response:
    return json_response(await web_state(request).analytics.overview_json(period))
