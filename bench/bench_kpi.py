"""Benchmark the KPI suite on a synthetic fleet: Ibis on DuckDB vs the same KPIs naively in pandas.

Not a test. Generates (once) a fleetmedic store with 1M jobs, 5M attempts and 20M events inside
DuckDB (``range()`` and hashing: no Python loop, deterministic), then times in separate child
processes, so each peak RSS is its own:

1. ``compute_kpis`` over the whole store (and ``fleetmedic.kpi.priorities`` when it exists);
2. the same core KPIs computed naively in pandas (tables loaded into DataFrames, groupby/apply),
   as the reference ratio, and checks that both agree.

Usage::

    .venv/bin/python bench/bench_kpi.py [--db /tmp/fleetmedic-bench.duckdb] [--jobs 1000000]
        [--attempts-per-job 5] [--events 20000000] [--regenerate] [--skip-pandas]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import resource
import statistics
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

DEFAULT_DB = Path("/tmp/fleetmedic-bench.duckdb")
BASE = "TIMESTAMP '2024-01-01 00:00:00'"
DAYS = 180
NOW = "2024-07-01T00:00:00"
"""The benchmark's fixed "now" (just after the last submission), so both sides clip alike."""


def _u(expr: str, salt: int) -> str:
    """A deterministic pseudo-random number in [0, 1) from an integer expression."""
    return f"((hash({expr}, {salt}) % 1000003) / 1000003.0)"


