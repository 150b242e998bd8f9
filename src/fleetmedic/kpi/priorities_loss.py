"""GPU-hours lost per failed attempt, written once as Ibis expressions.

The same expressions run on DuckDB (the default store) and on Spark or Trino when history outgrows
one machine, so everything here is relational: no pandas, no Python loops over rows.

Definitions (docs/priorities.md has the worked example):

* An *attempt* is a row of ``attempts``; a job with no attempt rows (imported traces) counts as one
  attempt spanning the job, numbered like its latest diagnosis so the two still join.
* An attempt *failed* when its status is failed, timeout or preempted, or when it carries a
  diagnosis other than ``cancelled`` (a hang the user cancelled is still a hang).
* Lost GPU-hours = num_gpus x (end - last checkpoint inside the attempt, or the whole attempt when
  it saved none) + restart overhead. The overhead is measurable only when the next attempt ran on
  exactly the same nodes: the allocation was held idle from the failure to the restart.
* A failure is attributed to the node its diagnosis names; otherwise shared evenly among the
  attempt's nodes, so a cause spread over many multi-node jobs never looks like one bad node.
"""

from __future__ import annotations

from typing import Any

import ibis
import ibis.expr.types as ir

from fleetmedic.kpi.priorities_model import Window
from fleetmedic.kpi.tables import INTERRUPTED, normalize_status

UNKNOWN = "unknown"
NO_OWNER = "—"

_SECONDS_PER_HOUR = 3600.0


def _loose(table: ir.Table) -> ir.Table:
    """The same table with every column nullable, so set operations see equal schemas."""
    return table.cast({name: dtype.copy(nullable=True) for name, dtype in table.schema().items()})


def _union(first: ir.Table, *rest: ir.Table) -> ir.Table:
    """UNION ALL of tables whose columns agree up to nullability, in ``first``'s column order."""
    base = _loose(first)
    return base.union(*[_loose(t.select(*first.columns)).cast(base.schema()) for t in rest])


def _jobs(backend: Any) -> ir.Table:
    """Job columns the attempts need, renamed so joins never collide; ``image`` only if stored."""
    jobs = backend.table("jobs")
    image = jobs["image"].cast("string") if "image" in jobs.columns else ibis.null("string")
    return jobs.select(
        job_id=jobs.job_id,
        user=jobs.user,
        num_gpus=jobs.num_gpus.cast("float64"),
        node_pool=jobs.node_pool,
        image=image,
        job_status=normalize_status(jobs.status),
        job_started=jobs.started_at,
        job_ended=jobs.ended_at,
        job_attempts=jobs.attempts.cast("int64"),
    )


def all_attempts(backend: Any) -> ir.Table:
    """Every attempt with its job's size: stored attempts plus one per job that has none.

    Columns: job_id, attempt, user, num_gpus, node_pool, image, started_at, ended_at, status,
    last_checkpoint_at. A missing attempt status means the job's status for its last attempt and
    ``failed`` for an earlier one (it was followed by a retry).
    """
    jobs = _jobs(backend)
    stored = backend.table("attempts")
    bounds = stored.group_by("job_id").aggregate(
        first_attempt=stored.attempt.min(), last_attempt=stored.attempt.max()
    )
    joined = stored.join(bounds, "job_id").join(jobs, "job_id")
    is_first = joined.attempt == joined.first_attempt
    is_last = joined.attempt == joined.last_attempt
    real = joined.select(
        job_id=joined.job_id,
        attempt=joined.attempt.cast("int64"),
        user=joined.user,
        num_gpus=joined.num_gpus,
        node_pool=joined.node_pool,
        image=joined.image,
        started_at=ibis.ifelse(
            is_first, joined.started_at.coalesce(joined.job_started), joined.started_at
        ),
        ended_at=ibis.ifelse(is_last, joined.ended_at.coalesce(joined.job_ended), joined.ended_at),
        status=normalize_status(joined.status).coalesce(
            ibis.ifelse(is_last, joined.job_status, "failed")
        ),
        last_checkpoint_at=joined.last_checkpoint_at,
    )

    diagnoses = backend.table("diagnoses")
    latest = diagnoses.group_by("job_id").aggregate(diag_attempt=diagnoses.attempt.max())
    orphans = jobs.anti_join(stored, "job_id")
    orphans = orphans.left_join(latest, orphans.job_id == latest.job_id)
    synthetic = orphans.select(
        job_id=orphans.job_id,
        attempt=orphans.diag_attempt.cast("int64").coalesce(orphans.job_attempts, 1),
        user=orphans.user,
        num_gpus=orphans.num_gpus,
        node_pool=orphans.node_pool,
        image=orphans.image,
        started_at=orphans.job_started,
        ended_at=orphans.job_ended,
        status=orphans.job_status,
        last_checkpoint_at=ibis.null("timestamp"),
    )
    return _union(real, synthetic)


