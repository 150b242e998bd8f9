"""Microsoft Philly (ATC'19): ``cluster_job_log`` of msr-fiddle/philly-traces.

The file is JSON: an array of jobs (JSON lines are accepted too), each ``{status, vc, jobid,
attempts: [{start_time, end_time, detail: [{ip, gpus: [...]}]}], submitted_time, user}``.
Statuses: ``Pass`` -> succeeded, ``Failed`` -> failed, ``Killed`` -> cancelled; a job whose last
attempt has no ``end_time`` was still running when the trace was cut (README), so it is
``running``. Each attempt is an attempt row; its ``detail[].ip`` are its nodes (``philly:<ip>``)
and the GPUs listed in the last attempt are the job's GPU count. Only the last attempt's outcome is
known; earlier attempts keep a NULL status.

Times are local strings without an offset; Philly ran in Microsoft's US data centres and its
utilisation files stamp PDT/PST, so they are read as America/Los_Angeles. ``None`` means no time.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from fleetmedic.model.errors import InputError
from fleetmedic.sources.traces.base import (
    CLEAN,
    STAGE,
    StageContext,
    Staging,
    TraceImporter,
    mark_duplicates,
    register,
    sort_reasons,
)
from fleetmedic.sources.traces.files import check_file
from fleetmedic.sources.traces.sql import (
    case_map,
    first_reason,
    json_objects,
    lit,
    present,
    session_time_zone,
)
from fleetmedic.sources.traces.sql import value as typed
from fleetmedic.store.writer import Staged

STATUSES = {"Pass": "succeeded", "Failed": "failed", "Killed": "cancelled"}
TIME_ZONE = "America/Los_Angeles"
PREFIX = "philly"
EXPECTED = "a Philly cluster_job_log (JSON: jobid, status, vc, user, submitted_time, attempts)"
KEYS = ("jobid", "status", "submitted_time", "attempts")

_ATTEMPTS_TYPE = (
    '[{"start_time": "VARCHAR", "end_time": "VARCHAR", '
    '"detail": [{"ip": "VARCHAR", "gpus": ["VARCHAR"]}]}]'
)
_RAW = "_fm_philly_raw"
_ATT = "_fm_philly_attempts"


@register
class PhillyImporter(TraceImporter):
    name = "philly"
    summary = "Philly cluster_job_log (JSON)"

    def check(self, ctx: StageContext, path: Path) -> None:
        check_file(path, "json", EXPECTED)
        try:
            rows = ctx.con.execute(
                f"SELECT json_keys(json) FROM {json_objects(path)} "
                f"WHERE json_type(json) = 'OBJECT' LIMIT 100"
            ).fetchall()
        except duckdb.Error as exc:
            raise InputError(f"{path}: not valid JSON: {str(exc).splitlines()[0]}") from None
        seen = {key for (keys,) in rows for key in keys}
        missing = [k for k in KEYS if k not in seen]
        if missing:
            raise InputError(f"{path}: not {EXPECTED}: missing keys {', '.join(missing)}")

    def stage(self, ctx: StageContext, path: Path) -> Staging:
        self.check(ctx, path)
        con = ctx.con
        ctx.step("reading and checking jobs")
        with session_time_zone(con, TIME_ZONE):
            _read(con, path)
        _clean(con)
        mark_duplicates(con, "job_id")
        rows = con.execute(f"SELECT _why, count(*) FROM {CLEAN} GROUP BY ALL").fetchall()
        reasons = sort_reasons({str(w): int(n) for w, n in rows if w is not None})
        ctx.step("staging jobs, attempts and nodes")
        _stage(con)
        total = sum(int(n) for _, n in rows)
        staged = Staged(
            jobs=STAGE["jobs"],
            attempts=STAGE["attempts"],
            attempt_nodes=STAGE["attempt_nodes"],
            nodes=STAGE["nodes"],
        )
        return Staging(staged, total, sum(reasons.values()), reasons)


def _read(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    """One row per job and one per attempt, times typed while the Pacific zone is set."""
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE {_RAW} AS
        SELECT json, from_json(json -> 'attempts', '{_ATTEMPTS_TYPE}') AS attempts,
               {typed("json ->> 'submitted_time'", "time")} AS submitted_at
        FROM {json_objects(path)}"""
    )
    start, end = "a.start_time", "a.end_time"
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE {_ATT} AS
        WITH u AS (
            SELECT rowid AS job_row, unnest(range(1, len(attempts) + 1)) AS attempt,
                   unnest(attempts) AS a
            FROM {_RAW} WHERE len(attempts) > 0)
        SELECT job_row, attempt, {typed(start, "time")} AS started_at,
               {typed(end, "time")} AS ended_at,
               ({present(start)} AND {typed(start, "time")} IS NULL)
                 OR ({present(end)} AND {typed(end, "time")} IS NULL) AS bad_time,
               NOT {present(end)} AS open_end,
               a.detail AS detail
        FROM u"""
    )


def _clean(con: duckdb.DuckDBPyConnection) -> None:
    """Job-level typed columns, the attempt summary, the status and ``_why``."""
    status = case_map("trim(json ->> 'status')", STATUSES)
    why = first_reason(
        [
            ("json_type(json) IS DISTINCT FROM 'OBJECT'", lit("not a JSON object")),
            ("job_id IS NULL", lit("missing jobid")),
            ("base_status IS NULL", "'unknown status ' || coalesce(json ->> 'status', 'null')"),
            ("submitted_at IS NULL", lit("missing or bad submitted_time")),
            (
                "coalesce(json_type(json -> 'attempts'), 'NULL') <> 'NULL' AND attempts IS NULL",
                lit("attempts is not a list of attempts"),
            ),
            ("coalesce(bad_times, false)", lit("bad attempt time")),
            ("last_end < first_start", lit("end_time before start_time")),
        ]
    )
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE {CLEAN} AS
        WITH summary AS (
            SELECT job_row, count(*) AS n, bool_or(bad_time) AS bad_times,
                   min(started_at) AS first_start, arg_max(ended_at, attempt) AS last_end,
                   arg_max(open_end, attempt) AS last_open, arg_max(detail, attempt) AS last_detail
            FROM {_ATT} GROUP BY job_row),
        j AS (
            SELECT r.rowid AS job_row, r.json, r.attempts, r.submitted_at,
                   NULLIF(trim(r.json ->> 'jobid'), '') AS job_id,
                   NULLIF(trim(r.json ->> 'user'), '') AS "user",
                   NULLIF(trim(r.json ->> 'vc'), '') AS vc,
                   {status} AS base_status, coalesce(s.n, 0) AS n_attempts, s.bad_times,
                   s.first_start, s.last_end, s.last_open, s.last_detail
            FROM {_RAW} r LEFT JOIN summary s ON s.job_row = r.rowid)
        SELECT *, CASE WHEN n_attempts > 0 AND last_open THEN 'running' ELSE base_status END
                  AS status,
               {why} AS _why
        FROM j ORDER BY job_row"""
    )


