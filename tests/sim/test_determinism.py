"""Same seed, same run: identical summary and identical store contents; another seed differs."""

from __future__ import annotations

import json
from pathlib import Path

from fleetmedic.sim import SimConfig
from fleetmedic.store import Store
from fleetmedic.workflows.simulate import run_simulation

CONFIG = SimConfig(gpus=128, days=1, seed=5, heal="auto")
TABLES = ("jobs", "attempts", "attempt_nodes", "nodes", "events", "diagnoses")


def dump(db: Path) -> dict[str, list[tuple[object, ...]]]:
    with Store(db, read_only=True) as store:
        out = {}
        for table in TABLES:
            columns = [r[0] for r in store.con.execute(f"DESCRIBE {table}").fetchall()]
            order = ", ".join(f'"{c}"' for c in columns)
            out[table] = store.con.execute(f"SELECT * FROM {table} ORDER BY {order}").fetchall()
        return out


def test_same_seed_same_summary_and_store(tmp_path: Path) -> None:
    first, _ = run_simulation(CONFIG, tmp_path / "a.duckdb")
    second, _ = run_simulation(CONFIG, tmp_path / "b.duckdb")
    assert json.dumps(first, sort_keys=True) == json.dumps(second, sort_keys=True)
    a, b = dump(tmp_path / "a.duckdb"), dump(tmp_path / "b.duckdb")
    for table in TABLES:
        assert a[table] == b[table], table
    assert a["jobs"] and a["attempts"] and a["events"] and a["diagnoses"]


def test_another_seed_gives_another_run() -> None:
    first, _ = run_simulation(CONFIG, None)
    other, _ = run_simulation(CONFIG.model_copy(update={"seed": 6}), None)
    assert first["jobs"] != other["jobs"] or first["gpu_hours"] != other["gpu_hours"]