def attempt_nodes(backend: Any) -> ir.Table:
    """(job_id, attempt, node_id) from ``attempt_nodes`` plus the list in ``attempts.nodes``."""
    listed = backend.table("attempt_nodes").select("job_id", "attempt", "node_id")
    stored = backend.table("attempts").filter(lambda t: t.nodes.notnull())
    split = stored.select("job_id", "attempt", node_id=stored.nodes.split(",").unnest().strip())
    split = split.filter(split.node_id != "")
    return _union(listed.cast({"attempt": "int64"}), split).distinct()


def _restart_overhead_hours(attempts: ir.Table, nodes: ir.Table) -> ir.Table:
    """GPU-hours held idle between a failure and a restart on the very same nodes.

    Returns (job_id, attempt, restart_gpu_hours) for attempts whose successor kept every node.
    """
    counts = nodes.group_by(["job_id", "attempt"]).aggregate(node_count=nodes.node_id.count())
    successor = nodes.select("job_id", "node_id", attempt=nodes.attempt - 1)
    shared = (
        nodes.join(successor, ["job_id", "attempt", "node_id"])
        .group_by(["job_id", "attempt"])
        .aggregate(shared=lambda t: t.node_id.count())
    )
    nxt_counts = counts.select("job_id", attempt=counts.attempt - 1, next_count=counts.node_count)
    nxt = attempts.select("job_id", attempt=attempts.attempt - 1, next_started=attempts.started_at)
    held = (
        attempts.select("job_id", "attempt", "num_gpus", "ended_at")
        .join(nxt, ["job_id", "attempt"])
        .join(counts, ["job_id", "attempt"])
        .join(nxt_counts, ["job_id", "attempt"])
        .join(shared, ["job_id", "attempt"])
    )
    held = held.filter(
        (held.shared == held.node_count) & (held.shared == held.next_count) & (held.shared > 0)
    )
    gap = held.next_started.epoch_seconds() - held.ended_at.epoch_seconds()
    return held.select(
        "job_id",
        "attempt",
        restart_gpu_hours=held.num_gpus * ibis.greatest(gap, 0).cast("float64") / _SECONDS_PER_HOUR,
    )


