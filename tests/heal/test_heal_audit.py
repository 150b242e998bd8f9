"""The audit: deterministic keys, write-ahead rows, forward-only states, durable across reopen."""

from __future__ import annotations

from pathlib import Path

import pytest
from healkit import FakeClock

from fleetmedic.heal.audit import AuditLog, TransitionError, action_key
from fleetmedic.heal.state import ControlStore


def test_key_is_deterministic_and_order_free() -> None:
    a = action_key("cordon_and_drain", "n1", ["j#1:gpu_hardware", "j#2:gpu_hardware"])
    b = action_key("cordon_and_drain", "n1", ["j#2:gpu_hardware", "j#1:gpu_hardware"])
    assert a == b
    assert a != action_key("cordon_and_drain", "n2", ["j#1:gpu_hardware", "j#2:gpu_hardware"])
    assert a != action_key("notify", "n1", ["j#1:gpu_hardware", "j#2:gpu_hardware"])


def test_propose_twice_is_one_row(control: ControlStore, clock: FakeClock) -> None:
    audit = AuditLog(control)
    first, new = audit.propose("notify", "job-1", ["c1"], "auto", clock())
    again, new_again = audit.propose("notify", "job-1", ["c1"], "auto", clock())
    assert new and not new_again
    assert first == again
    assert first.state == "proposed"
    assert len(audit.all()) == 1


def test_states_only_move_forward(control: ControlStore, clock: FakeClock) -> None:
    audit = AuditLog(control)
    action, _ = audit.propose("notify", "job-1", ["c1"], "auto", clock())
    with pytest.raises(TransitionError):
        audit.transition(action.action_id, "done", clock())  # must execute first
    audit.transition(action.action_id, "executing", clock())
    clock.advance(5)
    done = audit.transition(action.action_id, "done", clock(), "ok")
    assert done.result == "ok"
    assert done.updated_at > done.created_at
    for state in ("executing", "proposed", "failed"):  # a Literal tuple, so mypy agrees
        with pytest.raises(TransitionError):
            audit.transition(action.action_id, state, clock())
    assert audit.pending() == []


def test_rows_survive_reopening_the_file(tmp_path: Path, clock: FakeClock) -> None:
    db = tmp_path / "heal.sqlite"
    with ControlStore(db) as control:
        action, _ = AuditLog(control).propose("notify", "job-1", ["c1", "c0"], "auto", clock())
    with ControlStore(db) as control:
        again = AuditLog(control).get(action.action_id)
    assert again == action
    assert again is not None and again.because == ("c0", "c1")
