"""The records that ``fleetmedic priorities`` hands to people and tools.

They are frozen dataclasses, not query rows, so the report, the CLI formats and the tests read one
typed shape whatever backend computed the numbers.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, Literal

TrendDirection = Literal["up", "down", "new", "flat"]


@dataclass(frozen=True)
class Window:
    """The period ranked, ``since <= t < until``, and the previous period of equal length."""

    since: datetime
    until: datetime

    @property
    def previous(self) -> Window:
        return Window(since=self.since - (self.until - self.since), until=self.since)

    @property
    def days(self) -> float:
        return (self.until - self.since).total_seconds() / 86400


@dataclass(frozen=True)
class Trend:
    """Lost GPU-hours now against the previous period of the same length."""

    direction: TrendDirection
    change_pct: float | None
    previous_gpu_hours_lost: float


@dataclass(frozen=True)
class Concentration:
    """A node, pool or image that carries more than the threshold share of a cause's losses."""

    name: str
    share: float


@dataclass(frozen=True)
class PriorityRow:
    """One root cause (category + signature) and what it costs; ``rank`` 1 is fixed first."""

    rank: int
    category: str
    signature: str | None
    owner: str
    team: str
    gpu_hours_lost: float
    failures: int
    jobs_affected: int
    users_affected: int
    tickets: int | None
    trend: Trend
    gain_gpu_hours: float
    gain_goodput_points: float
    node: Concentration | None = None
    pool: Concentration | None = None
    image: Concentration | None = None
    repeat_tickets: int | None = None
    """Of ``tickets``, those filed a day or more after the cause's first ticket (docs/tickets.md)."""

    @property
    def cause(self) -> str:
        """``category/signature``: how people name a cause in a ticket or a chat."""
        return f"{self.category}/{self.signature}" if self.signature else self.category

    @property
    def where(self) -> str:
        """The places the cause concentrates on, e.g. ``node gpu-17 (82%)``; empty when spread."""
        parts = []
        for label, found in (("node", self.node), ("pool", self.pool), ("image", self.image)):
            if found is not None:
                parts.append(f"{label} {found.name} ({found.share:.0%})")
        return ", ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_flat(self) -> dict[str, Any]:
        """One level of keys, for CSV: nested trend and concentrations become prefixed columns."""
        flat: dict[str, Any] = {
            key: value
            for key, value in asdict(self).items()
            if key not in {"trend", "node", "pool", "image"}
        }
        flat["trend"] = self.trend.direction
        flat["trend_change_pct"] = self.trend.change_pct
        flat["previous_gpu_hours_lost"] = self.trend.previous_gpu_hours_lost
        for label, found in (("node", self.node), ("pool", self.pool), ("image", self.image)):
            flat[label] = found.name if found else None
            flat[f"{label}_share"] = found.share if found else None
        return flat


@dataclass(frozen=True)
class PriorityReport:
    """The ranked rows plus the totals they are measured against."""

    window: Window
    total_gpu_hours: float
    total_gpu_hours_lost: float
    rows: tuple[PriorityRow, ...]

    def to_dict(self) -> dict[str, Any]:
        previous = self.window.previous
        return {
            "window": {
                "since": self.window.since.isoformat(),
                "until": self.window.until.isoformat(),
                "days": round(self.window.days, 3),
                "previous_since": previous.since.isoformat(),
                "previous_until": previous.until.isoformat(),
            },
            "total_gpu_hours": self.total_gpu_hours,
            "total_gpu_hours_lost": self.total_gpu_hours_lost,
            "rows": [row.to_dict() for row in self.rows],
        }