def failed_attempts(backend: Any) -> ir.Table:
    """One row per failed attempt with its cause and the GPU-hours it lost (all time).

    Columns: job_id, attempt, user, num_gpus, node_pool, image, started_at, ended_at, status,
    category, signature, owner, diag_node, run_gpu_hours, restart_gpu_hours, lost_gpu_hours.
    """
    attempts = all_attempts(backend)
    diagnoses = backend.table("diagnoses")
    diag = diagnoses.select(
        job_id=diagnoses.job_id,
        attempt=diagnoses.attempt.cast("int64"),
        d_category=diagnoses.category,
        d_signature=diagnoses.signature,
        d_owner=diagnoses.owner,
        diag_node=diagnoses.node_id,
    )
    joined = attempts.left_join(
        diag, (attempts.job_id == diag.job_id) & (attempts.attempt == diag.attempt)
    )
    failed = joined.filter(
        joined.ended_at.notnull()
        & (
            joined.status.isin(INTERRUPTED)
            | (joined.d_category.notnull() & (joined.d_category != "cancelled"))
        )
    )
    start = failed.started_at.epoch_seconds()
    end = failed.ended_at.epoch_seconds()
    checkpoint = failed.last_checkpoint_at.epoch_seconds().coalesce(start)
    resumed_from = ibis.greatest(start, ibis.least(checkpoint, end))
    run_hours = ibis.greatest(end - resumed_from, 0).cast("float64") / _SECONDS_PER_HOUR
    base = failed.select(
        job_id=failed.job_id,
        attempt=failed.attempt,
        user=failed.user,
        num_gpus=failed.num_gpus,
        node_pool=failed.node_pool,
        image=failed.image,
        started_at=failed.started_at,
        ended_at=failed.ended_at,
        status=failed.status,
        category=failed.d_category.coalesce(UNKNOWN),
        signature=failed.d_signature,
        owner=failed.d_owner.coalesce(NO_OWNER),
        diag_node=failed.diag_node,
        run_gpu_hours=(failed.num_gpus * run_hours).coalesce(0.0),
    )
    overhead = _restart_overhead_hours(attempts, attempt_nodes(backend))
    withover = base.left_join(
        overhead, (base.job_id == overhead.job_id) & (base.attempt == overhead.attempt)
    )
    restart = withover.restart_gpu_hours.coalesce(0.0)
    return withover.select(
        *[withover[name] for name in base.columns],
        restart_gpu_hours=restart,
        lost_gpu_hours=withover.run_gpu_hours + restart,
    )


def in_window(table: ir.Table, window: Window, column: str = "ended_at") -> ir.Table:
    """Rows whose ``column`` falls in ``since <= t < until``."""
    when = table[column]
    return table.filter((when >= window.since) & (when < window.until))


def attribution(backend: Any, failed: ir.Table) -> ir.Table:
    """Where each failure happened: (job_id, attempt, node_id, pool, share), shares summing to 1.

    The diagnosed node takes the whole failure; otherwise each node of the attempt takes an equal
    share; an attempt with no known node keeps one row with a null node and its job's pool.
    """
    nodes = attempt_nodes(backend)
    counts = nodes.group_by(["job_id", "attempt"]).aggregate(node_count=nodes.node_id.count())
    keys = failed.select("job_id", "attempt", "diag_node", "node_pool")
    named = keys.filter(keys.diag_node.notnull()).select(
        "job_id", "attempt", "node_pool", node_id=keys.diag_node, share=ibis.literal(1.0)
    )
    spread = (
        keys.filter(keys.diag_node.isnull())
        .join(nodes, ["job_id", "attempt"])
        .join(counts, ["job_id", "attempt"])
    )
    spread = spread.select(
        "job_id",
        "attempt",
        "node_pool",
        node_id=spread.node_id,
        share=1.0 / spread.node_count.cast("float64"),
    )
    located = _union(named, spread)
    nowhere = keys.anti_join(located, ["job_id", "attempt"]).select(
        "job_id", "attempt", "node_pool", node_id=ibis.null("string"), share=ibis.literal(1.0)
    )
    every = _union(located, nowhere)
    pools = backend.table("nodes").select(n_node=lambda t: t.node_id, n_pool=lambda t: t.pool)
    with_pool = every.left_join(pools, every.node_id == pools.n_node)
    return with_pool.select(
        "job_id",
        "attempt",
        "node_id",
        pool=with_pool.n_pool.coalesce(with_pool.node_pool),
        share=with_pool.share,
    )


def total_gpu_hours(backend: Any, window: Window) -> float:
    """GPU-hours of every attempt that ended in the window: the base of "goodput points".

    Counted per attempt, like the losses, so a job retried three times weighs three attempts.
    """
    attempts = in_window(all_attempts(backend), window)
    seconds = attempts.ended_at.epoch_seconds() - attempts.started_at.epoch_seconds()
    hours = attempts.num_gpus * ibis.greatest(seconds, 0).cast("float64") / _SECONDS_PER_HOUR
    value = hours.sum().to_pyarrow().as_py()
    return float(value) if value is not None else 0.0
