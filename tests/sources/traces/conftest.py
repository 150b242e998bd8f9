"""Shared fixtures for the trace importer tests: an in-memory store and an import helper."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from fleetmedic.sources.traces import ImportOptions, ImportReport, import_traces
from fleetmedic.store import Store

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "traces"

Run = Callable[..., ImportReport]


@pytest.fixture
def fixtures() -> Path:
    """tests/fixtures/traces: sample files written in each published schema."""
    return FIXTURES


@pytest.fixture
def store() -> Iterator[Store]:
    with Store() as opened:
        yield opened


@pytest.fixture
def run(store: Store) -> Run:
    """Import fixture files (named relative to tests/fixtures/traces) into ``store``."""

    def _run(
        fmt: str, *names: str, cluster: str | None = None, mapping: str | None = None
    ) -> ImportReport:
        options = ImportOptions(cluster=cluster, mapping=FIXTURES / mapping if mapping else None)
        return import_traces(store, fmt, [FIXTURES / n for n in names], options=options)

    return _run
