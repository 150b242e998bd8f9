"""The dashboard's reads of the analytics store that the KPI suite does not answer.

Each one is a bounded query: a page of rows (LIMIT/OFFSET) or one row per node, aggregated in
DuckDB, so a store of a million jobs never sends them to Python or to the browser. Every value
from the caller is a bound parameter, never spliced into the SQL.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import duckdb

from fleetmedic.heal.lemons import node_fault_sql
from fleetmedic.web import schemas as s

_JOB_SUMMARY = (
    'job_id, "user", team, status, num_gpus, attempts, submitted_at, started_at, ended_at'
)
_JOB_MORE = (
    "source, cluster, project, kind, framework, num_nodes, priority, queue, gpu_model, "
    "node_pool, exit_code, gpu_util"
)


def _rows(con: duckdb.DuckDBPyConnection, sql: str, params: Sequence[Any]) -> list[dict[str, Any]]:
    cursor = con.execute(sql, list(params))
    names = [d[0] for d in cursor.description or ()]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _count(con: duckdb.DuckDBPyConnection, sql: str, params: Sequence[Any]) -> int:
    row = con.execute(f"SELECT count(*) FROM ({sql})", list(params)).fetchone()
    return int(row[0]) if row else 0


def _times(row: dict[str, Any], *keys: str) -> dict[str, Any]:
    for key in keys:
        row[key] = s.utc(row[key])
    return row


def list_jobs(
    con: duckdb.DuckDBPyConnection,
    *,
    status: str | None,
    user: str | None,
    team: str | None,
    prefix: str | None,
    limit: int,
    offset: int,
) -> tuple[list[s.JobSummary], int]:
    where, params = [], []
    for column, value in (("status", status), ('"user"', user), ("team", team)):
        if value:
            where.append(f"{column} = ?")
            params.append(value)
    if prefix:
        where.append("starts_with(job_id, ?)")
        params.append(prefix)
    clause = f" WHERE {' AND '.join(where)}" if where else ""
    base = f"SELECT {_JOB_SUMMARY} FROM jobs{clause}"
    rows = _rows(
        con,
        f"{base} ORDER BY submitted_at DESC NULLS LAST, job_id LIMIT ? OFFSET ?",
        [*params, limit, offset],
    )
    items = [s.JobSummary(**_times(r, "submitted_at", "started_at", "ended_at")) for r in rows]
    return items, _count(con, base, params)


def get_job(con: duckdb.DuckDBPyConnection, job_id: str) -> s.JobOut | None:
    rows = _rows(con, f"SELECT {_JOB_SUMMARY}, {_JOB_MORE} FROM jobs WHERE job_id = ?", [job_id])
    if not rows:
        return None
    return s.JobOut(**_times(rows[0], "submitted_at", "started_at", "ended_at"))


_WORD = re.compile(r"[A-Za-z_][\w.]{3,}")


def highlight_words(summary: str | None) -> list[str]:
    """Words of the summary worth marking in the evidence lines (as ``fleetmedic diagnose`` does)."""
    words = [w for w in _WORD.findall(summary or "") if len(w) > 4]
    return list(dict.fromkeys(words))[:6]


def _json_list(raw: Any) -> list[Any]:
    if raw is None:
        return []
    try:
        value = json.loads(raw) if isinstance(raw, str) else raw
    except ValueError:
        return []
    return value if isinstance(value, list) else []


def _evidence(raw: Any) -> list[s.EvidenceOut]:
    out = []
    for item in _json_list(raw):
        if isinstance(item, dict):
            out.append(
                s.EvidenceOut(
                    file=str(item.get("file", "")),
                    line=int(item.get("line") or 0),
                    text=str(item.get("text", ""))[:2000],
                )
            )
    return out[:50]


def _secondary(raw: Any) -> list[s.SecondaryOut]:
    out = []
    for item in _json_list(raw):
        if isinstance(item, dict) and item.get("category"):
            out.append(
                s.SecondaryOut(
                    category=str(item["category"]),
                    signature=item.get("signature"),
                    summary=item.get("summary"),
                )
            )
    return out[:50]


def _diagnosis(row: dict[str, Any]) -> s.DiagnosisOut:
    return s.DiagnosisOut(
        category=row["category"],
        owner=row["owner"],
        confidence=row["confidence"],
        signature=row["signature"],
        summary=row["summary"],
        evidence=_evidence(row["evidence"]),
        action_kind=row["action_kind"],
        retryable=row["retryable"],
        secondary=_secondary(row["secondary"]),
        node_id=row["node_id"],
        diagnosed_at=s.utc(row["diagnosed_at"]),
        highlight=highlight_words(row["summary"]),
    )


def _hours(start: datetime | None, end: datetime | None, gpus: float) -> float | None:
    if start is None or end is None:
        return None
    return round(max((end - start).total_seconds(), 0.0) / 3600.0 * gpus, 3)


MAX_ATTEMPTS = 500


def job_attempts(con: duckdb.DuckDBPyConnection, job_id: str, gpus: float) -> list[s.AttemptOut]:
    """The job's attempts (at most :data:`MAX_ATTEMPTS`), each with its diagnosis."""
    diagnoses = {
        int(row["attempt"]): _diagnosis(row)
        for row in _rows(
            con,
            "SELECT attempt, category, owner, confidence, signature, summary, evidence, "
            "action_kind, retryable, secondary, node_id, diagnosed_at FROM diagnoses "
            "WHERE job_id = ? ORDER BY attempt LIMIT ?",
            [job_id, MAX_ATTEMPTS],
        )
    }
    attempts = _rows(
        con,
        "SELECT attempt, nodes, started_at, ended_at, status, exit_code, reason, "
        "last_checkpoint_at FROM attempts WHERE job_id = ? ORDER BY attempt LIMIT ?",
        [job_id, MAX_ATTEMPTS],
    )
    out = []
    for row in attempts:
        number = int(row["attempt"])
        nodes = [n for n in (row["nodes"] or "").split(",") if n]
        out.append(
            s.AttemptOut(
                attempt=number,
                nodes=nodes,
                started_at=s.utc(row["started_at"]),
                ended_at=s.utc(row["ended_at"]),
                status=row["status"],
                exit_code=row["exit_code"],
                reason=row["reason"],
                last_checkpoint_at=s.utc(row["last_checkpoint_at"]),
                gpu_hours=_hours(row["started_at"], row["ended_at"], gpus),
                diagnosis=diagnoses.pop(number, None),
            )
        )
    for number, diagnosis in sorted(diagnoses.items()):  # a diagnosis of an unrecorded attempt
        out.append(
            s.AttemptOut(
                attempt=number,
                nodes=[],
                started_at=None,
                ended_at=None,
                status=None,
                exit_code=None,
                reason=None,
                last_checkpoint_at=None,
                gpu_hours=None,
                diagnosis=diagnosis,
            )
        )
    return out


