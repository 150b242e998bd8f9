"""Shared fixtures: one small simulated fleet, run once per session (sim only, no diagnosis)."""

from __future__ import annotations

import pytest

from fleetmedic.sim import SimConfig, SimResult, Simulation, generate, load_calibration, load_params

SMALL = SimConfig(gpus=256, days=3, seed=11, heal="auto")


def simulate(config: SimConfig) -> SimResult:
    calib, params = load_calibration(), load_params()
    return Simulation(config, generate(config, params, calib), calib).run()


@pytest.fixture(scope="session")
def small() -> SimResult:
    return simulate(SMALL)
