"""The built-in heal policy and the executor: what auto does, what dry-run only proposes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sim_runs import simulate

from fleetmedic.model.records import Job
from fleetmedic.sim import RecordingExecutor, SimConfig, Verdict, load_calibration, load_params
from fleetmedic.sim.policy import HealPolicy
from fleetmedic.sim.workload import from_records

ORIGIN = datetime(2024, 6, 3, tzinfo=UTC)
DAY = 86400.0


def policy(mode: str) -> tuple[HealPolicy, RecordingExecutor]:
    executor = RecordingExecutor()
    heal = HealPolicy(
        mode,
        load_calibration(),
        executor,  # type: ignore[arg-type]
        lambda t: ORIGIN + timedelta(seconds=t),
    )
    return heal, executor


def test_platform_failures_restart_user_failures_do_not() -> None:
    heal, executor = policy("auto")
    assert heal.on_failure(0.0, "j1", 1, Verdict("nccl_comm", "platform"), restarts=0)
    assert not heal.on_failure(0.0, "j2", 1, Verdict("gpu_oom", "user"), restarts=0)
    assert not heal.on_failure(0.0, "j3", 1, Verdict("nccl_comm", "platform"), restarts=99)
    assert executor.calls == [("restart_from_checkpoint", "j1")]


def test_repeated_hardware_failures_cordon_and_drain_the_node() -> None:
    heal, executor = policy("auto")
    gpu = Verdict("gpu_hardware", "hardware", "node-7")
    heal.on_failure(0.0, "j1", 1, gpu, restarts=0)
    assert ("cordon", "node-7") not in executor.calls
    heal.on_failure(3 * DAY, "j2", 1, gpu, restarts=0)
    assert ("requeue", "j2") in executor.calls
    assert ("cordon", "node-7") in executor.calls and ("drain", "node-7") in executor.calls
    heal.on_node_repaired(9 * DAY, "node-7")
    assert executor.calls[-1] == ("uncordon", "node-7")


def test_failures_outside_the_window_do_not_cordon() -> None:
    heal, executor = policy("auto")
    gpu = Verdict("gpu_hardware", "hardware", "node-7")
    heal.on_failure(0.0, "j1", 1, gpu, restarts=0)
    heal.on_failure(30 * DAY, "j2", 1, gpu, restarts=0)
    assert ("cordon", "node-7") not in executor.calls


def test_dry_run_proposes_and_changes_nothing() -> None:
    heal, executor = policy("dry-run")
    gpu = Verdict("gpu_hardware", "hardware", "node-7")
    assert not heal.on_failure(0.0, "j1", 1, gpu, restarts=0)
    heal.on_failure(DAY, "j2", 1, gpu, restarts=0)
    assert executor.calls == []
    assert {a.kind for a in heal.actions} == {"requeue", "cordon", "drain"}
    assert all(a.state == "proposed" and a.mode == "dry-run" for a in heal.actions)
    assert len({a.action_id for a in heal.actions}) == len(heal.actions)


def test_auto_cordons_lemons_and_dry_run_matches_off() -> None:
    base = SimConfig(gpus=512, days=20, seed=8, lemon_fraction=0.1, failure_scale=4, workload=False)
    auto = simulate(base.model_copy(update={"heal": "auto"}))
    off = simulate(base)
    dry = simulate(base.model_copy(update={"heal": "dry-run"}))
    assert auto.cordoned and set(auto.cordoned) <= set(range(len(auto.node_names)))
    assert len(set(auto.cordoned) & auto.lemons) >= len(auto.cordoned) // 2
    assert not off.cordoned and not off.actions and not dry.cordoned and dry.actions
    # dry-run changes nothing that happens: same attempts as off
    assert [(a.job, a.attempt, a.status, a.end) for a in dry.attempts] == [
        (a.job, a.attempt, a.status, a.end) for a in off.attempts
    ]


def test_a_trace_replays_as_the_workload() -> None:
    jobs = [
        Job(
            job_id=f"t{i}",
            num_gpus=g,
            status=s,
            submitted_at=ORIGIN + timedelta(hours=i),
            started_at=ORIGIN + timedelta(hours=i, minutes=1),
            ended_at=ORIGIN + timedelta(hours=i, minutes=30),
            team="vision",
        )
        for i, (g, s) in enumerate(
            [(1, "succeeded"), (8, "failed"), (12, "cancelled"), (2, "timeout")]
        )
    ]
    config = SimConfig(gpus=128, days=1, seed=1)
    specs = from_records(jobs, config, load_calibration(), load_params())
    assert [s.gpus for s in specs] == [1, 8, 16, 2]
    assert [s.fate for s in specs] == ["succeeded", "failed", "cancelled", "failed"]
    assert all(s.job_id.startswith("replay-") for s in specs)
