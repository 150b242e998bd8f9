"""How the simulated platform learns why an attempt ended: an injected :class:`Observer`.

The simulator must not import the diagnosis engine (layering) and must not peek at the truth, so
whatever reads a failure is passed in. ``workflows.simulate`` passes one that builds the bundle and
runs ``fleetmedic.diagnose``; without it, :class:`SignalObserver` reads only the events the cluster
recorded (reasons such as ``OOMKilled``, ``Preempted``, an ``NVRM: Xid`` kernel line), as a
platform with no log analysis would.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from fleetmedic.model.taxonomy import category as taxonomy_category
from fleetmedic.sim.emit import EventRow, FailureContext


@dataclass(frozen=True, slots=True)
class Verdict:
    """What the platform concluded about one interrupted attempt."""

    category: str
    owner: str
    node: str | None = None  # the node the cause points at, when it points at one


class Observer(Protocol):
    def __call__(self, ctx: FailureContext, events: Sequence[EventRow]) -> Verdict: ...


_BY_REASON = {
    "NVRM_Xid": "gpu_hardware",
    "NodeNotReady": "node_failure",
    "Preempted": "preemption",
    "Evicted": "node_pressure_eviction",
    "OOMKilled": "host_oom",
    "OOMKill": "host_oom",
    "FailedScheduling": "scheduling",
    "BackOff": "image_pull",
    "DeadlineExceeded": "timeout",
}


class SignalObserver:
    """Categorizes from event reasons only; ``unknown`` when the events do not say."""

    def __call__(self, ctx: FailureContext, events: Sequence[EventRow]) -> Verdict:
        for event in sorted(events, key=lambda e: e.ts):
            category = _BY_REASON.get(event.reason)
            if category is None:
                continue
            node = event.obj.split("/", 1)[1] if event.obj.startswith("node/") else None
            return Verdict(category, taxonomy_category(category).owner, node)
        return Verdict("unknown", taxonomy_category("unknown").owner, None)
