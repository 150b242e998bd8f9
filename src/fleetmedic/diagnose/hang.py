"""Hang detection from what a bundle shows over time, not from words.

A job hangs when its progress lines (steps, iterations, progress bars) stop while the bundle goes on:
other lines, other ranks or Kubernetes events keep coming, or the bundle was collected long after.
"Long" is relative to the job's own pace: ten typical step intervals, and at least ten minutes. A
crash after the last step is not a hang (progress stops because the process died), so only the ways
a stuck job is ended (cancellation, timeout, eviction) may follow.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from itertools import pairwise
from statistics import median

from fleetmedic.diagnose.catalog import Signature
from fleetmedic.diagnose.findings import SLACK, Finding
from fleetmedic.diagnose.scan import DocScan, Hit

MIN_STALL = timedelta(minutes=10)
STALL_STEPS = 10
# How a stuck job usually ends: these may follow the stall without contradicting a hang.
_ENDINGS = {"cancelled", "timeout", "preemption", "hang"}

STALL_SIGNATURE = Signature.model_construct(
    id="hang.progress_stalled",
    category="hang",
    role="cause",
    priority=72,
    confidence=0.75,
    patterns=(),
    case_sensitive=False,
    sources=("log",),
    summary="no progress for {stalled} after {last_step} (typical step interval {interval}); "
    "the job stopped making progress without failing",
    owner=None,
    action=None,
    advice=None,
    retryable=None,
    node_scoped=False,
    fallback=False,
    exclude=(),
    examples=(),
    counter_examples=(),
)


def _interval(progress: list[Hit]) -> timedelta | None:
    times = sorted(h.ts for h in progress if h.ts is not None)
    gaps = [(b - a).total_seconds() for a, b in pairwise(times) if b > a]
    return timedelta(seconds=median(gaps)) if gaps else None


def detect_stall(scans: list[DocScan], findings: list[Finding]) -> Finding | None:
    """A synthetic ``hang`` finding when progress stopped long before the bundle ended."""
    timed = [s for s in scans if any(h.ts for h in s.progress)]
    if not timed:
        return None
    last_steps = [
        max((h for h in s.progress if h.ts), key=lambda h: h.ts or datetime.min) for s in timed
    ]
    last_step = max(last_steps, key=lambda h: h.ts or datetime.min)
    ends = [s.last_ts for s in scans if s.last_ts] + [
        h.ts for f in findings for h in f.hits if h.ts
    ]
    if not ends or last_step.ts is None:
        return None
    bundle_end = max(ends)
    intervals = [i.total_seconds() for s in timed if (i := _interval(s.progress))]
    interval = timedelta(seconds=median(intervals) if intervals else 60.0)
    threshold = max(MIN_STALL, interval * STALL_STEPS)
    stalled = bundle_end - last_step.ts
    # A crash within a few steps of the last progress line is what stopped the progress.
    crash_window = last_step.ts - interval * 3 - SLACK
    if stalled < threshold or _crashed_after(findings, crash_window):
        return None
    details = {
        "stalled": _human(stalled),
        "last_step": last_step.ts.strftime("%Y-%m-%d %H:%M:%S"),
        "interval": _human(interval),
    }
    evidence = Hit(
        last_step.signature, last_step.doc, last_step.line, last_step.text, last_step.ts, details
    )
    later = _latest_line(scans, bundle_end)
    hits = [evidence] + ([later] if later else [])
    return Finding(STALL_SIGNATURE, hits)


def _crashed_after(findings: list[Finding], since: datetime) -> bool:
    for finding in findings:
        if finding.category in _ENDINGS:
            continue
        if finding.role != "cause" and finding.category != "nccl_comm":
            continue  # an NCCL watchdog timeout is a failure, not the end of a silent stall
        first = finding.first
        if first.ts is None or first.ts >= since:
            return True
    return False


def _latest_line(scans: list[DocScan], when: datetime) -> Hit | None:
    for scan in scans:
        if scan.last_ts == when and scan.last_line_text:
            return Hit(-1, scan.doc, max(scan.lines, 1), scan.last_line_text, when, {})
    return None


def _human(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    if seconds >= 60:
        return f"{seconds // 60} min"
    return f"{seconds} s"
