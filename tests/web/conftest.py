"""Fixtures for the web tests: the stores once per session, an in-process app per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from web_store import TOKENS, build_control, build_store

from fleetmedic.web import create_app

QUIET = (
    "ignore:fetch_arrow_table:DeprecationWarning",
    "ignore:.*infer_string",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Ibis on DuckDB 2 / pandas 3 warns on every KPI run; the web tests are not about that."""
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            for text in QUIET:
                item.add_marker(pytest.mark.filterwarnings(text))


@pytest.fixture(scope="session")
def web_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_store(tmp_path_factory.mktemp("web") / "fleet.duckdb")


@pytest.fixture
def control_db(tmp_path: Path) -> Path:
    path = tmp_path / "heal.sqlite"
    build_control(path)
    return path


@pytest.fixture
def action_ids(control_db: Path) -> dict[str, str]:
    from fleetmedic.heal.audit import AuditLog
    from fleetmedic.heal.state import ControlStore

    with ControlStore(control_db) as control:
        return {a.kind: a.action_id for a in AuditLog(control).all()}


@pytest.fixture
def client(web_db: Path, control_db: Path) -> Iterator[TestClient]:
    app = create_app(web_db, control_db, TOKENS, warm=False)
    with TestClient(app, base_url="http://127.0.0.1:8080") as test_client:
        yield test_client
