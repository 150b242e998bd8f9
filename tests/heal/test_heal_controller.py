"""The controller end to end on a fake executor: modes, idempotency, budgets, failures, resume."""

from __future__ import annotations

from pathlib import Path

import pytest
from healkit import AUTO_POLICIES, Crash, FakeClock, Rig, diagnosis, event

from fleetmedic.heal.audit import AuditLog
from fleetmedic.heal.controller import HealEvent
from fleetmedic.heal.policy import load_policies, parse_policies
from fleetmedic.heal.state import ControlStore, Switches
from fleetmedic.model.errors import InputError
from fleetmedic.model.executor import PermanentActionError, TemporaryActionError
from fleetmedic.model.records import Job


def states(rig: Rig) -> dict[tuple[str, str], str]:
    return {(a.kind, a.target): a.state for a in rig.audit.all()}


def test_gpu_hardware_cordons_drains_and_requeues(rig: Rig) -> None:
    actions = rig.controller.handle(event("gpu_hardware", node="n3"))
    assert [(a.kind, a.state) for a in actions] == [
        ("cordon_and_drain", "done"),
        ("requeue_excluding_node", "done"),
    ]
    assert rig.executor.calls == [
        ("cordon", "n3", ()),
        ("drain", "n3", ()),
        ("requeue", "job-1", ("n3",)),
    ]


def test_duplicated_events_act_once(rig: Rig) -> None:
    ev = event("gpu_hardware", node="n3")
    rig.controller.handle(ev)
    rig.clock.advance(3600)
    assert rig.controller.handle(ev) == []
    assert rig.controller.handle(event("gpu_hardware", node="n3")) == []
    assert len(rig.executor.calls) == 3
    assert len(rig.audit.all()) == 2


def test_late_event_for_an_older_attempt_is_ignored(rig: Rig) -> None:
    rig.controller.handle(event("nccl_comm", attempt=2))
    newer_job = Job(job_id="job-1", status="running", attempts=2)
    late = HealEvent(diagnosis=diagnosis("nccl_comm", attempt=1), job=newer_job, node="n0")
    assert rig.controller.handle(late) == []
    assert rig.executor.calls == [("restart_from_checkpoint", "job-1", ())]


def test_out_of_order_events_give_the_same_actions(control: ControlStore, clock: FakeClock) -> None:
    events = [
        event("gpu_hardware", "job-1", node="n1"),
        event("nccl_comm", "job-2", node="n2"),
        event("gpu_oom", "job-3", node="n4"),
    ]
    first = Rig(control, parse_policies(AUTO_POLICIES), clock)
    for ev in events:
        first.controller.handle(ev)
    with ControlStore(":memory:") as other:
        second = Rig(other, parse_policies(AUTO_POLICIES), clock)
        for ev in reversed(events + events):
            second.controller.handle(ev)
        assert {a.action_id for a in first.audit.all()} == {a.action_id for a in second.audit.all()}
        assert sorted(first.executor.calls) == sorted(second.executor.calls)


def test_user_causes_are_not_retried_but_get_advice(rig: Rig) -> None:
    actions = rig.controller.handle(event("gpu_oom"))
    assert [(a.kind, a.state) for a in actions] == [("suggest_fix", "done")]
    assert rig.executor.calls == []


def test_diagnosis_marked_not_retryable_is_refused(rig: Rig) -> None:
    (action,) = rig.controller.handle(event("storage_io", retryable=False))
    assert action.state == "refused"
    assert action.result is not None and "not retryable" in action.result
    assert rig.executor.calls == []


def test_retry_budget_per_cause_and_per_job(rig: Rig) -> None:
    results = []
    for attempt in (1, 2, 3):
        (a,) = rig.controller.handle(event("nccl_comm", attempt=attempt))
        results.append(a.state)
        rig.clock.advance(3600)
    assert results == ["done", "done", "refused"]  # per_cause: 2
    (a,) = rig.controller.handle(event("storage_io", attempt=4))
    assert a.state == "done"  # a different cause: job total is now 3
    rig.clock.advance(3600)
    (a,) = rig.controller.handle(event("storage_io", attempt=5))
    assert a.state == "refused"
    assert a.result is not None and "3/3 retries for this job" in a.result


