"""Who answers a ticket and how urgent it is.

The team is the one that owns the root cause in the priorities ranking (``kpi/owners.yaml``, or a
deployment's ``--owners`` file), so a cause has one owner whether it shows up as lost GPU-hours or
as tickets. Severity grows with impact, read from the incident when there is one (every job and
user it hit), else from the ticket's own jobs; levels and thresholds are in ``rules.yaml``.
"""

from __future__ import annotations

from collections.abc import Sequence

from fleetmedic.kpi.priorities_owners import OwnerMap
from fleetmedic.tickets.models import Incident, JobLink, Route, Verdict
from fleetmedic.tickets.rules import Rules, SeverityLevel

_FAILED = frozenset({"failed", "timeout", "preempted"})


def impact(links: Sequence[JobLink], incident: Incident | None) -> tuple[int, float]:
    """(users, GPU-hours lost): the incident's when there is one, else the linked failed jobs'."""
    if incident is not None:
        return incident.users, incident.gpu_hours_lost
    failed = [link for link in links if link.status in _FAILED]
    users = {link.user for link in failed if link.user}
    return max(len(users), 1), round(sum(link.gpu_hours for link in failed), 2)


def _meets(level: SeverityLevel, owner: str, users: int, gpu_hours: float) -> bool:
    if level.owners and owner not in level.owners:
        return False
    thresholds = [
        level.min_users is not None and users >= level.min_users,
        level.min_gpu_hours is not None and gpu_hours >= level.min_gpu_hours,
    ]
    has_thresholds = level.min_users is not None or level.min_gpu_hours is not None
    return any(thresholds) if has_thresholds else True


def route(
    verdict: Verdict,
    links: Sequence[JobLink],
    incident: Incident | None,
    rules: Rules,
    owners: OwnerMap,
) -> Route:
    users, gpu_hours = impact(links, incident)
    team = owners.team(verdict.category, verdict.owner)
    reasons = [f"{verdict.category} is owned by {verdict.owner}: {team}"]
    for level in rules.severity:
        if _meets(level, verdict.owner, users, gpu_hours):
            reasons.append(f"{level.level}: {users} user(s), {gpu_hours:,.1f} GPU-hours lost")
            return Route(
                owner=verdict.owner, team=team, severity=level.level, reasons=tuple(reasons)
            )
    last = rules.severity[-1].level
    return Route(owner=verdict.owner, team=team, severity=last, reasons=tuple(reasons))