_TICKET_COLUMNS = (
    'ticket_id, created_at, "user", title, status, category, severity, team, incident_id, job_ids'
)


def _ticket(row: dict[str, Any]) -> s.TicketOut:
    row = _times(row, "created_at")
    row["job_ids"] = [str(j) for j in _json_list(row["job_ids"])][:100]
    return s.TicketOut(**row)


def job_tickets(con: duckdb.DuckDBPyConnection, job_id: str, limit: int = 50) -> list[s.TicketOut]:
    rows = _rows(
        con,
        f"SELECT {_TICKET_COLUMNS} FROM tickets "
        """WHERE list_contains(from_json(job_ids, '["VARCHAR"]'), ?) """
        "ORDER BY created_at DESC, ticket_id LIMIT ?",
        [job_id, limit],
    )
    return [_ticket(r) for r in rows]


def list_tickets(
    con: duckdb.DuckDBPyConnection, *, status: str | None, limit: int, offset: int
) -> tuple[list[s.TicketOut], int]:
    clause, params = (" WHERE status = ?", [status]) if status else ("", [])
    base = f"SELECT {_TICKET_COLUMNS} FROM tickets{clause}"
    rows = _rows(
        con,
        f"{base} ORDER BY created_at DESC, ticket_id LIMIT ? OFFSET ?",
        [*params, limit, offset],
    )
    return [_ticket(r) for r in rows], _count(con, base, params)


_CLOSED = ("closed", "resolved", "done")


def open_incidents(con: duckdb.DuckDBPyConnection) -> int | None:
    """Incidents (bursts of tickets about one cause) with a ticket still open; None: no tickets."""
    row = con.execute(
        "SELECT count(*), count(DISTINCT incident_id) FILTER (WHERE incident_id IS NOT NULL "
        "AND coalesce(lower(status), 'open') NOT IN (?, ?, ?)) FROM tickets",
        list(_CLOSED),
    ).fetchone()
    if not row or not row[0]:
        return None
    return int(row[1])


