"""Failed attempts with their cause, place and lost GPU-hours, as Ibis expressions.

Built on the KPI suite's run facts (``kpi/facts.py``) so that ``fleetmedic priorities`` and
``fleetmedic kpi`` can never disagree on what an attempt, a failure or a lost GPU-hour is: a
failure is a run interrupted (failed, timeout, preempted) inside the window, and its loss is the
work since its last checkpoint, or the whole run without one (``lost_gh``). What priorities adds:

* the cause's *signature* and the node a diagnosis names, joined from ``diagnoses``;
* the restart overhead where it is measurable: the gap before the next attempt (``requeue_gh``)
  counts only when that attempt ran on exactly the same nodes, i.e. the allocation was held idle;
* where each failure happened: the diagnosed node takes all of it, otherwise every node of the
  attempt an equal share, so a cause spread over multi-node jobs never looks like one bad node.

Everything stays relational (no pandas, no Python loop over rows), so it runs on DuckDB and Spark.
"""

from __future__ import annotations

from typing import Any

import ibis
import ibis.expr.types as ir

from fleetmedic.kpi.facts import run_facts
from fleetmedic.kpi.period import Window as EpochWindow
from fleetmedic.kpi.period import to_epoch
from fleetmedic.kpi.priorities_model import Window
from fleetmedic.kpi.tables import KpiTables

UNKNOWN = "unknown"
NO_OWNER = "—"
CURRENT = "current"
PREVIOUS = "previous"


def _loose(table: ir.Table) -> ir.Table:
    """The same table with every column nullable, so set operations see equal schemas."""
    return table.cast({name: dtype.copy(nullable=True) for name, dtype in table.schema().items()})


def _union(first: ir.Table, *rest: ir.Table) -> ir.Table:
    """UNION ALL of tables whose columns agree up to nullability, in ``first``'s column order."""
    base = _loose(first)
    return base.union(*[_loose(t.select(*first.columns)).cast(base.schema()) for t in rest])


def epoch_windows(window: Window) -> list[EpochWindow]:
    """The ranked window and the one before it, in the run facts' epoch-second form."""
    previous = window.previous
    return [
        EpochWindow(PREVIOUS, to_epoch(previous.since), to_epoch(previous.until)),
        EpochWindow(CURRENT, to_epoch(window.since), to_epoch(window.until)),
    ]


def latest_end(tables: KpiTables) -> float | None:
    """Epoch seconds of the latest job or attempt end, None on an empty store."""
    jobs = tables.jobs.aggregate(end=tables.jobs.end.max().cast("float64"))
    attempts = tables.attempts.aggregate(end=tables.attempts.end.max().cast("float64"))
    ends = jobs.union(attempts)
    found = ends.aggregate(end=ends.end.max()).to_pyarrow().to_pylist()
    value = found[0]["end"] if found else None
    return float(value) if value is not None else None


def attempt_nodes(backend: Any) -> ir.Table:
    """(job_id, attempt, node_id) from ``attempt_nodes`` plus the list in ``attempts.nodes``."""
    listed = backend.table("attempt_nodes").select("job_id", "attempt", "node_id")
    stored = backend.table("attempts").filter(lambda t: t.nodes.notnull())
    # Blanks are dropped before the split: Spark cannot apply a function to an exploded value.
    listed_ids = stored.nodes.re_replace(r"\s+", "").split(",")
    split = stored.select("job_id", "attempt", node_id=listed_ids.unnest())
    split = split.filter(split.node_id != "")
    return _union(listed.cast({"attempt": "int64"}), split.cast({"attempt": "int64"})).distinct()


def _held_allocations(nodes: ir.Table) -> ir.Table:
    """(job_id, attempt, next_attempt) where the next attempt kept exactly the same node set."""
    counts = nodes.group_by(["job_id", "attempt"]).aggregate(n=nodes.node_id.count())
    later = nodes.select("job_id", "node_id", next_attempt=nodes.attempt)
    pairs = nodes.join(later, ["job_id", "node_id"])
    shared = pairs.group_by(["job_id", "attempt", "next_attempt"]).aggregate(
        shared=pairs.node_id.count()
    )
    mine = counts.select("job_id", "attempt", n_mine=counts.n)
    theirs = counts.select("job_id", next_attempt=counts.attempt, n_next=counts.n)
    held = shared.join(mine, ["job_id", "attempt"]).join(theirs, ["job_id", "next_attempt"])
    held = held.filter((held.shared == held.n_mine) & (held.shared == held.n_next))
    return held.select("job_id", "attempt", "next_attempt", held=ibis.literal(True))


