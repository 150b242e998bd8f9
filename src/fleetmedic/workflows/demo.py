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
    simulation, _ = run_simulation(chosen, db, progress=progress)
    if progress is not None:
        progress("report", 0.0)
    with Store(db) as store:
        data = gather(store)
        written = write_page(data, out / "report.html")
    if progress is not None:
        progress("report", 1.0)
    return DemoResult(db=db, report=written.html, simulation=simulation, data=data)
