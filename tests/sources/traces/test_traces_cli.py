"""``fleetmedic import`` on the command line: summaries, and one clean line for bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner, Result

from fleetmedic.cli import app
from fleetmedic.sources.traces import formats

ROOT = Path(__file__).resolve().parents[3]
runner = CliRunner()


def _invoke(*args: str) -> Result:
    return runner.invoke(app, ["import", *args])


def test_text_summary(tmp_path, fixtures):
    db = tmp_path / "fm.duckdb"
    result = _invoke("acme", str(fixtures / "trace_malformed.csv"), "--db", str(db))
    assert result.exit_code == 0, result.stderr
    assert "11 rows read, 2 ok, 9 bad" in result.stdout
    assert "2 bad: bad gpu_num" in result.stdout
    assert result.stderr == ""  # no progress bars when stderr is not a terminal


def test_json_summary_and_idempotency(tmp_path, fixtures):
    db = str(tmp_path / "fm.duckdb")
    args = ("k8s", str(fixtures / "k8s_dump.json"), "--db", db, "--format", "json", "--quiet")
    first = json.loads(_invoke(*args).stdout)
    second = json.loads(_invoke(*args).stdout)
    assert (
        first["written"]
        == second["written"]
        == {
            "jobs": 9,
            "attempts": 9,
            "attempt_nodes": 8,
            "nodes": 2,
            "events": 10,
        }
    )
    (file,) = first["files"]
    assert {"path", "rows_read", "rows_ok", "rows_bad", "bad_reasons", "written", "seconds"} <= set(
        file
    )
    assert first["format"] == "k8s" and first["db"] == db


def _bad_inputs(tmp: Path, fixtures: Path) -> list[tuple[list[str], str]]:
    empty = tmp / "empty.csv"
    empty.write_bytes(b"")
    binary = tmp / "binary.csv"
    binary.write_bytes(bytes(range(256)) * 8)
    latin1 = tmp / "latin1.csv"
    latin1.write_bytes("job_id,user\n1,caf\xe9\n".encode("latin-1"))
    narrow = tmp / "narrow.csv"
    narrow.write_text("job_id,user,state\n1,u1,COMPLETED\n")
    truncated = tmp / "cut.json"
    truncated.write_text('[{"jobid": "a", "status": "Pass"')
    seren = str(fixtures / "trace_seren.csv")
    return [
        (["acme", str(tmp / "missing.csv")], "no such file"),
        (["acme", str(empty)], "empty file"),
        (["acme", str(binary)], "binary data"),
        (["acme", str(latin1)], "not UTF-8"),
        (["acme", str(narrow)], "missing columns node_num, gpu_num"),
        (["helios", str(narrow)], "missing columns vc"),
        (["alibaba-gpu-2023", str(narrow)], "missing columns name"),
        (["philly", str(truncated)], "not valid JSON"),
        (["philly", str(narrow)], "not JSON"),
        (["k8s", str(fixtures / "philly_cluster_job_log.json")], "missing key items"),
        (["csv", seren], "needs --mapping"),
        (["csv", seren, "--mapping", str(tmp / "nope.yaml")], "no such mapping file"),
        (["acme", seren, "--mapping", str(tmp / "m.yaml")], "only used with format csv"),
        (["parquet", seren], "unknown import format"),
        (["acme", seren, "--format", "xml"], "unknown --format"),
        (["acme", seren, "--cluster", "a b"], "bad cluster name"),
        (["acme"], "no PATH given"),
        (["acme", str(tmp)], "is a directory"),
    ]


def test_bad_input_is_one_line_and_exit_2(tmp_path, fixtures):
    db = str(tmp_path / "fm.duckdb")
    for args, message in _bad_inputs(tmp_path, fixtures):
        result = _invoke(*args, "--db", db)
        assert result.exit_code == 2, (args, result.stdout, result.stderr)
        lines = result.stderr.splitlines()
        assert len(lines) == 1, (args, result.stderr)
        assert lines[0].startswith("fleetmedic: error: "), lines
        assert message in lines[0], (args, lines[0])
        assert "Traceback" not in result.stderr and result.stdout == ""


def test_a_bad_file_stops_before_anything_is_written(tmp_path, fixtures):
    db = tmp_path / "fm.duckdb"
    narrow = tmp_path / "trace_x.csv"
    narrow.write_text("job_id\n1\n")
    result = _invoke("acme", str(fixtures / "trace_seren.csv"), str(narrow), "--db", str(db))
    assert result.exit_code == 2
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM jobs").fetchone() == (0,)


def test_console_script_exit_code(tmp_path):
    """The entry point itself (``main``, not just the Typer app) ends bad input with exit 2."""
    missing = tmp_path / "x.csv"
    argv = ["import", "acme", str(missing), "--db", str(tmp_path / "db.duckdb")]
    result = subprocess.run(
        [sys.executable, "-c", "from fleetmedic.cli import main; main()", *argv],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.splitlines() == [f"fleetmedic: error: {missing}: no such file"]


@pytest.mark.parametrize("fmt", formats())
def test_every_format_is_in_help_and_docs(fmt):
    result = runner.invoke(app, ["import", "--help"], env={"COLUMNS": "200"})
    assert fmt in result.stdout
    docs = (ROOT / "docs" / "import.md").read_text("utf-8")
    assert f"`{fmt}`" in docs
