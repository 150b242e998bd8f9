"""The SQL behind :mod:`fleetmedic.sources.traces.k8s_dump`, one function per object kind.

Each function reads the items table (:data:`~fleetmedic.sources.traces.base.CLEAN`) and builds a
temp table of typed fields. Arrays (container statuses, conditions, owner references) are unnested
into their own tables rather than walked with JSON path wildcards, because a wildcard skips
missing fields and would pair a condition's type with another condition's reason.
"""

from __future__ import annotations

import duckdb

from fleetmedic.sources.traces.base import CLEAN, STAGE
from fleetmedic.sources.traces.sql import case_map, lit
from fleetmedic.sources.traces.sql import value as typed
from fleetmedic.store.writer import event_id_sql

PODS = "_fm_k8s_pods"
JOBS = "_fm_k8s_jobs"
EVENTS = "_fm_k8s_events"
NODES = "_fm_k8s_nodes"
CONDITIONS = "_fm_k8s_conditions"
CONTAINERS = "_fm_k8s_containers"

GPU_RESOURCES = ("nvidia.com/gpu", "amd.com/gpu")
GPU_MODEL_LABELS = ("nvidia.com/gpu.product", "cloud.google.com/gke-accelerator")
POOL_LABELS = (
    "cloud.google.com/gke-nodepool",
    "eks.amazonaws.com/nodegroup",
    "karpenter.sh/nodepool",
    "kubernetes.azure.com/agentpool",
)
QUEUE_LABEL = "kueue.x-k8s.io/queue-name"

_CONDITION = (
    '[{"type": "VARCHAR", "status": "VARCHAR", "reason": "VARCHAR", '
    '"lastTransitionTime": "VARCHAR", "lastHeartbeatTime": "VARCHAR"}]'
)
_CONTAINER = '[{"name": "VARCHAR", "state": "JSON", "lastState": "JSON", "restartCount": "BIGINT"}]'
_OWNER = '[{"kind": "VARCHAR", "name": "VARCHAR"}]'

_PHASES = {
    "Succeeded": "succeeded",
    "Running": "running",
    "Pending": "pending",
    "Failed": "failed",
    "Unknown": "failed",
}


def _t(expr: str) -> str:
    return typed(expr, "time")


def _gpus(containers_path: str) -> str:
    """GPUs requested by a pod spec: the sum of every container's GPU limits, any vendor."""
    parts = [
        f"coalesce(list_sum(TRY_CAST(json_extract_string(item, "
        f"'{containers_path}[*].resources.limits.\"{res}\"') AS BIGINT[])), 0)"
        for res in GPU_RESOURCES
    ]
    return " + ".join(parts)


def _label(labels: tuple[str, ...], root: str = "item -> 'metadata' -> 'labels'") -> str:
    return "coalesce(" + ", ".join(f"{root} ->> {lit(k)}" for k in labels) + ")"


def _arrays(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE {CONDITIONS} AS
        SELECT item_row, c.type, c.status, c.reason,
               {_t("c.lastTransitionTime")} AS changed_at, {_t("c.lastHeartbeatTime")} AS heartbeat
        FROM (SELECT rowid AS item_row,
                     unnest(from_json(item -> 'status' -> 'conditions', '{_CONDITION}')) AS c
              FROM {CLEAN} WHERE _why IS NULL AND kind IN ('Pod', 'Job', 'Node'))"""
    )
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE {CONTAINERS} AS
        WITH u AS (
            SELECT rowid AS item_row, 0 AS init, unnest(from_json(
                   item -> 'status' -> 'containerStatuses', '{_CONTAINER}')) AS c
            FROM {CLEAN} WHERE _why IS NULL AND kind = 'Pod'
            UNION ALL
            SELECT rowid, 1, unnest(from_json(
                   item -> 'status' -> 'initContainerStatuses', '{_CONTAINER}'))
            FROM {CLEAN} WHERE _why IS NULL AND kind = 'Pod')
        SELECT item_row, init, c.name AS container, c.restartCount AS restarts,
               c.state -> 'terminated' ->> 'reason' AS term_reason,
               TRY_CAST(c.state -> 'terminated' ->> 'exitCode' AS INTEGER) AS term_code,
               {_t("c.state -> 'terminated' ->> 'finishedAt'")} AS term_end,
               c.state -> 'waiting' ->> 'reason' AS wait_reason,
               c.lastState -> 'terminated' ->> 'reason' AS last_reason,
               TRY_CAST(c.lastState -> 'terminated' ->> 'exitCode' AS INTEGER) AS last_code,
               {_t("c.lastState -> 'terminated' ->> 'finishedAt'")} AS last_end,
               c.state -> 'terminated' ->> 'message' AS term_message
        FROM u"""
    )


