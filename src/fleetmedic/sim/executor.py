"""The actions a healer may take on a cluster, as a small Protocol, and the simulator's executor.

The healing controller acts through :class:`~fleetmedic.model.executor.Executor` only, so the same policy can
drive the simulated cluster, a dry run, or a real Kubernetes cluster. :class:`SimExecutor` plays
the effects out in the simulation: a cordon removes capacity, a drain sends the node to repair once
its jobs are gone, a restart puts the job back in the queue to resume from its last checkpoint.
:class:`~fleetmedic.model.executor.RecordingExecutor` only records the calls (dry-run).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from fleetmedic.model.records import Action
from fleetmedic.sim.observe import Verdict


class ClusterControl(Protocol):
    """The hooks the simulation engine offers its executor."""

    def node_index(self, name: str) -> int: ...
    def cordon_node(self, idx: int) -> None: ...
    def uncordon_node(self, idx: int) -> None: ...
    def drain_node(self, idx: int) -> None: ...
    def restart_job(self, job_id: str, exclude: Sequence[int]) -> None: ...


class Healer(Protocol):
    """What the simulated platform tells its healer, in simulated seconds since the start.

    The healer lives outside ``sim`` (``workflows.healing`` wires the real controller in), so the
    simulation only knows this much: failures with their diagnosis, node signals, repairs, and a
    clock tick for periodic checks.
    """

    def on_failure(self, now: float, job_id: str, attempt: int, verdict: Verdict) -> bool:
        """React to a diagnosed failure; True when the healer restarted the job."""
        ...

    def on_node_signal(self, now: float, node: str, category: str) -> None: ...
    def on_node_repaired(self, now: float, node: str) -> None: ...
    def tick(self, now: float) -> None: ...
    def actions(self) -> list[Action]: ...


class SimExecutor:
    """Executes on the simulated cluster."""

    def __init__(self, control: ClusterControl) -> None:
        self.control = control

    def cordon(self, node: str) -> None:
        self.control.cordon_node(self.control.node_index(node))

    def uncordon(self, node: str) -> None:
        self.control.uncordon_node(self.control.node_index(node))

    def drain(self, node: str) -> None:
        self.control.drain_node(self.control.node_index(node))

    def restart_from_checkpoint(self, job: str) -> None:
        self.control.restart_job(job, ())

    def requeue(self, job: str, exclude_nodes: Sequence[str] = ()) -> None:
        self.control.restart_job(job, [self.control.node_index(n) for n in exclude_nodes])
