"""Helios (SenseTime, SC'21): ``data/<Cluster>/cluster_log.csv`` of HeliosData.

Schema (github.com/S-Lab-System-Group/HeliosData README): ``job_id, user, vc, gpu_num, cpu_num,
node_num, state, submit_time, start_time, end_time, duration, queue``. ``vc`` (the virtual cluster)
is the job's queue; ``queue`` is the queueing time in seconds. Times are local strings without an
offset, read as Asia/Shanghai (UTC+8, no DST). The cluster (earth, saturn, uranus, venus) comes
from ``--cluster`` or the folder the file is in.
"""

from __future__ import annotations

from pathlib import Path

from fleetmedic.sources.traces.base import (
    StageContext,
    Staging,
    TraceImporter,
    register,
    require_cluster_name,
)
from fleetmedic.sources.traces.files import open_table
from fleetmedic.sources.traces.slurm import SlurmTrace, stage_slurm

COLUMNS = (
    "job_id",
    "user",
    "vc",
    "gpu_num",
    "cpu_num",
    "node_num",
    "state",
    "submit_time",
    "start_time",
    "end_time",
    "duration",
    "queue",
)

CLUSTERS = ("earth", "saturn", "uranus", "venus")

TRACE = SlurmTrace(
    source="helios",
    expected="a Helios cluster_log.csv",
    columns=COLUMNS,
    time_zone="Asia/Shanghai",
    numeric=("gpu_num", "cpu_num", "node_num", "duration", "queue"),
    queue_column="vc",
)


def cluster_of(path: Path, override: str | None) -> str | None:
    """``--cluster``, else a Helios cluster name in the file's folder or name, else unknown."""
    if override:
        return require_cluster_name(override)
    for part in (path.parent.name.lower(), path.stem.lower()):
        for name in CLUSTERS:
            if name in part:
                return name
    return None


@register
class HeliosImporter(TraceImporter):
    name = "helios"
    summary = "Helios cluster_log.csv (Venus, Earth, Saturn, Uranus)"

    def check(self, ctx: StageContext, path: Path) -> None:
        open_table(ctx.con, path, expected=TRACE.expected, required=COLUMNS, delimiter=",").drop(
            ctx.con
        )

    def stage(self, ctx: StageContext, path: Path) -> Staging:
        cluster = cluster_of(path, ctx.options.cluster)
        prefix = f"helios-{cluster}" if cluster else "helios"
        return stage_slurm(ctx, path, TRACE, prefix, cluster)