def test_guard_refusal_is_recorded(rig: Rig) -> None:
    rig.guard.engage_kill_switch()
    actions = rig.controller.handle(event("gpu_hardware", node="n3"))
    assert {a.state for a in actions} == {"refused"}
    assert all("kill switch" in (a.result or "") for a in actions)
    assert rig.executor.calls == []


def test_dry_run_default_policies_change_nothing(control: ControlStore, clock: FakeClock) -> None:
    rig = Rig(control, load_policies(), clock)
    for job in ("job-a", "job-b"):
        rig.controller.handle(event("gpu_hardware", job_id=job, node="n3"))
        clock.advance(86400)  # the third hardware fault on n3 within two weeks: a cordon is due
    actions = rig.controller.handle(event("gpu_hardware", node="n3"))
    assert rig.executor.calls == []
    assert all(a.mode == "dry-run" for a in actions)
    # 1 node of 10 is 10% of the fleet, above the default 5%: the dry-run says so
    cordon = next(a for a in actions if a.kind == "cordon_and_drain")
    assert cordon.state == "refused" and "fleet limit" in (cordon.result or "")
    requeue = next(a for a in actions if a.kind == "requeue_excluding_node")
    assert requeue.state == "proposed" and (requeue.result or "").startswith("dry-run")
    rig.restart()
    assert rig.controller.resume() == []


def test_dry_run_actions_cannot_be_approved(control: ControlStore, clock: FakeClock) -> None:
    rig = Rig(control, load_policies(), clock)
    actions = rig.controller.handle(event("gpu_hardware", node="n3"))
    requeue = next(a for a in actions if a.kind == "requeue_excluding_node")
    with pytest.raises(InputError, match="only proposed approval-mode actions"):
        rig.controller.approve(requeue.action_id)
    assert rig.executor.calls == []


def test_approval_mode_waits_for_a_person(control: ControlStore, clock: FakeClock) -> None:
    text = AUTO_POLICIES.replace("mode: auto", "mode: approval")
    rig = Rig(control, parse_policies(text), clock)
    (cordon, requeue) = rig.controller.handle(event("gpu_hardware", node="n3"))
    assert cordon.state == requeue.state == "proposed"
    assert rig.controller.resume() == []
    assert rig.executor.calls == []
    assert rig.controller.approve(cordon.action_id).state == "done"
    assert rig.controller.reject(requeue.action_id).state == "rejected"
    assert rig.executor.calls == [("cordon", "n3", ()), ("drain", "n3", ())]


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (TimeoutError("api call took 30s"), "timed out"),
        (TemporaryActionError("409 conflict"), "temporary error"),
        (PermanentActionError("job gone"), "permanent error"),
    ],
)
def test_executor_failure_and_timeout_end_failed(rig: Rig, error: Exception, expected: str) -> None:
    rig.executor.fail[("restart_from_checkpoint", "job-1")] = error
    (action,) = rig.controller.handle(event("nccl_comm"))
    assert action.state == "failed"
    assert action.result is not None and action.result.startswith(expected)
    rig.restart()
    assert rig.controller.resume() == []  # failed is final


def test_failed_verification_ends_failed(rig: Rig) -> None:
    class Doubtful:
        def verify(self, action: object) -> str | None:
            return "node still schedulable"

    rig.controller.verifier = Doubtful()
    (cordon, _) = rig.controller.handle(event("gpu_hardware", node="n3"))
    assert cordon.state == "failed"
    assert cordon.result == "verification failed: node still schedulable"


