"""The run's figures: the ``simulate`` summary of DESIGN.md and the calibration comparisons.

Computed from the simulator's own records (it knows exactly what work was kept), with the same
definitions as ``fleetmedic kpi``: goodput = kept productive GPU-hours / allocated GPU-hours;
ETTR (Kokolis et al., 2024) = productive time / wall time from first start to the end,
re-queue waits included; lost GPU-hours = allocated but not kept, on interrupted attempts.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

from fleetmedic.sim.calibration import Calibration
from fleetmedic.sim.engine import INTERRUPTED, SimResult
from fleetmedic.sim.params import Params
from fleetmedic.sim.storage import job_status
from fleetmedic.sim.truth import Score
from fleetmedic.sim.workload import pretrain_id

LARGE_GPUS = 256
HOUR = 3600.0
PLATFORM = frozenset({"platform", "hardware"})
NOT_RUNNING = frozenset({"preemption", "image_pull", "rendezvous", "scheduling"})
"""Platform failures that do not interrupt a running job (start-up, scheduler): not in MTTF."""


def _r(value: float | None, digits: int = 4) -> float | None:
    return None if value is None or not math.isfinite(value) else round(value, digits)


def _ratio(a: float, b: float) -> float | None:
    return a / b if b else None


def summary(
    result: SimResult, score: Score | None, calib: Calibration, params: Params
) -> dict[str, Any]:
    """The JSON ``fleetmedic simulate`` prints (DESIGN.md contract fields first)."""
    horizon = result.config.horizon
    allocated = kept = lost = 0.0
    for a in result.attempts:
        if a.start is None:
            continue
        end = horizon if a.end is None else a.end
        gpu_s = (end - a.start) * a.gpus
        allocated += gpu_s
        kept += a.productive * a.gpus
        if a.status in INTERRUPTED:
            lost += gpu_s - a.productive * a.gpus
    failures = [t for t in result.truth if t.category != "preemption"]
    cordons, false_cordons, precision, recall = _lemons(result)
    detect = _time_to_detect(result)
    actions = Counter(a.kind for a in result.actions if a.state not in ("refused", "rejected"))
    return {
        "goodput": _r(_ratio(kept, allocated)),
        "gpu_hours_lost": _r(lost / HOUR, 1),
        "failures": len(failures),
        "diagnosis_accuracy": _r(score.accuracy) if score else None,
        "actions": dict(sorted(actions.items())),
        "cordons": cordons,
        "false_cordons": false_cordons,
        "lemon": {
            "precision": _r(precision),
            "recall": _r(recall),
            "nodes": len(result.lemons),
            "time_to_detect_hours": _r(_median(detect), 1),
        },
        "ettr_large_jobs": _r(ettr_large_jobs(result)),
        "config": {
            k: v
            for k, v in result.config.model_dump(mode="json").items()
            if k in {"gpus", "days", "seed", "heal", "profile", "hardware_profile"}
        },
        "period": {
            "since": _iso(result.config.start),
            "until": _iso(result.config.start + timedelta(seconds=horizon)),
        },
        "jobs": _jobs(result),
        "attempts": len(result.attempts),
        "recovery_hours": _recovery(result),
        "jobs_rescued": _rescued(result),
        "gpu_hours": _r(allocated / HOUR, 1),
        "utilization": _r(_ratio(allocated, result.config.gpus * horizon)),
        "preemptions": sum(1 for a in result.attempts if a.status == "preempted"),
        "failures_by_owner": dict(sorted(Counter(t.owner for t in failures).items())),
        "failures_by_category": dict(Counter(t.category for t in failures).most_common()),
        "diagnosis": score.as_dict() if score else None,
        "calibration": calibration(result, calib, params),
    }


def _iso(when: datetime) -> str:
    return when.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="seconds")


def _jobs(result: SimResult) -> dict[str, Any]:
    statuses = Counter(job_status(s.status) for s in result.states if s.status != "future")
    return {"total": sum(statuses.values()), "by_status": dict(sorted(statuses.items()))}


def _lemons(result: SimResult) -> tuple[int, int, float | None, float | None]:
    """Cordons (done in auto; proposed, i.e. the guard would allow them, in dry-run) scored
    against the true lemon nodes."""
    taken = "done" if result.config.heal == "auto" else "proposed"
    targets = {
        a.target for a in result.actions if a.kind == "cordon_and_drain" and a.state == taken
    }
    index = {n: i for i, n in enumerate(result.node_names)}
    cordoned = {index[t] for t in targets if t in index}
    hits = len(cordoned & result.lemons)
    precision = hits / len(cordoned) if cordoned else None
    healing = result.config.heal != "off"
    recall = hits / len(result.lemons) if result.lemons and healing else None
    return len(cordoned), len(cordoned - result.lemons), precision, recall


def _first_cordons(result: SimResult) -> dict[str, datetime]:
    taken = "done" if result.config.heal == "auto" else "proposed"
    first: dict[str, datetime] = {}
    for a in result.actions:
        if a.kind == "cordon_and_drain" and a.state == taken:
            first.setdefault(a.target, a.created_at)
    return first


def _time_to_detect(result: SimResult) -> list[float]:
    """Hours from the start (every lemon is one from the start) to its first cordon."""
    first = _first_cordons(result)
    names = [result.node_names[i] for i in sorted(result.lemons)]
    start = result.config.start
    return [(first[n] - start) / timedelta(hours=1) for n in names if n in first]


def _median(values: list[float]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def _recovery(result: SimResult) -> dict[str, float | None]:
    """Time to repair a job: from an interrupted attempt's end to its next attempt's start."""
    starts = {(a.job, a.attempt): a.start for a in result.attempts if a.start is not None}
    gaps = sorted(
        (starts[(a.job, a.attempt + 1)] - a.end) / HOUR
        for a in result.attempts
        if a.status in INTERRUPTED and a.end is not None and (a.job, a.attempt + 1) in starts
    )
    mean = sum(gaps) / len(gaps) if gaps else None
    return {"mean": _r(mean, 3), "p50": _r(_median(gaps), 3), "recovered": len(gaps)}


def _rescued(result: SimResult) -> int:
    """Jobs the healer restarted (a retry or requeue done) that then succeeded or are still going."""
    healed = {
        a.target
        for a in result.actions
        if a.state == "done" and a.kind in ("retry_from_checkpoint", "requeue_excluding_node")
    }
    ids = {spec.job_id: i for i, spec in enumerate(result.jobs)}
    fine = {"succeeded", "running", "pending"}
    states = result.states
    return sum(1 for job in healed if job in ids and job_status(states[ids[job]].status) in fine)


def ettr_large_jobs(result: SimResult, min_gpus: int = LARGE_GPUS) -> float | None:
    """Mean per-job ETTR of the jobs of ``min_gpus``+ GPUs that ran to their end or still run.

    ETTR (Kokolis et al., 2024) = productive time / wall time from first start to the end (or the
    horizon), re-queue waits included. Jobs whose final status is a failure are left out: they
    were abandoned (by their user's bug, or by nobody resubmitting them), so their wall time is
    not that of a run that reached its goal.
    """
    horizon = result.config.horizon
    kept: dict[int, float] = defaultdict(float)
    for a in result.attempts:
        if a.start is not None and a.gpus >= min_gpus:
            kept[a.job] += a.productive
    values = []
    for idx, productive in kept.items():
        state = result.states[idx]
        if state.first_start is None or state.status in {"failed", "timeout"}:
            continue
        end = state.ended if state.ended is not None else horizon
        if end > state.first_start:
            values.append(min(1.0, productive / (end - state.first_start)))
    return sum(values) / len(values) if values else None


def calibration(result: SimResult, calib: Calibration, params: Params) -> dict[str, Any]:
    """Simulated figures next to the published ones they are calibrated against."""
    config = result.config
    node_days = config.nodes * config.days
    profile = params.profiles[config.profile]
    r_f = calib.hardware.node_failure_rate_per_1000_node_days[config.hardware_profile].value
    return {
        "hardware_failures_per_1000_node_days": {
            "simulated": _r(1000 * len(result.hardware) / node_days, 3),
            "published": r_f,
            "events": len(result.hardware),
        },
        "job_mttf": _mttf(result, calib),
        "job_status_share": _status_shares(result, profile.outcomes.job_share),
        "gpu_time_share": _gpu_time_shares(result, profile.outcomes.gpu_time_share),
        "infra_share_of_failed_gpu_time": {
            "simulated": _r(_infra_share(result), 3),
            "published_acme": 0.82,
        },
    }


def _mttf(result: SimResult, calib: Calibration) -> dict[str, Any]:
    """Job MTTF by size: attempt hours / platform+hardware failures, vs Meta's quoted values.

    Only failures that interrupt a running job count (not start-up faults or preemptions).
    """
    hours: dict[int, float] = defaultdict(float)
    fails: Counter[int] = Counter()
    horizon = result.config.horizon
    by_key = {(t.job_id, t.attempt): t for t in result.truth}
    specs = result.jobs
    for a in result.attempts:
        if a.start is None:
            continue
        end = horizon if a.end is None else a.end
        hours[a.gpus] += (end - a.start) / HOUR
        truth = by_key.get((specs[a.job].job_id, a.attempt))
        if truth is not None and truth.owner in PLATFORM and truth.category not in NOT_RUNNING:
            fails[a.gpus] += 1
    ref = calib.job_mttf_reference
    out: dict[str, Any] = {}
    for gpus, published in ((8, ref.gpus_8_days.value * 24), (1024, ref.gpus_1024_hours.value)):
        out[f"gpus_{gpus}"] = {
            "simulated_hours": _r(hours[gpus] / fails[gpus], 1) if fails[gpus] else None,
            "published_hours": round(published, 1),
            "failures": fails[gpus],
            "job_hours": _r(hours[gpus], 1),
        }
    return out


def _final_shares(result: SimResult, weight_gpu_time: bool) -> dict[str, float]:
    horizon = result.config.horizon
    time: dict[int, float] = defaultdict(float)
    if weight_gpu_time:
        for a in result.attempts:
            if a.start is not None:
                time[a.job] += ((horizon if a.end is None else a.end) - a.start) * a.gpus
    totals: dict[str, float] = defaultdict(float)
    pretrain = pretrain_id(result.config)
    for state in result.states:
        if state.status == "future" or state.spec.job_id == pretrain:
            continue  # the pre-training run is the scenario's, not the fitted workload's
        # Jobs still alive at the horizon count under the fate drawn for them: the traces'
        # shares are over months, where the long runs a short window cuts off did end.
        final = (
            state.status
            if state.status in {"succeeded", "failed", "cancelled", "timeout"}
            else state.spec.fate
        )
        status = {"timeout": "failed"}.get(final, final)
        if status in {"succeeded", "failed", "cancelled"}:
            totals[status] += time[state.idx] if weight_gpu_time else 1
    whole = sum(totals.values())
    if not whole:
        return {}
    return {k: totals[k] / whole for k in ("succeeded", "cancelled", "failed")}


def _status_shares(result: SimResult, target: dict[str, float]) -> dict[str, Any]:
    got = _final_shares(result, weight_gpu_time=False)
    return {k: {"simulated": _r(got.get(k), 3), "published": target[k]} for k in target}


def _gpu_time_shares(result: SimResult, target: dict[str, float]) -> dict[str, Any]:
    got = _final_shares(result, weight_gpu_time=True)
    return {k: {"simulated": _r(got.get(k), 3), "published": _r(target[k], 3)} for k in target}


def _infra_share(result: SimResult) -> float | None:
    """Share of failed attempts' GPU time whose cause was the platform or hardware."""
    owner = {(t.job_id, t.attempt): t.owner for t in result.truth if t.category != "preemption"}
    infra = total = 0.0
    for a in result.attempts:
        if a.status not in {"failed", "timeout"} or a.start is None or a.end is None:
            continue
        gpu_s = (a.end - a.start) * a.gpus
        total += gpu_s
        if owner.get((result.jobs[a.job].job_id, a.attempt)) in PLATFORM:
            infra += gpu_s
    return infra / total if total else None
