"""A store written by an older fleetmedic opens for reading: it is upgraded once, then read."""

from __future__ import annotations

from pathlib import Path

import duckdb

from fleetmedic.store.db import SCHEMA_VERSION, Store, _migrations


def _old_store(path: Path, version: int) -> None:
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
    for number, sql in _migrations():
        if number <= version:
            con.execute(sql)
            con.execute("INSERT INTO schema_version VALUES (?)", [number])
    con.execute("INSERT INTO jobs (job_id, num_gpus, status) VALUES ('old-job', 8, 'failed')")
    con.close()


def test_a_v1_store_is_upgraded_when_opened_read_only(tmp_path: Path) -> None:
    assert SCHEMA_VERSION > 1
    path = tmp_path / "old.duckdb"
    _old_store(path, 1)
    with Store(path, read_only=True) as store:
        version = store.con.execute("SELECT max(version) FROM schema_version").fetchone()
        assert version == (SCHEMA_VERSION,)
        assert store.con.execute("SELECT job_id FROM jobs").fetchall() == [("old-job",)]
    with Store(path, read_only=True) as again:  # a second read does not migrate twice
        count = again.con.execute("SELECT count(*) FROM schema_version").fetchone()
        assert count == (SCHEMA_VERSION,)
