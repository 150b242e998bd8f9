"""Fit the simulator's workload parameters to the real data and write ``sim/params.yaml``.

Usage::

    .venv/bin/python bench/fit_sim_params.py [--data /work/shared/data] [--out src/fleetmedic/sim/params.yaml]

The product never reads ``/work/shared``: this script is the one bridge. It writes numbers only
(no rows, no ids), each block with the file it came from and that file's licence, so that what ships
is a handful of fitted constants. The fits, and why each is the shape it is:

* **Job size** (GPUs per job, powers of two): the public summaries give only the mean, median and
  maximum, so the family has two parameters: ``p1`` = P(1 GPU) (an assumption, 0.6, that keeps the
  median at 1 as every trace has it) and a geometric tail over 2, 4, ... max whose ratio ``alpha``
  is solved to reproduce the mean.
* **Duration**: log-normal given size and final state, ``ln d ~ N(delta_state + beta ln g, sigma)``.
  ``beta`` follows from E[g d] / E[d] (GPU time per job over run time per job), ``delta_state``
  from the GPU time by final state, ``sigma`` from the median run time.
* **Arrivals**: the diurnal (hour of day) and weekly shape of the Venus 10-minute GPU-job
  submission counts, and the day-to-day coefficient of variation left after the weekly shape.
* **Teams**: quota shares of the eight largest Venus virtual clusters.
* **GPU utilisation**: the quantile function of Kalos' DCGM GPU_UTIL CDF.
* **GPU faults and lemons** (Titan): the DBE vs off-the-bus split, and a two-class Poisson mixture of
  fault counts per GPU location with exposure (EM), whose minority class is the "lemon" share and
  rate multiplier.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

P1 = 0.6
"""Assumed P(job uses 1 GPU): every trace has median 1; the summaries do not give the share."""

PROFILES = {
    # profile: (file, row, licence)
    "kalos": ("acme/cluster_summary.csv", "Kalos", "CC BY 4.0 (InternLM/AcmeTrace)"),
    "seren": ("acme/cluster_summary.csv", "Seren", "CC BY 4.0 (InternLM/AcmeTrace)"),
    "philly": (
        "acme/cluster_summary.csv",
        "Philly",
        "CC BY 4.0 (msr-fiddle/philly-traces, via Acme)",
    ),
    "helios": ("acme/cluster_summary.csv", "Helios", "CC BY 4.0 (HeliosData, via Acme)"),
}
STATES = ("complete", "cancel", "fail")
STATE_NAMES = {"complete": "succeeded", "cancel": "cancelled", "fail": "failed"}


def _round(value: float, digits: int = 6) -> float:
    if value == 0 or not math.isfinite(value):
        return float(value)
    return float(f"{value:.{digits}g}")


def _bisect(fn: Any, lo: float, hi: float, iters: int = 200) -> float:
    """Root of a monotone function on [lo, hi] (sign change required)."""
    flo = fn(lo)
    for _ in range(iters):
        mid = (lo + hi) / 2
        fmid = fn(mid)
        if (fmid > 0) == (flo > 0):
            lo, flo = mid, fmid
        else:
            hi = mid
    return (lo + hi) / 2


def size_pmf(p1: float, alpha: float, kmax: int) -> tuple[np.ndarray, np.ndarray]:
    sizes = 2.0 ** np.arange(kmax + 1)
    tail = alpha ** np.arange(1, kmax + 1)
    pmf = np.concatenate([[p1], (1 - p1) * tail / tail.sum()])
    return sizes, pmf


def fit_size(mean: float, max_gpu: float) -> dict[str, Any]:
    kmax = round(math.log2(max(max_gpu, 2)))
    p1 = P1
    if mean <= p1 + (1 - p1) * 2:  # even all-2-GPU tails overshoot: shrink the tail mass
        p1 = (2 - mean) / 1.0
    alpha = _bisect(lambda a: float(np.dot(*size_pmf(p1, a, kmax))) - mean, 1e-4, 8.0)
    sizes, pmf = size_pmf(p1, alpha, kmax)
    return {
        "p1": _round(p1),
        "alpha": _round(alpha),
        "max_log2": kmax,
        "mean_target": _round(mean),
        "mean_fit": _round(float(np.dot(sizes, pmf))),
        "pmf": {int(s): _round(float(p)) for s, p in zip(sizes, pmf, strict=True)},
    }


def _lognormal_mixture_median(means: np.ndarray, weights: np.ndarray, sigma: float) -> float:
    """Median of a mixture of log-normals with log-means ``means`` and a common sigma."""
    from math import erf, sqrt

    def cdf(x: float) -> float:
        z = (math.log(x) - means) / (sigma * sqrt(2))
        return float(np.dot(weights, 0.5 * (1 + np.vectorize(erf)(z))))

    return math.exp(_bisect(lambda lx: cdf(math.exp(lx)) - 0.5, -5.0, 25.0, 100))


def fit_duration(row: pd.Series, sizes: np.ndarray, pmf: np.ndarray) -> dict[str, Any]:
    jobs = float(row["gpu_job_num"])
    shares = {s: float(row[f"{s}_rate_gpu"]) for s in STATES}
    total = sum(shares.values())
    shares = {s: v / total for s, v in shares.items()}
    gpu_time = {s: float(row[f"{s}_gpu_time"]) for s in STATES}
    per_job = {s: gpu_time[s] / (shares[s] * jobs) for s in STATES}  # E[g d | state]
    egd = sum(gpu_time.values()) / jobs
    mean_d, median_d = float(row["avg_run_time_gpu"]), float(row["med_run_time_gpu"])
    ratio = egd / mean_d

    def moment(power: float) -> float:
        return float(np.dot(pmf, sizes**power))

    beta = _bisect(lambda b: moment(1 + b) / moment(b) - ratio, -1.5, 2.5)

    def deltas(sigma: float) -> dict[str, float]:
        return {s: math.log(per_job[s] / moment(1 + beta)) - sigma**2 / 2 for s in STATES}

    def median_at(sigma: float) -> float:
        d = deltas(sigma)
        means, weights = [], []
        for s in STATES:
            for g, p in zip(sizes, pmf, strict=True):
                means.append(d[s] + beta * math.log(g))
                weights.append(shares[s] * p)
        return _lognormal_mixture_median(np.array(means), np.array(weights), sigma)

    sigma = _bisect(lambda s: math.log(median_at(s)) - math.log(median_d), 0.3, 4.5, 60)
    d = deltas(sigma)
    return {
        "sigma": _round(sigma),
        "beta": _round(beta),
        "delta": {STATE_NAMES[s]: _round(d[s]) for s in STATES},
        "max_seconds": _round(float(row["max_run_time_gpu"])),
        "targets": {
            "mean_seconds": _round(mean_d),
            "median_seconds": _round(median_d),
            "gpu_seconds_per_job": _round(egd),
        },
    }


def fit_profiles(data: Path) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, (file, row_id, licence) in PROFILES.items():
        table = pd.read_csv(data / file).set_index("id")
        row = table.loc[row_id]
        size = fit_size(float(row["avg_gpu_num"]), float(row["max_gpu"]))
        sizes, pmf = size_pmf(size["p1"], size["alpha"], size["max_log2"])
        shares = {STATE_NAMES[s]: _round(float(row[f"{s}_rate_gpu"])) for s in STATES}
        time_total = sum(float(row[f"{s}_gpu_time"]) for s in STATES)
        time_shares = {
            STATE_NAMES[s]: _round(float(row[f"{s}_gpu_time"]) / time_total) for s in STATES
        }
        out[name] = {
            "source": f"{file}, row {row_id}",
            "licence": licence,
            "size": size,
            "duration": fit_duration(row, sizes, pmf),
            "outcomes": {"job_share": shares, "gpu_time_share": time_shares},
            "queue_seconds": {
                "mean": _round(float(row["avg_que_time_gpu"])),
                "median": _round(float(row["med_que_time_gpu"])),
            },
        }
    return out


def fit_arrivals(data: Path) -> dict[str, Any]:
    frame = pd.read_csv(data / "helios/venus_cluster_throughput_10min.csv", parse_dates=["time"])
    frame["hour"] = frame.time.dt.hour
    frame["weekday"] = frame.time.dt.day_of_week
    frame["day"] = frame.time.dt.normalize()
    overall = frame.submit_gpu_job.mean()
    hourly = frame.groupby("hour").submit_gpu_job.mean() / overall
    daily = frame.groupby("day").submit_gpu_job.sum()
    weekday_of = daily.index.day_of_week
    weekly = daily.groupby(weekday_of).mean()
    weekly = weekly / weekly.mean()
    residual = daily / (weekly.reindex(weekday_of).to_numpy() * daily.mean())
    summary = pd.read_csv(data / "helios/helios_cluster_summary.csv").set_index("id")
    return {
        "source": "helios/venus_cluster_throughput_10min.csv (submit_gpu_job), 2020-04-01..09-28",
        "licence": "S-Lab License 1.0 (non-commercial); only these aggregate shape factors are kept",
        "hourly": [_round(float(v), 4) for v in hourly.reindex(range(24)).to_numpy()],
        "weekday": [_round(float(v), 4) for v in weekly.reindex(range(7)).to_numpy()],
        "daily_cv": _round(float(residual.std()), 4),
        "gpu_jobs_per_day": _round(float(daily.mean())),
        "cluster_gpus": int(summary.loc["Venus", "gpu_num"]),
    }


def fit_teams(data: Path, teams: int = 8) -> dict[str, Any]:
    frame = pd.read_csv(data / "helios/venus_vc_gpu_number.csv").drop(columns=["date", "total"])
    mean = frame.mean().sort_values(ascending=False).head(teams)
    return {
        "source": "helios/venus_vc_gpu_number.csv (mean GPUs per virtual cluster, 8 largest)",
        "licence": "CC BY 4.0 (S-Lab-System-Group/HeliosData)",
        "quota_share": [_round(float(v / mean.sum()), 4) for v in mean.to_numpy()],
    }


def fit_gpu_util(data: Path, cluster: str = "Kalos") -> dict[str, Any]:
    frame = pd.read_csv(data / "acme/telemetry_cdfs.csv")
    curve = frame[(frame.cluster == cluster) & (frame.metric == "gpu_util_pct")]
    x, cdf = curve.x.to_numpy(float), curve.cdf_pct.to_numpy(float) / 100
    qs = np.linspace(0, 1, 21)
    values = [float(x[min(np.searchsorted(cdf, q, side="left"), len(x) - 1)]) for q in qs]
    return {
        "source": f"acme/telemetry_cdfs.csv ({cluster}, gpu_util_pct)",
        "licence": "CC BY 4.0 (InternLM/AcmeTrace)",
        "quantiles": [_round(v / 100, 4) for v in values],
    }


def fit_titan(data: Path) -> dict[str, Any]:
    frame = pd.read_csv(data / "titan-gpu-failures/gc_full.csv", dtype={"SN": str})
    events = frame[frame.event.isin(["DBE", "OTB"])]
    counts = events.event.value_counts()
    lives = frame[frame.event.isna()]
    exposure = lives.groupby("location").duration.sum() / 86400.0  # location-days
    faults = events.groupby("location").size().reindex(exposure.index, fill_value=0)
    k, t = faults.to_numpy(float), exposure.to_numpy(float)
    keep = t > 0
    k, t = k[keep], t[keep]
    # EM for a two-class Poisson mixture with exposure: weight w of a high rate r1, else r0.
    r0, r1, w = k.sum() / t.sum() / 2, k.sum() / t.sum() * 10, 0.05
    for _ in range(500):
        l1 = np.log(w) + k * np.log(r1 * t) - r1 * t
        l0 = np.log(1 - w) + k * np.log(r0 * t) - r0 * t
        z = 1 / (1 + np.exp(l0 - l1))
        w = float(z.mean())
        r1 = float((z * k).sum() / (z * t).sum())
        r0 = float(((1 - z) * k).sum() / ((1 - z) * t).sum())
    return {
        "source": "titan-gpu-failures/gc_full.csv (DBE and OTB events per location, exposure = "
        "service time at the location)",
        "licence": "none stated (OLCF TitanGPULife; cite Ostrouchov et al., SC'20); only the "
        "fitted ratios below are kept",
        "dbe_share": _round(float(counts["DBE"] / counts.sum()), 4),
        "otb_share": _round(float(counts["OTB"] / counts.sum()), 4),
        "locations": len(k),
        "lemon_fraction": _round(w, 4),
        "lemon_rate_multiplier": _round(r1 / r0, 4),
    }


def build(data: Path) -> dict[str, Any]:
    return {
        "generated_by": "bench/fit_sim_params.py",
        "note": "Fitted numbers only; no rows of the source data. Re-run the script to refresh.",
        "profiles": fit_profiles(data),
        "arrivals": fit_arrivals(data),
        "teams": fit_teams(data),
        "gpu_util": fit_gpu_util(data),
        "titan": fit_titan(data),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("/work/shared/data"))
    parser.add_argument(
        "--out",
        type=Path,
        default=Path(__file__).resolve().parents[1] / "src/fleetmedic/sim/params.yaml",
    )
    args = parser.parse_args()
    params = build(args.data)
    header = (
        "# Workload parameters fitted to public traces. GENERATED by bench/fit_sim_params.py;\n"
        "# do not edit by hand. Every block names its source file and licence.\n"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(header + yaml.safe_dump(params, sort_keys=False, width=100), "utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
