"""The healing controller driving the simulated cluster: ``fleetmedic simulate --heal dry-run|auto``.

Why here: ``sim`` and ``heal`` are independent stages, so this module joins them. The simulation
calls :class:`ControllerHealer` (the :class:`~fleetmedic.sim.executor.Healer` hooks); it turns each
diagnosed failure into a :class:`~fleetmedic.heal.controller.HealEvent` for the real controller,
with the packaged policies (every policy switched to the run's mode), the real guard, the audit in
an in-memory control store, and :class:`~fleetmedic.sim.executor.SimExecutor` as the executor in
``auto``. Nothing is special-cased for the simulator: a wrong diagnosis costs a futile restart or
a false cordon, and the guard's limits hold.

The breaker's manual reset is played by a simulated on-call who resets it ``ONCALL_RESET_HOURS``
after it trips (assumed; without one a single storm would switch healing off for the rest of the
run, which no platform would leave so).

Proactive lemon detection runs every ``LEMON_EVERY_HOURS`` of simulated time: each node's hardware
faults since it last came back from repair, against its hours in service, through the same exact
Poisson test with Benjamini-Hochberg control as ``fleetmedic heal lemons`` (:mod:`heal.lemons`).
A flagged node becomes a job-less event whose signature the ``quarantine-lemon-node`` policy matches.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from fleetmedic.heal.audit import AuditLog
from fleetmedic.heal.controller import Controller, HealEvent
from fleetmedic.heal.guard import Fleet, Guard
from fleetmedic.heal.lemons import DEFAULT_FDR, lemon_test
from fleetmedic.heal.policy import RETRY_KINDS, PolicySet, load_policies
from fleetmedic.heal.state import ControlStore, Switches
from fleetmedic.model.executor import RecordingExecutor
from fleetmedic.model.records import Action, ActionMode, ActionRef, Diagnosis, Job
from fleetmedic.model.taxonomy import category as taxonomy_category
from fleetmedic.sim.engine import Simulation
from fleetmedic.sim.executor import SimExecutor
from fleetmedic.sim.observe import Verdict

LEMON_EVERY_HOURS = 6.0
ONCALL_RESET_HOURS = 2.0
"""Assumed: how long the simulated on-call takes to look at a tripped breaker and reset it."""
HARDWARE = frozenset({"gpu_hardware", "node_failure"})
LEMON_SIGNATURE = "lemon.failure_rate"


@dataclass
class _NodeRecord:
    """Hardware faults of one node since it was last put back in service."""

    since: float = 0.0
    faults: list[float] = field(default_factory=list)
    generation: int = 0  # repairs so far: a node flagged again after repair is a new cause


class ControllerHealer:
    """The :class:`~fleetmedic.sim.executor.Healer` the simulation calls, backed by the controller."""

    def __init__(
        self,
        sim: Simulation,
        policies: PolicySet | None = None,
        diagnoses: Callable[[str, int], Diagnosis | None] | None = None,
        fdr: float = DEFAULT_FDR,
    ) -> None:
        mode: ActionMode = "auto" if sim.config.heal == "auto" else "dry-run"
        self.sim, self.fdr = sim, fdr
        self.now = 0.0
        self.lookup = diagnoses or (lambda job, attempt: None)
        self.control = ControlStore(":memory:")
        fleet = Fleet(dict(zip(sim.node_names, sim.node_pools, strict=True)))
        self.guard = Guard(
            (policies or load_policies()).guard, fleet, self.clock, Switches(self.control)
        )
        self.controller = Controller(
            (policies or load_policies()).with_mode(mode),
            self.guard,
            AuditLog(self.control),
            SimExecutor(sim) if mode == "auto" else RecordingExecutor(),
            clock=self.clock,
        )
        self.mode = mode
        self.nodes = {name: _NodeRecord() for name in sim.node_names}
        self.next_lemon_check = LEMON_EVERY_HOURS * 3600.0
        self.detected: dict[str, float] = {}  # node -> first time the lemon test flagged it
        self.breaker_since: float | None = None
        self.breaker_trips = 0

    def clock(self) -> datetime:
        return self.sim.when(self.now)

    # -- Healer hooks ---------------------------------------------------------------------
    def on_failure(self, now: float, job_id: str, attempt: int, verdict: Verdict) -> bool:
        self.now = now
        if verdict.node is not None and verdict.category in HARDWARE:
            self.nodes[verdict.node].faults.append(now)
        diagnosis = self.lookup(job_id, attempt) or _from_verdict(verdict, job_id, attempt)
        job = Job(job_id=job_id, status="failed", attempts=attempt)
        event = HealEvent(diagnosis=diagnosis, job=job, node=verdict.node, attempt=attempt)
        actions = self.controller.handle(event)
        return any(a.kind in RETRY_KINDS and a.state == "done" for a in actions)

    def on_node_signal(self, now: float, node: str, category: str) -> None:
        """A fault on a node no job was using: the kubelet or the kernel log says so."""
        self.now = now
        if category not in HARDWARE:
            return
        self.nodes[node].faults.append(now)
        diagnosis = _from_verdict(Verdict(category, "hardware", node), None, None)
        self.controller.handle(HealEvent(diagnosis, node=node, ref=f"{node}@{now:.0f}"))

    def on_node_repaired(self, now: float, node: str) -> None:
        """Back from the deep repair a cordon sent it to: health-check, uncordon, start afresh."""
        self.now = now
        record = self.nodes[node]
        record.generation += 1
        self.nodes[node] = _NodeRecord(since=now, generation=record.generation)
        self.controller.node_repaired(node, f"{node}#{record.generation}", self.mode)

    def tick(self, now: float) -> None:
        self.now = now
        self._oncall()
        if now >= self.next_lemon_check:
            self.next_lemon_check = now + LEMON_EVERY_HOURS * 3600.0
            self.check_lemons()

    def actions(self) -> list[Action]:
        return self.controller.audit.all()

    def _oncall(self) -> None:
        """A person answers the breaker's page after ``ONCALL_RESET_HOURS`` and resets it."""
        if not self.guard.breaker_open:
            self.breaker_since = None
            return
        if self.breaker_since is None:
            self.breaker_since = self.now
            self.breaker_trips += 1
        elif self.now - self.breaker_since >= ONCALL_RESET_HOURS * 3600.0:
            self.guard.reset_breaker("simulated on-call")
            self.breaker_since = None

    # -- proactive ------------------------------------------------------------------------
    def check_lemons(self) -> list[str]:
        """Run the lemon test over the fleet now; quarantine (through the guard) what it flags."""
        counts = {
            name: (len(r.faults), (self.now - r.since) / 3600.0) for name, r in self.nodes.items()
        }
        flagged = [row for row in lemon_test(counts, fdr=self.fdr) if row.flagged]
        for row in flagged:
            self.detected.setdefault(row.node, self.now)
            generation = self.nodes[row.node].generation
            diagnosis = _lemon_diagnosis(row.node, row.failures, row.expected, row.q_value)
            event = HealEvent(diagnosis, node=row.node, ref=f"lemon:{row.node}#{generation}")
            self.controller.handle(event)
        return [row.node for row in flagged]


