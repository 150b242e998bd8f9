"""The built-in healing policy behind ``--heal dry-run|auto`` until the healing controller exists.

Two rules, the ones that move the KPIs most:

1. an attempt that failed for a platform or hardware cause is restarted from its last checkpoint
   (with exponential backoff, up to a limit), away from the node the cause points at;
2. a node with repeated hardware failures within a window is cordoned and drained: it leaves for
   repair once its jobs are gone and comes back healthy, then is uncordoned.

It decides from the *diagnosis* (a :class:`~fleetmedic.sim.observe.Verdict`), never from the
injected truth, so a wrong diagnosis has its real cost (a futile restart, a false cordon). Every
decision is an :class:`~fleetmedic.model.records.Action` with a deterministic id; in dry-run the
actions are only proposed.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable
from datetime import datetime

from fleetmedic.model.executor import Executor
from fleetmedic.model.records import Action
from fleetmedic.sim.calibration import Calibration
from fleetmedic.sim.config import HealMode
from fleetmedic.sim.observe import Verdict

NODE_CATEGORIES = frozenset({"gpu_hardware", "node_failure"})
NOT_RESTARTED = frozenset({"preemption", "scheduling", "unknown"})  # the scheduler requeues these


class HealPolicy:
    """Decides and (in auto mode) executes; keeps the actions it took or proposed."""

    def __init__(
        self,
        mode: HealMode,
        calib: Calibration,
        executor: Executor,
        clock: Callable[[float], datetime],
    ) -> None:
        self.mode = mode
        self.executor = executor
        self.clock = clock
        recovery = calib.recovery
        self.max_restarts = int(recovery.auto_max_restarts.value)
        self.cordon_after = int(recovery.cordon_after_failures.value)
        self.window = recovery.cordon_window_days.value * 86400.0
        self.hardware: dict[str, list[float]] = {}
        self.cordoned: set[str] = set()
        self.actions: list[Action] = []
        self.counts: Counter[str] = Counter()

    @property
    def executes(self) -> bool:
        return self.mode == "auto"

    def on_failure(
        self, now: float, job_id: str, attempt: int, verdict: Verdict, restarts: int
    ) -> bool:
        """React to one diagnosed failure; True when the job was restarted (auto only)."""
        because = f"{job_id}#{attempt}"
        if verdict.node and verdict.category in NODE_CATEGORIES:
            self._count_hardware(now, verdict.node, because)
        if verdict.owner not in {"platform", "hardware"} or verdict.category in NOT_RESTARTED:
            return False
        if restarts >= self.max_restarts:
            return False
        if verdict.node and verdict.category in NODE_CATEGORIES:
            self._act(now, "requeue", job_id, because)
            if self.executes:
                self.executor.requeue(job_id, [verdict.node])
        else:
            self._act(now, "restart_from_checkpoint", job_id, because)
            if self.executes:
                self.executor.restart_from_checkpoint(job_id)
        return self.executes

    def on_node_signal(self, now: float, node: str, category: str) -> None:
        """A hardware signal on a node no job was using (an Xid line, NodeNotReady)."""
        if category in NODE_CATEGORIES:
            self._count_hardware(now, node, f"node:{node}")

    def on_node_repaired(self, now: float, node: str) -> None:
        """A cordoned node passed repair: put it back in service."""
        if node not in self.cordoned:
            return
        self.cordoned.discard(node)
        self.hardware.pop(node, None)
        self._act(now, "uncordon", node, "repaired")
        if self.executes:
            self.executor.uncordon(node)

    def _count_hardware(self, now: float, node: str, because: str) -> None:
        times = [t for t in self.hardware.get(node, []) if now - t <= self.window]
        times.append(now)
        self.hardware[node] = times
        if len(times) < self.cordon_after or node in self.cordoned:
            return
        self.cordoned.add(node)
        self._act(now, "cordon", node, because)
        self._act(now, "drain", node, because)
        if self.executes:
            self.executor.cordon(node)
            self.executor.drain(node)

    def _act(self, now: float, kind: str, target: str, because: str) -> None:
        when = self.clock(now)
        key = hashlib.sha256(f"{kind}\x1f{target}\x1f{because}".encode()).hexdigest()[:24]
        self.counts[kind] += 1
        self.actions.append(
            Action(
                action_id=key,
                kind=kind,
                target=target,
                because=(because,),
                mode="auto" if self.executes else "dry-run",
                state="done" if self.executes else "proposed",
                created_at=when,
                updated_at=when,
            )
        )