def pods(con: duckdb.DuckDBPyConnection) -> None:
    """Typed pods with their outcome, reason, exit code and owning Job; bad phases marked."""
    _arrays(con)
    phase = "item -> 'status' ->> 'phase'"
    base_status = case_map(phase, _PHASES)
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE {PODS} AS
        WITH owners AS (
            SELECT item_row, max(o.name) FILTER (WHERE o.kind = 'Job') AS owner_job
            FROM (SELECT rowid AS item_row, unnest(from_json(
                         item -> 'metadata' -> 'ownerReferences', '{_OWNER}')) AS o
                  FROM {CLEAN} WHERE _why IS NULL AND kind = 'Pod')
            GROUP BY item_row),
        cs AS (
            SELECT item_row,
                min_by(term_reason, (init, container))
                    FILTER (WHERE term_reason IS NOT NULL AND term_reason <> 'Completed')
                    AS term_reason,
                min_by(term_code, (init, container)) FILTER (WHERE term_code <> 0) AS bad_code,
                max(term_code) AS any_code, max(term_end) AS term_end,
                min_by(wait_reason, (init, container)) FILTER (WHERE wait_reason NOT IN
                    ('ContainerCreating', 'PodInitializing')) AS wait_reason,
                min_by(last_reason, (init, container))
                    FILTER (WHERE last_reason IS NOT NULL AND last_reason <> 'Completed')
                    AS last_reason,
                min_by(last_code, (init, container)) FILTER (WHERE last_code <> 0) AS last_code,
                sum(restarts) AS restarts
            FROM {CONTAINERS} GROUP BY item_row),
        conds AS (
            SELECT item_row,
                max(reason) FILTER (WHERE type = 'DisruptionTarget' AND status = 'True')
                    AS disruption,
                max(changed_at) AS last_transition
            FROM {CONDITIONS} GROUP BY item_row)
        SELECT c.rowid AS item_row, c.ns, c.name, o.owner_job, {phase} AS phase,
            {base_status} AS base_status,
            NULLIF(c.item -> 'status' ->> 'reason', '') AS pod_reason,
            k.disruption, s.term_reason, coalesce(s.bad_code, s.any_code, s.last_code) AS exit_code,
            s.wait_reason, s.last_reason, s.restarts,
            NULLIF(c.item -> 'spec' ->> 'nodeName', '') AS node,
            {_t("c.item -> 'metadata' ->> 'creationTimestamp'")} AS created,
            {_t("c.item -> 'status' ->> 'startTime'")} AS started,
            coalesce(s.term_end, k.last_transition) AS finished,
            {_gpus("$.spec.containers")} AS gpus,
            c.item -> 'metadata' -> 'labels' ->> '{QUEUE_LABEL}' AS queue,
            TRY_CAST(c.item -> 'spec' ->> 'priority' AS INTEGER) AS priority
        FROM {CLEAN} c
        LEFT JOIN owners o ON o.item_row = c.rowid
        LEFT JOIN cs s ON s.item_row = c.rowid
        LEFT JOIN conds k ON k.item_row = c.rowid
        WHERE c._why IS NULL AND c.kind = 'Pod'"""
    )
    con.execute(
        f"""UPDATE {CLEAN} SET _why = CASE WHEN p.phase IS NULL THEN 'missing status.phase'
                                           ELSE 'unknown pod phase ' || p.phase END
        FROM {PODS} p WHERE {CLEAN}.rowid = p.item_row AND p.base_status IS NULL"""
    )
    con.execute(f"DELETE FROM {PODS} WHERE base_status IS NULL")


def jobs(con: duckdb.DuckDBPyConnection) -> None:
    """Typed batch/v1 Jobs with a status read from their conditions."""
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE {JOBS} AS
        WITH conds AS (
            SELECT item_row,
                bool_or(type = 'Complete' AND status = 'True') AS complete,
                bool_or(type = 'Failed' AND status = 'True') AS failed,
                max(reason) FILTER (WHERE type = 'Failed' AND status = 'True') AS failed_reason,
                max(changed_at) FILTER (WHERE type = 'Failed' AND status = 'True') AS failed_at,
                bool_or(type = 'Suspended' AND status = 'True') AS suspended
            FROM {CONDITIONS} GROUP BY item_row),
        j AS (
            SELECT c.rowid AS item_row, c.ns, c.name, c.item, k.complete, k.failed,
                   k.failed_reason, k.failed_at, k.suspended,
                   coalesce(TRY_CAST(c.item -> 'status' ->> 'active' AS INTEGER), 0) AS active,
                   coalesce(TRY_CAST(c.item -> 'status' ->> 'failed' AS INTEGER), 0) AS n_failed,
                   coalesce(TRY_CAST(c.item -> 'status' ->> 'succeeded' AS INTEGER), 0)
                       AS n_succeeded
            FROM {CLEAN} c LEFT JOIN conds k ON k.item_row = c.rowid
            WHERE c._why IS NULL AND c.kind = 'Job')
        SELECT item_row, ns, name,
            CASE WHEN complete THEN 'succeeded'
                 WHEN failed AND failed_reason = 'DeadlineExceeded' THEN 'timeout'
                 WHEN failed THEN 'failed'
                 WHEN suspended THEN 'pending'
                 WHEN active > 0 THEN 'running'
                 ELSE 'pending' END AS status,
            failed_reason,
            {_t("item -> 'metadata' ->> 'creationTimestamp'")} AS created,
            {_t("item -> 'status' ->> 'startTime'")} AS started,
            coalesce({_t("item -> 'status' ->> 'completionTime'")}, failed_at) AS finished,
            active + n_failed + n_succeeded AS pods_seen,
            ({_gpus("$.spec.template.spec.containers")})
              * coalesce(TRY_CAST(item -> 'spec' ->> 'parallelism' AS INTEGER), 1) AS gpus,
            coalesce(item -> 'metadata' -> 'labels' ->> '{QUEUE_LABEL}',
                     item -> 'spec' -> 'template' -> 'metadata' -> 'labels' ->> '{QUEUE_LABEL}')
              AS queue
        FROM j"""
    )


