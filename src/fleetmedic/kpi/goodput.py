"""Goodput, badput and ETTR: how much of the GPU time bought progress that was kept.

Why these three: goodput (productive / allocated GPU-hours) is the fleet's efficiency; the badput
breakdown says where the rest went, so it can be ranked and fixed; ETTR (Kokolis et al., 2024)
is the same question from one job's point of view, counting the wall-clock time a job waits to
be re-scheduled after an interruption, which goodput over allocated hours cannot see.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from fleetmedic.kpi.facts import SIZE_BUCKETS
from fleetmedic.kpi.numbers import ratio

# Badput types of Google's ML Goodput Measurement library (BadputType). Only the wasted progress
# and the hangs can be derived from job/attempt records; the others need step-level telemetry.
_GOOGLE_UNSUPPORTED = (
    "tpu_initialization",
    "training_prep",
    "program_startup",
    "data_loading",
    "unproductive_checkpoint_save_time",
    "unproductive_checkpoint_restore_time",
)


def goodput_section(runs: pd.DataFrame) -> dict[str, Any]:
    """Fleet goodput ratio, productive GPU-hours and the badput breakdown."""
    total = float(runs["gpu_h"].sum())
    productive = float(runs["prod_gh"].sum())
    lost = runs.groupby("lost_kind")["lost_gh"].sum()
    since = float(lost.get("since_checkpoint", 0.0))
    without = float(lost.get("no_checkpoint", 0.0))
    hang = float(lost.get("hang", 0.0))
    requeue = float(runs["requeue_gh"].sum())
    badput: dict[str, Any] = {
        "gpu_hours": since + without + hang,
        "share": ratio(since + without + hang, total),
        "lost_since_checkpoint": since,
        "lost_without_checkpoint": without,
        "hang": hang,
        "requeue_gpu_hours": requeue,
        "by_owner": {
            str(owner): float(hours)
            for owner, hours in runs[runs["owner"] != ""].groupby("owner")["lost_gh"].sum().items()
        },
        "google": {
            "wasted_progress_from_disruption": since + without,
            "other": hang,
            **{name: None for name in _GOOGLE_UNSUPPORTED},
        },
    }
    return {"goodput": ratio(productive, total), "goodput_gpu_hours": productive, "badput": badput}


def ettr_section(runs: pd.DataFrame, *, by_size: bool) -> dict[str, Any]:
    """ETTR = productive time / wall-clock time from first start to end, GPU-weighted.

    Per job, the denominator runs from the first attempt's start to the last attempt's end and
    includes the time spent waiting to be re-scheduled after each interruption (Meta's
    definition); weighting by GPUs makes the fleet figure the ratio of the two GPU-hour sums.
    """
    out: dict[str, Any] = {"ettr": ratio(runs["prod_gh"].sum(), runs["window_gh"].sum())}
    if by_size:
        sums = runs.groupby("bucket")[["prod_gh", "window_gh"]].sum()
        out["ettr_by_size"] = {
            bucket: ratio(sums.at[bucket, "prod_gh"], sums.at[bucket, "window_gh"])
            for bucket in SIZE_BUCKETS
            if bucket in sums.index
        }
    return out
