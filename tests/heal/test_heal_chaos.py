"""Chaos: the executor fails, times out or the process dies at random; invariants still hold.

Whatever happens, across any number of crashes and restarts on the same control file:
no action is executed again once ``done``; every ``done`` action's effect happened; an action the
executor failed permanently is never retried; and the audit only holds legal states.
"""

from __future__ import annotations

import tempfile
from collections import Counter
from pathlib import Path

from healkit import AUTO_POLICIES, Crash, FakeClock, FakeExecutor, Rig, event
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fleetmedic.heal.controller import HealEvent
from fleetmedic.heal.policy import parse_policies
from fleetmedic.heal.state import ControlStore
from fleetmedic.model.executor import PermanentActionError, TemporaryActionError

POLICIES = parse_policies(AUTO_POLICIES)
EVENTS = [
    event("gpu_hardware", "job-1", node="n1"),
    event("gpu_hardware", "job-2", node="n1"),
    event("nccl_comm", "job-3", attempt=1, node="n2"),
    event("storage_io", "job-4", node=None),
    event("gpu_hardware", "job-5", node="n3"),
    event("nccl_comm", "job-6", node=None),
]
FAULTS = st.sampled_from(["ok", "ok", "ok", "temporary", "timeout", "permanent", "crash"])
METHOD = {
    "cordon_and_drain": "cordon",
    "requeue_excluding_node": "requeue",
    "retry_from_checkpoint": "restart_from_checkpoint",
}


class ChaosExecutor(FakeExecutor):
    """Each call draws its fate from the script; a crash raises something the controller can't handle."""

    def __init__(self, script: list[str]) -> None:
        super().__init__()
        self.script = script
        self.attempted: list[tuple[str, str]] = []
        self.permanent: dict[tuple[str, str], int] = {}  # first permanent failure: its attempt no.

    def _do(self, method: str, target: str, extra: tuple[str, ...] | list[str] = ()) -> None:
        fate = self.script.pop(0) if self.script else "ok"
        self.attempted.append((method, target))
        if fate == "temporary":
            raise TemporaryActionError("409 conflict")
        if fate == "timeout":
            raise TimeoutError("API did not answer in 10s")
        if fate == "permanent":
            self.permanent.setdefault((method, target), len(self.attempted))
            raise PermanentActionError("404 not found")
        if fate == "crash":
            raise Crash("process killed")
        super()._do(method, target, tuple(extra))


def _run(rig: Rig, item: HealEvent) -> bool:
    """Handle one event; False when the process 'died' (the caller restarts it)."""
    try:
        rig.controller.handle(item)
    except Crash:
        return False
    return True


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    order=st.lists(st.integers(0, len(EVENTS) - 1), min_size=1, max_size=14),
    script=st.lists(FAULTS, max_size=30),
)
def test_invariants_hold_under_chaos(tmp_path: Path, order: list[int], script: list[str]) -> None:
    clock = FakeClock()
    path = Path(tempfile.mkdtemp(dir=tmp_path)) / "heal.sqlite"  # fresh per example
    executor = ChaosExecutor(list(script))
    with ControlStore(path) as control:
        rig = Rig(control, POLICIES, clock)
        rig.executor = executor
        rig.restart()
        for i in order:
            clock.advance(5)
            if not _run(rig, EVENTS[i]):
                rig.restart()  # a new process on the same file
                try:
                    rig.controller.resume()
                except Crash:
                    rig.restart()
        executor.script.clear()
        rig.restart()
        rig.controller.resume()  # a last, calm restart finishes what was left executing
        actions = rig.audit.all()
    assert {a.state for a in actions} <= {"done", "failed", "refused", "proposed"}
    assert not [a for a in actions if a.state == "proposed" and a.mode == "auto"]
    done = Counter(
        (METHOD[a.kind], a.target) for a in actions if a.state == "done" and a.kind in METHOD
    )
    effects = Counter((c[0], c[1]) for c in executor.calls if c[0] in METHOD.values())
    for key, n in done.items():
        assert effects[key] >= n  # the effect of every done action happened
    per_target = Counter((a.kind, a.target) for a in actions)
    for action in actions:
        alone = per_target[(action.kind, action.target)] == 1
        if action.state == "failed" and "permanent" in (action.result or "") and alone:
            method = METHOD.get(action.kind)
            # a permanent failure is final: nothing tried the action again afterwards (a crash
            # before it may legitimately have been followed by a resume)
            key = (method, action.target)
            if method is not None and key in executor.permanent:
                assert key not in executor.attempted[executor.permanent[key] :]
    ids = [a.action_id for a in actions]
    assert len(ids) == len(set(ids))
