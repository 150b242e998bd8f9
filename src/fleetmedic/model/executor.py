"""The actions a healer can take on a cluster: one contract for every executor.

The simulator's executor, the Kubernetes executor and the test fakes implement it; the healing
controller calls it. Targets are node names and job ids.
Executors signal failure with the two errors below so the controller knows whether a retry could
help; any other exception is treated as a crash.
"""

from __future__ import annotations

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