def test_crash_then_resume_never_repeats_done(tmp_path: Path, clock: FakeClock) -> None:
    db = tmp_path / "heal.sqlite"
    policies = parse_policies(AUTO_POLICIES)
    with ControlStore(db) as control:
        rig = Rig(control, policies, clock)
        rig.executor.fail[("requeue", "job-1")] = Crash("process killed")
        with pytest.raises(Crash):
            rig.controller.handle(event("gpu_hardware", node="n3"))
        assert states(rig) == {
            ("cordon_and_drain", "n3"): "done",
            ("requeue_excluding_node", "job-1"): "executing",
        }
        calls_before = list(rig.executor.calls)
        executor = rig.executor
    with ControlStore(db) as control:  # a new process: new store handle, guard and controller
        rig = Rig(control, policies, clock)
        rig.executor = executor
        executor.fail.clear()
        rig.restart()
        resumed = rig.controller.resume()
        assert [(a.kind, a.state) for a in resumed] == [("requeue_excluding_node", "done")]
        assert executor.calls == [*calls_before, ("requeue", "job-1", ("n3",))]
        assert rig.controller.resume() == []
        assert rig.controller.handle(event("gpu_hardware", node="n3")) == []
        assert executor.calls.count(("cordon", "n3", ())) == 1


def test_resume_drives_an_action_left_proposed(rig: Rig) -> None:
    action, _ = rig.audit.propose(
        "retry_from_checkpoint", "job-9", ["job-9#1:nccl_comm"], "auto", rig.clock()
    )
    rig.restart()
    (done,) = rig.controller.resume()
    assert done.action_id == action.action_id and done.state == "done"
    assert rig.executor.calls == [("restart_from_checkpoint", "job-9", ())]


def test_node_repaired_health_check_then_uncordon(rig: Rig) -> None:
    rig.controller.handle(event("gpu_hardware", node="n3"))
    rig.clock.advance(3600)

    class Sick:
        def healthy(self, node: str) -> bool:
            return False

    rig.controller.health = Sick()
    failed = rig.controller.node_repaired("n3", "repair-1", mode="auto")
    assert failed.state == "failed" and "failed its health check" in (failed.result or "")
    assert ("uncordon", "n3", ()) not in rig.executor.calls
    rig.controller.health = type("Well", (), {"healthy": lambda self, node: True})()
    too_soon = rig.controller.node_repaired("n3", "repair-2", mode="auto")
    assert too_soon.state == "refused" and (too_soon.result or "").startswith("cooldown")
    rig.clock.advance(60)
    ok = rig.controller.node_repaired("n3", "repair-3", mode="auto")
    assert ok.state == "done"
    assert rig.executor.calls[-1] == ("uncordon", "n3", ())
    assert "n3" not in rig.guard.fleet.cordoned
    assert rig.controller.node_repaired("n3", "repair-3", mode="auto") == ok  # duplicate report


def test_kill_switch_from_another_connection_stops_a_running_controller(
    tmp_path: Path, clock: FakeClock
) -> None:
    db = tmp_path / "heal.sqlite"
    with ControlStore(db) as control, ControlStore(db) as operator:
        rig = Rig(control, parse_policies(AUTO_POLICIES), clock)
        Switches(operator).set("kill_switch", True, clock(), "alice", "incident")
        actions = rig.controller.handle(event("gpu_hardware", node="n3"))
        assert {a.state for a in actions} == {"refused"}
        assert all("kill switch" in (a.result or "") for a in actions)
        assert rig.executor.calls == []


def test_a_tripped_breaker_stays_open_after_a_restart(tmp_path: Path, clock: FakeClock) -> None:
    text = AUTO_POLICIES.replace("storm_actions: 100", "storm_actions: 2")
    db = tmp_path / "heal.sqlite"
    with ControlStore(db) as control:
        rig = Rig(control, parse_policies(text), clock)
        for job in range(3):
            rig.controller.handle(event("nccl_comm", job_id=f"job-{job}", node=None))
        assert rig.guard.breaker_open
    with ControlStore(db) as control:
        rig = Rig(control, parse_policies(text), clock)
        (action,) = rig.controller.handle(event("nccl_comm", job_id="job-9", node=None))
        assert action.state == "refused" and "manual reset" in (action.result or "")
        rig.guard.reset_breaker("bob")
        (again,) = rig.controller.handle(event("nccl_comm", job_id="job-10", node=None))
        assert again.state == "done"


