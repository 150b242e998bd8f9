"""Jobs: a searchable, paged list and one job with its attempts, diagnoses, actions and tickets."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Path, Query, Request

from fleetmedic.web import control as control_reads
from fleetmedic.web import queries
from fleetmedic.web.api.common import Paging, paging
from fleetmedic.web.auth import Role
from fleetmedic.web.errors import ApiError
from fleetmedic.web.schemas import JobDetail, JobSummary, Page, page
from fleetmedic.web.security import require
from fleetmedic.web.state import WebState, web_state

router = APIRouter(tags=["jobs"], dependencies=[Depends(require(Role.viewer))])


@router.get("/jobs", response_model=Page[JobSummary], summary="Jobs, newest first")
def jobs(
    request: Request,
    status: str | None = Query(None, max_length=40),
    user: str | None = Query(None, max_length=200),
    team: str | None = Query(None, max_length=200),
    q: str | None = Query(None, max_length=200, description="Job id prefix."),
    paged: Paging = Depends(paging),
) -> Page[JobSummary]:
    with web_state(request).reader.cursor() as con:
        items, total = queries.list_jobs(
            con,
            status=status,
            user=user,
            team=team,
            prefix=q,
            limit=paged.limit,
            offset=paged.offset,
        )
    return page(items, total, paged.limit, paged.offset)


def job_detail(state: WebState, job_id: str) -> JobDetail:
    """Everything the Job page shows; a 404 when the store has no such job."""
    with state.reader.cursor() as con:
        job = queries.get_job(con, job_id)
        if job is None:
            raise ApiError(404, "no such job")
        attempts = queries.job_attempts(con, job_id, job.num_gpus)
        tickets = queries.job_tickets(con, job_id)
    with state.control.open() as control:
        actions = control_reads.job_actions(control, job_id) if control is not None else []
    return JobDetail(
        job=job,
        attempts=attempts,
        actions=actions,
        tickets=tickets,
        control_store=state.control.exists(),
    )


@router.get("/jobs/{job_id:path}", response_model=JobDetail, summary="One job, drilled down")
def job(request: Request, job_id: str = Path(..., max_length=500)) -> JobDetail:
    return job_detail(web_state(request), job_id)
