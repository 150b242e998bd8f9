"""Read tickets exported from a tracker: Jira's JSON, CSV with a column mapping, or JSON lines.

A row that cannot be read (no text, no creation time, not an object) is counted and skipped, never
a traceback; a file that cannot be read at all is one ``InputError``. Text is cleaned like a ticket
typed on the command line (:func:`fleetmedic.tickets.text.clean`).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fleetmedic.model.errors import InputError
from fleetmedic.tickets.models import TicketIn
from fleetmedic.tickets.text import MAX_CHARS, clean, decode

FORMATS = ("jira", "csv", "jsonl")
FIELDS = (
    "ticket_id",
    "title",
    "text",
    "user",
    "created_at",
    "status",
    "first_answer_at",
    "resolved_at",
)
CSV_ALIASES: dict[str, tuple[str, ...]] = {
    "ticket_id": ("ticket_id", "id", "key", "issue key", "issue id", "ticket"),
    "title": ("title", "summary", "subject"),
    "text": ("text", "description", "body", "message"),
    "user": ("user", "reporter", "requester", "author", "reporter username"),
    "created_at": ("created_at", "created", "date", "opened", "submitted"),
    "status": ("status", "state"),
    "first_answer_at": ("first_answer_at", "first response", "first_response", "responded"),
    "resolved_at": ("resolved_at", "resolved", "resolution date", "closed"),
}
_JIRA_CSV_TIME = ("%d/%b/%y %I:%M %p", "%d/%b/%Y %I:%M %p", "%Y-%m-%d %H:%M")


@dataclass
class Parsed:
    tickets: list[TicketIn] = field(default_factory=list)
    read: int = 0
    bad: int = 0
    problems: list[str] = field(default_factory=list)

    def skip(self, where: str, why: str) -> None:
        self.bad += 1
        if len(self.problems) < 5:
            self.problems.append(f"{where}: {why}")


def parse_time(value: Any) -> datetime | None:
    """ISO 8601 (``Z``, ``+0000``, ``+00:00``), epoch seconds, or Jira CSV's ``03/Jun/24 9:15 AM``."""
    if value is None or value == "":
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            return datetime.fromtimestamp(float(value), UTC)
        except (OverflowError, OSError, ValueError):
            return None
    text = str(value).strip()
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        when = None
        for pattern in _JIRA_CSV_TIME:
            try:
                when = datetime.strptime(text, pattern)
                break
            except ValueError:
                continue
    if when is None:
        return None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def _id(text: str, created: datetime, user: str | None) -> str:
    digest = hashlib.sha256(f"{user}\x1f{created.isoformat()}\x1f{text}".encode()).hexdigest()
    return f"T-{digest[:12]}"