# Undiagnosed failures are filed by status, as the KPI suite and the ranking do (docs/kpis.md).
_BY_STATUS = {"timeout": "timeout", "preemption": "preempted", "unknown": "failed"}


def cause_jobs(
    con: duckdb.DuckDBPyConnection,
    *,
    category: str,
    signature: str | None,
    since: datetime,
    until: datetime,
    limit: int,
    offset: int,
) -> tuple[list[s.CauseJob], int]:
    """Failed attempts of one root cause that ended in ``[since, until)``, costliest first."""
    diagnosed = (
        "SELECT a.job_id, a.attempt, a.started_at, a.ended_at, a.status, d.summary "
        "FROM diagnoses d JOIN attempts a USING (job_id, attempt) "
        "WHERE d.category = ? AND coalesce(d.signature, '') = ? "
        "AND a.ended_at >= ? AND a.ended_at < ?"
    )
    params: list[Any] = [category, signature or "", since, until]
    parts = [diagnosed]
    status = _BY_STATUS.get(category)
    if status is not None and not signature:
        parts.append(
            "SELECT a.job_id, a.attempt, a.started_at, a.ended_at, a.status, NULL "
            "FROM attempts a ANTI JOIN diagnoses d USING (job_id, attempt) "
            "WHERE a.status = ? AND a.ended_at >= ? AND a.ended_at < ?"
        )
        params += [status, since, until]
    failed = " UNION ALL ".join(parts)
    base = f'SELECT f.*, j."user", j.team, j.num_gpus FROM ({failed}) f JOIN jobs j USING (job_id)'
    order = "ORDER BY j_hours DESC NULLS LAST, job_id, attempt LIMIT ? OFFSET ?"
    rows = _rows(
        con,
        f"SELECT *, num_gpus * epoch(ended_at - started_at) / 3600.0 AS j_hours "
        f"FROM ({base}) {order}",
        [*params, limit, offset],
    )
    items = [
        s.CauseJob(
            job_id=r["job_id"],
            attempt=int(r["attempt"]),
            user=r["user"],
            team=r["team"],
            num_gpus=float(r["num_gpus"] or 0.0),
            status=r["status"],
            ended_at=s.utc(r["ended_at"]),
            gpu_hours=None if r["j_hours"] is None else round(max(r["j_hours"], 0.0), 3),
            summary=r["summary"],
        )
        for r in rows
    ]
    return items, _count(con, base, params)


_NODE_HEALTH_SQL = """
WITH diag AS (
    SELECT job_id, attempt, node_id FROM diagnoses d WHERE {fault}
),
blamed AS (
    SELECT node_id FROM diag WHERE node_id IS NOT NULL
    UNION ALL
    SELECT an.node_id FROM diag d JOIN attempt_nodes an USING (job_id, attempt)
    WHERE d.node_id IS NULL
),
failures AS (SELECT node_id, count(*) AS n FROM blamed GROUP BY node_id)
SELECT n.node_id, n.pool, n.gpu_model, n.gpus, coalesce(n.cordoned, FALSE) AS cordoned,
       n.cordon_reason, json_extract_string(n.conditions, '$.Ready') AS ready,
       coalesce(f.n, 0) AS failures
FROM nodes n LEFT JOIN failures f USING (node_id)
ORDER BY n.pool NULLS LAST, n.node_id
"""


def node_rows(con: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    """Every node with its platform/hardware failure count: one row per node, aggregated here."""
    return _rows(con, _NODE_HEALTH_SQL.format(fault=node_fault_sql("d")), [])


def node_failures(con: duckdb.DuckDBPyConnection, node_id: str, limit: int) -> list[s.NodeFailure]:
    """The latest platform/hardware failures blamed on a node: the evidence behind its health."""
    rows = _rows(
        con,
        "SELECT d.job_id, d.attempt, d.category, d.owner, d.summary, d.diagnosed_at "
        f"FROM diagnoses d WHERE {node_fault_sql('d')} AND (d.node_id = ? OR (d.node_id IS NULL "
        "AND EXISTS (SELECT 1 FROM attempt_nodes an WHERE an.job_id = d.job_id "
        "AND an.attempt = d.attempt AND an.node_id = ?))) "
        "ORDER BY d.diagnosed_at DESC NULLS LAST, d.job_id, d.attempt LIMIT ?",
        [node_id, node_id, limit],
    )
    return [s.NodeFailure(**_times(r, "diagnosed_at")) for r in rows]