def events(con: duckdb.DuckDBPyConnection) -> None:
    """Typed Events (core/v1 and events.k8s.io/v1 field names); events without a time marked."""
    ref = "coalesce(item -> 'involvedObject', item -> 'regarding')"
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE {EVENTS} AS
        WITH e AS (
            SELECT rowid AS item_row, item, {ref} AS ref,
                coalesce({_t("item ->> 'lastTimestamp'")},
                         {_t("item ->> 'deprecatedLastTimestamp'")},
                         {_t("item ->> 'eventTime'")},
                         {_t("item ->> 'firstTimestamp'")},
                         {_t("item -> 'metadata' ->> 'creationTimestamp'")}) AS ts
            FROM {CLEAN} WHERE _why IS NULL AND kind = 'Event')
        SELECT item_row, ts,
            lower(ref ->> 'kind')
              || CASE WHEN coalesce(ref ->> 'namespace', '') = '' THEN ''
                      ELSE '/' || (ref ->> 'namespace') END
              || '/' || (ref ->> 'name') AS object,
            item ->> 'reason' AS reason, coalesce(item ->> 'message', item ->> 'note') AS message,
            CASE item ->> 'type' WHEN 'Warning' THEN 'warning' ELSE 'info' END AS severity,
            item AS raw
        FROM e"""
    )
    con.execute(
        f"""UPDATE {CLEAN} SET _why = CASE WHEN e.ts IS NULL THEN 'event without a time'
                                           ELSE 'event without involvedObject' END
        FROM {EVENTS} e WHERE {CLEAN}.rowid = e.item_row AND (e.ts IS NULL OR e.object IS NULL)"""
    )
    con.execute(f"DELETE FROM {EVENTS} WHERE ts IS NULL OR object IS NULL")


def nodes(con: duckdb.DuckDBPyConnection) -> None:
    """Typed Nodes: GPU model and count, pool, labels, conditions, cordon."""
    capacity = "item -> 'status' -> 'capacity'"
    gpus = " + ".join(
        f"coalesce(TRY_CAST({capacity} ->> {lit(r)} AS INTEGER), 0)" for r in GPU_RESOURCES
    )
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE {NODES} AS
        WITH conds AS (
            SELECT item_row, json_group_object(type, status) AS conditions,
                   max(heartbeat) AS heartbeat
            FROM {CONDITIONS} GROUP BY item_row)
        SELECT c.name AS node_id, {_label(GPU_MODEL_LABELS)} AS gpu_model,
            {gpus} AS gpus, {_label(POOL_LABELS)} AS pool,
            item -> 'metadata' -> 'labels' AS labels, k.conditions,
            coalesce(TRY_CAST(item -> 'spec' ->> 'unschedulable' AS BOOLEAN), false) AS cordoned,
            {_t("item -> 'metadata' ->> 'creationTimestamp'")} AS first_seen,
            k.heartbeat AS last_seen
        FROM {CLEAN} c LEFT JOIN conds k ON k.item_row = c.rowid
        WHERE c._why IS NULL AND c.kind = 'Node'"""
    )


