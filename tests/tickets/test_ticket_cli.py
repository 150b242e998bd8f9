"""``fleetmedic ticket``: every format, standard input, and one-line errors for bad input."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fleetmedic.cli import app

OOM = "train-llama-0042 died again <script>alert(1)</script>"


def run(*args: str, stdin: bytes | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["ticket", *args], input=stdin)
    return result.exit_code, result.stdout, result.stderr


def test_triage_json_has_the_verdict_jobs_and_draft(db_file: Path) -> None:
    code, out, err = run(
        "triage",
        OOM,
        "--db",
        str(db_file),
        "--user",
        "alice",
        "--at",
        "2024-06-03T02:00Z",
        "--format",
        "json",
    )

    assert code == 0, err
    data = json.loads(out)
    assert data["verdict"]["category"] == "gpu_oom"
    assert data["jobs"][0]["job_id"] == "train-llama-0042"
    assert data["route"]["team"] == "ML users / job owners"
    assert "<script" not in data["draft"]


@pytest.mark.parametrize("fmt", ["text", "markdown", "html"])
def test_no_output_format_renders_the_tickets_markup(db_file: Path, fmt: str) -> None:
    code, out, err = run("triage", OOM, "--db", str(db_file), "--format", fmt)

    assert code == 0, err
    assert "<script" not in out
    assert "train-llama-0042" in out


def test_standard_input_and_files_are_read(db_file: Path, tmp_path: Path) -> None:
    code, out, _ = run("triage", "-", "--db", str(db_file), stdin=b"ft-bert-0007 broke")
    assert code == 0 and "code_error" in out
    ticket = tmp_path / "ticket.txt"
    ticket.write_bytes(b"pretrain-big \x1b[31mdied\x1b[0m again")
    code, out, _ = run("triage", "--file", str(ticket), "--db", str(db_file))
    assert code == 0 and "gpu_hardware" in out and "\x1b" not in out


def test_a_ten_megabyte_ticket_is_cut_and_triaged(db_file: Path, tmp_path: Path) -> None:
    ticket = tmp_path / "big.txt"
    ticket.write_bytes(b"train-llama-0042 failed\n" + b"noise " * 2_000_000 + b"\nthe end")
    code, out, err = run("triage", "--file", str(ticket), "--db", str(db_file))

    assert code == 0
    assert "cut in the middle" in err and "gpu_oom" in out


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (["triage"], None, "give the ticket text"),
        (["triage", "-"], b"\x00\x01\x02\x03\x04\x05\x06" * 1000, "binary data"),
        (["triage", "   "], None, "the ticket is empty"),
        (["triage", "x", "--at", "yesterday"], None, "not an ISO date"),
        (["triage", "x", "--format", "pdf"], None, "--format must be one of"),
        (["triage", "x", "--file", "/nonexistent"], None, "not both"),
        (["triage", "--file", "/nonexistent"], None, "cannot read"),
        (["stats", "--format", "xml"], None, "--format must be text or json"),
        (["import", "/nonexistent", "--format", "jira"], None, "cannot read"),
        (["import", "x", "--format", "xls"], None, "--format must be one of"),
        (["import", "x", "--format", "csv", "--map", "oops"], None, "FIELD=COLUMN"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    db_file: Path, args: list[str], stdin: bytes | None, message: str
) -> None:
    code, out, err = run(*args, "--db", str(db_file), stdin=stdin)

    assert code == 2, out
    assert message in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_a_missing_database_is_an_error_not_a_new_file(tmp_path: Path) -> None:
    code, _, err = run("triage", "x", "--db", str(tmp_path / "none.duckdb"))
    assert code == 2 and "no database" in err
    assert not (tmp_path / "none.duckdb").exists()


def test_import_save_and_stats_round_trip(db_file: Path, tmp_path: Path) -> None:
    db = tmp_path / "copy.duckdb"
    shutil.copy(db_file, db)
    export = tmp_path / "tickets.jsonl"
    export.write_text(
        '{"id": "A", "text": "etl-003 stale file handle", "created_at": "2024-06-03T10:40Z",'
        ' "user": "frank", "first_answer_at": "2024-06-03T11:40Z"}\n{oops}\n',
        encoding="utf-8",
    )
    code, out, err = run("import", str(export), "--format", "jsonl", "--db", str(db), "--json")
    assert code == 0, err
    assert json.loads(out) | {"seconds": 0} == {
        "read": 2,
        "imported": 1,
        "bad": 1,
        "linked": 1,
        "seconds": 0,
        "problems": ["line 2: not JSON"],
    }
    code, _, err = run(
        "triage",
        "etl-004 died too",
        "--db",
        str(db),
        "--save",
        "--id",
        "B",
        "--user",
        "grace",
        "--at",
        "2024-06-03T10:50Z",
    )
    assert code == 0, err
    code, out, _ = run("stats", "--db", str(db), "--format", "json")
    stats = json.loads(out)
    assert stats["tickets"]["by_category"] == {"storage_io": 2}
    assert stats["incidents"] == {"count": 1, "tickets": 1}
    assert stats["time_to_first_answer_hours"]["p50"] == 1.0
    code, out, _ = run("stats", "--db", str(db))
    assert code == 0 and "storage_io" in out
