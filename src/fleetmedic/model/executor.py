"""The actions a healer can take on a cluster: one contract for every executor.

The simulator's executor, the Kubernetes executor and the test fakes implement it; the healing
controller calls it. Targets are node names and job ids.
Executors signal failure with the two errors below so the controller knows whether a retry could
help; any other exception is treated as a crash.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Protocol

from fleetmedic.model.errors import FleetmedicError


class TemporaryActionError(FleetmedicError):
    """The executor could not act now (API busy, conflict, a PodDisruptionBudget said wait);
    trying again later may work."""


class PermanentActionError(FleetmedicError):
    """The executor can never do this (object gone, forbidden); do not retry."""


class Executor(Protocol):
    def cordon(self, node: str) -> None: ...
    def uncordon(self, node: str) -> None: ...
    def drain(self, node: str) -> None: ...
    def restart_from_checkpoint(self, job: str) -> None: ...
    def requeue(self, job: str, exclude_nodes: Sequence[str] = ()) -> None: ...


class RecordingExecutor:
    """Changes nothing and remembers what it was asked to do: the simulator's dry-run and
    ``heal run --executor dry-run`` (a policy file with ``auto`` modes, exercised without a
    cluster)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    def counts(self) -> dict[str, int]:
        """Calls per method, for a run's summary."""
        return dict(Counter(method for method, _ in self.calls))

    def cordon(self, node: str) -> None:
        self.calls.append(("cordon", node))

    def uncordon(self, node: str) -> None:
        self.calls.append(("uncordon", node))

    def drain(self, node: str) -> None:
        self.calls.append(("drain", node))

    def restart_from_checkpoint(self, job: str) -> None:
        self.calls.append(("restart_from_checkpoint", job))

    def requeue(self, job: str, exclude_nodes: Sequence[str] = ()) -> None:
        self.calls.append(("requeue", job))
