"""Format ``csv``: any job table described by a strictly validated mapping file."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from fleetmedic.model.errors import InputError
from fleetmedic.sources.traces.mapping import load_mapping


def test_sacct_export_with_mapping(store, run):
    (file,) = run("csv", "sacct_jobs.psv", mapping="sacct_mapping.yaml").files
    assert (file.rows_read, file.rows_ok, file.rows_bad) == (7, 6, 1)
    assert file.bad_reasons == {"unknown status WEIRD": 1}
    jobs = {
        r[0]: r[1:]
        for r in store.con.execute(
            "SELECT job_id, source, cluster, team, queue, status, submitted_at, exit_code, "
            "attempts FROM jobs"
        ).fetchall()
    }
    # 09:00 in Berlin (CET, UTC+1) is 08:00 UTC.
    assert jobs["mylab-berlin:41001"] == (
        "mylab",
        "berlin",
        "nlp",
        "a100",
        "succeeded",
        datetime(2024, 2, 1, 8, 0),
        0,
        1,
    )
    assert jobs["mylab-berlin:41003"][4] == "failed"  # OUT_OF_MEMORY via the mapping
    assert jobs["mylab-berlin:41004"][4:] == ("cancelled", datetime(2024, 2, 1, 11, 0), 0, 0)
    assert jobs["mylab-berlin:41006"][4] == "succeeded"  # already our vocabulary
    nodes = store.con.execute(
        "SELECT nodes FROM attempts WHERE job_id = 'mylab-berlin:41002'"
    ).fetchone()
    assert nodes == ("mylab-berlin:gpu02,mylab-berlin:gpu03",)
    assert store.con.execute("SELECT count(*) FROM nodes").fetchone() == (4,)


def test_json_lines_with_epoch_milliseconds(store, run):
    (file,) = run("csv", "scheduler_jobs.jsonl", mapping="scheduler_mapping.yaml").files
    assert (file.rows_read, file.rows_ok, file.rows_bad) == (5, 3, 2)
    assert file.bad_reasons == {"bad gpus": 1, "not a JSON object": 1}
    jobs = {
        r[0]: r[1:]
        for r in store.con.execute("SELECT job_id, status, kind, submitted_at FROM jobs").fetchall()
    }
    assert jobs["inhouse:j-1"] == ("succeeded", "train", datetime(2024, 2, 1, 9, 0))
    assert jobs["inhouse:j-2"][:2] == ("failed", "inference")
    assert jobs["inhouse:j-3"][:2] == ("preempted", "notebook")


def _mapping(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "mapping.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("source: x\ncolumns: {job_id: a, status: b}\nstatuse: {}\n", "statuse: Extra inputs"),
        ("source: x\ncolumns: {job_id: a, status: b, gpus: c}\n", "columns.gpus: Extra inputs"),
        ("source: x\ncolumns: {job_id: a}\n", "columns.status: Field required"),
        ("source: x\ncolumns: {job_id: a, status: b}\nstatuses: {OK: fine}\n", "statuses.OK"),
        ("source: x\ncolumns: {job_id: a, status: b}\ntime_zone: Mars/Olympus\n", "time zone"),
        ("source: My Lab\ncolumns: {job_id: a, status: b}\n", "source"),
        ("- just\n- a list\n", "a mapping file is a YAML mapping"),
        ("source: [unclosed\n", "not a readable YAML mapping"),
    ],
)
def test_bad_mapping_files_fail_loudly(tmp_path, text, message):
    with pytest.raises(InputError, match=message):
        load_mapping(_mapping(tmp_path, text))


def test_mapping_columns_missing_from_the_file(tmp_path, fixtures, run):
    mapping = _mapping(
        tmp_path, "source: x\nreader: csv\ndelimiter: '|'\ncolumns: {job_id: JobID, status: St}\n"
    )
    with pytest.raises(InputError, match="missing columns St"):
        run("csv", "sacct_jobs.psv", mapping=str(mapping))
