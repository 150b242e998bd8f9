"""Tracker exports: Jira JSON (incl. rich text), CSV with a mapping, JSON lines; bad rows counted."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from fleetmedic.model.errors import InputError
from fleetmedic.tickets.importers import parse_csv, parse_jira, parse_jsonl, read_file

JIRA = {
    "issues": [
        {
            "key": "MLP-101",
            "fields": {
                "summary": "Job etl-002 failed",
                "description": "Stale file handle on /mnt/shared <script>x</script>",
                "reporter": {"name": "erin", "displayName": "Erin E."},
                "created": "2024-06-03T10:30:00.000+0000",
                "status": {"name": "Resolved"},
                "resolutiondate": "2024-06-03T15:00:00.000+0000",
                "comment": {
                    "comments": [
                        {"author": {"name": "erin"}, "created": "2024-06-03T10:35:00.000+0000"},
                        {"author": {"name": "ops"}, "created": "2024-06-03T11:30:00.000+0000"},
                    ]
                },
            },
        },
        {
            "key": "MLP-102",
            "fields": {
                "summary": "OOM",
                "description": {
                    "type": "doc",
                    "content": [
                        {"type": "paragraph", "content": [{"type": "text", "text": "CUDA OOM"}]},
                        {"type": "codeBlock", "content": [{"type": "text", "text": "Tried"}]},
                    ],
                },
                "reporter": {"emailAddress": "alice@corp.example"},
                "created": "2024-06-03T12:00:00Z",
            },
        },
        {"key": "MLP-103", "fields": {"summary": "no date"}},
        "not an issue",
    ]
}


def test_jira_fields_comments_and_rich_text_are_read() -> None:
    parsed = parse_jira(json.dumps(JIRA).encode(), "jira.json")

    assert (parsed.read, parsed.bad) == (4, 2)
    first, second = parsed.tickets
    assert (first.ticket_id, first.user, first.status) == ("MLP-101", "erin", "resolved")
    assert first.first_answer_at == datetime(2024, 6, 3, 11, 30, tzinfo=UTC)  # not erin's own
    assert first.resolved_at == datetime(2024, 6, 3, 15, tzinfo=UTC)
    assert "<script>" in first.text  # kept as text; escaped on output
    assert (second.user, second.text) == ("alice", "CUDA OOM\nTried")


def test_csv_columns_are_found_by_name_or_mapped() -> None:
    data = (
        b"Issue key,Summary,Description,Reporter,Created,Status\n"
        b'OPS-1,GPU broken,"Xid 79 on gpu-b-13\nsecond line",heidi,03/Jun/24 9:15 AM,Open\n'
        b"OPS-2,,,,03/Jun/24 9:15 AM,Open\n"
        b"OPS-3,short row\n"
        b"OPS-4,t,d,u,yesterday,Open\n"
    )
    parsed = parse_csv(data, "t.csv")

    assert (parsed.read, parsed.bad, len(parsed.tickets)) == (4, 3, 1)
    assert parsed.tickets[0].created_at == datetime(2024, 6, 3, 9, 15, tzinfo=UTC)
    mapped = parse_csv(
        b"k,when,body\nA,2024-06-03,hello\n", "m.csv", {"text": "body", "created_at": "when"}
    )
    assert mapped.tickets[0].text == "hello" and mapped.tickets[0].ticket_id.startswith("T-")


def test_csv_without_usable_columns_or_with_a_bad_mapping_is_one_error() -> None:
    with pytest.raises(InputError, match="no text column"):
        parse_csv(b"a,b\n1,2\n", "t.csv")
    with pytest.raises(InputError, match="no such column"):
        parse_csv(b"text,created\nx,2024-01-01\n", "t.csv", {"user": "who"})
    with pytest.raises(InputError, match="unknown field"):
        parse_csv(b"text,created\nx,2024-01-01\n", "t.csv", {"usr": "text"})


def test_jsonl_bad_lines_are_counted() -> None:
    lines = [
        json.dumps({"id": "a", "text": "x", "created_at": "2024-06-03T00:00:00Z"}),
        "{broken",
        "[1, 2]",
        json.dumps({"id": "b", "description": "y", "created": 1717372800}),
    ]
    parsed = parse_jsonl("\n".join(lines).encode(), "t.jsonl")

    assert (parsed.read, parsed.bad) == (4, 2)
    assert parsed.tickets[1].created_at == datetime(2024, 6, 3, tzinfo=UTC)


@pytest.mark.parametrize(
    ("fmt", "data", "message"),
    [
        ("jira", b"{not json", "not a Jira JSON export"),
        ("jira", b'{"issues": 3}', "an `issues` list"),
        ("jsonl", b"\x00\x01\x02\x03\x04\x05" * 100, "binary data"),
        ("csv", b"", "empty CSV"),
    ],
)
def test_unreadable_files_are_one_input_error(
    tmp_path: Path, fmt: str, data: bytes, message: str
) -> None:
    path = tmp_path / "export"
    path.write_bytes(data)
    with pytest.raises(InputError, match=message):
        read_file(path, fmt)
