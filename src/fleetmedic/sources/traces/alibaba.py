"""Alibaba cluster-trace-gpu-v2023 ("openb", FGD ATC'23): pod lists and node lists.

Pod list (``openb_pod_list_*.csv``): ``name, cpu_milli, memory_mib, num_gpu, gpu_milli, gpu_spec,
qos, pod_phase, creation_time, deletion_time, scheduled_time``. One pod is one job with one attempt
once scheduled. ``gpu_milli`` is the share of each GPU in thousandths (GPU sharing), so
``num_gpus = num_gpu * gpu_milli / 1000``. ``pod_phase`` is the *last phase observed before the
pod was deleted* (Running for most services and notebooks), mapped one to one: Succeeded,
Failed, Running, Pending. ``qos`` becomes the job's queue.

Times are seconds from the trace start; no absolute date is published, so they are placed after
the documented nominal epoch :data:`EPOCH` (2023-01-01 00:00:00 UTC). Durations and shares are
exact; calendar dates are not.

Node list (``openb_node_list_*.csv``): ``sn, cpu_milli, memory_mib, gpu, model``, recognised by its
header and written to ``nodes``.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

from fleetmedic.model.errors import InputError
from fleetmedic.sources.traces.base import (
    CLEAN,
    STAGE,
    Col,
    StageContext,
    Staging,
    TraceImporter,
    clean_table,
    register,
    require_cluster_name,
)
from fleetmedic.sources.traces.files import TableScan, open_table
from fleetmedic.sources.traces.sql import case_map, lit
from fleetmedic.store.writer import Staged

POD_COLUMNS = (
    "name",
    "cpu_milli",
    "memory_mib",
    "num_gpu",
    "gpu_milli",
    "gpu_spec",
    "qos",
    "pod_phase",
    "creation_time",
    "deletion_time",
    "scheduled_time",
)
NODE_COLUMNS = ("sn", "cpu_milli", "memory_mib", "gpu", "model")

EPOCH = datetime(2023, 1, 1, tzinfo=UTC)
"""Nominal start of the trace: offsets in seconds are added to it."""

PHASES = {
    "Succeeded": "succeeded",
    "Failed": "failed",
    "Running": "running",
    "Pending": "pending",
}

EXPECTED = "an Alibaba gpu-v2023 pod list or node list"
_VARIANT = re.compile(r"openb_pod_list_([A-Za-z0-9_.-]+)\.")


def cluster_of(path: Path, override: str | None) -> str:
    """``--cluster``, else ``openb`` (``openb-<variant>`` for the re-sampled pod lists).

    The variants re-use the default list's pod names, so each gets its own prefix and importing
    two of them never overwrites the other's jobs.
    """
    if override:
        return require_cluster_name(override)
    match = _VARIANT.match(path.name)
    if match and match.group(1).lower() != "default":
        return f"openb-{match.group(1).lower()}"
    return "openb"


def _offset(column: str) -> str:
    epoch = EPOCH.strftime("%Y-%m-%d %H:%M:%S")
    return f"(TIMESTAMP {lit(epoch)} + to_microseconds(CAST(round({column} * 1e6) AS BIGINT)))"


@register
class AlibabaGpu2023Importer(TraceImporter):
    name = "alibaba-gpu-2023"
    summary = "Alibaba cluster-trace-gpu-v2023 openb_pod_list_*.csv (or node list)"

    def _open(self, ctx: StageContext, path: Path) -> TableScan:
        scan = open_table(ctx.con, path, expected=EXPECTED, required=(), delimiter=",")
        required = NODE_COLUMNS if "sn" in scan.columns else POD_COLUMNS
        missing = [c for c in required if c not in scan.columns]
        if missing:
            scan.drop(ctx.con)
            raise InputError(
                f"{path}: not {EXPECTED}: missing columns {', '.join(missing)} "
                f"(found: {', '.join(list(scan.columns)[:20]) or 'none'})"
            )
        return scan

    def check(self, ctx: StageContext, path: Path) -> None:
        self._open(ctx, path).drop(ctx.con)

    def stage(self, ctx: StageContext, path: Path) -> Staging:
        scan = self._open(ctx, path)
        prefix = f"alibaba-{cluster_of(path, ctx.options.cluster)}"
        ctx.step("reading and checking rows")
        if "sn" in scan.columns:
            return _stage_nodes(ctx, scan, prefix)
        return _stage_pods(ctx, scan, prefix, cluster_of(path, ctx.options.cluster))


def _stage_pods(ctx: StageContext, scan: TableScan, prefix: str, cluster: str) -> Staging:
    con = ctx.con
    cols = [
        Col("name", "text", required=True, as_="job_id"),
        Col("num_gpu", "int", required=True),
        Col("gpu_milli", "int"),
        Col("cpu_milli", "int"),
        Col("memory_mib", "int"),
        Col("qos", "text"),
        Col("pod_phase", "text", required=True),
        Col("creation_time", "float", required=True),
        Col("deletion_time", "float"),
        Col("scheduled_time", "float"),
    ]
    read, bad, reasons = clean_table(
        con,
        scan,
        cols,
        extra=[("status", case_map("pod_phase", PHASES))],
        checks=[
            ("status IS NULL", "'unknown pod_phase ' || pod_phase"),
            ("gpu_milli > 1000", lit("gpu_milli over 1000")),
            ("deletion_time < creation_time", lit("deletion_time before creation_time")),
            ("scheduled_time < creation_time", lit("scheduled_time before creation_time")),
            ("deletion_time < scheduled_time", lit("deletion_time before scheduled_time")),
        ],
    )
    ctx.step("staging jobs and attempts")
    job_id = f"{lit(prefix + ':')} || job_id"
    con.execute(
        f"""CREATE OR REPLACE TEMP VIEW {STAGE["jobs"]} AS SELECT
            {job_id} AS job_id, 'alibaba-gpu-2023' AS source, {lit(cluster)} AS cluster,
            num_gpu * coalesce(gpu_milli, 1000) / 1000.0 AS num_gpus, 1 AS num_nodes,
            qos AS queue, {_offset("creation_time")} AS submitted_at,
            {_offset("scheduled_time")} AS started_at, {_offset("deletion_time")} AS ended_at,
            status, CASE WHEN scheduled_time IS NULL THEN 0 ELSE 1 END AS attempts
        FROM {CLEAN} WHERE _why IS NULL"""
    )
    con.execute(
        f"""CREATE OR REPLACE TEMP VIEW {STAGE["attempts"]} AS SELECT
            {job_id} AS job_id, 1 AS attempt, {_offset("scheduled_time")} AS started_at,
            {_offset("deletion_time")} AS ended_at, status,
            CASE WHEN status = 'failed' THEN pod_phase END AS reason
        FROM {CLEAN} WHERE _why IS NULL AND scheduled_time IS NOT NULL"""
    )
    return Staging(Staged(jobs=STAGE["jobs"], attempts=STAGE["attempts"]), read, bad, reasons)


def _stage_nodes(ctx: StageContext, scan: TableScan, prefix: str) -> Staging:
    con = ctx.con
    cols = [
        Col("sn", "text", required=True),
        Col("cpu_milli", "int"),
        Col("memory_mib", "int"),
        Col("gpu", "int", required=True),
        Col("model", "text"),
    ]
    read, bad, reasons = clean_table(con, scan, cols, key="sn")
    ctx.step("staging nodes")
    con.execute(
        f"""CREATE OR REPLACE TEMP VIEW {STAGE["nodes"]} AS SELECT
            {lit(prefix + ":")} || sn AS node_id, model AS gpu_model,
            CAST(gpu AS INTEGER) AS gpus,
            to_json(map {{'cpu_milli': CAST(CAST(cpu_milli AS BIGINT) AS VARCHAR),
                         'memory_mib': CAST(CAST(memory_mib AS BIGINT) AS VARCHAR)}}) AS labels
        FROM {CLEAN} WHERE _why IS NULL"""
    )
    return Staging(Staged(nodes=STAGE["nodes"]), read, bad, reasons)
