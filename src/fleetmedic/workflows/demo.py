"""``fleetmedic demo``: a month of a mid-size GPU platform, end to end, on one laptop.

Simulate the fleet (failures at published rates, the built-in healing policy on), keep everything
in a fresh embedded store, diagnose every failure from what the cluster showed, then measure (KPIs),
rank what to fix (priorities) and write the report. Nothing here is demo-only logic: each step is
the same code the commands run, so the demo is also the product's end-to-end test.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fleetmedic.heal.audit import AuditLog
from fleetmedic.heal.state import ControlStore
from fleetmedic.model.records import Action, ActionState
from fleetmedic.report import ReportData, gather, write_page
from fleetmedic.sim.config import SimConfig
from fleetmedic.store import Store
from fleetmedic.workflows.simulate import run_simulation


def demo_config() -> SimConfig:
    """A mid-size platform: 256 nodes of 8 GPUs, one month, healing on."""
    return SimConfig(gpus=2048, days=30, seed=7, heal="auto")


@dataclass(frozen=True)
class DemoResult:
    db: Path
    report: Path
    simulation: dict[str, Any]
    data: ReportData
    control: Path | None = None


# The forward moves that reach each final state (heal/audit.py's state machine).
_PATHS: dict[str, tuple[ActionState, ...]] = {
    "approved": ("approved",),
    "executing": ("executing",),
    "done": ("executing", "done"),
    "failed": ("failed",),
    "refused": ("refused",),
    "rejected": ("rejected",),
}


def save_audit(actions: list[Action], path: Path) -> Path:
    """Keep the simulated controller's audit trail in a control store file, through the audit's
    own writer, so ``heal history --control`` and the dashboard's Actions page can show it."""
    path.unlink(missing_ok=True)
    with ControlStore(path) as control:
        audit = AuditLog(control)
        with audit.batch():
            for action in actions:
                steps = _PATHS.get(action.state, ())
                note = None if steps else action.result
                audit.propose(
                    action.kind, action.target, action.because, action.mode, action.created_at, note
                )
                for n, state in enumerate(steps, start=1):
                    result = action.result if n == len(steps) else None
                    audit.transition(action.action_id, state, action.updated_at, result)
    return path


def run_demo(
    out: Path,
    *,
    config: SimConfig | None = None,
    progress: Callable[[str, float], None] | None = None,
) -> DemoResult:
    """Run the whole pipeline into ``out`` (a fresh ``fleetmedic.duckdb`` and ``report.html``)."""
    out.mkdir(parents=True, exist_ok=True)
    db = out / "fleetmedic.duckdb"
    for stale in (db, db.with_suffix(".duckdb.wal")):
        stale.unlink(missing_ok=True)
    chosen = config or demo_config()
    simulation, sim = run_simulation(chosen, db, progress=progress)
    control = save_audit(sim.actions, out / "heal.sqlite")
    if progress is not None:
        progress("report", 0.0)
    with Store(db) as store:
        data = gather(store)
        written = write_page(data, out / "report.html")
    if progress is not None:
        progress("report", 1.0)
    return DemoResult(db=db, report=written.html, simulation=simulation, data=data, control=control)
