"""Benchmark ``fleetmedic import acme`` on synthetic AcmeTrace jobs, Parquet and CSV.

Generates N jobs in the AcmeTrace ``trace_seren.csv`` schema (default 1,000,000) as Parquet and as
CSV, times the import of each into a fresh store (best of ``--repeat`` runs; each run opens the
store, imports jobs and attempts, commits and closes), and prints jobs/s. In the same run it times
a naive reference, pandas ``read_csv`` plus a row-by-row ``executemany`` insert, on a smaller slice
and extrapolates it to N; the ratio compares the two on the same CSV.

    .venv/bin/python bench/bench_import.py                # 1,000,000 jobs
    .venv/bin/python bench/bench_import.py -n 200000 --naive-n 2000 --repeat 1
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import duckdb
import pandas as pd

from fleetmedic.sources.traces import import_traces
from fleetmedic.sources.traces.sql import SLURM_STATES
from fleetmedic.store import Store

# Deterministic pseudo-random columns from the row number, shaped like Seren: mostly 1-8 GPU jobs,
# a few very large ones, LLM workload types, Slurm final states in roughly Acme's proportions.
_JOBS_SQL = """
SELECT
    5000000 + i AS job_id,
    'u' || lpad(CAST(hash(i, 1) % 5000 AS VARCHAR), 4, '0') AS "user",
    greatest(1, gpus // 8) AS node_num,
    gpus AS gpu_num,
    greatest(8, gpus * 16) AS cpu_num,
    ['Other', 'Pretrain', 'SFT', 'Evaluation', 'Debug', 'MLLM'][1 + CAST(hash(i, 2) % 6 AS BIGINT)] AS "type",
    CASE WHEN s < 50 THEN 'COMPLETED' WHEN s < 90 THEN 'FAILED' WHEN s < 98 THEN 'CANCELLED'
         WHEN s < 99 THEN 'TIMEOUT' ELSE 'NODE_FAIL' END AS state,
    submit AS submit_time,
    submit + to_seconds(queue) AS start_time,
    submit + to_seconds(queue + duration) AS end_time,
    duration, queue, CAST(duration * gpus AS DOUBLE) AS gpu_time
FROM (
    SELECT i,
        [0, 1, 1, 1, 2, 4, 8, 8, 16, 64, 256, 1024][1 + CAST(hash(i, 3) % 12 AS BIGINT)] AS gpus,
        CAST(hash(i, 4) % 100 AS BIGINT) AS s,
        TIMESTAMPTZ '2023-03-01 00:00:00+08:00' + to_seconds(CAST(hash(i, 5) % 15552000 AS BIGINT)) AS submit,
        CAST(hash(i, 6) % 3600 AS BIGINT) AS queue,
        CAST(1 + hash(i, 7) % 86400 AS BIGINT) AS duration
    FROM range({n}) t(i))
"""


def generate(folder: Path, n: int) -> tuple[Path, Path]:
    """Write ``trace_seren.parquet`` (typed times) and ``trace_seren.csv`` (``+08:00`` strings)."""
    parquet, csv = folder / "trace_seren.parquet", folder / "trace_seren.csv"
    con = duckdb.connect()
    con.execute("SET TimeZone = 'Asia/Shanghai'")
    con.execute(f"CREATE TABLE jobs AS {_JOBS_SQL.format(n=n)}")
    con.execute(f"COPY jobs TO '{parquet}' (FORMAT parquet)")
    times = ", ".join(
        f"strftime({c}, '%Y-%m-%d %H:%M:%S+08:00') AS {c}"
        for c in ("submit_time", "start_time", "end_time")
    )
    con.execute(f"COPY (SELECT * REPLACE ({times}) FROM jobs) TO '{csv}' (FORMAT csv, HEADER)")
    con.close()
    return parquet, csv


def best_of(
    repeat: int, run: Callable[[], tuple[float, float]]
) -> tuple[float, float, list[float]]:
    """Best wall time of ``repeat`` runs, the CPU seconds of that run, and all wall times."""
    runs = [run() for _ in range(repeat)]
    wall, cpu = min(runs)
    return wall, cpu, [w for w, _ in runs]


def time_import(path: Path, folder: Path) -> tuple[float, float]:
    """Wall and CPU seconds to import ``path`` into a new store, as ``fleetmedic import acme``."""
    db = folder / "bench.duckdb"
    for stale in (db, db.with_suffix(".duckdb.wal")):
        stale.unlink(missing_ok=True)
    started, cpu = time.perf_counter(), time.process_time()
    with Store(db) as store:
        report = import_traces(store, "acme", [path])
    elapsed = time.perf_counter() - started
    assert report.files[0].rows_bad == 0, report.files[0].bad_reasons
    return elapsed, time.process_time() - cpu


def time_naive(csv: Path, folder: Path, rows: int) -> float:
    """The reference: pandas reads the CSV, Python normalizes and inserts row by row."""
    db = folder / "naive.duckdb"
    for stale in (db, db.with_suffix(".duckdb.wal")):
        stale.unlink(missing_ok=True)
    started = time.perf_counter()
    frame = pd.read_csv(csv, nrows=rows)
    with Store(db) as store:
        jobs, attempts = [], []
        for row in frame.itertuples(index=False):
            job_id = f"acme-seren:{row.job_id}"
            status = SLURM_STATES[str(row.state).split(" ")[0]]
            submitted = pd.Timestamp(row.submit_time).tz_convert("UTC").tz_localize(None)
            start = pd.Timestamp(row.start_time).tz_convert("UTC").tz_localize(None)
            end = pd.Timestamp(row.end_time).tz_convert("UTC").tz_localize(None)
            jobs.append(
                (
                    job_id,
                    "acme",
                    "seren",
                    row.user,
                    float(row.gpu_num),
                    int(row.node_num),
                    submitted.to_pydatetime(),
                    start.to_pydatetime(),
                    end.to_pydatetime(),
                    status,
                )
            )
            attempts.append((job_id, 1, start.to_pydatetime(), end.to_pydatetime(), status))
        store.con.executemany(
            'INSERT OR REPLACE INTO jobs (job_id, source, cluster, "user", num_gpus, num_nodes, '
            "submitted_at, started_at, ended_at, status) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            jobs,
        )
        store.con.executemany(
            "INSERT OR REPLACE INTO attempts (job_id, attempt, started_at, ended_at, status) "
            "VALUES (?, ?, ?, ?, ?)",
            attempts,
        )
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=1_000_000, help="synthetic jobs (1,000,000)")
    parser.add_argument("--naive-n", type=int, default=2_000, help="rows for the naive reference")
    parser.add_argument("--repeat", type=int, default=3, help="runs per input; the best counts")
    parser.add_argument("--dir", type=Path, default=None, help="work folder (default: a temp dir)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        folder = Path(tmp)
        t0 = time.perf_counter()
        parquet, csv = generate(folder, args.n)
        load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
        print(
            f"machine: {platform.platform()}, {os.cpu_count()} CPUs, duckdb {duckdb.__version__}, "
            f"load average {load}"
        )
        print(
            f"generated {args.n:,} Acme-schema jobs in {time.perf_counter() - t0:.1f}s: "
            f"Parquet {parquet.stat().st_size / 1e6:.0f} MB, CSV {csv.stat().st_size / 1e6:.0f} MB"
        )
        results = {}
        for label, path in (("Parquet", parquet), ("CSV", csv)):
            best, cpu, runs = best_of(args.repeat, lambda p=path: time_import(p, folder))
            results[label] = args.n / best
            runs_text = ", ".join(f"{r:.2f}" for r in runs)
            print(
                f"fleetmedic import acme ({label:7}): {args.n / best:>11,.0f} jobs/s "
                f"(best {best:.2f}s wall, {cpu:.2f}s CPU; runs {runs_text} s)"
            )
        naive = time_naive(csv, folder, args.naive_n)
        naive_rate = args.naive_n / naive
        print(
            f"naive reference (pandas read_csv + row-by-row executemany, {args.naive_n:,} rows, "
            f"EXTRAPOLATED to {args.n:,}): {naive_rate:>9,.0f} jobs/s "
            f"({naive:.2f}s measured, ~{args.n / naive_rate:,.0f}s estimated for {args.n:,})"
        )
        print(f"ratio, fleetmedic CSV / naive CSV: {results['CSV'] / naive_rate:,.0f}x")
        print(f"ratio, fleetmedic Parquet / naive CSV: {results['Parquet'] / naive_rate:,.0f}x")


if __name__ == "__main__":
    main()
