"""The drafted answer: what happened, whose fix it is, the evidence, what to do, the runbooks.

Templated (``templates/answer.{txt,md,html}.j2``) and deterministic: the same triage gives the same
words. Everything the ticket or the store supplies is untrusted, so escaping is not left to each
template: every ``{{ value }}`` passes through the format's neutralizer (Jinja2's ``finalize`` for
text and Markdown, autoescape for HTML), and a template cannot forget it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from functools import cache
from typing import Any, Literal

from jinja2 import Environment, PackageLoader, StrictUndefined

from fleetmedic.tickets.models import Incident, JobLink, KnownIssueHit, Verdict

Format = Literal["text", "markdown", "html"]
FORMATS: tuple[Format, ...] = ("text", "markdown", "html")
_TEMPLATES: dict[Format, str] = {
    "text": "answer.txt.j2",
    "markdown": "answer.md.j2",
    "html": "answer.html.j2",
}
_MD_SPECIAL = re.compile(r"([\\`*\[\]|~]|^[#>+-]|(?<![A-Za-z0-9])_|_(?![A-Za-z0-9]))")
_TAG_OPEN = re.compile(r"<(?=[A-Za-z/!?])")
_WHOSE = {
    "user": "This comes from the job itself (owner: user), so the fix is on your side; the details "
    "and the change to make are below.",
    "platform": "This is a platform issue (owner: platform), not something in your job; {team} "
    "has it.",
    "hardware": "This is a hardware fault (owner: hardware), not something in your job; {team} "
    "has it.",
    "—": "We could not tell the cause from the ticket and what the store holds; {team} will look "
    "at it.",
}


def inline(value: object) -> str:
    """One line of untrusted text: no line breaks, at most 400 characters."""
    text = " ".join(str(value).split())
    return text if len(text) <= 400 else text[:399] + "…"


def neutral_text(value: object) -> str:
    """Plain text that stays plain if pasted into a page: a tag's ``<`` becomes ``&lt;``."""
    return _TAG_OPEN.sub("&lt;", "" if value is None else str(value))


def neutral_markdown(value: object) -> str:
    """Markdown that shows the characters it holds: HTML and Markdown syntax escaped."""
    text = "" if value is None else str(value)
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _MD_SPECIAL.sub(r"\\\1", text.replace("\n", " "))


@cache
def _environment(fmt: Format) -> Environment:
    finalize: Callable[[Any], Any] | None = None
    if fmt == "text":
        finalize = neutral_text
    elif fmt == "markdown":
        finalize = neutral_markdown
    return Environment(
        loader=PackageLoader("fleetmedic.tickets", "templates"),
        autoescape=fmt == "html",
        finalize=finalize,
        undefined=StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=False,
    )


def _when(value: datetime | None) -> str:
    return f"{value:%Y-%m-%d %H:%M} UTC" if value is not None else "an unknown time"


def _state(link: JobLink) -> str:
    parts = [link.status or "unknown status"]
    if link.attempt:
        parts.append(f"attempt {link.attempt}")
    if link.ended_at is not None:
        parts.append(f"ended {_when(link.ended_at)}")
    return ", ".join(parts)


def _what(link: JobLink) -> str:
    if link.category:
        return inline(f"{link.category}: {link.summary or ''}")
    if link.status == "succeeded":
        return "it succeeded; no failure is recorded for it"
    if link.status in ("pending", "running"):
        return f"it is {link.status}; no failure is recorded yet"
    return "no diagnosis is stored for it yet"


def _done(links: list[JobLink]) -> list[str]:
    done: list[str] = []
    for link in links:
        done += [inline(a) for a in link.actions]
        if link.attempt and link.attempts > link.attempt:
            since = link.last_checkpoint_at
            step = f" from its checkpoint of {_when(since)}" if since else ""
            done.append(f"job {link.job_id} was restarted (attempt {link.attempts}){step}")
    return list(dict.fromkeys(done))


def context(
    *,
    user: str | None,
    verdict: Verdict,
    links: list[JobLink],
    incident: Incident | None,
    known: list[KnownIssueHit],
    team: str,
    duplicate: str | None,
) -> dict[str, Any]:
    """The values the templates show, already cut to size; escaping is the environment's job."""
    failed_first = sorted(links, key=lambda link: link.category is None)
    done = _done(links)
    fix = next((k.fix for k in known if verdict.category in k.categories), None)
    incident_text = None
    if incident is not None:
        incident_text = inline(
            f"{incident.summary} ({incident.incident_id}); "
            f"{incident.gpu_hours_lost:,.1f} GPU-hours lost so far."
        )
    return {
        "greeting": inline(user or "there"),
        "headline": inline(verdict.summary),
        "jobs": [
            {
                "job_id": inline(link.job_id),
                "state": _state(link),
                "what": _what(link),
                "evidence": [inline(e) for e in link.evidence[:2]],
            }
            for link in failed_first[:5]
        ],
        "incident": incident_text,
        "whose": _WHOSE.get(verdict.owner, _WHOSE["—"]).format(team=team),
        "todo_title": "What to do." if verdict.owner == "user" else "What happens next.",
        "advice": inline(fix or verdict.advice),
        "done": done,
        "runbooks": [inline(f"{k.title}: {k.runbook}") for k in known[:3]],
        "duplicate": duplicate,
        "signature": verdict.signature or verdict.category,
        "confidence": f"{verdict.confidence:.2f}",
    }


def render(values: dict[str, Any], fmt: Format) -> str:
    """The answer in ``fmt``; ``values`` come from :func:`context`."""
    return _environment(fmt).get_template(_TEMPLATES[fmt]).render(**values)
