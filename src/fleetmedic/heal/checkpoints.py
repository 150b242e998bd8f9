"""Checkpoint advice: how often jobs of each size should checkpoint, from measured failure rates.

MTTF per size bucket. Jobs are bucketed by ``num_gpus`` (:data:`BUCKETS`). A bucket's MTTF is
``M = attempt-hours / failures``: the wall-clock hours of its attempts divided by the attempts that
ended in a diagnosis owned by ``hardware`` or ``platform``, except the categories in
:data:`NOT_MID_RUN` (the job never ran, so no work was lost and checkpoints cannot help).

Intervals, with ``δ`` the time to save one checkpoint (default 5 minutes):

- Young (1974): ``τ = sqrt(2 δ M)``;
- Daly (2006), for ``δ < 2M``: ``τ = sqrt(2 δ M) [1 + (1/3) sqrt(δ / 2M) + (1/9) (δ / 2M)] - δ``;
  for ``δ >= 2M`` it is ``τ = M``. Daly's is the recommended interval.

Savings. When failed attempts of the bucket carry ``last_checkpoint_at``, the work lost at a
failure is ``ended_at - last_checkpoint_at``; with failures uniform within an interval it averages
``τ_now / 2``, so the current interval is estimated as ``τ_now = 2 x mean lost``. The share of time
wasted with interval ``τ`` is, to first order, ``W(τ) = δ / τ + τ / (2M)`` (saving, plus redone
work; the restart cost is the same for any ``τ`` and drops out). Young's ``τ`` minimises ``W``, and
the expected saving is ``(W(τ_now) - W(τ_young)) x GPU-hours`` of the bucket (``num_gpus x``
attempt-hours), never negative.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from fleetmedic.store.db import Store

BLAMED_OWNERS: tuple[str, ...] = ("hardware", "platform")
NOT_MID_RUN: tuple[str, ...] = ("scheduling", "image_pull")
DEFAULT_SAVE_COST_MINUTES = 5.0

# (label, lowest num_gpus, highest num_gpus exclusive); the first starts at 0 for fractional GPUs.
BUCKETS: tuple[tuple[str, float, float], ...] = (
    ("<8", 0.0, 8.0),
    ("8-63", 8.0, 64.0),
    ("64-255", 64.0, 256.0),
    ("256-1023", 256.0, 1024.0),
    ("1024+", 1024.0, math.inf),
)


def young_interval(save_cost_hours: float, mttf_hours: float) -> float:
    """Young's first-order optimum ``sqrt(2 δ M)``, in hours."""
    if save_cost_hours <= 0.0 or mttf_hours <= 0.0:
        raise ValueError("save cost and MTTF must be positive")
    return math.sqrt(2.0 * save_cost_hours * mttf_hours)


def daly_interval(save_cost_hours: float, mttf_hours: float) -> float:
    """Daly's higher-order optimum for ``δ < 2M``; ``M`` itself when ``δ >= 2M``, in hours."""
    delta, m = save_cost_hours, mttf_hours
    if delta <= 0.0 or m <= 0.0:
        raise ValueError("save cost and MTTF must be positive")
    if delta >= 2.0 * m:
        return m
    x = delta / (2.0 * m)
    return math.sqrt(2.0 * delta * m) * (1.0 + math.sqrt(x) / 3.0 + x / 9.0) - delta


def waste_fraction(interval_hours: float, save_cost_hours: float, mttf_hours: float) -> float:
    """First-order share of time lost to saving and redoing work: ``δ/τ + τ/(2M)``."""
    return save_cost_hours / interval_hours + interval_hours / (2.0 * mttf_hours)


@dataclass(frozen=True)
class CheckpointAdvice:
    """Advice for one job-size bucket; interval fields are ``None`` without observed failures."""

    bucket: str
    jobs: int
    attempt_hours: float
    gpu_hours: float
    failures: int
    mttf_hours: float | None
    young_hours: float | None
    daly_hours: float | None
    current_interval_hours: float | None
    gpu_hours_saved: float | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


_SQL = """
WITH att AS (
    SELECT a.job_id, a.attempt, j.num_gpus,
           date_diff('millisecond', a.started_at, a.ended_at) / 3600000.0 AS hours,
           CASE WHEN a.last_checkpoint_at BETWEEN a.started_at AND a.ended_at
                THEN date_diff('millisecond', a.last_checkpoint_at, a.ended_at) / 3600000.0
           END AS lost
    FROM attempts a JOIN jobs j ON j.job_id = a.job_id
    WHERE a.started_at IS NOT NULL AND a.ended_at IS NOT NULL AND a.ended_at >= a.started_at
)
SELECT att.job_id, att.num_gpus, att.hours,
       d.job_id IS NOT NULL AS failed, att.lost
FROM att LEFT JOIN diagnoses d
  ON d.job_id = att.job_id AND d.attempt = att.attempt
 AND d.owner IN ({owners}) AND {skip}
"""


def _bucket(num_gpus: float) -> str:
    for label, low, high in BUCKETS:
        if low <= num_gpus < high:
            return label
    return BUCKETS[0][0]


def advise(
    store: Store,
    *,
    save_cost_minutes: float = DEFAULT_SAVE_COST_MINUTES,
    owners: Sequence[str] = BLAMED_OWNERS,
    not_mid_run: Sequence[str] = NOT_MID_RUN,
) -> list[CheckpointAdvice]:
    """Advice per bucket that has attempts, smallest jobs first (see the module docstring)."""
    if save_cost_minutes <= 0.0:
        raise ValueError("save cost must be positive")
    delta = save_cost_minutes / 60.0
    sql = _SQL.format(
        owners=", ".join("?" for _ in owners),
        skip=f"d.category NOT IN ({', '.join('?' for _ in not_mid_run)})"
        if not_mid_run
        else "TRUE",
    )
    rows = store.con.execute(sql, [*owners, *not_mid_run]).fetchall()
    acc: dict[str, dict[str, Any]] = {}
    for job_id, num_gpus, hours, failed, lost in rows:
        b = acc.setdefault(
            _bucket(float(num_gpus or 0.0)),
            {"jobs": set(), "hours": 0.0, "gpu_hours": 0.0, "failures": 0, "lost": []},
        )
        b["jobs"].add(job_id)
        b["hours"] += float(hours)
        b["gpu_hours"] += float(hours) * float(num_gpus or 0.0)
        if failed:
            b["failures"] += 1
            if lost is not None:
                b["lost"].append(float(lost))
    advice = []
    for label, _, _ in BUCKETS:
        if label not in acc:
            continue
        b = acc[label]
        mttf = young = daly = current = saved = None
        if b["failures"] > 0 and b["hours"] > 0.0:
            mttf = b["hours"] / b["failures"]
            young = young_interval(delta, mttf)
            daly = daly_interval(delta, mttf)
            if b["lost"]:
                current = 2.0 * math.fsum(b["lost"]) / len(b["lost"])
                if current > 0.0:
                    gain = waste_fraction(current, delta, mttf) - waste_fraction(young, delta, mttf)
                    saved = max(0.0, gain) * b["gpu_hours"]
        advice.append(
            CheckpointAdvice(
                bucket=label,
                jobs=len(b["jobs"]),
                attempt_hours=b["hours"],
                gpu_hours=b["gpu_hours"],
                failures=b["failures"],
                mttf_hours=mttf,
                young_hours=young,
                daly_hours=daly,
                current_interval_hours=current,
                gpu_hours_saved=saved,
            )
        )
    return advice
