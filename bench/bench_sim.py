"""Benchmark (and calibration runs) of the fleet simulator.

Usage::

    .venv/bin/python bench/bench_sim.py [--gpus 4096] [--days 30] [--seed 0] [--heal auto]
    .venv/bin/python bench/bench_sim.py --calibration      # the tables of docs/simulator.md

Each measurement runs in its own child process so its peak RSS is its own:

1. ``simulate``: workload generation and the event loop, the platform reading failures from the
   events the cluster recorded (no log analysis), then the bulk write of every table to a fresh
   DuckDB file: the simulator's own cost, the figure the 60-second budget is about;
2. ``simulate + diagnose``: the whole ``fleetmedic simulate`` path, every interrupted attempt's
   bundle built and diagnosed by the unchanged engine, diagnoses stored too.

Prints simulated days per second, jobs, attempts, events (processed by the loop, and stored), wall
and CPU time and peak RSS.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


# ----------------------------------------------------------------------------------------------
# child: one measurement


def _child(mode: str, gpus: int, days: float, seed: int, heal: str) -> dict[str, Any]:
    from fleetmedic.sim import SimConfig, Simulation, generate, load_calibration, load_params
    from fleetmedic.sim.storage import write_result
    from fleetmedic.store import Store
    from fleetmedic.workflows.simulate import run_simulation

    config = SimConfig(gpus=gpus, days=days, seed=seed, heal=heal)  # type: ignore[arg-type]
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "sim.duckdb"
        wall0, cpu0 = time.perf_counter(), time.process_time()
        if mode == "sim":
            calib, params = load_calibration(), load_params()
            jobs = generate(config, params, calib)
            t1 = time.perf_counter()
            result = Simulation(config, jobs, calib).run()
            t2 = time.perf_counter()
            with Store(db) as store:
                write_result(store, result)
            t3 = time.perf_counter()
            out["phases"] = {"generate": t1 - wall0, "loop": t2 - t1, "store": t3 - t2}
        else:
            summary, result = run_simulation(config, db)
            out["accuracy"] = summary["diagnosis_accuracy"]
            out["diagnosed"] = summary["diagnosis"]["total"]
        out["wall"] = time.perf_counter() - wall0
        out["cpu"] = time.process_time() - cpu0
        out["db_mb"] = db.stat().st_size / 1e6
    out["jobs"] = sum(1 for s in result.states if s.status != "future")
    out["attempts"] = len(result.attempts)
    out["loop_events"] = result.counters["events"]
    out["stored_events"] = len(result.events)
    out["failures"] = len(result.truth)
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


def _run_child(mode: str, args: argparse.Namespace) -> dict[str, Any]:
    cmd = [
        sys.executable,
        __file__,
        "--child",
        mode,
        "--gpus",
        str(args.gpus),
        "--days",
        str(args.days),
        "--seed",
        str(args.seed),
        "--heal",
        args.heal,
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=True, cwd=ROOT)
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def bench(args: argparse.Namespace) -> None:
    load = os.getloadavg()
    print(
        f"machine: {platform.platform()}, {os.cpu_count()} CPUs, Python "
        f"{platform.python_version()}, load average {load[0]:.1f}, {load[1]:.1f}, {load[2]:.1f}"
    )
    print(f"scenario: {args.gpus:,} GPUs, {args.days:g} days, seed {args.seed}, heal {args.heal}")
    for mode, label in (("sim", "simulate (+ store)"), ("full", "simulate + diagnose (+ store)")):
        best: dict[str, Any] | None = None
        for _ in range(args.repeat):
            r = _run_child(mode, args)
            if best is None or r["wall"] < best["wall"]:
                best = r
        assert best is not None
        extra = ""
        if "phases" in best:
            p = best["phases"]
            extra = (
                f"; generate {p['generate']:.1f}s, event loop {p['loop']:.1f}s, "
                f"store {p['store']:.1f}s"
            )
        if "accuracy" in best:
            extra = f"; {best['diagnosed']:,} attempts diagnosed, accuracy {best['accuracy']:.3f}"
        print(
            f"{label:32s} {args.days / best['wall']:7.2f} simulated days/s | wall "
            f"{best['wall']:.1f}s, CPU {best['cpu']:.1f}s, peak RSS {best['peak_rss_mb']:.0f} MB"
            f" | jobs {best['jobs']:,}, attempts {best['attempts']:,}, loop events "
            f"{best['loop_events']:,}, stored events {best['stored_events']:,}, failures "
            f"{best['failures']:,}, store {best['db_mb']:.0f} MB{extra}"
        )


# ----------------------------------------------------------------------------------------------
# calibration runs (docs/simulator.md)


def calibration(seed: int) -> None:
    from dataclasses import replace

    from fleetmedic.sim import SimConfig, Simulation, generate, load_calibration, load_params
    from fleetmedic.sim.metrics import calibration as figures
    from fleetmedic.sim.metrics import ettr_large_jobs, summary
    from fleetmedic.workflows.simulate import DiagnoseObserver

    calib, params = load_calibration(), load_params()

    def run(config: SimConfig, jobs: list[Any] | None = None, diagnose: bool = False) -> Any:
        workload = jobs if jobs is not None else generate(config, params, calib)
        observer = DiagnoseObserver() if diagnose else None
        return Simulation(config, workload, calib, observer=observer).run()

    print("## hardware failures per 1000 node-days (12,000 GPUs, 90 days, no workload)")
    for profile, published in (("rsc1", 6.50), ("rsc2", 2.34)):
        cfg = SimConfig(
            gpus=12_000,
            days=90,
            seed=seed,
            workload=False,
            pretrain={"share": 0},
            hardware_profile=profile,
        )  # type: ignore[arg-type]
        res = run(cfg)
        rate = 1000 * len(res.hardware) / (cfg.nodes * cfg.days)
        print(f"| {profile} | {rate:.2f} | {published} | {len(res.hardware)} failures |")

    print("\n## job MTTF vs size (RSC-1, heal auto, 60 days; 300 one-node jobs + one 1,024-GPU)")
    cfg = SimConfig(gpus=4096, days=60, seed=seed, workload=False, heal="auto")
    base = generate(cfg, params, calib)
    single = [
        replace(
            base[0],
            idx=i,
            job_id=f"probe-{i}",
            name=f"probe-{i}",
            gpus=8,
            priority=100,
            pool="gpu-a100" if i < 100 else "gpu-h100",
        )
        for i in range(1, 301)
    ]
    res = run(cfg, [base[0], *single])
    mttf = figures(res, calib, params)["job_mttf"]
    r_f = calib.hardware.node_failure_rate_per_1000_node_days["rsc1"].value / 1000
    for key, nodes in (("gpus_8", 1), ("gpus_1024", 128)):
        row = mttf[key]
        naive = 24 / (nodes * r_f)
        print(
            f"| {key.removeprefix('gpus_')} | {row['simulated_hours']} h | "
            f"{row['published_hours']:.1f} h | {naive:.1f} h | {row['failures']} failures in "
            f"{row['job_hours']:,.0f} job-hours |"
        )

    print("\n## ETTR of the 1,024-GPU run vs checkpoint interval (heal auto, diagnosed, 60 days)")
    print("| interval | simulated ETTR | 1 - (u0 + dt/2)/MTTF - s/dt | MTTF | u0 |")
    for minutes in (15, 30, 60, 120, 240):
        cfg = SimConfig(
            gpus=4096,
            days=60,
            seed=seed,
            workload=False,
            heal="auto",
            pretrain={"share": 0.25, "checkpoint_minutes": minutes},
        )
        res = run(cfg, diagnose=True)
        print(_ettr_row(cfg, res, minutes, ettr_large_jobs(res)))

    print("\n## 30-day fleet (4,096 GPUs, diagnosed) against the trace summaries")
    for heal in ("off", "auto"):
        cfg = SimConfig(gpus=4096, days=30, seed=seed, heal=heal)  # type: ignore[arg-type]
        s = summary(run(cfg, diagnose=True), None, calib, params)
        print(
            heal,
            json.dumps(s["calibration"]),
            "goodput",
            s["goodput"],
            "ettr_large",
            s["ettr_large_jobs"],
            "utilization",
            s["utilization"],
        )


def _ettr_row(cfg: Any, res: Any, minutes: int, ettr: float | None) -> str:
    """Simulated ETTR next to the first-order estimate from the run's own MTTF and overheads.

    u0 (time lost per failure besides the lost work) = restart overhead + detection (cause to
    attempt end) + re-queue gap (attempt end to next start), all measured in the run.
    """
    job = res.jobs[0]
    runs = [a for a in res.attempts if a.job == 0 and a.start is not None]
    hours = sum(((cfg.horizon if a.end is None else a.end) - a.start) for a in runs) / 3600
    fails = [t for t in res.truth if t.job_id == job.job_id and t.category != "preemption"]
    mttf = hours / max(1, len(fails))
    detect = sum(t.end - t.at for t in fails) / max(1, len(fails))
    gaps = [b.start - a.end for a, b in itertools.pairwise(runs) if a.end is not None]
    u0 = (job.restart + detect + (sum(gaps) / len(gaps) if gaps else 0.0)) / 3600
    dt, save = minutes / 60, job.save / 3600
    approx = 1 - (u0 + dt / 2) / mttf - save / dt
    return f"| {minutes} min | {ettr or 0:.3f} | {approx:.3f} | {mttf:.1f} h | {u0 * 60:.0f} min |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gpus", type=int, default=4096)
    parser.add_argument("--days", type=float, default=30.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--heal", default="auto", choices=["off", "dry-run", "auto"])
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--calibration", action="store_true")
    parser.add_argument("--child", choices=["sim", "full"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(_child(args.child, args.gpus, args.days, args.seed, args.heal)))
    elif args.calibration:
        calibration(args.seed)
    else:
        bench(args)


if __name__ == "__main__":
    main()
