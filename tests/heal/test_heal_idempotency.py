"""Property: however events are duplicated and reordered, no action runs twice."""

from __future__ import annotations

from collections import Counter

from healkit import AUTO_POLICIES, FakeClock, Rig, event
from hypothesis import given, settings
from hypothesis import strategies as st

from fleetmedic.heal.policy import parse_policies
from fleetmedic.heal.state import ControlStore

EVENTS = [
    event("gpu_hardware", "job-1", node="n1"),
    event("gpu_hardware", "job-2", node="n1"),
    event("nccl_comm", "job-3", attempt=1, node="n2"),
    event("nccl_comm", "job-3", attempt=2, node="n2"),
    event("storage_io", "job-4", node="n5"),
    event("gpu_oom", "job-5", node="n6"),
]
POLICIES = parse_policies(AUTO_POLICIES)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(0, len(EVENTS) - 1), min_size=1, max_size=20))
def test_no_action_runs_twice(order: list[int]) -> None:
    clock = FakeClock()
    with ControlStore(":memory:") as control:
        rig = Rig(control, POLICIES, clock)
        for i in order:
            rig.controller.handle(EVENTS[i])
            clock.advance(7)
        actions = rig.audit.all()
        assert len({a.action_id for a in actions}) == len(actions)
        # every executor call belongs to exactly one done action, and vice versa
        method = {
            "cordon_and_drain": "cordon",
            "requeue_excluding_node": "requeue",
            "retry_from_checkpoint": "restart_from_checkpoint",
        }
        done = Counter(
            (method[a.kind], a.target) for a in actions if a.state == "done" and a.kind in method
        )
        calls = Counter((c[0], c[1]) for c in rig.executor.calls if c[0] != "drain")
        assert calls == done
        assert calls[("cordon", "n1")] <= 1
        assert rig.controller.resume() == []