def _generate_sql(jobs: int, per_job: int, events: int) -> list[str]:
    """SQL that fills the store; every random draw is a hash so the fleet is reproducible."""
    max_attempts = 2 * per_job - 1  # uniform 1..max_attempts has mean per_job
    size = _u("i", 1)
    status = _u("i", 2)
    return [
        f"""
        CREATE TEMP TABLE base AS
        SELECT i,
               CASE WHEN {size} < 0.60 THEN 1 WHEN {size} < 0.70 THEN 4 WHEN {size} < 0.85 THEN 8
                    WHEN {size} < 0.95 THEN 32 WHEN {size} < 0.99 THEN 128
                    WHEN {size} < 0.998 THEN 512 ELSE 2048 END AS gpus,
               -- running and pending only among the jobs of the last two days
               CASE WHEN {status} < 0.50 THEN 'succeeded' WHEN {status} < 0.80 THEN 'failed'
                    WHEN {status} < 0.90 THEN 'cancelled' WHEN {status} < 0.95 THEN 'timeout'
                    WHEN {_u("i", 3)} < 1 - 2.0 / {DAYS} THEN 'preempted'
                    WHEN {status} < 0.97 THEN 'preempted' WHEN {status} < 0.99 THEN 'running'
                    ELSE 'pending' END AS status,
               {BASE} + to_seconds(CAST({_u("i", 3)} * {DAYS} * 86400 AS BIGINT)) AS submitted,
               CAST(pow({_u("i", 4)}, 3) * 36000 AS BIGINT) AS wait_s,
               CAST(60 + pow({_u("i", 5)}, 2) * 14400 AS BIGINT) AS run_s,
               CAST({_u("i", 6)} * 1800 AS BIGINT) AS gap_s,
               1 + CAST(floor({_u("i", 7)} * {max_attempts}) AS BIGINT) AS n_attempts
        FROM range({jobs}) t(i)
        """,
        f"""
        INSERT INTO jobs (job_id, source, cluster, "user", team, project, kind, framework,
                          num_gpus, num_nodes, priority, queue, gpu_model, node_pool,
                          submitted_at, started_at, ended_at, status, attempts, exit_code,
                          gpu_util)
        SELECT 'j' || i, 'bench', 'c' || (i % 3), 'u' || (hash(i, 8) % 5000),
               't' || (hash(i, 9) % 60), 'p' || (hash(i, 10) % 20000), 'train', 'pytorch',
               gpus, greatest(gpus // 8, 1), 0, 'q' || (i % 4),
               CASE WHEN i % 3 = 0 THEN 'H100' ELSE 'A100' END, 'pool-' || (i % 5),
               submitted,
               CASE WHEN status = 'pending' THEN NULL
                    ELSE submitted + to_seconds(wait_s) END,
               CASE WHEN status IN ('pending', 'running') THEN NULL
                    ELSE submitted + to_seconds(wait_s + n_attempts * (run_s + gap_s)) END,
               status, n_attempts, NULL,
               CASE WHEN i % 2 = 0 THEN {_u("i", 11)} END
        FROM base
        """,
        f"""
        INSERT INTO attempts (job_id, attempt, nodes, started_at, ended_at, status, exit_code,
                              reason, last_checkpoint_at)
        SELECT 'j' || i, k, NULL,
               submitted + to_seconds(wait_s + (k - 1) * (run_s + gap_s)),
               CASE WHEN k = n_attempts AND status = 'running' THEN NULL
                    ELSE submitted + to_seconds(wait_s + (k - 1) * (run_s + gap_s) + run_s) END,
               CASE WHEN k < n_attempts THEN
                         CASE WHEN {_u("i * 16 + k", 12)} < 0.8 THEN 'failed' ELSE 'preempted' END
                    ELSE status END,
               NULL, NULL,
               CASE WHEN {_u("i * 16 + k", 13)} < 0.6 THEN
                    submitted + to_seconds(wait_s + (k - 1) * (run_s + gap_s)
                                           + CAST(run_s * {_u("i * 16 + k", 14)} AS BIGINT))
               END
        FROM (SELECT *, unnest(range(1, n_attempts + 1)) AS k FROM base
              WHERE status <> 'pending')
        """,
        f"""
        INSERT INTO diagnoses (job_id, attempt, category, owner, confidence, signature,
                               summary, node_id, diagnosed_at)
        SELECT a.job_id, a.attempt, c.category, c.owner, 0.9, c.category || '.sig', '',
               'n' || (hash(a.job_id) % 8192),
               a.ended_at + to_seconds(CAST({_u("a.attempt", 15)} * 600 AS BIGINT))
        FROM attempts a
        JOIN (VALUES (0, 'gpu_oom', 'user'), (1, 'nccl_comm', 'platform'),
                     (2, 'gpu_hardware', 'hardware'), (3, 'code_error', 'user'),
                     (4, 'node_failure', 'hardware'), (5, 'hang', 'platform'),
                     (6, 'storage_io', 'platform'), (7, 'preemption', 'platform'))
             AS c(n, category, owner) ON c.n = hash(a.job_id, a.attempt) % 8
        WHERE a.status IN ('failed', 'preempted', 'timeout') AND hash(a.job_id, a.attempt) % 10 < 8
        """,
        f"""
        INSERT INTO nodes (node_id, gpu_model, gpus, pool, cordoned, first_seen, last_seen)
        SELECT 'n' || i, CASE WHEN i % 3 = 0 THEN 'H100' ELSE 'A100' END, 8, 'pool-' || (i % 5),
               FALSE, {BASE}, NULL
        FROM range(8192) t(i)
        """,
        f"""
        INSERT INTO events (event_id, ts, source, kind, object, reason, message, severity)
        SELECT 'e' || i, {BASE} + to_seconds(CAST({_u("i", 16)} * {DAYS} * 86400 AS BIGINT)),
               'k8s', CASE WHEN i % 4 = 0 THEN 'Warning' ELSE 'Normal' END,
               'pod/j' || (i % {jobs}), 'Started', 'container started', 'info'
        FROM range({events}) t(i)
        """,
    ]


