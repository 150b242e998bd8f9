"""The period selector: the last 7, 30 or 90 days of the data, or all of it.

"Last" means up to the end of the data, as ``fleetmedic kpi`` resolves it (one second past the last
timestamp, or now while jobs run on a live store), not up to the wall clock: a trace or a
simulation from last year still shows its own last month. Each period has a previous one of the
same length, ending where it starts, which the trends compare against ("all" has none).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from fleetmedic.kpi import as_backend, load_tables
from fleetmedic.kpi.period import resolve_period, to_datetime


class PeriodName(StrEnum):
    d7 = "7d"
    d30 = "30d"
    d90 = "90d"
    all = "all"


DEFAULT_PERIOD = PeriodName.d30
_DAYS = {PeriodName.d7: 7, PeriodName.d30: 30, PeriodName.d90: 90}


@dataclass(frozen=True)
class Bounds:
    """``[since, until)`` in naive UTC, and the previous period of equal length (if any)."""

    name: str
    since: datetime
    until: datetime
    previous: tuple[datetime, datetime] | None

    @property
    def days(self) -> float:
        return (self.until - self.since).total_seconds() / 86400

    def as_json(self) -> dict[str, Any]:
        previous = None
        if self.previous is not None:
            previous = {
                "since": self.previous[0].isoformat(),
                "until": self.previous[1].isoformat(),
            }
        return {
            "name": self.name,
            "since": self.since.isoformat(),
            "until": self.until.isoformat(),
            "days": round(self.days, 3),
            "previous": previous,
        }


def resolve(backend: Any, name: PeriodName) -> Bounds:
    """The bounds of a named period over the data the backend holds."""
    whole = resolve_period(load_tables(as_backend(backend)), None, None, None)
    until = to_datetime(whole.end)
    if name is PeriodName.all:
        return Bounds(name.value, to_datetime(whole.start), until, None)
    since = until - timedelta(days=_DAYS[name])
    return Bounds(name.value, since, until, (since - (until - since), since))


def last_week(bounds: Bounds) -> tuple[datetime, datetime]:
    """The seven days up to the end of the data: where "new causes this week" are looked for."""
    return bounds.until - timedelta(days=7), bounds.until
