"""The replica logic that needs no NATS: lease names, the switch merge, the claiming step."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from natskit import NODES, POLICIES, LedgerExecutor, SharedLedger, diagnosis

from fleetmedic.heal.controller import HealEvent
from fleetmedic.heal.guard import Fleet
from fleetmedic.heal.policy import parse_policies
from fleetmedic.heal.replicas import _merge_switches, action_lease, lease_names, replica_controller
from fleetmedic.heal.state import ControlStore, Switches, iso
from fleetmedic.model.records import Action


def controller(tmp: Path, ledger: SharedLedger) -> Any:
    control = ControlStore(tmp / "c.sqlite")
    return replica_controller(
        control,
        parse_policies(POLICIES),
        Fleet({n: "p" for n in NODES}),
        LedgerExecutor(ledger, "me"),
        lambda: datetime(2026, 1, 1, tzinfo=UTC),
    )


def test_an_event_leases_its_node_and_its_job() -> None:
    event = HealEvent(diagnosis("nccl_comm", "ns/job-1", "n3"))
    assert lease_names(event) == ["node:n3", "job:ns/job-1"]
    node_only = HealEvent(diagnosis("gpu_hardware", None, "n4"), ref="id:x")
    assert lease_names(node_only) == ["node:n4"]


def test_an_action_needs_the_lease_of_its_target() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    cordon = Action(
        action_id="a", kind="cordon_and_drain", target="n1", created_at=now, updated_at=now
    )
    retry = Action(
        action_id="b", kind="retry_from_checkpoint", target="j", created_at=now, updated_at=now
    )
    assert (action_lease(cordon), action_lease(retry)) == ("node:n1", "job:j")


class FakeGate:
    def __init__(self, elsewhere: str | None) -> None:
        self.elsewhere = elsewhere
        self.finished: list[tuple[str, str]] = []

    def claim(self, action: Action) -> str | None:
        return self.elsewhere

    def finish(self, action: Action) -> None:
        self.finished.append((action.kind, action.state))


def test_an_action_done_by_another_replica_is_recorded_not_run(tmp_path: Path) -> None:
    ledger = SharedLedger()
    ctl = controller(tmp_path, ledger)
    ctl.gate = FakeGate("done by replica b")
    actions = ctl.handle(HealEvent(diagnosis("nccl_comm", "job-1", "n0")))
    assert [(a.state, a.result) for a in actions] == [("done", "done by replica b")]
    assert ledger.calls == [] and ctl.done_elsewhere == 1


def test_a_claimed_action_runs_and_the_claim_is_finished(tmp_path: Path) -> None:
    ledger = SharedLedger()
    ctl = controller(tmp_path, ledger)
    gate = FakeGate(None)
    ctl.gate = gate
    actions = ctl.handle(HealEvent(diagnosis("nccl_comm", "job-1", "n0")))
    assert [a.state for a in actions] == ["done"]
    assert ledger.calls == [("restart_from_checkpoint", "job-1", "me")]
    assert gate.finished == [("retry_from_checkpoint", "done")]


def test_switches_merge_latest_change_wins(tmp_path: Path) -> None:
    ctl = controller(tmp_path, SharedLedger())
    local = Switches(ControlStore(tmp_path / "c.sqlite"))  # an operator's shell, same file
    early, late = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 2, tzinfo=UTC)
    local.set("breaker", True, early, "guard", "action storm")
    remote = {
        "kill_switch": {
            "engaged": True,
            "changed_at": iso(late),
            "changed_by": "ops",
            "reason": "x",
        },
        "breaker": {"engaged": False, "changed_at": iso(datetime(2025, 12, 1, tzinfo=UTC))},
    }
    push = _merge_switches(ctl, remote)
    assert ctl.guard.switches.engaged("kill_switch"), "newer remote switch copied in"
    assert ctl.guard.switches.engaged("breaker"), "older remote switch ignored"
    assert set(push) == {"breaker"} and push["breaker"]["engaged"] is True
    assert _merge_switches(ctl, {**remote, "breaker": push["breaker"]}) == {}, "in step: quiet"