def generate(db: Path, jobs: int, per_job: int, events: int) -> dict[str, Any]:
    from fleetmedic.store import Store

    db.unlink(missing_ok=True)
    started = time.perf_counter()
    with Store(db) as store:
        for sql in _generate_sql(jobs, per_job, events):
            store.con.execute(sql)
        store.con.execute("CHECKPOINT")
        counts = {
            t: store.con.execute(f"SELECT count(*) FROM {t}").fetchall()[0][0]
            for t in ("jobs", "attempts", "diagnoses", "nodes", "events")
        }
    return {"seconds": time.perf_counter() - started, "counts": counts}


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def run_kpi(db: Path, repeat: int) -> dict[str, Any]:
    """Time ``compute_kpis`` (then priorities) ``repeat`` times on the read-only store."""
    from fleetmedic.kpi import compute_kpis
    from fleetmedic.store import Store

    out: dict[str, Any] = {"kpi_seconds": [], "priorities_seconds": []}
    with Store(db, read_only=True) as store:
        for _ in range(repeat):
            started = time.perf_counter()
            result = compute_kpis(store, now=datetime.fromisoformat(NOW))
            out["kpi_seconds"].append(time.perf_counter() - started)
        out["kpi_rss_mb"] = _peak_rss_mb()
        if importlib.util.find_spec("fleetmedic.kpi.priorities") is not None:
            import ibis

            from fleetmedic.kpi.priorities import priorities_report

            backend = ibis.duckdb.from_connection(store.con)
            for _ in range(repeat):
                started = time.perf_counter()
                priorities_report(backend, now=datetime.fromisoformat(NOW))
                out["priorities_seconds"].append(time.perf_counter() - started)
    out["rss_mb"] = _peak_rss_mb()
    out["summary"] = _summary(result)
    return out


def _summary(result: dict[str, Any]) -> dict[str, Any]:
    """The figures both implementations compute, for the agreement check."""
    return {
        "jobs": result["jobs"]["total"],
        "succeeded_share": result["jobs"]["by_status"]["succeeded"],
        "gpu_hours": result["gpu_hours"]["total"],
        "failed_gpu_share": result["gpu_hours"]["by_status"]["failed"],
        "goodput": result["goodput"],
        "ettr": result["ettr"],
        "mttr_hours": result["mttr_hours"],
        "queue_p50": result["queue_wait_hours"]["p50"],
        "queue_p99": result["queue_wait_hours"]["p99"],
    }


def run_pandas(db: Path) -> dict[str, Any]:
    """The core KPIs the naive way: whole tables in DataFrames, per-job groupby/apply."""
    import duckdb
    import numpy as np
    import pandas as pd

    started = time.perf_counter()
    con = duckdb.connect(str(db), read_only=True)
    jobs = con.execute("SELECT * FROM jobs").df()
    attempts = con.execute("SELECT * FROM attempts").df()
    con.close()
    loaded = time.perf_counter() - started

    # Period: first submission to the latest timestamp, or now while jobs are running/pending.
    now = pd.Timestamp(NOW)
    end = max(jobs[["submitted_at", "started_at", "ended_at"]].max().max(), now)
    h = pd.Timedelta(hours=1)
    shares = jobs["status"].value_counts(normalize=True)

    merged = attempts.merge(jobs[["job_id", "num_gpus", "status"]], on="job_id",
                            suffixes=("", "_job"))
    merged = merged.sort_values(["job_id", "attempt"])
    merged["ended"] = merged["ended_at"].fillna(end)

    def per_job(group: pd.DataFrame) -> pd.Series:  # the naive part: one Python call per job
        starts, ends = group["started_at"].to_numpy(), group["ended"].to_numpy()
        ckpt, status = group["last_checkpoint_at"].to_numpy(), group["status"].to_numpy()
        gpus = group["num_gpus"].iloc[0]
        run = (ends - starts) / h
        failed = np.isin(status, ["failed", "timeout", "preempted"])
        kept_until = np.where(pd.isna(ckpt), starts, np.clip(ckpt, starts, ends))
        prod = np.where(failed, (kept_until - starts) / h, run)
        repairs = [(starts[i + 1] - ends[i]) / h for i in range(len(starts) - 1) if failed[i]]
        return pd.Series({
            "gpu_h": gpus * run.sum(), "prod_gh": gpus * prod.sum(),
            "window_gh": gpus * (ends[-1] - starts[0]) / h,
            "repair_sum": sum(repairs), "repairs": len(repairs),
            "status": group["status_job"].iloc[0],
        })

    per = merged.groupby("job_id", sort=False).apply(per_job, include_groups=False)
    gpu_by_status = per.groupby("status")["gpu_h"].sum()
    waits = ((jobs["started_at"] - jobs["submitted_at"]) / h).dropna()
    summary = {
        "jobs": len(jobs),
        "succeeded_share": float(shares.get("succeeded", 0.0)),
        "gpu_hours": float(per["gpu_h"].sum()),
        "failed_gpu_share": float(gpu_by_status.get("failed", 0.0) / per["gpu_h"].sum()),
        "goodput": float(per["prod_gh"].sum() / per["gpu_h"].sum()),
        "ettr": float(per["prod_gh"].sum() / per["window_gh"].sum()),
        "mttr_hours": float(per["repair_sum"].sum() / per["repairs"].sum()),
        "queue_p50": float(waits.quantile(0.5)),
        "queue_p99": float(waits.quantile(0.99)),
    }
    return {
        "seconds": time.perf_counter() - started,
        "load_seconds": loaded,
        "rss_mb": _peak_rss_mb(),
        "summary": summary,
    }