def _stage(con: duckdb.DuckDBPyConnection) -> None:
    job_id = f"{lit(PREFIX + ':')} || c.job_id"
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE _fm_philly_gpus AS
        SELECT job_row, count(*) AS nodes, sum(len(d.gpus)) AS gpus
        FROM (SELECT job_row, unnest(last_detail) AS d FROM {CLEAN} WHERE _why IS NULL)
        GROUP BY job_row"""
    )
    con.execute(
        f"""CREATE OR REPLACE TEMP VIEW {STAGE["jobs"]} AS SELECT
            {job_id} AS job_id, 'philly' AS source, 'philly' AS cluster, c."user",
            coalesce(g.gpus, 0) AS num_gpus, CAST(g.nodes AS INTEGER) AS num_nodes,
            c.vc AS queue, c.submitted_at, c.first_start AS started_at,
            CASE WHEN c.status = 'running' THEN NULL ELSE c.last_end END AS ended_at,
            c.status, c.n_attempts AS attempts
        FROM {CLEAN} c LEFT JOIN _fm_philly_gpus g USING (job_row) WHERE c._why IS NULL"""
    )
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE {STAGE["attempt_nodes"]} AS
        SELECT DISTINCT job_id, attempt, node_id FROM (
            SELECT {job_id} AS job_id, a.attempt, {lit(PREFIX + ":")} || trim(d.ip) AS node_id
            FROM (SELECT job_row, attempt, unnest(detail) AS d FROM {_ATT}) a
            JOIN {CLEAN} c USING (job_row)
            WHERE c._why IS NULL AND NULLIF(trim(d.ip), '') IS NOT NULL)"""
    )
    con.execute(
        f"""CREATE OR REPLACE TEMP VIEW {STAGE["attempts"]} AS SELECT
            {job_id} AS job_id, a.attempt, a.started_at, a.ended_at,
            CASE WHEN a.attempt = c.n_attempts THEN c.status END AS status,
            n.nodes
        FROM {_ATT} a JOIN {CLEAN} c USING (job_row)
        LEFT JOIN (SELECT job_id, attempt, string_agg(node_id, ',' ORDER BY node_id) AS nodes
                   FROM {STAGE["attempt_nodes"]} GROUP BY ALL) n
          ON n.job_id = {job_id} AND n.attempt = a.attempt
        WHERE c._why IS NULL"""
    )
    con.execute(
        f"""CREATE OR REPLACE TEMP VIEW {STAGE["nodes"]} AS SELECT
            n.node_id, min(a.started_at) AS first_seen,
            max(coalesce(a.ended_at, a.started_at)) AS last_seen
        FROM {STAGE["attempt_nodes"]} n
        JOIN {STAGE["attempts"]} a USING (job_id, attempt)
        GROUP BY n.node_id"""
    )
