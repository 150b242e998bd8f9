"""Run the simulator alone (no diagnosis), for tests that need several fleets.

With healing on, the real controller acts on the simulator's signal-only verdicts.
"""

from __future__ import annotations

from fleetmedic.sim import SimConfig, SimResult, Simulation, generate, load_calibration, load_params
from fleetmedic.workflows.healing import healer_factory


def simulate(config: SimConfig) -> SimResult:
    calib, params = load_calibration(), load_params()
    healer = healer_factory() if config.heal != "off" else None
    return Simulation(config, generate(config, params, calib), calib, healer=healer).run()
