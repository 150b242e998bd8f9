"""Checkpoint arithmetic of one attempt: what a run achieved and what it kept.

An attempt spends ``restart`` seconds before its first step (placement to first step, checkpoint
loading included), then alternates ``interval`` seconds of productive work with a blocking save of
``save`` seconds. Work done since the last *completed* save is what a failure throws away, so these
functions are the single definition of "work lost = time since last checkpoint" for the engine, the
truth records and the tests. ``interval = inf`` is a job that never checkpoints.
"""

from __future__ import annotations

import math
from typing import NamedTuple


class Progress(NamedTuple):
    """Work done and work saved (seconds of productive compute) after some wall time."""

    done: float
    saved: float
    saves: int


def progress_at(elapsed: float, restart: float, interval: float, save: float) -> Progress:
    """Progress of an attempt ``elapsed`` seconds after it started."""
    work_time = elapsed - restart
    if work_time <= 0:
        return Progress(0.0, 0.0, 0)
    if math.isinf(interval):
        return Progress(work_time, 0.0, 0)
    cycle = interval + save
    saves = int(work_time // cycle)
    rest = work_time - saves * cycle
    done = saves * interval + min(rest, interval)
    return Progress(done, saves * interval, saves)


def wall_time_for(work: float, restart: float, interval: float, save: float) -> float:
    """Wall time an attempt needs to do ``work`` seconds of compute (no save after the last step)."""
    if work <= 0:
        return restart
    if math.isinf(interval):
        return restart + work
    saves = max(0, math.ceil(work / interval) - 1)
    return restart + work + saves * save


def last_save_time(
    start: float, restart: float, interval: float, save: float, saves: int
) -> float | None:
    """Wall-clock time at which the ``saves``-th save of an attempt completed (None for none)."""
    if saves <= 0 or math.isinf(interval):
        return None
    return start + restart + saves * (interval + save)


def lost_work(elapsed: float, restart: float, interval: float, save: float) -> float:
    """Seconds of compute thrown away by a failure ``elapsed`` seconds into an attempt.

    Only the work since the last completed save; the restart overhead and the save time are
    overheads, not work, and are accounted for separately (as allocated-but-unproductive time).
    """
    progress = progress_at(elapsed, restart, interval, save)
    return progress.done - progress.saved
