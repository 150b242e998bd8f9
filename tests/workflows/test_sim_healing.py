"""The real healing controller driving the simulator: what auto does, what dry-run only proposes."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from fleetmedic.heal.policy import load_policies
from fleetmedic.model.taxonomy import category
from fleetmedic.sim import SimConfig, SimResult

sys.path.insert(0, str(Path(__file__).parents[1] / "sim"))
from sim_runs import simulate

LEMONY = SimConfig(gpus=512, days=20, seed=8, lemon_fraction=0.1, failure_scale=4, workload=False)


@pytest.fixture(scope="module")
def runs() -> dict[str, SimResult]:
    return {
        heal: simulate(LEMONY.model_copy(update={"heal": heal}))
        for heal in ("off", "dry-run", "auto")
    }


def test_auto_cordons_mostly_lemons_and_sends_them_to_repair(runs: dict[str, SimResult]) -> None:
    auto = runs["auto"]
    done = [a for a in auto.actions if a.state == "done"]
    cordoned = {a.target for a in done if a.kind == "cordon_and_drain"}
    lemons = {auto.node_names[i] for i in auto.lemons}
    assert cordoned, "no node was cordoned"
    assert len(cordoned & lemons) >= 0.8 * len(cordoned)
    assert len(cordoned & lemons) >= 0.5 * len(lemons)
    uncordoned = {a.target for a in done if a.kind == "health_check_then_uncordon"}
    assert uncordoned <= cordoned  # only a node that was cordoned comes back


def test_dry_run_changes_nothing_that_happens(runs: dict[str, SimResult]) -> None:
    off, dry = runs["off"], runs["dry-run"]
    assert not off.actions and not off.cordoned and not dry.cordoned
    assert dry.actions and all(a.state in ("proposed", "refused") for a in dry.actions)
    assert all(a.mode == "dry-run" for a in dry.actions)
    assert [(a.job, a.attempt, a.status, a.end) for a in dry.attempts] == [
        (a.job, a.attempt, a.status, a.end) for a in off.attempts
    ]


def test_auto_never_goes_past_the_guard(runs: dict[str, SimResult]) -> None:
    auto = runs["auto"]
    limits = load_policies().guard
    cordoned: set[str] = set()
    peak = 0
    for action in sorted(auto.actions, key=lambda a: a.updated_at):
        if action.state != "done":
            continue
        if action.kind == "cordon_and_drain":
            cordoned.add(action.target)
        elif action.kind == "health_check_then_uncordon":
            cordoned.discard(action.target)
        peak = max(peak, len(cordoned))
    assert peak <= limits.max_cordoned_fraction * len(auto.node_names)
    ids = [a.action_id for a in auto.actions]
    assert len(ids) == len(set(ids))


def test_auto_never_retries_a_user_cause(runs: dict[str, SimResult]) -> None:
    retried = [
        a
        for a in runs["auto"].actions
        if a.kind in ("retry_from_checkpoint", "requeue_excluding_node") and a.state == "done"
    ]
    assert retried
    for action in retried:
        cause = next(c for c in action.because if "#" in c)
        entry = category(cause.rsplit(":", 1)[1])
        assert entry.owner != "user" and entry.retryable, action


def test_auto_keeps_more_work_than_off(runs: dict[str, SimResult]) -> None:
    def kept(result: SimResult) -> float:
        return sum(a.productive * a.gpus for a in result.attempts)

    assert kept(runs["auto"]) > kept(runs["off"])
