"""Tickets: the triaged tickets in the store and the ticket KPIs (docs/tickets.md)."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Depends, Query, Request

from fleetmedic.model.errors import InputError
from fleetmedic.tickets.kpis import ticket_kpis
from fleetmedic.tickets.models import TicketIn
from fleetmedic.tickets.text import clean
from fleetmedic.tickets.triage import Settings, triage
from fleetmedic.web import queries
from fleetmedic.web.api.common import Paging, paging
from fleetmedic.web.auth import Role
from fleetmedic.web.errors import ApiError
from fleetmedic.web.schemas import Page, TicketOut, TriageIn, page
from fleetmedic.web.security import require
from fleetmedic.web.state import web_state

router = APIRouter(tags=["tickets"], dependencies=[Depends(require(Role.viewer))])


@router.get("/tickets", response_model=Page[TicketOut], summary="Tickets, newest first")
def tickets(
    request: Request,
    status: str | None = Query(None, max_length=40),
    paged: Paging = Depends(paging),
) -> Page[TicketOut]:
    with web_state(request).reader.cursor() as con:
        items, total = queries.list_tickets(
            con, status=status, limit=paged.limit, offset=paged.offset
        )
    return page(items, total, paged.limit, paged.offset)


@router.get("/tickets/summary", response_model=dict[str, Any], summary="Ticket KPIs")
def summary(request: Request) -> dict[str, Any]:
    """``fleetmedic ticket stats --format json``'s numbers over every stored ticket."""
    with web_state(request).reader.cursor() as con:
        return ticket_kpis(con)


_SETTINGS: Settings | None = None


def _settings() -> Settings:
    """The packaged catalogs, loaded once per process (they are data files, not per request)."""
    global _SETTINGS
    if _SETTINGS is None:
        _SETTINGS = Settings()
    return _SETTINGS


@router.post("/tickets/triage", response_model=dict[str, Any], summary="Triage a ticket")
def triage_ticket(request: Request, body: TriageIn) -> dict[str, Any]:
    """What ``fleetmedic ticket triage --format json`` prints, for a ticket sent as JSON.

    Read-only: the ticket is not stored (the server holds the store read-only; ``fleetmedic
    ticket import`` or ``triage --save`` keep tickets). Its text is cleaned like the CLI's.
    """
    text, warnings = clean(body.text)
    if not text.strip():
        raise ApiError(422, "the ticket is empty")
    created = body.created_at or datetime.now(UTC)
    if created.tzinfo is None:
        created = created.replace(tzinfo=UTC)
    digest = hashlib.sha256(f"{body.user}\x1f{created.isoformat()}\x1f{text}".encode()).hexdigest()
    ticket = TicketIn(
        ticket_id=f"T-{digest[:12]}",
        text=text,
        title=clean(body.title)[0] if body.title else None,
        user=body.user,
        created_at=created,
        source="api",
    )
    try:
        with web_state(request).reader.cursor() as con:
            result = triage(con, ticket, _settings())
    except InputError as exc:
        raise ApiError(422, str(exc)) from None
    result = result.model_copy(update={"warnings": (*warnings, *result.warnings)})
    return result.model_dump(mode="json")
