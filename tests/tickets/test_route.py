"""Routing: the priorities ranking's team for the cause; severity from the impact."""

from __future__ import annotations

from datetime import UTC, datetime

from fleetmedic.kpi.priorities_owners import default_owner_map, parse_owner_map
from fleetmedic.tickets.models import Incident, JobLink, Verdict
from fleetmedic.tickets.route import route
from fleetmedic.tickets.rules import default_rules

RULES = default_rules()
WHEN = datetime(2024, 6, 3, tzinfo=UTC)


def verdict(category: str, owner: str) -> Verdict:
    return Verdict(
        category=category, owner=owner, confidence=0.9, source="job", summary="s", advice="a"
    )


def failed(job: str, user: str, hours: float) -> JobLink:
    return JobLink(
        job_id=job,
        how="exact",
        mention=job,
        score=1.0,
        user=user,
        status="failed",
        gpu_hours=hours,
    )


def incident(users: int, hours: float) -> Incident:
    return Incident(
        incident_id="INC-x",
        kind="burst",
        category="storage_io",
        since=WHEN,
        until=WHEN,
        jobs=users,
        users=users,
        gpu_hours_lost=hours,
        summary="s",
    )


def test_user_causes_go_to_the_users_and_are_the_lowest_severity() -> None:
    found = route(
        verdict("gpu_oom", "user"), [failed("j", "a", 8)], None, RULES, default_owner_map()
    )

    assert (found.team, found.severity) == ("ML users / job owners", "sev4")


def test_severity_grows_with_users_and_gpu_hours() -> None:
    owners = default_owner_map()
    platform = verdict("storage_io", "platform")

    assert route(platform, [failed("j", "a", 1)], None, RULES, owners).severity == "sev3"
    assert route(platform, [], incident(3, 10), RULES, owners).severity == "sev2"
    assert route(platform, [], incident(2, 300), RULES, owners).severity == "sev2"
    assert route(platform, [], incident(12, 10), RULES, owners).severity == "sev1"
    assert route(verdict("gpu_oom", "user"), [], incident(12, 10), RULES, owners).severity == "sev1"


def test_a_deployments_owner_file_moves_one_category_to_another_team() -> None:
    owners = parse_owner_map(
        "owners: {platform: Platform}\ncategories: {storage_io: Storage team}", "o.yaml"
    )

    found = route(verdict("storage_io", "platform"), [], None, RULES, owners)
    assert found.team == "Storage team"
