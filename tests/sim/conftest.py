"""Shared fixtures: one small simulated fleet, run once per session (sim only, no diagnosis)."""

from __future__ import annotations

import pytest
from sim_runs import simulate

from fleetmedic.sim import SimConfig, SimResult

SMALL = SimConfig(gpus=256, days=3, seed=11, heal="auto")


@pytest.fixture(scope="session")
def small() -> SimResult:
    return simulate(SMALL)
