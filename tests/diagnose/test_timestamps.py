from __future__ import annotations

from datetime import UTC, datetime

import pytest

from fleetmedic.diagnose.timestamps import full_year, parse_line_time


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("2024-03-05 10:12:01,123 INFO x", datetime(2024, 3, 5, 10, 12, 1, 123000, tzinfo=UTC)),
        ("2024-03-05T10:12:01.5Z step 1", datetime(2024, 3, 5, 10, 12, 1, 500000, tzinfo=UTC)),
        ("2024-03-05T12:12:01+02:00 x", datetime(2024, 3, 5, 10, 12, 1, tzinfo=UTC)),
        (
            "[rank3]:[E0305 10:12:01.000200 ProcessGroupNCCL.cpp:1] x",
            datetime(2024, 3, 5, 10, 12, 1, 200, tzinfo=UTC),
        ),
        ("I0305 10:12:01.000001  123 file.cc:1] x", datetime(2024, 3, 5, 10, 12, 1, 1, tzinfo=UTC)),
        ("Mar  5 10:12:01 node kernel: NVRM: Xid", datetime(2024, 3, 5, 10, 12, 1, tzinfo=UTC)),
        ("[Tue Mar  5 10:12:01 2019] NVRM: Xid", datetime(2019, 3, 5, 10, 12, 1, tzinfo=UTC)),
        ("INFO 03-05 10:12:01 worker.py:1] x", datetime(2024, 3, 5, 10, 12, 1, tzinfo=UTC)),
    ],
)
def test_formats(line: str, expected: datetime) -> None:
    assert parse_line_time(line, default_year=2024) == expected


@pytest.mark.parametrize(
    "line", ["no time here", "step 12 loss 0.3", "2024-13-45 99:99:99 bad", ""]
)
def test_no_time(line: str) -> None:
    assert parse_line_time(line, 2024) is None


def test_full_year_anchor() -> None:
    assert full_year("2023-01-02 00:00:00 x") == 2023
    assert full_year("Jan  2 00:00:00 x") is None
