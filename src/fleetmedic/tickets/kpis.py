"""Ticket KPIs (docs/tickets.md "KPIs"): volume, auto-answer share, time to first answer, load per
job, and repeat tickets per root cause. One aggregate SQL query each, over the ``tickets`` table.

A **repeat** ticket is about a root cause (category + signature) that already had a ticket filed
at least :data:`REPEAT_AFTER` earlier: the first day's tickets are one wave of one problem; a
ticket after that says the cause came back, i.e. it was not fixed. That is the number the
priorities ranking reports beside each cause.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import duckdb

REPEAT_AFTER = timedelta(hours=24)

_PERIOD = "created_at >= $since AND created_at < $until"

_HEADLINE_SQL = f"""
SELECT count(*) AS total,
       count(*) FILTER (WHERE status NOT IN ('closed', 'resolved', 'done')) AS open,
       count(*) FILTER (WHERE triaged_at IS NOT NULL) AS triaged,
       count(*) FILTER (WHERE auto_answered) AS auto_answered,
       count(*) FILTER (WHERE duplicate_of IS NOT NULL) AS duplicates,
       count(DISTINCT incident_id) AS incidents,
       count(*) FILTER (WHERE incident_id IS NOT NULL) AS in_incidents,
       count(*) FILTER (WHERE json_array_length(job_ids) > 0) AS linked,
       quantile_cont(epoch(first_answer_at - created_at) / 3600.0, 0.5)
           FILTER (WHERE first_answer_at >= created_at) AS tfa_p50,
       quantile_cont(epoch(first_answer_at - created_at) / 3600.0, 0.9)
           FILTER (WHERE first_answer_at >= created_at) AS tfa_p90,
       avg(epoch(first_answer_at - created_at) / 3600.0)
           FILTER (WHERE first_answer_at >= created_at) AS tfa_mean,
       count(*) FILTER (WHERE first_answer_at >= created_at) AS answered
FROM tickets WHERE {_PERIOD}
"""

_GROUP_SQL = f"""
SELECT coalesce({{column}}, '{{missing}}') AS key, count(*) AS n
FROM tickets WHERE {_PERIOD} GROUP BY 1 ORDER BY n DESC, key
"""

_REPEAT_SQL = f"""
WITH caused AS (
    SELECT ticket_id, created_at, category || coalesce('/' || signature, '') AS cause,
           min(created_at) OVER (PARTITION BY category, coalesce(signature, '')) AS first_at
    FROM tickets WHERE category IS NOT NULL AND category <> 'unknown'
)
SELECT cause, count(*) AS tickets,
       count(*) FILTER (WHERE created_at >= first_at + to_seconds($after)) AS repeats
FROM caused WHERE {_PERIOD}
GROUP BY cause ORDER BY repeats DESC, tickets DESC, cause
"""

_JOBS_SQL = "SELECT count(*) FROM jobs WHERE submitted_at >= $since AND submitted_at < $until"

_BOUNDS_SQL = "SELECT min(created_at), max(created_at) FROM tickets"


def _round(value: Any, digits: int = 3) -> float | None:
    return None if value is None else round(float(value), digits)


def _bounds(
    con: duckdb.DuckDBPyConnection, since: datetime | None, until: datetime | None
) -> tuple[datetime, datetime]:
    row = con.execute(_BOUNDS_SQL).fetchone()
    first, last = (row[0], row[1]) if row else (None, None)
    start = since or first or datetime(1970, 1, 1)
    end = until or ((last + timedelta(seconds=1)) if last else start + timedelta(days=1))
    return start, end


def ticket_kpis(
    con: duckdb.DuckDBPyConnection,
    since: datetime | None = None,
    until: datetime | None = None,
) -> dict[str, Any]:
    """The ticket KPIs of ``since <= created_at < until`` (default: every stored ticket)."""
    start, end = _bounds(con, since, until)
    period = {"since": start, "until": end}
    cursor = con.execute(_HEADLINE_SQL, period)
    names = [d[0] for d in cursor.description or ()]
    head = dict(zip(names, cursor.fetchone() or (), strict=True))
    total = int(head["total"] or 0)
    jobs_row = con.execute(_JOBS_SQL, period).fetchone()
    jobs = int(jobs_row[0]) if jobs_row else 0
    causes = con.execute(_REPEAT_SQL, period | {"after": int(REPEAT_AFTER.total_seconds())})
    repeats = [
        {"cause": cause, "tickets": int(n), "repeats": int(r)} for cause, n, r in causes.fetchall()
    ]
    repeat_total = sum(r["repeats"] for r in repeats)
    return {
        "period": {"since": start.isoformat(), "until": end.isoformat()},
        "tickets": {
            "total": total,
            "open": int(head["open"] or 0),
            "linked_to_jobs": int(head["linked"] or 0),
            "by_category": _groups(con, "category", "untriaged", period),
            "by_team": _groups(con, "team", "untriaged", period),
            "by_severity": _groups(con, "severity", "untriaged", period),
        },
        "auto_answered": {
            "count": int(head["auto_answered"] or 0),
            "share_of_triaged": _share(head["auto_answered"], head["triaged"]),
            "share_of_all": _share(head["auto_answered"], total),
        },
        "time_to_first_answer_hours": {
            "p50": _round(head["tfa_p50"]),
            "p90": _round(head["tfa_p90"]),
            "mean": _round(head["tfa_mean"]),
            "answered": int(head["answered"] or 0),
        },
        "tickets_per_1000_jobs": _round(total / jobs * 1000.0) if jobs else None,
        "jobs": jobs,
        "repeat_tickets": {
            "total": repeat_total,
            "share": _share(repeat_total, total),
            "by_cause": repeats[:20],
        },
        "duplicates": int(head["duplicates"] or 0),
        "incidents": {
            "count": int(head["incidents"] or 0),
            "tickets": int(head["in_incidents"] or 0),
        },
    }


def _share(part: Any, whole: Any) -> float | None:
    return round(float(part or 0) / float(whole), 4) if whole else None


def _groups(
    con: duckdb.DuckDBPyConnection, column: str, missing: str, period: dict[str, datetime]
) -> dict[str, int]:
    sql = _GROUP_SQL.format(column=column, missing=missing)
    return {str(key): int(n) for key, n in con.execute(sql, period).fetchall()}
