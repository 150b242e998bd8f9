"""Timestamps in the formats ML job logs carry, so findings from different ranks can be ordered.

Only the start of a line is looked at (where loggers put the time). Formats without a year (glog,
syslog/dmesg, vLLM) take the year of the bundle's first full date, else the current year: what
matters is the order within one bundle, not the calendar.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

_MONTHS = {
    m: i
    for i, m in enumerate(
        ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"],
        start=1,
    )
}

# ISO 8601 / Python logging / TF: 2024-01-15T10:23:45.123Z, 2024-01-15 10:23:45,123, 2024/01/15 10:23:45
_ISO = re.compile(
    r"(?P<y>(?:19|20)\d\d)[-/](?P<mo>\d\d)[-/](?P<d>\d\d)[T ](?P<h>\d\d):(?P<mi>\d\d):(?P<s>\d\d)"
    r"(?:[.,](?P<f>\d{1,9}))?(?P<z>Z|[+-]\d\d:?\d\d)?"
)
# glog (PyTorch C++, TF, NCCL via c10): I0115 10:23:45.123456
_GLOG = re.compile(
    r"(?:^|[\s\]>:\[])[IWEF](?P<mo>[01]\d)(?P<d>[0-3]\d) (?P<h>\d\d):(?P<mi>\d\d):(?P<s>\d\d)(?:\.(?P<f>\d{1,9}))?"
)
# syslog / dmesg -T / kernel: Jan 15 10:23:45, Tue Nov 27 13:49:06 2018
_SYSLOG = re.compile(
    r"(?:(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) )?(?P<mon>Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)"
    r" {1,2}(?P<d>\d{1,2}) (?P<h>\d\d):(?P<mi>\d\d):(?P<s>\d\d)(?:\.(?P<f>\d{1,9}))?(?: (?P<y>(?:19|20)\d\d))?",
    re.IGNORECASE,
)
# vLLM / some launchers: INFO 12-08 19:50:16
_MONTH_DAY = re.compile(
    r"(?:^|\s)(?P<mo>[01]\d)-(?P<d>[0-3]\d) (?P<h>\d\d):(?P<mi>\d\d):(?P<s>\d\d)"
)

HEAD = 80  # characters of a line searched for a timestamp


def parse_line_time(line: str, default_year: int) -> datetime | None:
    """The time a log line carries near its start, as an aware UTC datetime, or None."""
    head = line[:HEAD]
    if not any(ch.isdigit() for ch in head):
        return None
    match = _ISO.search(head)
    if match:
        return _build(int(match["y"]), int(match["mo"]), match, tz=match["z"])
    match = _SYSLOG.search(head)
    if match:
        year = int(match["y"]) if match["y"] else default_year
        return _build(year, _MONTHS[match["mon"][:3].lower()], match)
    match = _GLOG.search(head)
    if match:
        return _build(default_year, int(match["mo"]), match)
    match = _MONTH_DAY.search(head)
    if match:
        return _build(default_year, int(match["mo"]), match)
    return None


def _build(year: int, month: int, match: re.Match[str], tz: str | None = None) -> datetime | None:
    fraction = match.groupdict().get("f") or "0"
    try:
        value = datetime(
            year,
            month,
            int(match["d"]),
            int(match["h"]),
            int(match["mi"]),
            int(match["s"]),
            int(fraction[:6].ljust(6, "0")),
            tzinfo=UTC,
        )
    except ValueError:
        return None
    if tz and tz != "Z":
        sign = 1 if tz[0] == "+" else -1
        digits = tz[1:].replace(":", "")
        offset = sign * (int(digits[:2]) * 3600 + int(digits[2:]) * 60)
        value = datetime.fromtimestamp(value.timestamp() - offset, tz=UTC)
    return value


def full_year(line: str) -> int | None:
    """The year of a line that carries a full date, to anchor year-less formats."""
    match = _ISO.search(line[:HEAD])
    return int(match["y"]) if match else None
