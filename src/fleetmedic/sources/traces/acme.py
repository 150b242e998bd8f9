"""AcmeTrace (Shanghai AI Lab, NSDI'24): ``trace_seren.csv`` and ``trace_kalos.csv``.

Schema (github.com/InternLM/AcmeTrace README): ``job_id, user, node_num, gpu_num, cpu_num, type,
state, submit_time, start_time, end_time, duration, queue, gpu_time``; Kalos adds
``mem_per_pod_GB, shared_mem_per_pod, fail_time, stop_time``. ``queue`` is the queueing *time* in
seconds, not a queue name, so ``jobs.queue`` stays empty. Times carry an offset (``+08:00`` in
Seren, ``+00:00`` in Kalos); a time without one is read as Asia/Shanghai, the clusters' local time.
Kalos's ``fail_time`` becomes a ``job_failed`` event, the only event-like column in the trace.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from fleetmedic.sources.traces.base import (
    CLEAN,
    STAGE,
    StageContext,
    Staging,
    TraceImporter,
    register,
    require_cluster_name,
)
from fleetmedic.sources.traces.files import open_table
from fleetmedic.sources.traces.slurm import SlurmTrace, stage_slurm
from fleetmedic.sources.traces.sql import lit, slurm_state_word
from fleetmedic.store.writer import event_id_sql

COLUMNS = (
    "job_id",
    "user",
    "node_num",
    "gpu_num",
    "cpu_num",
    "type",
    "state",
    "submit_time",
    "start_time",
    "end_time",
    "duration",
    "queue",
    "gpu_time",
)

KINDS = {
    "Pretrain": "train",
    "MLLM": "train",
    "SFT": "finetune",
    "Evaluation": "eval",
    "Debug": "other",
    "Other": "other",
}
"""Acme's LLM workload ``type`` to ``jobs.kind``; any other value is ``other``."""

TRACE = SlurmTrace(
    source="acme",
    expected="an AcmeTrace job trace",
    columns=COLUMNS,
    time_zone="Asia/Shanghai",
    numeric=("node_num", "gpu_num", "cpu_num", "duration", "queue", "gpu_time"),
    kind_column="type",
    kinds=KINDS,
    optional_times=("fail_time", "stop_time"),
)

_CLUSTER_IN_NAME = re.compile(r"trace_([A-Za-z0-9_.-]+?)\.")


def cluster_of(path: Path, override: str | None) -> str | None:
    """``--cluster``, else the name in ``trace_<cluster>.csv`` (seren, kalos), else unknown."""
    if override:
        return require_cluster_name(override)
    match = _CLUSTER_IN_NAME.match(path.name)
    return match.group(1).lower() if match else None


@register
class AcmeImporter(TraceImporter):
    name = "acme"
    summary = "AcmeTrace trace_seren.csv / trace_kalos.csv (CSV or Parquet)"

    def check(self, ctx: StageContext, path: Path) -> None:
        open_table(ctx.con, path, expected=TRACE.expected, required=COLUMNS, delimiter=",").drop(
            ctx.con
        )

    def stage(self, ctx: StageContext, path: Path) -> Staging:
        cluster = cluster_of(path, ctx.options.cluster)
        prefix = f"acme-{cluster}" if cluster else "acme"
        staging = stage_slurm(ctx, path, TRACE, prefix, cluster)
        columns = {str(r[0]) for r in ctx.con.execute(f"DESCRIBE {CLEAN}").fetchall()}
        if "fail_time" not in columns:
            return staging
        _stage_fail_events(ctx, prefix)
        return dataclasses.replace(
            staging, staged=dataclasses.replace(staging.staged, events=STAGE["events"])
        )


def _stage_fail_events(ctx: StageContext, prefix: str) -> None:
    obj = f"{lit('job/' + prefix + ':')} || job_id"
    reason = slurm_state_word("state")
    message = "'scheduler recorded fail_time'"
    event_id = event_id_sql(
        ts="fail_time",
        source="'acme'",
        kind="'job_failed'",
        obj=obj,
        reason=reason,
        message=message,
    )
    ctx.con.execute(
        f"""CREATE OR REPLACE TEMP VIEW {STAGE["events"]} AS SELECT
            {event_id} AS event_id,
            fail_time AS ts, 'acme' AS source, 'job_failed' AS kind, {obj} AS object,
            {reason} AS reason, {message} AS message, 'error' AS severity,
            json_object('state', state, 'gpu_num', gpu_num) AS raw
        FROM {CLEAN} WHERE _why IS NULL AND fail_time IS NOT NULL"""
    )
