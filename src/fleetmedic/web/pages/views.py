"""The pages people open. Cheap, bounded data is rendered on the server (job, node, actions,
tickets, job list); the KPI pages render at once and their scripts fetch the cached API, so a
cold 10-second KPI run never blocks the page itself.
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import HTMLResponse

from fleetmedic.tickets.kpis import ticket_kpis
from fleetmedic.web import control as control_reads
from fleetmedic.web import queries
from fleetmedic.web.api.actions import STATES
from fleetmedic.web.api.common import MAX_LIMIT, MAX_OFFSET
from fleetmedic.web.api.jobs import job_detail
from fleetmedic.web.api.nodes import node_detail
from fleetmedic.web.errors import ApiError
from fleetmedic.web.pages.render import page_caller, render
from fleetmedic.web.periods import DEFAULT_PERIOD, PeriodName
from fleetmedic.web.schemas import ActionOut, Page, page
from fleetmedic.web.security import Caller
from fleetmedic.web.state import web_state

router = APIRouter(include_in_schema=False)
PAGE = 50

Offset = Query(0, ge=0, le=MAX_OFFSET)


def _kpi_page(request: Request, caller: Caller, template: str, period: PeriodName) -> HTMLResponse:
    return render(
        request,
        template,
        {"period": period.value, "periods": [p.value for p in PeriodName]},
        caller=caller,
    )


@router.get("/", response_class=HTMLResponse)
def overview(
    request: Request,
    period: PeriodName = Query(DEFAULT_PERIOD),
    caller: Caller = Depends(page_caller),
) -> HTMLResponse:
    return _kpi_page(request, caller, "overview.html", period)


@router.get("/failures", response_class=HTMLResponse)
def failures(
    request: Request,
    period: PeriodName = Query(DEFAULT_PERIOD),
    caller: Caller = Depends(page_caller),
) -> HTMLResponse:
    return _kpi_page(request, caller, "failures.html", period)


@router.get("/priorities", response_class=HTMLResponse)
def priorities(
    request: Request,
    period: PeriodName = Query(DEFAULT_PERIOD),
    caller: Caller = Depends(page_caller),
) -> HTMLResponse:
    return _kpi_page(request, caller, "priorities.html", period)


@router.get("/jobs", response_class=HTMLResponse)
def jobs(
    request: Request,
    q: str | None = Query(None, max_length=200),
    status: str | None = Query(None, max_length=40),
    offset: int = Offset,
    caller: Caller = Depends(page_caller),
) -> HTMLResponse:
    with web_state(request).reader.cursor() as con:
        items, total = queries.list_jobs(
            con,
            status=status or None,
            user=None,
            team=None,
            prefix=q or None,
            limit=PAGE,
            offset=offset,
        )
    listing = page(items, total, PAGE, offset)
    return render(
        request,
        "jobs.html",
        {"jobs": listing, "q": q or "", "status": status or ""},
        caller=caller,
    )


def _detail(
    request: Request, caller: Caller, what: str, name: str, load: Callable[[], object]
) -> HTMLResponse:
    """One object's page (``job.html``, ``node.html``), or the "not found" page the API's error
    would have given."""
    try:
        detail = load()
    except ApiError as exc:
        return render(
            request,
            "missing.html",
            {"what": what, "name": name, "message": exc.message},
            caller=caller,
            status=exc.status,
        )
    return render(request, f"{what}.html", {"detail": detail}, caller=caller)


@router.get("/jobs/{job_id:path}", response_class=HTMLResponse)
def job(
    request: Request,
    job_id: str = Path(..., max_length=500),
    caller: Caller = Depends(page_caller),
) -> HTMLResponse:
    return _detail(request, caller, "job", job_id, lambda: job_detail(web_state(request), job_id))


@router.get("/nodes", response_class=HTMLResponse)
def nodes(request: Request, caller: Caller = Depends(page_caller)) -> HTMLResponse:
    state = web_state(request)
    lemons = [row for row in state.analytics.lemons() if row.flagged][:50]
    with state.reader.cursor() as con:
        evidence = {row.node: queries.node_failures(con, row.node, 3) for row in lemons}
    with state.control.open() as control:
        history: list[ActionOut] = []
        total = 0
        if control is not None:
            history, total = control_reads.cordon_history(control, None, PAGE, 0)
    cordoned = [r for r in state.analytics.nodes() if r["cordoned"]][:100]
    return render(
        request,
        "nodes.html",
        {
            "lemons": lemons,
            "evidence": evidence,
            "history": history,
            "history_total": total,
            "cordoned": cordoned,
        },
        caller=caller,
    )


@router.get("/nodes/{node_id:path}", response_class=HTMLResponse)
def node(
    request: Request,
    node_id: str = Path(..., max_length=500),
    caller: Caller = Depends(page_caller),
) -> HTMLResponse:
    return _detail(
        request, caller, "node", node_id, lambda: node_detail(web_state(request), node_id)
    )


@router.get("/actions", response_class=HTMLResponse)
def actions(
    request: Request,
    state: str | None = Query(None, pattern=STATES),
    offset: int = Offset,
    done: str | None = Query(None, max_length=200),
    caller: Caller = Depends(page_caller),
) -> HTMLResponse:
    web = web_state(request)
    with web.control.open() as control:
        summary = control_reads.summary(control, str(web.control.path))
        waiting: list[ActionOut] = []
        trail: Page[ActionOut] = page([], 0, PAGE, offset)
        if control is not None:
            waiting, _ = control_reads.list_actions(
                control, state="proposed", mode="approval", limit=MAX_LIMIT, offset=0
            )
            items, total = control_reads.list_actions(
                control, state=state, limit=PAGE, offset=offset
            )
            trail = page(items, total, PAGE, offset)
    return render(
        request,
        "actions.html",
        {
            "summary": summary,
            "waiting": waiting,
            "trail": trail,
            "state": state or "",
            "done": done,
        },
        caller=caller,
    )


@router.get("/tickets", response_class=HTMLResponse)
def tickets(
    request: Request, offset: int = Offset, caller: Caller = Depends(page_caller)
) -> HTMLResponse:
    with web_state(request).reader.cursor() as con:
        items, total = queries.list_tickets(con, status=None, limit=PAGE, offset=offset)
        stats = ticket_kpis(con) if total else None
    return render(
        request,
        "tickets.html",
        {"tickets": page(items, total, PAGE, offset), "stats": stats},
        caller=caller,
    )
