"""Helpers for the healing tests: a hand-moved clock, a fake executor, events, a rig."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from fleetmedic.heal.audit import AuditLog
from fleetmedic.heal.controller import Controller, HealEvent
from fleetmedic.heal.guard import Fleet, Guard
from fleetmedic.heal.policy import GuardConfig, PolicySet
from fleetmedic.heal.state import ControlStore, Switches
from fleetmedic.model.records import ActionRef, Diagnosis, Job
from fleetmedic.model.taxonomy import category


class FakeClock:
    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class Crash(Exception):
    """Stands for the process dying mid-action (not an error the controller handles)."""


class FakeExecutor:
    """Records calls; ``fail[(method, target)]`` is raised instead of acting."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, tuple[str, ...]]] = []
        self.fail: dict[tuple[str, str], BaseException] = {}

    def _do(self, method: str, target: str, extra: Sequence[str] = ()) -> None:
        error = self.fail.get((method, target))
        if error is not None:
            raise error
        self.calls.append((method, target, tuple(extra)))

    def cordon(self, node: str) -> None:
        self._do("cordon", node)

    def uncordon(self, node: str) -> None:
        self._do("uncordon", node)

    def drain(self, node: str) -> None:
        self._do("drain", node)

    def restart_from_checkpoint(self, job: str) -> None:
        self._do("restart_from_checkpoint", job)

    def requeue(self, job: str, exclude_nodes: Sequence[str] = ()) -> None:
        self._do("requeue", job, exclude_nodes)


def diagnosis(cat: str, job_id: str = "job-1", attempt: int = 1, **kw: object) -> Diagnosis:
    entry = category(cat)
    fields: dict[str, object] = {
        "input": f"{job_id}.log",
        "category": cat,
        "owner": entry.owner,
        "confidence": 0.9,
        "summary": cat,
        "action": ActionRef(kind=entry.action, advice=entry.advice),
        "retryable": entry.retryable,
        "signature": f"{cat}.sig",
        "job_id": job_id,
        "attempt": attempt,
    }
    fields.update(kw)
    return Diagnosis.model_validate(fields)


def event(
    cat: str, job_id: str = "job-1", attempt: int = 1, node: str | None = "n0", **kw: object
) -> HealEvent:
    job = Job(job_id=job_id, status="failed", attempts=attempt)
    return HealEvent(diagnosis=diagnosis(cat, job_id, attempt, **kw), job=job, node=node)


AUTO_POLICIES = """
version: 1
guard:
  burst: 100
  default_rate_per_hour: 1000
  max_cordoned_fraction: 0.5
  max_cordoned_fraction_per_pool: 0.5
  min_schedulable_per_pool: 1
  cooldown_seconds: 60
  storm_actions: 100
policies:
  - name: cordon-hw
    match: {categories: [gpu_hardware]}
    action: cordon_and_drain
    mode: auto
  - name: requeue-hw
    match: {categories: [gpu_hardware]}
    action: requeue_excluding_node
    mode: auto
    retry_budget: {per_job: 3, per_cause: 2}
  - name: retry-nccl
    match: {categories: [nccl_comm, storage_io]}
    action: retry_from_checkpoint
    mode: auto
    retry_budget: {per_job: 3, per_cause: 2}
  - name: user-fix
    match: {owners: [user]}
    action: suggest_fix
    mode: auto
"""


def fleet(n: int = 10, pools: int = 1) -> Fleet:
    return Fleet({f"n{i}": f"p{i % pools}" for i in range(n)})


class Rig:
    """A controller and everything it talks to; ``restart()`` builds a fresh one on the store."""

    def __init__(self, store: ControlStore, policies: PolicySet, clock: FakeClock) -> None:
        self.store, self.policies, self.clock = store, policies, clock
        self.executor = FakeExecutor()
        self.restart()

    def restart(self) -> None:
        self.guard = Guard(self.policies.guard, fleet(), self.clock, Switches(self.store))
        self.audit = AuditLog(self.store)
        self.controller = Controller(
            self.policies, self.guard, self.audit, self.executor, clock=self.clock
        )


def guard_with(clock: FakeClock, fleet_: Fleet | None = None, **config: object) -> Guard:
    return Guard(GuardConfig.model_validate(config), fleet_ or fleet(), clock)