def _text(value: Any) -> str:
    """A field as text: strings as they are, Atlassian Document Format flattened, else JSON."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping):
        return _adf(value).strip()
    return json.dumps(value, ensure_ascii=False)[:MAX_CHARS]


def _adf(node: Mapping[str, Any], depth: int = 0) -> str:
    """The words of a Jira Cloud rich-text field (ADF), paragraphs on their own lines."""
    if depth > 50:
        return ""
    parts = [str(node.get("text", ""))] if node.get("type") == "text" else []
    for child in node.get("content") or ():
        if isinstance(child, Mapping):
            parts.append(_adf(child, depth + 1))
    suffix = "\n" if node.get("type") in ("paragraph", "codeBlock", "heading", "listItem") else ""
    return "".join(parts) + suffix


def build(raw: Mapping[str, Any], source: str, where: str, parsed: Parsed) -> TicketIn | None:
    """A ticket from a row of normalized fields, or None (counted as bad) when it is unusable."""
    text, _ = clean(_text(raw.get("text")))
    title = clean(_text(raw.get("title")))[0].strip()[:500] or None
    if not text.strip() and not title:
        parsed.skip(where, "no text and no title")
        return None
    created = parse_time(raw.get("created_at"))
    if created is None:
        parsed.skip(where, f"no readable creation time ({str(raw.get('created_at'))[:40]!r})")
        return None
    user = clean(_text(raw.get("user")))[0].strip()[:200] or None
    ticket_id = clean(_text(raw.get("ticket_id")))[0].strip()[:200] or _id(text, created, user)
    return TicketIn(
        ticket_id=ticket_id,
        text=text,
        title=title,
        user=user,
        created_at=created,
        status=(clean(_text(raw.get("status")))[0].strip().lower()[:50] or "open"),
        source=source,
        first_answer_at=parse_time(raw.get("first_answer_at")),
        resolved_at=parse_time(raw.get("resolved_at")),
    )


def _person(value: Any) -> str | None:
    """Jira's reporter/author: the user name, else the e-mail's local part, else the display name."""
    if isinstance(value, str):
        return value
    if not isinstance(value, Mapping):
        return None
    for key in ("name", "key"):
        if value.get(key):
            return str(value[key])
    if value.get("emailAddress"):
        return str(value["emailAddress"]).split("@")[0]
    for key in ("displayName", "accountId"):
        if value.get(key):
            return str(value[key])
    return None


def _first_answer(fields: Mapping[str, Any], reporter: str | None) -> Any:
    """The first comment by someone other than the reporter: the time to first answer ends there."""
    comment = fields.get("comment")
    comments = comment.get("comments") if isinstance(comment, Mapping) else comment
    times = []
    for item in comments if isinstance(comments, list) else ():
        if isinstance(item, Mapping) and _person(item.get("author")) != reporter:
            when = parse_time(item.get("created"))
            if when is not None:
                times.append(when)
    return min(times) if times else None


def parse_jira(data: bytes, label: str) -> Parsed:
    try:
        doc = json.loads(decode(data, label))
    except (ValueError, RecursionError) as exc:
        raise InputError(f"{label}: not a Jira JSON export ({str(exc)[:80]})") from exc
    issues = doc.get("issues") if isinstance(doc, Mapping) else doc
    if not isinstance(issues, list):
        raise InputError(f"{label}: a Jira export is an object with an `issues` list")
    parsed = Parsed()
    for number, issue in enumerate(issues, start=1):
        parsed.read += 1
        fields = issue.get("fields") if isinstance(issue, Mapping) else None
        if not isinstance(fields, Mapping):
            parsed.skip(f"issue {number}", "no `fields` object")
            continue
        reporter = _person(fields.get("reporter") or fields.get("creator"))
        status = fields.get("status")
        row = {
            "ticket_id": issue.get("key") or issue.get("id"),
            "title": fields.get("summary"),
            "text": fields.get("description"),
            "user": reporter,
            "created_at": fields.get("created"),
            "status": status.get("name") if isinstance(status, Mapping) else status,
            "first_answer_at": _first_answer(fields, reporter),
            "resolved_at": fields.get("resolutiondate"),
        }
        ticket = build(row, "jira", f"issue {number}", parsed)
        if ticket is not None:
            parsed.tickets.append(ticket)
    return parsed


def column_map(header: list[str], overrides: Mapping[str, str]) -> dict[str, str]:
    """Our field -> the CSV column holding it: ``overrides`` first, else a known column name."""
    unknown = sorted(set(overrides) - set(FIELDS))
    if unknown:
        raise InputError(f"--map names unknown field(s) {unknown}; fields are {', '.join(FIELDS)}")
    lower = {h.strip().lower(): h for h in header}
    found: dict[str, str] = {}
    for name in FIELDS:
        if name in overrides:
            if overrides[name] not in header:
                raise InputError(f"--map {name}={overrides[name]}: no such column in the CSV")
            found[name] = overrides[name]
            continue
        for alias in CSV_ALIASES[name]:
            if alias in lower:
                found[name] = lower[alias]
                break
    if "text" not in found and "title" not in found:
        raise InputError(
            "the CSV has no text column (description, text, body) and no title column; "
            "name it with --map text=COLUMN"
        )
    if "created_at" not in found:
        raise InputError(
            "the CSV has no creation-time column; name it with --map created_at=COLUMN"
        )
    return found


def _csv_rows(text: str) -> Iterator[list[str]]:
    reader = csv.reader(io.StringIO(text, newline=""))
    while True:
        try:
            yield next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise InputError(f"malformed CSV at line {reader.line_num}: {exc}") from exc


def parse_csv(data: bytes, label: str, overrides: Mapping[str, str] | None = None) -> Parsed:
    csv.field_size_limit(4 * MAX_CHARS)
    rows = _csv_rows(decode(data, label).lstrip("\ufeff"))
    header = next(rows, None)
    if not header:
        raise InputError(f"{label}: empty CSV (no header row)")
    columns = column_map(header, overrides or {})
    index = {name: header.index(column) for name, column in columns.items()}
    parsed = Parsed()
    for number, row in enumerate(rows, start=2):
        if not any(cell.strip() for cell in row):
            continue
        parsed.read += 1
        if len(row) != len(header):
            parsed.skip(f"row {number}", f"{len(row)} cells, the header has {len(header)}")
            continue
        values = {name: row[i] for name, i in index.items()}
        ticket = build(values, "csv", f"row {number}", parsed)
        if ticket is not None:
            parsed.tickets.append(ticket)
    return parsed


def parse_jsonl(data: bytes, label: str) -> Parsed:
    parsed = Parsed()
    for number, line in enumerate(decode(data, label).splitlines(), start=1):
        if not line.strip():
            continue
        parsed.read += 1
        try:
            obj = json.loads(line)
        except (ValueError, RecursionError):
            parsed.skip(f"line {number}", "not JSON")
            continue
        if not isinstance(obj, Mapping):
            parsed.skip(f"line {number}", "not a JSON object")
            continue
        row = {name: obj.get(name) for name in FIELDS}
        row["ticket_id"] = row["ticket_id"] or obj.get("id") or obj.get("key")
        row["text"] = row["text"] or obj.get("description") or obj.get("body")
        row["user"] = row["user"] or obj.get("reporter")
        row["created_at"] = row["created_at"] or obj.get("created")
        ticket = build(row, "jsonl", f"line {number}", parsed)
        if ticket is not None:
            parsed.tickets.append(ticket)
    return parsed


def read_file(path: Path, fmt: str, overrides: Mapping[str, str] | None = None) -> Parsed:
    """Parse an export file in ``fmt`` (one of :data:`FORMATS`)."""
    if fmt not in FORMATS:
        raise InputError(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from exc
    if fmt == "jira":
        return parse_jira(data, str(path))
    if fmt == "csv":
        return parse_csv(data, str(path), overrides)
    return parse_jsonl(data, str(path))
