"""Fixtures for the Prometheus source and metrics tests (helpers: promkit, fleetkit)."""

from __future__ import annotations

from pathlib import Path

import pytest
from fleetkit import build_control, build_store


@pytest.fixture(scope="session")
def fleet_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_store(tmp_path_factory.mktemp("fleet") / "fleet.duckdb")


@pytest.fixture
def control_db(tmp_path: Path) -> Path:
    return build_control(tmp_path / "heal.sqlite")
