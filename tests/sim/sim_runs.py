"""Run the simulator alone (no diagnosis), for tests that need several fleets."""

from __future__ import annotations

from fleetmedic.sim import SimConfig, SimResult, Simulation, generate, load_calibration, load_params


def simulate(config: SimConfig) -> SimResult:
    calib, params = load_calibration(), load_params()
    return Simulation(config, generate(config, params, calib), calib).run()