def _child(step: str, db: Path, repeat: int) -> dict[str, Any]:
    """Run one step in a fresh interpreter so its peak RSS is measured alone."""
    proc = subprocess.run(
        [sys.executable, __file__, "--child", step, "--db", str(db), "--repeat", str(repeat)],
        check=True, capture_output=True, text=True,
    )
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def _agreement(a: dict[str, Any], b: dict[str, Any]) -> dict[str, float]:
    """Relative difference per figure (both sides use the same fixed "now")."""
    return {k: abs(a[k] - b[k]) / max(abs(b[k]), 1e-12) for k in a if a[k] is not None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, default=DEFAULT_DB)
    parser.add_argument("--jobs", type=int, default=1_000_000)
    parser.add_argument("--attempts-per-job", type=int, default=5)
    parser.add_argument("--events", type=int, default=20_000_000)
    parser.add_argument("--regenerate", action="store_true")
    parser.add_argument("--skip-pandas", action="store_true")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs of the Ibis suite")
    parser.add_argument("--child", choices=["kpi", "pandas"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        result = run_kpi(args.db, args.repeat) if args.child == "kpi" else run_pandas(args.db)
        print(json.dumps(result))
        return

    if args.regenerate or not args.db.exists():
        made = generate(args.db, args.jobs, args.attempts_per_job, args.events)
        print(f"generated {made['counts']} in {made['seconds']:.1f} s -> {args.db}")
    kpi = _child("kpi", args.db, args.repeat)
    suite, prio = kpi["kpi_seconds"], kpi["priorities_seconds"]
    rows = [("compute_kpis (Ibis on DuckDB)", suite, kpi["kpi_rss_mb"])]
    if prio:
        rows.append(("priorities_report (Ibis on DuckDB)", prio, kpi["rss_mb"]))
        both = [a + b for a, b in zip(suite, prio, strict=True)]
        rows.append(("KPI suite + priorities", both, kpi["rss_mb"]))
    if not args.skip_pandas:
        naive = _child("pandas", args.db, 1)
        rows.append(("naive pandas (core KPIs only)", [naive["seconds"]], naive["rss_mb"]))
        rows.append(("  of which loading tables", [naive["load_seconds"]], float("nan")))
    print(f"\n{'step':<38} {'first s':>8} {'best s':>8} {'median s':>9} {'peak RSS MB':>12}")
    for name, seconds, rss in rows:
        print(f"{name:<38} {seconds[0]:>8.2f} {min(seconds):>8.2f} "
              f"{statistics.median(seconds):>9.2f} {rss:>12.0f}")
    if not args.skip_pandas:
        ratio = naive["seconds"] / statistics.median(suite)
        print(f"\npandas / Ibis time ratio: {ratio:.1f}x (pandas computes a subset of the KPIs)")
        diffs = _agreement(kpi["summary"], naive["summary"])
        worst = max(diffs, key=diffs.__getitem__)
        print(f"largest relative difference on shared KPIs: {diffs[worst]:.1e} ({worst})")


if __name__ == "__main__":
    main()
