"""A small simulated fleet and a control store, for the metrics tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from fleetmedic.heal.audit import AuditLog
from fleetmedic.heal.state import ControlStore, Switches
from fleetmedic.model.records import Event
from fleetmedic.sim.config import SimConfig
from fleetmedic.store import Store
from fleetmedic.store.writer import GpuUsageRow, Writer, write_gpu_usage
from fleetmedic.workflows.simulate import run_simulation

NOW = datetime.now(UTC)


def build_store(db: Path) -> Path:
    """128 GPUs for 3 simulated days, plus GPU usage and a Prometheus Xid event from just now."""
    run_simulation(SimConfig(gpus=128, days=3, seed=11, heal="auto"), db)
    with Store(db) as store:
        rows = [
            GpuUsageRow(NOW - timedelta(minutes=m), f"n{n}", str(g), "gpu_util", 0.5 + 0.1 * g)
            for m in (1, 2)
            for n in range(2)
            for g in range(4)
        ]
        write_gpu_usage(store, rows)
        xid = Event(
            ts=NOW - timedelta(minutes=3),
            source="prometheus",
            kind="gpu",
            object="node/n1/gpu/2",
            reason="XidError",
            message="Xid 79 on GPU 2 of node n1",
            severity="error",
        )
        Writer(store).write_records(events=[xid])
    return db


def build_control(path: Path) -> Path:
    """Two approval actions waiting, one done cordon, one refused retry; the kill switch on."""
    now = datetime(2026, 1, 1, tzinfo=UTC)
    with ControlStore(path) as control:
        audit = AuditLog(control)
        for n in range(2):
            audit.propose("cordon_and_drain", f"node-{n}", [f"ev{n}:gpu_hardware"], "approval", now)
        done, _ = audit.propose("cordon_and_drain", "node-9", ["ev9:gpu_hardware"], "auto", now)
        audit.transition(done.action_id, "executing", now)
        audit.transition(done.action_id, "done", now, "ok")
        refused, _ = audit.propose(
            "retry_from_checkpoint", "job-1", ["job-1#1:nccl_comm"], "auto", now
        )
        audit.transition(refused.action_id, "refused", now, "rate limit")
        Switches(control).set("kill_switch", True, now, "ops", "bad rollout")
    return path
