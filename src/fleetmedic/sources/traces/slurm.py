"""What Acme and Helios have in common: one Slurm job per row, one attempt per started job.

Both traces export Slurm accounting with the same time columns and the same final states, so the
typing, the status mapping and the job/attempt staging live here once; each format module only
says which columns it has, its time zone and how its extra columns map.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from fleetmedic.sources.traces.base import CLEAN, STAGE, Col, StageContext, Staging, clean_table
from fleetmedic.sources.traces.files import open_table
from fleetmedic.sources.traces.sql import (
    SLURM_STATES,
    case_map,
    ident,
    lit,
    session_time_zone,
    slurm_state_word,
)
from fleetmedic.store.writer import Staged

TIME_COLS = ("submit_time", "start_time", "end_time")


@dataclass(frozen=True)
class SlurmTrace:
    """How one Slurm-export format reads: its columns, time zone and extras."""

    source: str
    expected: str
    columns: tuple[str, ...]
    time_zone: str
    numeric: tuple[str, ...]
    queue_column: str | None = None
    kind_column: str | None = None
    kinds: dict[str, str] = field(default_factory=dict)
    optional_times: tuple[str, ...] = ()


def slurm_cols(trace: SlurmTrace, present: Sequence[str]) -> list[Col]:
    """Typed columns: ids and states required, numbers and times checked when present."""
    cols = [
        Col("job_id", "text", required=True),
        Col("user", "text"),
        Col("state", "text", required=True),
        Col("submit_time", "time", required=True, as_="submitted_at"),
        Col("start_time", "time", as_="started_at"),
        Col("end_time", "time", as_="ended_at"),
    ]
    cols += [Col(name, "int" if name.endswith("_num") else "float") for name in trace.numeric]
    for name in (trace.queue_column, trace.kind_column):
        if name:
            cols.append(Col(name, "text"))
    cols += [Col(name, "time") for name in trace.optional_times if name in present]
    return cols


def stage_slurm(
    ctx: StageContext, path: Path, trace: SlurmTrace, prefix: str, cluster: str | None
) -> Staging:
    """Type, check and stage one Slurm-export file; jobs are ``<prefix>:<job_id>``."""
    con = ctx.con
    scan = open_table(con, path, expected=trace.expected, required=trace.columns, delimiter=",")
    ctx.step("reading and checking rows")
    status = case_map(slurm_state_word("state"), SLURM_STATES)
    with session_time_zone(con, trace.time_zone):
        read, bad, reasons = clean_table(
            con,
            scan,
            slurm_cols(trace, list(scan.columns)),
            extra=[("status", status)],
            checks=[
                ("status IS NULL", "'unknown state ' || state"),
                ("ended_at < started_at", lit("end_time before start_time")),
            ],
        )
    ctx.step("staging jobs and attempts")
    job_id = f"{lit(prefix + ':')} || job_id"
    kind = (
        case_map(ident(trace.kind_column), trace.kinds, default="'other'")
        if trace.kind_column
        else "NULL"
    )
    queue = ident(trace.queue_column) if trace.queue_column else "NULL"
    con.execute(
        f"""CREATE OR REPLACE TEMP VIEW {STAGE["jobs"]} AS SELECT
            {job_id} AS job_id, {lit(trace.source)} AS source,
            {lit(cluster) if cluster else "NULL"} AS cluster, "user",
            {kind} AS kind, coalesce(gpu_num, 0) AS num_gpus,
            CAST(node_num AS INTEGER) AS num_nodes, {queue} AS queue,
            submitted_at, started_at, ended_at, status,
            CASE WHEN started_at IS NULL THEN 0 ELSE 1 END AS attempts
        FROM {CLEAN} WHERE _why IS NULL"""
    )
    con.execute(
        f"""CREATE OR REPLACE TEMP VIEW {STAGE["attempts"]} AS SELECT
            {job_id} AS job_id, 1 AS attempt, started_at, ended_at, status,
            CASE WHEN status <> 'succeeded' THEN {slurm_state_word("state")} END AS reason
        FROM {CLEAN} WHERE _why IS NULL AND started_at IS NOT NULL"""
    )
    staged = Staged(jobs=STAGE["jobs"], attempts=STAGE["attempts"])
    return Staging(staged, read, bad, reasons)
