"""Failures and priorities: the Pareto of root causes, by owner, new causes, drill-down to jobs."""

from __future__ import annotations

import csv
import io
from dataclasses import asdict
from typing import Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response

from fleetmedic.kpi.priorities_format import CSV_COLUMNS, render
from fleetmedic.kpi.priorities_model import PriorityReport, PriorityRow
from fleetmedic.web import queries
from fleetmedic.web.analytics import MAX_RANKED, Analytics, to_json
from fleetmedic.web.api.common import Paging, json_response, mark, paging
from fleetmedic.web.auth import Role
from fleetmedic.web.periods import DEFAULT_PERIOD, PeriodName
from fleetmedic.web.schemas import CauseJob, Page, page
from fleetmedic.web.security import require
from fleetmedic.web.state import web_state

router = APIRouter(tags=["failures"], dependencies=[Depends(require(Role.viewer))])


def _row(row: PriorityRow, cumulative: float | None = None) -> dict[str, Any]:
    out = asdict(row)
    out["cause"] = row.cause
    out["where"] = row.where
    if cumulative is not None:
        out["cumulative_share"] = round(cumulative, 6)
    return out


def pareto(report: PriorityReport, limit: int) -> list[dict[str, Any]]:
    total, running, out = report.total_gpu_hours_lost, 0.0, []
    for row in report.rows[:limit]:
        running += row.gpu_hours_lost
        out.append(_row(row, running / total if total else 0.0))
    return out


def failures_payload(analytics: Analytics, period: PeriodName, limit: int) -> bytes:
    """The Failures page's numbers: built from the cached ranking and KPIs, serialised once."""
    report, _ = analytics.priorities(period)
    kpis = analytics.period(period).value["current"]
    by_owner = kpis.get("failures", {}).get("by_owner", {})
    return to_json(
        {
            "period": analytics.bounds(period).as_json(),
            "total_gpu_hours": report.total_gpu_hours,
            "total_gpu_hours_lost": report.total_gpu_hours_lost,
            "causes": len(report.rows),
            "pareto": pareto(report, limit),
            "by_owner": [{"owner": owner, **values} for owner, values in by_owner.items()],
            "new_this_week": [_row(row) for row in analytics.new_causes()[:limit]],
        }
    )


@router.get("/failures", response_model=dict[str, Any], summary="Root causes by GPU-hours lost")
async def failures(
    request: Request,
    period: PeriodName = Query(DEFAULT_PERIOD),
    limit: int = Query(15, ge=1, le=MAX_RANKED),
) -> Response:
    analytics = web_state(request).analytics
    found = await analytics.answer(
        ("failures", period.value, limit), lambda: failures_payload(analytics, period, limit)
    )
    return json_response(found)


@router.get("/failures/jobs", response_model=Page[CauseJob], summary="Failed attempts of a cause")
def cause_jobs(
    request: Request,
    category: str = Query(..., min_length=1, max_length=200),
    signature: str | None = Query(None, max_length=200),
    period: PeriodName = Query(DEFAULT_PERIOD),
    paged: Paging = Depends(paging),
) -> Page[CauseJob]:
    state = web_state(request)
    bounds = state.analytics.bounds(period)
    with state.reader.cursor() as con:
        items, total = queries.cause_jobs(
            con,
            category=category,
            signature=signature or None,
            since=bounds.since,
            until=bounds.until,
            limit=paged.limit,
            offset=paged.offset,
        )
    return page(items, total, paged.limit, paged.offset)


def _cell(value: Any) -> Any:
    """A spreadsheet must not run a cell a user wrote (``=HYPERLINK(...)``): quote such text."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def safe_csv(report: PriorityReport) -> str:
    """The CLI's CSV columns, with formula-like text neutralised (it comes from the store)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in report.rows:
        writer.writerow({k: _cell(v) for k, v in row.to_flat().items()})
    return buffer.getvalue()


_MEDIA = {"json": "application/json", "csv": "text/csv", "markdown": "text/markdown"}


@router.get(
    "/priorities",
    summary="What to fix first, ranked by GPU-hours lost (json, csv or markdown)",
    response_class=Response,
    responses={
        200: {
            "description": "The ranking, rendered as asked.",
            "content": {
                "application/json": {"schema": {"type": "object"}},
                "text/csv": {"schema": {"type": "string"}},
                "text/markdown": {"schema": {"type": "string"}},
            },
        }
    },
)
def priorities(
    request: Request,
    period: PeriodName = Query(DEFAULT_PERIOD),
    limit: int = Query(20, ge=1, le=MAX_RANKED),
    format: Literal["json", "csv", "markdown"] = Query("json"),
) -> Response:
    report, found = web_state(request).analytics.priorities(period)
    trimmed = PriorityReport(
        window=report.window,
        total_gpu_hours=report.total_gpu_hours,
        total_gpu_hours_lost=report.total_gpu_hours_lost,
        rows=report.rows[:limit],
    )
    headers = {}
    if format != "json":
        ext = "csv" if format == "csv" else "md"
        headers["Content-Disposition"] = f'attachment; filename="priorities-{period.value}.{ext}"'
    text = safe_csv(trimmed) if format == "csv" else render(trimmed, format)
    response = Response(text, media_type=f"{_MEDIA[format]}; charset=utf-8", headers=headers)
    mark(response, found)
    return response
