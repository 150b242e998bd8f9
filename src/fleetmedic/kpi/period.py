"""The period a KPI run covers, its windows (one, or one per week), and how rows are clipped to it.

Why a module: every KPI must agree on period semantics (DESIGN "kpi" contract, docs/kpis.md):

- a row belongs to a window when its interval ``[lo, hi]`` overlaps ``[p0, p1)``; a zero-length
  interval belongs to the window that contains its instant, so weekly windows partition the data;
- amounts of time are the overlap of an interval with the window, so a job spanning the boundary
  contributes only its overlapping GPU-hours;
- an open interval (a running job) ends at the window end, which is never later than ``until``, or
  than *now* when ``until`` is not given.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import ibis
import ibis.expr.types as ir

from fleetmedic.kpi.numbers import num
from fleetmedic.kpi.tables import OPEN, KpiTables
from fleetmedic.model.errors import InputError

FOREVER = 1.0e15
"""Epoch seconds standing for "still open" (year ~31 million): a literal every engine accepts."""

_EPOCH = datetime(1970, 1, 1)
_WEEK = 7 * 24 * 3600.0


@dataclass(frozen=True)
class Window:
    """One ``[p0, p1)`` slice of the period in epoch seconds, named for its group key."""

    key: str
    p0: float
    p1: float


@dataclass(frozen=True)
class Period:
    """The resolved ``[start, end)`` of a KPI run, in epoch seconds."""

    start: float
    end: float

    @property
    def hours(self) -> float:
        return max(self.end - self.start, 0.0) / 3600.0

    def as_json(self) -> dict[str, object]:
        return {"since": iso(self.start), "until": iso(self.end), "hours": self.hours}

    def windows(self, weekly: bool) -> list[Window]:
        """One window for the whole period, or one per ISO week (Monday 00:00 UTC) it touches."""
        if not weekly:
            return [Window("all", self.start, self.end)]
        monday = to_datetime(self.start).date()
        monday -= timedelta(days=monday.weekday())
        edge = to_epoch(datetime.combine(monday, datetime.min.time()))
        out: list[Window] = []
        while edge < self.end or not out:
            p0, p1 = max(edge, self.start), min(edge + _WEEK, self.end)
            out.append(Window(iso(edge)[:10], p0, max(p1, p0)))
            edge += _WEEK
        return out


def to_epoch(moment: datetime | date | str) -> float:
    """Epoch seconds of a UTC moment; naive values are taken as UTC (the store's convention)."""
    if isinstance(moment, str):
        try:
            moment = datetime.fromisoformat(moment.strip().replace("Z", "+00:00"))
        except ValueError:
            raise InputError(f"not an ISO date or time: {moment!r}") from None
    if not isinstance(moment, datetime):
        moment = datetime.combine(moment, datetime.min.time())
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return (moment - _EPOCH).total_seconds()


def to_datetime(seconds: float) -> datetime:
    return _EPOCH + timedelta(seconds=seconds)


def iso(seconds: float) -> str:
    return to_datetime(seconds).isoformat(timespec="seconds")


# A store whose newest timestamp is older than this is a snapshot (a trace, a simulation), not live.
LIVE_WITHIN = 2 * 24 * 3600.0


def resolve_period(
    tables: KpiTables,
    since: datetime | date | str | None,
    until: datetime | date | str | None,
    now: datetime | None,
) -> Period:
    """Fill in missing bounds from the data: the first timestamp, and the last one or *now*.

    Without ``until`` the period ends just after the latest timestamp in the data (+1 s), or at
    *now* when some job is still running or pending and the data is live (its latest timestamp
    within :data:`LIVE_WITHIN` of now): running jobs are clipped at now. A historical trace or a
    simulation, whose unfinished jobs stopped being observed when it ended, is not diluted by the
    time since.
    """
    start = to_epoch(since) if since is not None else None
    end = to_epoch(until) if until is not None else None
    if start is None or end is None:
        lo, hi, open_jobs = _data_bounds(tables)
        now_s = to_epoch(now or datetime.now(UTC))
        if end is None:
            # One second past the last timestamp, so that instant is inside the [start, end).
            last = hi + 1.0 if hi is not None else now_s
            live = open_jobs and now_s - last <= LIVE_WITHIN
            end = max(last, now_s if live else -FOREVER)
        if start is None:
            start = min(lo, end) if lo is not None else end
    if end < start:
        raise InputError(f"--until ({iso(end)}) is before --since ({iso(start)})")
    return Period(start, end)


def _data_bounds(tables: KpiTables) -> tuple[float | None, float | None, int]:
    jobs = tables.jobs
    first = jobs.sub.fill_null(jobs.start)
    last = ibis.greatest(
        jobs.sub.fill_null(-FOREVER), jobs.start.fill_null(-FOREVER), jobs.end.fill_null(-FOREVER)
    )
    expr = jobs.aggregate(
        lo=first.min(),
        hi=ibis.ifelse(last > -FOREVER, last, ibis.null("float64")).max(),
        open_jobs=ibis.ifelse(jobs.status.isin(OPEN), 1, 0).sum().cast("int64"),
    )
    row = tables.backend.execute(expr).iloc[0]
    return num(row["lo"]), num(row["hi"]), int(num(row["open_jobs"]) or 0)


def attach(table: ir.Table, windows: Sequence[Window], lo: ir.Value, hi: ir.Value) -> ir.Table:
    """Rows of ``table`` that overlap each window, with the window as ``pkey``, ``p0``, ``p1``.

    ``lo``/``hi`` bound each row's interval (``hi`` = :data:`FOREVER` while open). One window is a
    literal, several are a join against a small in-memory table (weekly grouping).
    """
    table = table.mutate(_lo=lo, _hi=hi)
    if len(windows) == 1:
        only = windows[0]
        table = table.mutate(
            pkey=ibis.literal(only.key), p0=ibis.literal(only.p0), p1=ibis.literal(only.p1)
        )
    else:
        frame = ibis.memtable(
            {
                "pkey": [w.key for w in windows],
                "p0": [w.p0 for w in windows],
                "p1": [w.p1 for w in windows],
            }
        )
        table = table.join(frame, overlaps(table._lo, table._hi, frame.p0, frame.p1))
    return table.filter(overlaps(table._lo, table._hi, table.p0, table.p1)).drop("_lo", "_hi")


def overlaps(lo: ir.Value, hi: ir.Value, p0: ir.Value, p1: ir.Value) -> ir.BooleanValue:
    """``[lo, hi]`` meets ``[p0, p1)``; a zero-length interval counts where its instant falls."""
    return (lo < p1) & ((hi > p0) | (lo >= p0))


def overlap_seconds(a: ir.Value, b: ir.Value, p0: ir.Value, p1: ir.Value) -> ir.FloatingValue:
    """Length of ``[a, b]`` inside ``[p0, p1)``; 0 when either end is unknown or ``b < a``."""
    # LEAST/GREATEST skip NULLs on DuckDB and Spark alike, so unknown ends are tested first.
    length = ibis.least(b, p1) - ibis.greatest(a, p0)
    return ibis.ifelse(a.isnull() | b.isnull(), 0.0, ibis.greatest(length, 0.0))
