"""What every request handler reaches through ``request.app.state``: built once by create_app."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request
from fastapi.templating import Jinja2Templates

from fleetmedic.web.analytics import Analytics
from fleetmedic.web.auth import Authority
from fleetmedic.web.metrics import Metrics
from fleetmedic.web.stores import ControlAccess, StoreReader


@dataclass
class WebState:
    authority: Authority
    insecure_local: bool
    reader: StoreReader
    control: ControlAccess
    analytics: Analytics
    metrics: Metrics
    templates: Jinja2Templates


def web_state(request: Request) -> WebState:
    state: WebState = request.app.state.fleetmedic
    return state
