"""Helios importer: cluster from the folder, VC as queue, Asia/Shanghai local time."""

from __future__ import annotations

from datetime import datetime

from fleetmedic.sources.traces import ImportOptions, import_traces


def test_helios_cluster_log(store, run):
    (file,) = run("helios", "helios/Venus/cluster_log.csv").files
    assert (file.rows_read, file.rows_bad) == (6, 0)
    rows = store.con.execute(
        "SELECT job_id, cluster, queue, status, submitted_at, num_gpus FROM jobs ORDER BY job_id"
    ).fetchall()
    assert rows[0] == (
        "helios-venus:1425511",
        "venus",
        "vcJkd",
        "succeeded",
        datetime(2020, 6, 9, 10, 41, 1),  # 18:41:01 in UTC+8
        1.0,
    )
    statuses = [r[3] for r in rows]
    assert statuses == ["succeeded", "failed", "cancelled", "timeout", "failed", "succeeded"]
    reasons = dict(store.con.execute("SELECT job_id, reason FROM attempts").fetchall())
    assert reasons["helios-venus:1425515"] == "NODE_FAIL"


def test_helios_without_a_cluster_folder_uses_the_option(tmp_path, fixtures, store):
    copy = tmp_path / "log.csv"
    copy.write_bytes((fixtures / "helios" / "Venus" / "cluster_log.csv").read_bytes())
    import_traces(store, "helios", [copy])
    assert store.con.execute("SELECT min(job_id) FROM jobs").fetchone() == ("helios:1425511",)
    import_traces(store, "helios", [copy], options=ImportOptions(cluster="earth"))
    assert store.con.execute(
        "SELECT count(*) FROM jobs WHERE job_id LIKE 'helios-earth:%'"
    ).fetchone() == (6,)