def stage(con: duckdb.DuckDBPyConnection, prefix: str, cluster: str | None) -> None:
    """Stage jobs, attempts, attempt nodes, events and nodes from the typed tables."""
    p = lit(prefix + ":")
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE _fm_k8s_attempts AS
        SELECT *, row_number() OVER (PARTITION BY job_key ORDER BY created, name) AS attempt
        FROM (
            SELECT *,
                CASE WHEN owner_job IS NOT NULL THEN coalesce(ns, 'default') || '/job/' || owner_job
                     ELSE coalesce(ns, 'default') || '/pod/' || name END AS job_key,
                CASE WHEN base_status = 'failed' AND disruption = 'PreemptionByScheduler'
                       THEN 'preempted'
                     WHEN base_status = 'failed' AND pod_reason = 'DeadlineExceeded' THEN 'timeout'
                     ELSE base_status END AS status,
                CASE WHEN phase = 'Unknown' THEN coalesce(pod_reason, 'NodeLost')
                     ELSE coalesce(pod_reason, disruption, term_reason, wait_reason, last_reason)
                     END AS reason
            FROM {PODS})"""
    )
    _stage_jobs(con, p, lit(cluster) if cluster else "NULL")
    con.execute(
        f"""CREATE OR REPLACE TEMP VIEW {STAGE["attempts"]} AS SELECT
            {p} || job_key AS job_id, CAST(attempt AS INTEGER) AS attempt, node AS nodes,
            started AS started_at,
            CASE WHEN status IN ('running', 'pending') THEN NULL ELSE finished END AS ended_at,
            status, exit_code, reason
        FROM _fm_k8s_attempts"""
    )
    con.execute(
        f"""CREATE OR REPLACE TEMP VIEW {STAGE["attempt_nodes"]} AS SELECT
            {p} || job_key AS job_id, CAST(attempt AS INTEGER) AS attempt, node AS node_id
        FROM _fm_k8s_attempts WHERE node IS NOT NULL"""
    )
    _stage_events(con, p)
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE {STAGE["nodes"]} AS
        SELECT * FROM {NODES}
        UNION ALL BY NAME
        SELECT node AS node_id, min(coalesce(started, created)) AS first_seen,
               max(coalesce(finished, started, created)) AS last_seen
        FROM _fm_k8s_attempts
        WHERE node IS NOT NULL AND node NOT IN (SELECT node_id FROM {NODES})
        GROUP BY node"""
    )