def test_restart_keeps_cooldowns_and_rate_limits(tmp_path: Path, clock: FakeClock) -> None:
    text = AUTO_POLICIES.replace("burst: 100", "burst: 1").replace(
        "default_rate_per_hour: 1000", "default_rate_per_hour: 1"
    )
    db = tmp_path / "heal.sqlite"
    with ControlStore(db) as control:
        rig = Rig(control, parse_policies(text), clock)
        (first,) = rig.controller.handle(event("nccl_comm", job_id="job-1", node=None))
        assert first.state == "done"
    clock.advance(60)
    with ControlStore(db) as control:  # a fresh process would otherwise have a full bucket
        rig = Rig(control, parse_policies(text), clock)
        assert rig.controller.resume() == []
        (second,) = rig.controller.handle(event("nccl_comm", job_id="job-2", node=None))
        assert second.state == "refused" and "rate limit" in (second.result or "")


def test_approval_given_elsewhere_is_run_by_the_controller(
    control: ControlStore, clock: FakeClock
) -> None:
    text = AUTO_POLICIES.replace(
        "action: cordon_and_drain\n    mode: auto", "action: cordon_and_drain\n    mode: approval"
    )
    rig = Rig(control, parse_policies(text), clock)
    cordon = next(
        a
        for a in rig.controller.handle(event("gpu_hardware", node="n3"))
        if a.kind == "cordon_and_drain"
    )
    assert cordon.state == "proposed" and ("cordon", "n3", ()) not in rig.executor.calls
    assert rig.controller.run_approved() == []
    AuditLog(control).approve(cordon.action_id, clock(), "carol")
    (ran,) = rig.controller.run_approved()
    assert ran.state == "done" and ("cordon", "n3", ()) in rig.executor.calls
    assert rig.controller.run_approved() == []


def test_a_node_event_without_a_job_cordons_once_per_ref(
    control: ControlStore, clock: FakeClock
) -> None:
    text = AUTO_POLICIES.replace(
        "policies:\n",
        "policies:\n  - name: lemon\n    match: {signature: '^lemon[.]'}\n"
        "    action: cordon_and_drain\n    mode: auto\n",
    )
    rig = Rig(control, parse_policies(text), clock)
    flagged = diagnosis("gpu_hardware", job_id=None, signature="lemon.failure_rate")
    first = rig.controller.handle(HealEvent(flagged, node="n4", ref="lemon:n4:0"))
    assert [(a.kind, a.target, a.state) for a in first] == [("cordon_and_drain", "n4", "done")]
    assert rig.controller.handle(HealEvent(flagged, node="n4", ref="lemon:n4:0")) == []
    with pytest.raises(InputError, match="names no job and no ref"):
        rig.controller.handle(HealEvent(flagged, node="n5"))


def test_a_windowed_retry_budget_refills(control: ControlStore, clock: FakeClock) -> None:
    text = AUTO_POLICIES.replace(
        "retry_budget: {per_job: 3, per_cause: 2}\n  - name: user-fix",
        "retry_budget: {per_job: 1, per_cause: 1, window_hours: 24}\n  - name: user-fix",
    )
    rig = Rig(control, parse_policies(text), clock)
    (first,) = rig.controller.handle(event("nccl_comm", attempt=1, node=None))
    (second,) = rig.controller.handle(event("nccl_comm", attempt=2, node=None))
    assert first.state == "done"
    assert second.state == "refused" and "within 24 h" in (second.result or "")
    clock.advance(25 * 3600)
    (third,) = rig.controller.handle(event("nccl_comm", attempt=3, node=None))
    assert third.state == "done"
