"""Fixtures for the ticket tests: the hand-built fleet of ``ticketkit`` in a real store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from ticketkit import build

from fleetmedic.store import Store


@pytest.fixture
def store() -> Iterator[Store]:
    """A fresh in-memory store holding the scenario (tests may add tickets to it)."""
    with Store(":memory:") as opened:
        build(opened)
        yield opened


@pytest.fixture(scope="module")
def db_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The scenario in a DuckDB file, for the command line (read-only tests share it)."""
    path = tmp_path_factory.mktemp("tickets") / "fleet.duckdb"
    with Store(path) as opened:
        build(opened)
    return path
