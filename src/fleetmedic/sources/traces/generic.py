"""Any job table (CSV, Parquet, JSON lines) described by a mapping file: format ``csv``.

The mapping (:mod:`fleetmedic.sources.traces.mapping`) names the column of each job field, how
source statuses map to ours, the time zone of naive times or the unit of numeric ones. Each row is
a job with at most one attempt (when it started or names its nodes); ``nodes`` lists the attempt's
nodes, which are written to ``nodes`` and ``attempt_nodes`` as ``<prefix>:<node>``.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from fleetmedic.sources.traces.base import (
    CLEAN,
    STAGE,
    Col,
    StageContext,
    Staging,
    TraceImporter,
    clean_table,
    register,
)
from fleetmedic.sources.traces.files import FileKind, TableScan, open_table
from fleetmedic.sources.traces.mapping import Mapping, load_mapping
from fleetmedic.sources.traces.sql import Kind, case_map, ident, lit, session_time_zone
from fleetmedic.store.writer import STATUSES, Staged

TIME_FIELDS = ("submitted_at", "started_at", "ended_at")
NUMERIC: dict[str, Kind] = {
    "num_gpus": "float",
    "num_nodes": "int",
    "priority": "number",
    "exit_code": "number",
}
KINDS = ("train", "finetune", "eval", "inference", "notebook", "other")
_MICROS = {"s": 1_000_000, "ms": 1_000, "us": 1}
_READERS: dict[str, FileKind] = {"csv": "csv", "parquet": "parquet", "jsonl": "json"}


def _cols(mapping: Mapping) -> list[Col]:
    cols = []
    for field, column in mapping.columns.used().items():
        if field in TIME_FIELDS:
            kind: Kind = "time" if mapping.time_unit == "iso" else "float"
        else:
            kind = NUMERIC.get(field, "text")
        cols.append(Col(column, kind, required=field in ("job_id", "status"), as_=field))
    return cols


def _status(mapping: Mapping) -> str:
    table: dict[str, str] = {k.strip().upper(): v for k, v in mapping.statuses.items()}
    table.update({s.upper(): s for s in STATUSES if s.upper() not in table})
    return case_map("upper(status)", table)


def _kind(mapping: Mapping) -> str:
    if "kind" not in mapping.columns.used():
        return "NULL"
    table: dict[str, str] = {k.strip().lower(): v for k, v in mapping.kinds.items()}
    table.update({k: k for k in KINDS if k not in table})
    return case_map("lower(kind)", table, default="'other'")


def _time(mapping: Mapping, field: str) -> str:
    if field not in mapping.columns.used():
        return "NULL"
    if mapping.time_unit == "iso":
        return field
    factor = _MICROS[mapping.time_unit]
    epoch = f"timezone('UTC', TRY_CAST({lit(mapping.epoch)} AS TIMESTAMPTZ))"
    return f"({epoch} + to_microseconds(CAST(round({field} * {factor}) AS BIGINT)))"


@register
class GenericImporter(TraceImporter):
    name = "csv"
    summary = "any job table (CSV, Parquet, JSON lines) described by --mapping FILE"

    def _open(self, ctx: StageContext, path: Path, mapping: Mapping) -> TableScan:
        return open_table(
            ctx.con,
            path,
            expected=f"a job table for mapping source {mapping.source!r}",
            required=list(mapping.columns.used().values()),
            delimiter=mapping.delimiter,
            kind=_READERS.get(mapping.reader),
        )

    def check(self, ctx: StageContext, path: Path) -> None:
        self._open(ctx, path, load_mapping(ctx.options.mapping)).drop(ctx.con)

    def stage(self, ctx: StageContext, path: Path) -> Staging:
        mapping = load_mapping(ctx.options.mapping)
        scan = self._open(ctx, path, mapping)
        ctx.step("reading and checking rows")
        used = mapping.columns.used()
        checks = [("status_n IS NULL", "'unknown status ' || status")]
        if "started_at" in used and "ended_at" in used:
            checks.append(("ended_at < started_at", lit("ended_at before started_at")))
        with session_time_zone(ctx.con, mapping.time_zone):
            read, bad, reasons = clean_table(
                ctx.con,
                scan,
                _cols(mapping),
                extra=[("status_n", _status(mapping))],
                checks=checks,
            )
        ctx.step("staging jobs and attempts")
        return Staging(_stage(ctx, mapping), read, bad, reasons)


def _field(mapping: Mapping, name: str, cast: str | None = None) -> str:
    if name not in mapping.columns.used():
        return "NULL"
    return f"CAST({ident(name)} AS {cast})" if cast else ident(name)


def _stage(ctx: StageContext, mapping: Mapping) -> Staged:
    con = ctx.con
    p = lit(mapping.prefix + ":")
    times = {f: _time(mapping, f) for f in TIME_FIELDS}
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE _fm_generic AS SELECT
            {p} || job_id AS job_id, {_field(mapping, "user")} AS "user",
            {_field(mapping, "team")} AS team, {_field(mapping, "project")} AS project,
            {_kind(mapping)} AS kind, {_field(mapping, "framework")} AS framework,
            coalesce({_field(mapping, "num_gpus")}, 0) AS num_gpus,
            {_field(mapping, "num_nodes", "INTEGER")} AS num_nodes,
            {_field(mapping, "priority", "INTEGER")} AS priority,
            {_field(mapping, "queue")} AS queue, {_field(mapping, "gpu_model")} AS gpu_model,
            {times["submitted_at"]} AS submitted_at, {times["started_at"]} AS started_at,
            {times["ended_at"]} AS ended_at, status_n AS status,
            {_field(mapping, "exit_code", "INTEGER")} AS exit_code,
            {_field(mapping, "reason")} AS reason,
            coalesce(string_split({_field(mapping, "nodes", "VARCHAR")},
                {lit(mapping.nodes_separator)}), CAST([] AS VARCHAR[])) AS node_list
        FROM {CLEAN} WHERE _why IS NULL"""
    )
    _node_lists(con, mapping)
    con.execute(
        f"""CREATE OR REPLACE TEMP VIEW {STAGE["jobs"]} AS SELECT
            job_id, {lit(mapping.source)} AS source,
            {lit(mapping.cluster) if mapping.cluster else "NULL"} AS cluster,
            "user", team, project, kind, framework, num_gpus, num_nodes, priority, queue,
            gpu_model, submitted_at, started_at, ended_at, status, exit_code,
            CASE WHEN started_at IS NULL AND len(node_list) = 0 THEN 0 ELSE 1 END AS attempts
        FROM _fm_generic"""
    )
    has_nodes = "nodes" in mapping.columns.used()
    join = (
        f"LEFT JOIN (SELECT job_id, string_agg(node_id, ',' ORDER BY node_id) AS nodes "
        f"FROM {STAGE['attempt_nodes']} GROUP BY job_id) n USING (job_id)"
        if has_nodes
        else ""
    )
    con.execute(
        f"""CREATE OR REPLACE TEMP VIEW {STAGE["attempts"]} AS SELECT
            job_id, 1 AS attempt, {"n.nodes" if has_nodes else "NULL"} AS nodes, started_at,
            ended_at, status, exit_code, reason
        FROM _fm_generic g {join} WHERE started_at IS NOT NULL OR len(node_list) > 0"""
    )
    if not has_nodes:
        return Staged(jobs=STAGE["jobs"], attempts=STAGE["attempts"])
    return Staged(
        jobs=STAGE["jobs"],
        attempts=STAGE["attempts"],
        attempt_nodes=STAGE["attempt_nodes"],
        nodes=STAGE["nodes"],
    )


def _node_lists(con: duckdb.DuckDBPyConnection, mapping: Mapping) -> None:
    """Attempt nodes and node rows, when the mapping names a nodes column."""
    if "nodes" not in mapping.columns.used():
        return
    p = lit(mapping.prefix + ":")
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE {STAGE["attempt_nodes"]} AS
        SELECT DISTINCT job_id, 1 AS attempt, {p} || trim(n) AS node_id
        FROM (SELECT job_id, unnest(node_list) AS n FROM _fm_generic)
        WHERE trim(n) <> ''"""
    )
    con.execute(
        f"""CREATE OR REPLACE TEMP VIEW {STAGE["nodes"]} AS
        SELECT an.node_id, min(g.started_at) AS first_seen,
               max(coalesce(g.ended_at, g.started_at)) AS last_seen
        FROM {STAGE["attempt_nodes"]} an JOIN _fm_generic g USING (job_id)
        GROUP BY an.node_id"""
    )
