"""The healing controller's effect on the simulated fleet: the same seeds with and without it.

    .venv/bin/python bench/bench_heal_sim.py [--gpus 2048] [--days 30] [--seeds 1 2 3] [--policies F]

Each seed runs twice through ``run_simulation`` (every failure diagnosed from its log bundle by the
real engine): ``--heal off`` (people resubmit what the platform killed, hangs are noticed after
hours) and ``--heal auto`` (the packaged policies, all switched to auto, behind the default guard).
Failure injection and the workload are identical per seed; only what the platform does differs.

Goodput loss is split because the controller can act only on part of it: preemption is the
scheduler's choice and user bugs are the user's, so "infra loss" (GPU-hours lost to platform and
hardware causes, preemption excluded) is the figure the controller is accountable for.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections import Counter
from pathlib import Path
from typing import Any

from fleetmedic.heal.policy import PolicySet, load_policies
from fleetmedic.model.taxonomy import category
from fleetmedic.sim import SimConfig, SimResult
from fleetmedic.sim.engine import INTERRUPTED
from fleetmedic.workflows.simulate import run_simulation


def loss_split(result: SimResult) -> dict[str, float]:
    """GPU-hours lost on interrupted attempts, by who caused them."""
    split = Counter[str]()
    horizon = result.config.horizon
    for a in result.attempts:
        if a.start is None or a.status not in INTERRUPTED:
            continue
        end = horizon if a.end is None else a.end
        hours = ((end - a.start) - a.productive) * a.gpus / 3600.0
        cat = a.category or "unknown"
        if cat == "preemption":
            split["preemption"] += hours
        elif category(cat).owner == "user":
            split["user"] += hours
        else:
            split["infra"] += hours
    allocated = sum(
        ((horizon if a.end is None else a.end) - a.start) * a.gpus / 3600.0
        for a in result.attempts
        if a.start is not None
    )
    return {**split, "allocated": allocated}


def one_run(config: SimConfig, policies: PolicySet | None = None) -> dict[str, Any]:
    began = time.perf_counter()
    summary, result = run_simulation(config, None, policies=policies)
    split = loss_split(result)
    refused = Counter(
        (a.result or "").split(":")[0] for a in result.actions if a.state == "refused"
    )
    return {
        "seconds": time.perf_counter() - began,
        "goodput": summary["goodput"],
        "loss": 1 - summary["goodput"],
        "infra_loss": split["infra"] / split["allocated"],
        "infra_gpu_hours": split["infra"],
        "preemption_gpu_hours": split["preemption"],
        "user_gpu_hours": split["user"],
        "ettr_large": summary["ettr_large_jobs"],
        "recovery_mean_h": summary["recovery_hours"]["mean"],
        "jobs_rescued": summary["jobs_rescued"],
        "cordons": summary["cordons"],
        "false_cordons": summary["false_cordons"],
        "lemon_precision": summary["lemon"]["precision"],
        "lemon_recall": summary["lemon"]["recall"],
        "lemon_ttd_h": summary["lemon"]["time_to_detect_hours"],
        "actions": sum(summary["actions"].values()),
        "refused": dict(refused),
        "diagnosis_accuracy": summary["diagnosis_accuracy"],
    }


ROWS = [
    ("goodput", "{:.4f}"),
    ("loss", "{:.4f}"),
    ("infra_loss", "{:.4f}"),
    ("infra_gpu_hours", "{:,.0f}"),
    ("preemption_gpu_hours", "{:,.0f}"),
    ("user_gpu_hours", "{:,.0f}"),
    ("ettr_large", "{:.4f}"),
    ("recovery_mean_h", "{:.2f}"),
    ("jobs_rescued", "{:.0f}"),
    ("cordons", "{:.0f}"),
    ("false_cordons", "{:.0f}"),
    ("lemon_precision", "{:.2f}"),
    ("lemon_recall", "{:.2f}"),
    ("lemon_ttd_h", "{:.0f}"),
    ("actions", "{:.0f}"),
    ("seconds", "{:.1f}"),
]


def mean(values: list[Any]) -> float | None:
    numbers = [v for v in values if v is not None]
    return statistics.fmean(numbers) if numbers else None


def show(seeds: list[int], runs: dict[tuple[str, int], dict[str, Any]]) -> None:
    print(f"{'figure':<22}" + "".join(f"{f'off s{s}':>12}{f'auto s{s}':>12}" for s in seeds))
    for key, fmt in ROWS:
        cells = []
        for seed in seeds:
            for mode in ("off", "auto"):
                value = runs[(mode, seed)][key]
                cells.append("-" if value is None else fmt.format(value))
        print(f"{key:<22}" + "".join(f"{c:>12}" for c in cells))
    print()
    for mode in ("off", "auto"):
        refused = Counter[str]()
        for seed in seeds:
            refused.update(runs[(mode, seed)]["refused"])
        if refused:
            print(f"refused in {mode}: {dict(refused)}")
    off = {k: mean([runs[("off", s)][k] for s in seeds]) for k, _ in ROWS}
    auto = {k: mean([runs[("auto", s)][k] for s in seeds]) for k, _ in ROWS}
    print(f"\nmeans over seeds {seeds}:")
    for key in ("loss", "infra_loss", "ettr_large", "recovery_mean_h"):
        before, after = off[key], auto[key]
        if before is None or after is None:
            continue
        change = (after - before) / before if before else 0.0
        print(f"  {key:<16} off {before:.4f}  auto {after:.4f}  change {change:+.1%}")
    cordons = sum(runs[("auto", s)]["cordons"] for s in seeds)
    false = sum(runs[("auto", s)]["false_cordons"] for s in seeds)
    rate = false / cordons if cordons else 0.0
    print(f"  false cordons     {false}/{cordons} = {rate:.1%}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gpus", type=int, default=2048)
    parser.add_argument("--days", type=float, default=30.0)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--policies", type=Path, help="policy file (default: the packaged one)")
    args = parser.parse_args()
    policies = load_policies(args.policies) if args.policies else None
    runs = {}
    for seed in args.seeds:
        for mode in ("off", "auto"):
            config = SimConfig(gpus=args.gpus, days=args.days, seed=seed, heal=mode)
            runs[(mode, seed)] = one_run(config, policies)
            print(f"seed {seed} {mode}: {runs[(mode, seed)]['seconds']:.1f} s", flush=True)
    print(f"\n{args.gpus} GPUs, {args.days:g} days, default policies (auto) vs no controller\n")
    show(args.seeds, runs)


if __name__ == "__main__":
    main()
