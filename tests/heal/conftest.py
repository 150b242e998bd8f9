"""Fixtures for the healing tests (helpers live in ``healkit``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from healkit import AUTO_POLICIES, FakeClock, Rig

from fleetmedic.heal.policy import parse_policies
from fleetmedic.heal.state import ControlStore
from fleetmedic.store.db import Store


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store() -> Iterator[Store]:
    """The analytics store (jobs, attempts, diagnoses) lemons and checkpoints read."""
    with Store(":memory:") as s:
        yield s


@pytest.fixture
def control() -> Iterator[ControlStore]:
    """The controller's own store: actions and switches."""
    with ControlStore(":memory:") as c:
        yield c


@pytest.fixture
def rig(control: ControlStore, clock: FakeClock) -> Rig:
    return Rig(control, parse_policies(AUTO_POLICIES), clock)