def _from_verdict(verdict: Verdict, job_id: str | None, attempt: int | None) -> Diagnosis:
    """A diagnosis for a failure the simulation read from signals only (no log bundle)."""
    entry = taxonomy_category(verdict.category)
    return Diagnosis(
        input=f"{job_id}#{attempt}" if job_id else f"node/{verdict.node}",
        job_id=job_id,
        attempt=attempt,
        category=verdict.category,
        owner=verdict.owner,
        confidence=0.5,
        summary=entry.advice,
        action=ActionRef(kind=entry.action, advice=entry.advice),
        retryable=entry.retryable,
        signature=f"signal.{verdict.category}",
        details={"node": verdict.node} if verdict.node else {},
    )


def _lemon_diagnosis(node: str, failures: int, expected: float, q_value: float) -> Diagnosis:
    entry = taxonomy_category("gpu_hardware")
    summary = (
        f"{node}: {failures} hardware faults where the fleet's rate predicts {expected:.2f} "
        f"(q = {q_value:.2g})"
    )
    return Diagnosis(
        input=f"node/{node}",
        category="gpu_hardware",
        owner="hardware",
        confidence=max(0.0, min(1.0, 1.0 - q_value)),
        summary=summary,
        action=ActionRef(
            kind="cordon_and_drain", advice="quarantine the node and send it to repair"
        ),
        retryable=entry.retryable,
        signature=LEMON_SIGNATURE,
        details={
            "node": node,
            "failures": str(failures),
            "expected": f"{expected:.3f}",
            "q_value": f"{q_value:.3g}",
        },
    )


def healer_factory(
    policies: PolicySet | None = None,
    diagnoses: Callable[[str, int], Diagnosis | None] | None = None,
) -> Callable[[Simulation], ControllerHealer]:
    """What :class:`~fleetmedic.sim.engine.Simulation` takes as ``healer``."""
    return lambda sim: ControllerHealer(sim, policies, diagnoses)
