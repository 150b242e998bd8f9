"""Fixtures for the KPI tests: a :class:`Fleet` over an empty in-memory store, and one shared
SparkSession for the equivalence test (started only when a ``spark`` test runs)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
from kpi_fleet import Fleet
from kpi_spark import SKIP_ENV, spark_problem, start_session

from fleetmedic.store import Store


@pytest.fixture
def fleet() -> Iterator[Fleet]:
    with Store(":memory:") as store:
        yield Fleet(store)


@pytest.fixture(scope="session")
def spark() -> Iterator[Any]:
    if os.environ.get(SKIP_ENV) == "1":
        pytest.skip(f"{SKIP_ENV}=1: PySpark equivalence not checked")
    problem = spark_problem()
    if problem is not None:
        pytest.fail(
            f"the PySpark equivalence test cannot run: {problem}. "
            f"Install it, or set {SKIP_ENV}=1 to skip this test on purpose.",
            pytrace=False,
        )
    try:
        session = start_session()
    except Exception as exc:  # surfaced as a test failure with the reason, never swallowed
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        pytest.fail(
            f"PySpark local mode did not start ({reason}); it needs Java 17+. "
            f"Set {SKIP_ENV}=1 to skip this test on purpose.",
            pytrace=False,
        )
    yield session
    session.stop()
