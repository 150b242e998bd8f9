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
from fleetmedic.kpi.sums import GroupSums

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


def goodput_section(s: GroupSums) -> dict[str, Any]:
    """Fleet goodput ratio, productive GPU-hours and the badput breakdown."""
    total, productive = s.run("gpu_h"), s.run("prod_gh")
    since = s.lost_kind.get("since_checkpoint", 0.0)
    without = s.lost_kind.get("no_checkpoint", 0.0)
    hang = s.lost_kind.get("hang", 0.0)
    badput: dict[str, Any] = {
        "gpu_hours": since + without + hang,
        "share": ratio(since + without + hang, total),
        "lost_since_checkpoint": since,
        "lost_without_checkpoint": without,
        "hang": hang,
        "requeue_gpu_hours": s.run("requeue_gh"),
        "by_owner": {owner: row["lost_gh"] for owner, row in sorted(s.by_owner.items())},
        "google": {
            "wasted_progress_from_disruption": since + without,
            "other": hang,
            **dict.fromkeys(_GOOGLE_UNSUPPORTED),
        },
    }
    return {"goodput": ratio(productive, total), "goodput_gpu_hours": productive, "badput": badput}


def ettr(s: GroupSums) -> float | None:
    """ETTR = productive time / wall-clock time from first start to end, GPU-weighted.

    Per job, the denominator runs from the first attempt's start to the last attempt's end and
    includes the time spent waiting to be re-scheduled after each interruption (Meta's
    definition); weighting by GPUs makes the fleet figure the ratio of the two GPU-hour sums.
    """
    return ratio(s.run("prod_gh"), s.run("window_gh"))


def ettr_by_size(runs: pd.DataFrame) -> dict[str, float | None]:
    """:func:`ettr` per job size bucket, from the fleet's run cube."""
    sums = runs.groupby("bucket")[["prod_gh", "window_gh"]].sum()
    return {
        bucket: ratio(sums.at[bucket, "prod_gh"], sums.at[bucket, "window_gh"])
        for bucket in SIZE_BUCKETS
        if bucket in sums.index
    }
