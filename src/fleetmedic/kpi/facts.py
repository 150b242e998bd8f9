"""Per-job and per-run facts: the derived columns every KPI sums, written once.

Why: clipping to the period, clock-skew repair, open intervals, checkpoint arithmetic and the
failure category each have one definition here, so outcomes, goodput, reliability, capacity and
velocity cannot disagree. A *run* is one attempt of a job; a job with no ``attempts`` rows (a trace
with one row per job) is one synthetic run spanning the job. All times are epoch seconds.
"""

from __future__ import annotations

from collections.abc import Sequence

import ibis
import ibis.expr.types as ir

from fleetmedic.kpi.period import FOREVER, Window, attach, overlap_seconds
from fleetmedic.kpi.tables import INTERRUPTED, OPEN, KpiTables

HOUR = 3600.0

SIZE_BUCKETS: tuple[str, ...] = ("0", "1", "2-8", "9-64", "65-256", "257-1024", ">1024")
"""Job size buckets in GPUs; fractional GPUs (shared devices) fall in ``1``."""

GROUP_BY: tuple[str, ...] = ("team", "user", "size", "gpu_model", "pool", "week", "cluster")
"""Dimensions ``--by`` accepts."""

PLATFORM_OWNERS: tuple[str, ...] = ("platform", "hardware")
"""Owners whose failures are the platform's to fix, not the user's."""

# Owner of the category a run gets from its status when it has no diagnosis (taxonomy.yaml).
_FALLBACK_OWNER = {"timeout": "user", "preemption": "platform"}


def size_bucket(gpus: ir.NumericValue) -> ir.StringValue:
    """The size bucket label of a GPU count (see :data:`SIZE_BUCKETS`)."""
    return ibis.cases(
        (gpus <= 0, "0"),
        (gpus <= 1, "1"),
        (gpus <= 8, "2-8"),
        (gpus <= 64, "9-64"),
        (gpus <= 256, "65-256"),
        (gpus <= 1024, "257-1024"),
        else_=">1024",
    )


def group_key(table: ir.Table, by: str | None) -> ir.StringValue:
    """The value rows are grouped on; ``unknown`` where the dimension is missing."""
    if by is None:
        return ibis.literal("all")
    if by == "week":
        return table.pkey
    if by == "size":
        return size_bucket(table.gpus)
    column = {"pool": "node_pool"}.get(by, by)
    return table[column].cast("string").fill_null("unknown")


def job_facts(tables: KpiTables, windows: Sequence[Window], by: str | None) -> ir.Table:
    """One row per job (and window) alive in the window, with its clipped and cleaned times.

    A job is alive from submission (or start) until its end; still running or pending, until the
    window end. Terminal jobs without an end time are alive only at their last known instant.
    """
    j = tables.jobs
    first = j.sub.fill_null(j.start)
    skew = j.end.notnull() & j.start.notnull() & (j.end < j.start)
    end = ibis.ifelse(skew, j.start, j.end)
    alive_until = end.fill_null(ibis.ifelse(j.status.isin(OPEN), FOREVER, j.start.fill_null(first)))
    t = attach(j.mutate(end=end, skew=skew), windows, first, alive_until)
    negative_wait = t.sub.notnull() & t.start.notnull() & (t.start < t.sub)
    started_here = t.start.notnull() & (t.start >= t.p0) & (t.start < t.p1)
    return t.mutate(
        g=group_key(t, by),
        bucket=size_bucket(t.gpus),
        missing_end=t.start.notnull() & t.end.isnull() & ~t.status.isin(OPEN),
        negative_wait=negative_wait,
        started_here=started_here,
        wait_h=ibis.ifelse(
            started_here & t.sub.notnull(),
            ibis.greatest(t.start - t.sub, 0.0) / HOUR,
            ibis.null("float64"),
        ),
        interrupted_job=t.status.isin(INTERRUPTED) | (t.attempts > 1),
    )


def _runs(tables: KpiTables) -> ir.Table:
    """Attempts joined to their job, plus one synthetic run per job that has no attempt rows."""
    j = tables.jobs.select(
        "job_id", "user", "team", "cluster", "gpu_model", "node_pool", "gpus", "gpu_util",
        jstatus=tables.jobs.status, jattempts=tables.jobs.attempts,
        jstart=tables.jobs.start, jend=tables.jobs.end,
    )
    # The window runs on the narrow attempts table, before the join widens every row.
    a = tables.attempts
    later = ibis.window(group_by=a.job_id, order_by=a.attempt, rows=(1, None))
    a = a.mutate(next_start=a.start.min().over(later), next_attempt=a.attempt.min().over(later))
    real = a.join(j, "job_id").select(
        *_JOB_COLUMNS, attempt=a.attempt, start=a.start, end=a.end, astatus=a.status,
        ckpt=a.ckpt, next_start=a.next_start, next_attempt=a.next_attempt,
        real=ibis.literal(True),
    )
    alone = j.anti_join(tables.attempts, "job_id")
    synthetic = alone.select(
        *_JOB_COLUMNS,
        attempt=alone.jattempts.cast("int64"), start=alone.jstart, end=alone.jend,
        astatus=ibis.null("string"), ckpt=ibis.null("float64"),
        next_start=ibis.null("float64"), next_attempt=ibis.null("int64"),
        real=ibis.literal(False),
    )
    runs = real.union(synthetic)
    d = tables.diagnoses
    return runs.left_join(d, ["job_id", "attempt"]).select(
        *[runs[c] for c in runs.columns],
        diag_category=d.category, diag_owner=d.owner, diagnosed_at=d.diagnosed_at,
    )


