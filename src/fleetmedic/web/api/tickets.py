"""Tickets: the triaged tickets in the store and the ticket KPIs (docs/tickets.md)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request

from fleetmedic.tickets.kpis import ticket_kpis
from fleetmedic.web import queries
from fleetmedic.web.api.common import Paging, paging
from fleetmedic.web.auth import Role
from fleetmedic.web.schemas import Page, TicketOut, page
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
