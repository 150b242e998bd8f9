"""Fixtures for the healing tests (helpers live in ``healkit``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from healkit import AUTO_POLICIES, FakeClock, Rig

from fleetmedic.heal.policy import parse_policies
from fleetmedic.store.db import Store


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store() -> Iterator[Store]:
    with Store(":memory:") as s:
        yield s


@pytest.fixture
def rig(store: Store, clock: FakeClock) -> Rig:
    return Rig(store, parse_policies(AUTO_POLICIES), clock)