_JOB_COLUMNS = (
    "job_id", "user", "team", "cluster", "gpu_model", "node_pool", "gpus", "gpu_util",
    "jstatus", "jattempts",
)


def run_facts(tables: KpiTables, windows: Sequence[Window], by: str | None) -> ir.Table:
    """One row per run (and window) touching the window, with every per-run KPI term.

    Columns (GPU-hours ``*_gh``, hours ``*_h``): ``gpu_h`` allocated; ``prod_gh`` kept progress;
    ``lost_gh`` progress lost since the last checkpoint (whole run when there is none);
    ``requeue_gh`` the gap before the next attempt started; ``window_gh`` the ETTR denominator
    (run start to next start, i.e. including the re-queue gap); ``fail_here`` the run was
    interrupted inside the window; ``repair_h`` / ``detect_h`` time to run again / to diagnosis.
    """
    r = _runs(tables)
    status = r.astatus.fill_null(ibis.ifelse(r.next_attempt.isnull(), r.jstatus, "failed"))
    skew = r.end.notnull() & r.start.notnull() & (r.end < r.start)
    is_open = r.end.isnull() & (status == "running")
    r = r.mutate(
        status=status,
        is_open=is_open,
        # Data-quality flags count attempt rows only: a synthetic run repeats its job's flags.
        skew=skew & r.real,
        missing_end=r.start.notnull() & r.end.isnull() & ~is_open & r.real,
        end=ibis.ifelse(skew, r.start, r.end),
    )
    lo = r.start.fill_null(r.end)
    # A run reaches to the next attempt's start: the re-queue gap belongs to it (ETTR, MTTR).
    reach = ibis.greatest(r.end.fill_null(lo), r.next_start.fill_null(lo))
    hi = ibis.ifelse(r.is_open, FOREVER, reach)
    t = attach(r, windows, lo, hi)
    # An open run ends at the window end; a finished one without an end time has length 0.
    end = ibis.ifelse(t.is_open, t.p1, t.end.fill_null(t.start))
    interrupted = t.status.isin(INTERRUPTED)
    fallback = ibis.cases(
        (t.status == "timeout", "timeout"), (t.status == "preempted", "preemption"),
        else_="unknown",
    )
    category = t.diag_category.fill_null(fallback)
    owner = t.diag_owner.fill_null(fallback.substitute(_FALLBACK_OWNER, else_="unknown"))
    no_ckpt = t.ckpt.isnull() | (t.ckpt <= t.start)
    # Work after the last checkpoint is lost; with no checkpoint (or none since the run
    # started) the whole run is. LEAST/GREATEST skip NULLs, hence the explicit test.
    kept_until = ibis.ifelse(
        t.ckpt.isnull() | t.start.isnull(), t.start, ibis.least(ibis.greatest(t.ckpt, t.start), end)
    )
    lost_from = ibis.ifelse(interrupted, kept_until, end)
    fail_here = interrupted & end.notnull() & (end >= t.p0) & (end < t.p1)
    restarted = fail_here & t.next_start.notnull()
    diagnosed = fail_here & t.diagnosed_at.notnull()
    run_s = overlap_seconds(t.start, end, t.p0, t.p1)
    return t.mutate(
        g=group_key(t, by),
        bucket=size_bucket(t.gpus),
        interrupted=interrupted,
        category=ibis.ifelse(interrupted, category, ""),
        owner=ibis.ifelse(interrupted, owner, ""),
        lost_kind=ibis.cases(
            (~interrupted, ""), (category == "hang", "hang"), (no_ckpt, "no_checkpoint"),
            else_="since_checkpoint",
        ),
        run_h=run_s / HOUR,
        gpu_h=t.gpus * run_s / HOUR,
        prod_gh=t.gpus * overlap_seconds(t.start, lost_from, t.p0, t.p1) / HOUR,
        lost_gh=t.gpus * overlap_seconds(lost_from, end, t.p0, t.p1) / HOUR,
        requeue_gh=ibis.ifelse(
            interrupted, t.gpus * overlap_seconds(end, t.next_start, t.p0, t.p1) / HOUR, 0.0
        ),
        window_gh=t.gpus * overlap_seconds(t.start, t.next_start.fill_null(end), t.p0, t.p1) / HOUR,
        fail_here=fail_here,
        repair_h=ibis.ifelse(
            restarted, ibis.greatest(t.next_start - end, 0.0) / HOUR, ibis.null("float64")
        ),
        detect_h=ibis.ifelse(
            diagnosed, ibis.greatest(t.diagnosed_at - end, 0.0) / HOUR, ibis.null("float64")
        ),
        util_gh=t.gpu_util * t.gpus * run_s / HOUR,
        util_cov_gh=ibis.ifelse(t.gpu_util.notnull(), t.gpus * run_s / HOUR, 0.0),
    )
