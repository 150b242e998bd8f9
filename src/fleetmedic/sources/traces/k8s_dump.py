"""Kubernetes dumps: what ``kubectl get pods,jobs,events,nodes -A -o json`` prints (a v1 List).

Which item becomes what:

* **Job** (batch/v1) -> a job ``k8s:<namespace>/job/<name>``; its status from its conditions
  (Complete -> succeeded; Failed -> failed, or timeout when the reason is DeadlineExceeded;
  Suspended -> pending; otherwise running while pods are active, else pending).
* **Pod** -> one attempt. Pods a Job owns are that job's attempts, numbered by creation time;
  any other pod is a job of its own, ``k8s:<namespace>/pod/<name>``. The pod's outcome: phase
  Succeeded -> succeeded; Failed -> preempted when the scheduler preempted it (DisruptionTarget
  PreemptionByScheduler), timeout on DeadlineExceeded, else failed (Evicted, OOMKilled, Error, ...);
  Running -> running; Pending -> pending; Unknown -> failed with reason NodeLost. The attempt's
  ``reason`` is the most telling of: the pod's reason (Evicted, DeadlineExceeded), the disruption
  reason, a container's termination reason other than Completed (OOMKilled, Error), its waiting
  reason (ImagePullBackOff, CrashLoopBackOff), a previous run's termination reason.
* A container termination other than Completed also becomes an event (``container_terminated``),
  so OOMKilled survives in the event log even after the pod is gone.
* **Event** (core/v1 or events.k8s.io/v1) -> an event ``k8s_event`` on ``<kind>/<namespace>/<name>``
  (``node/<name>`` for nodes), Warning -> warning, Normal -> info.
* **Node** -> a node named as in the cluster (not prefixed, so it joins with live sources): GPU
  model and count from the NVIDIA/GKE labels and capacity, conditions, cordon.

Times are RFC 3339 UTC in the API. Items of other kinds are counted as not imported. Job ids take
``--cluster`` when given: ``k8s-<cluster>:<namespace>/job/<name>``.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from fleetmedic.model.errors import InputError
from fleetmedic.sources.traces import k8s_sql
from fleetmedic.sources.traces.base import (
    CLEAN,
    STAGE,
    StageContext,
    Staging,
    TraceImporter,
    register,
    require_cluster_name,
    sort_reasons,
)
from fleetmedic.sources.traces.files import check_file
from fleetmedic.sources.traces.sql import json_objects, lit, session_time_zone
from fleetmedic.store.writer import Staged

EXPECTED = "a Kubernetes List (kubectl get pods,jobs,events,nodes -A -o json)"
KINDS = ("Pod", "Job", "Event", "Node")


@register
class KubernetesDumpImporter(TraceImporter):
    name = "k8s"
    summary = "kubectl get pods,jobs,events,nodes -A -o json (a v1 List)"

    def check(self, ctx: StageContext, path: Path) -> None:
        check_file(path, "json", EXPECTED)
        try:
            rows = ctx.con.execute(
                f"SELECT json ->> 'kind', json_type(json -> 'items') FROM {json_objects(path)}"
            ).fetchall()
        except duckdb.Error as exc:
            raise InputError(f"{path}: not valid JSON: {str(exc).splitlines()[0]}") from None
        for kind, items in rows:
            is_list = items == "ARRAY"
            if not (is_list or kind in KINDS):
                raise InputError(
                    f"{path}: not {EXPECTED}: missing key items (kind: {kind or 'none'})"
                )

    def stage(self, ctx: StageContext, path: Path) -> Staging:
        self.check(ctx, path)
        con = ctx.con
        cluster = require_cluster_name(ctx.options.cluster) if ctx.options.cluster else None
        prefix = f"k8s-{cluster}" if cluster else "k8s"
        ctx.step("reading items")
        with session_time_zone(con, "UTC"):
            _items(con, path)
            k8s_sql.pods(con)
            k8s_sql.jobs(con)
            k8s_sql.events(con)
            k8s_sql.nodes(con)
            rows = con.execute(f"SELECT _why, count(*) FROM {CLEAN} GROUP BY ALL").fetchall()
            ctx.step("staging jobs, attempts, events and nodes")
            k8s_sql.stage(con, prefix, cluster)
        reasons = sort_reasons({str(w): int(n) for w, n in rows if w is not None})
        total = sum(int(n) for _, n in rows)
        staged = Staged(**{table: name for table, name in STAGE.items()})
        return Staging(staged, total, sum(reasons.values()), reasons)


def _items(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    """One row per item with its kind, namespace, name and a first verdict (``_why``)."""
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE {CLEAN} AS
        WITH docs AS (SELECT json FROM {json_objects(path)}),
        items AS (
            SELECT unnest(from_json(json -> 'items', '["JSON"]')) AS item FROM docs
            WHERE json_type(json -> 'items') = 'ARRAY'
            UNION ALL
            SELECT json AS item FROM docs WHERE json_type(json -> 'items') IS DISTINCT FROM 'ARRAY')
        SELECT item, item ->> 'kind' AS kind,
               NULLIF(item -> 'metadata' ->> 'namespace', '') AS ns,
               NULLIF(item -> 'metadata' ->> 'name', '') AS name,
               CASE
                 WHEN json_type(item) <> 'OBJECT' THEN 'not a JSON object'
                 WHEN item ->> 'kind' IS NULL THEN 'missing kind'
                 WHEN item ->> 'kind' NOT IN ({", ".join(lit(k) for k in KINDS)})
                   THEN 'not imported: kind ' || (item ->> 'kind')
                 WHEN NULLIF(item -> 'metadata' ->> 'name', '') IS NULL THEN 'missing metadata.name'
               END AS _why
        FROM items"""
    )
