"""The OpenAPI spec, checked by schemathesis: generated requests never get a 5xx, and every answer
matches the schema the spec promises (bodies, status codes, content types)."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from web_store import ADMIN, TOKENS, build_control

from fleetmedic.web import create_app

CHECKS = [
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
    content_type_conformance,
]


# The spec does not depend on the data, and the app opens its stores at the first request: the
# app is built at collection (schemathesis makes the cases from its spec then) over files that
# the fixture below fills before any case runs.
FOLDER = Path(tempfile.mkdtemp(prefix="fm-schema-"))
APP = create_app(FOLDER / "fleet.duckdb", FOLDER / "heal.sqlite", TOKENS, warm=False)
schema = schemathesis.openapi.from_asgi("/api/v1/openapi.json", APP)


@pytest.fixture(scope="module", autouse=True)
def stores(web_db: Path) -> Iterator[None]:
    shutil.copyfile(web_db, FOLDER / "fleet.duckdb")
    build_control(FOLDER / "heal.sqlite")
    yield
    APP.state.fleetmedic.reader.close()
    shutil.rmtree(FOLDER, ignore_errors=True)


@schema.parametrize()
@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_api_conforms_to_its_spec(case: schemathesis.Case) -> None:
    case.call_and_validate(headers={"Authorization": f"Bearer {ADMIN}"}, checks=CHECKS)