def _diagnosis_details(backend: Any, unique: bool = False) -> ir.Table:
    """Signature and named node per diagnosed attempt, one row per key even in a lake copy.

    ``unique`` says the key is known to be unique (an enforced primary key, or no duplicate found
    by ``load_tables``): the rows are then taken as they are, which saves aggregating the table.
    """
    diag = backend.table("diagnoses")
    if unique:
        return diag.select(
            "job_id",
            diag.attempt.cast("int64").name("attempt"),
            signature=diag.signature,
            diag_node=diag.node_id,
        )
    return diag.group_by(["job_id", diag.attempt.cast("int64").name("attempt")]).aggregate(
        signature=diag.signature.max(), diag_node=diag.node_id.max()
    )


def _images(backend: Any) -> ir.Table | None:
    """(job_id, image) when the store's jobs carry an image column, else None."""
    jobs = backend.table("jobs")
    if "image" not in jobs.columns:
        return None
    return jobs.select(job_id=jobs.job_id, image=jobs["image"].cast("string"))


def runs_in(tables: KpiTables, window: Window) -> ir.Table:
    """Run facts for the window and the one before it, ``pkey`` naming which."""
    return run_facts(tables, epoch_windows(window), None)


def failed_runs(
    backend: Any,
    runs: ir.Table,
    *,
    carry: tuple[str, ...] = (),
    unique_diagnoses: bool = False,
) -> ir.Table:
    """Failed runs with cause, place and lost GPU-hours; ``pkey`` says current or previous.

    Columns: pkey, job_id, attempt, user, node_pool, image, category, signature, owner, diag_node,
    run_gpu_hours, restart_gpu_hours, lost_gpu_hours, then the ``carry`` columns of ``runs``.
    """
    failed = runs.filter(runs.fail_here)
    details = _diagnosis_details(backend, unique_diagnoses)
    joined = failed.left_join(
        details, (failed.job_id == details.job_id) & (failed.attempt == details.attempt)
    )
    held = _held_allocations(attempt_nodes(backend))
    joined = joined.left_join(
        held,
        (joined.job_id == held.job_id)
        & (joined.attempt == held.attempt)
        & (joined.next_attempt == held.next_attempt),
    )
    restart = ibis.ifelse(joined.held.notnull(), joined.requeue_gh.fill_null(0.0), 0.0)
    base = joined.select(
        pkey=joined.pkey,
        job_id=joined.job_id,
        attempt=joined.attempt,
        user=joined.user,
        node_pool=joined.node_pool,
        category=joined.category.fill_null(UNKNOWN),
        signature=joined.signature,
        owner=ibis.ifelse(joined.owner == UNKNOWN, NO_OWNER, joined.owner.fill_null(NO_OWNER)),
        diag_node=joined.diag_node,
        run_gpu_hours=joined.lost_gh.fill_null(0.0),
        restart_gpu_hours=restart,
        lost_gpu_hours=joined.lost_gh.fill_null(0.0) + restart,
        **{name: joined[name] for name in carry},
    )
    images = _images(backend)
    if images is None:
        return base.mutate(image=ibis.null("string"))
    with_image = base.left_join(images, base.job_id == images.job_id)
    return with_image.select(*[with_image[c] for c in base.columns], image=with_image.image)


def loss_facts(tables: KpiTables, window: Window) -> ir.Table:
    """:func:`failed_runs` of the window and the previous one, from a single pass over the runs.

    Every row also carries ``window_gpu_hours``: all GPU-hours run in the ranked window (the
    goodput denominator), summed over the same runs by a window function before the failures are
    filtered, so the total needs no second pass over attempts and jobs. When neither window holds
    a failure there is no row to carry it: see :func:`window_gpu_hours`.
    """
    runs = runs_in(tables, window)
    current = ibis.ifelse(runs.pkey == CURRENT, runs.gpu_h, 0.0)
    runs = runs.mutate(window_gpu_hours=current.sum().over(ibis.window()))
    return failed_runs(
        tables.backend,
        runs,
        carry=("window_gpu_hours",),
        unique_diagnoses=tables.duplicates.get("diagnoses", 1) == 0,
    )


def window_gpu_hours(tables: KpiTables, window: Window) -> float:
    """All GPU-hours run in the ranked window, on their own (a full pass over the runs)."""
    runs = runs_in(tables, window)
    current = runs.filter(runs.pkey == CURRENT)
    found = current.aggregate(total=current.gpu_h.sum()).to_pyarrow().to_pylist()
    value = found[0]["total"] if found else None
    return float(value) if value is not None else 0.0


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
        pool=with_pool.n_pool.fill_null(with_pool.node_pool),
        share=with_pool.share,
    )