def _stage_jobs(con: duckdb.DuckDBPyConnection, p: str, cluster: str) -> None:
    con.execute(
        f"""CREATE OR REPLACE TEMP VIEW {STAGE["jobs"]} AS
        WITH pj AS (
            SELECT job_key, any_value(ns) AS ns, count(*) AS n, min(created) AS submitted,
                min(started) AS started, arg_max(finished, attempt) AS finished,
                arg_max(status, attempt) AS status, arg_max(gpus, attempt) AS gpus,
                arg_max(queue, attempt) AS queue, arg_max(exit_code, attempt) AS exit_code,
                max(priority) AS priority, arg_max(node, attempt) AS node
            FROM _fm_k8s_attempts GROUP BY job_key),
        oj AS (SELECT coalesce(ns, 'default') || '/job/' || name AS job_key, * FROM {JOBS})
        SELECT {p} || coalesce(oj.job_key, pj.job_key) AS job_id, 'k8s' AS source,
            {cluster} AS cluster,
            coalesce(oj.ns, pj.ns) AS project,
            coalesce(oj.gpus, pj.gpus, 0) AS num_gpus,
            CASE WHEN oj.job_key IS NULL AND pj.node IS NOT NULL THEN 1 END AS num_nodes,
            pj.priority, coalesce(oj.queue, pj.queue) AS queue,
            coalesce(oj.created, pj.submitted) AS submitted_at,
            coalesce(oj.started, pj.started) AS started_at,
            CASE WHEN coalesce(oj.status, pj.status) IN ('running', 'pending') THEN NULL
                 ELSE coalesce(oj.finished, pj.finished) END AS ended_at,
            coalesce(oj.status, pj.status) AS status,
            CAST(greatest(coalesce(pj.n, 0), coalesce(oj.pods_seen, 0)) AS INTEGER) AS attempts,
            pj.exit_code
        FROM oj FULL OUTER JOIN pj ON oj.job_key = pj.job_key"""
    )


def _stage_events(con: duckdb.DuckDBPyConnection, p: str) -> None:
    """Events from Event items, plus one per container termination that was not Completed."""
    event_id = event_id_sql(
        ts="ts", source="source", kind="kind", obj="object", reason="reason", message="message"
    )
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE {STAGE["events"]} AS
        WITH all_events AS (
            SELECT ts, 'k8s' AS source, 'k8s_event' AS kind, object, reason, message, severity,
                   raw
            FROM {EVENTS}
            UNION ALL
            SELECT ct.term_end AS ts, 'k8s' AS source, 'container_terminated' AS kind,
                'pod/' || coalesce(a.ns, 'default') || '/' || a.name AS object,
                ct.term_reason AS reason,
                'container ' || ct.container || ' terminated: ' || ct.term_reason
                  || ' (exit code ' || coalesce(CAST(ct.term_code AS VARCHAR), '?') || ')'
                  || coalesce(': ' || ct.term_message, '') AS message,
                'error' AS severity,
                json_object('job_id', {p} || a.job_key, 'attempt', a.attempt,
                            'container', ct.container, 'exitCode', ct.term_code,
                            'init', ct.init = 1) AS raw
            FROM {CONTAINERS} ct JOIN _fm_k8s_attempts a USING (item_row)
            WHERE ct.term_reason IS NOT NULL AND ct.term_reason <> 'Completed'
              AND ct.term_end IS NOT NULL)
        SELECT DISTINCT ON (event_id) * FROM (
            SELECT {event_id} AS event_id, * FROM all_events)"""
    )
