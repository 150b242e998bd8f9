"""Incidents: the storage outage is one burst with one id; the bad node is one node incident."""

from __future__ import annotations

from ticketkit import aware

from fleetmedic.store import Store
from fleetmedic.tickets.extract import extract
from fleetmedic.tickets.incidents import bad_node, burst, find_incident
from fleetmedic.tickets.link import link_jobs
from fleetmedic.tickets.rules import default_rules

RULES = default_rules().incidents


def test_the_storage_outage_is_one_burst_whatever_ticket_points_at_it(store: Store) -> None:
    first = burst(store.con, "storage_io", aware(10.2), RULES)
    last = burst(store.con, "storage_io", aware(10.9), RULES)

    assert first is not None and last is not None
    assert first.incident_id == last.incident_id == "INC-storage_io-20240603-1009"
    assert (first.jobs, first.users) == (6, 4)
    assert first.gpu_hours_lost > 0


def test_no_burst_far_from_the_outage_or_for_user_causes(store: Store) -> None:
    assert burst(store.con, "storage_io", aware(30), RULES) is None
    assert burst(store.con, "gpu_oom", aware(1), RULES) is None


def test_a_node_with_repeated_hardware_faults_is_an_incident(store: Store) -> None:
    found = bad_node(store.con, "gpu-b-13", aware(62), RULES)

    assert found is not None and found.kind == "node"
    assert found.incident_id == "INC-node-gpu-b-13-20240603"
    assert found.jobs == 3
    assert bad_node(store.con, "gpu-a-01", aware(62), RULES) is None


def test_a_hardware_ticket_joins_its_node_incident(store: Store) -> None:
    when = aware(62)
    links = link_jobs(store.con, extract("pretrain-big died", when), None, when)

    found = find_incident(store.con, links, "gpu_hardware", when, [], RULES)
    assert found is not None and found.node == "gpu-b-13"


def test_a_users_own_bug_never_joins_an_incident(store: Store) -> None:
    when = aware(62)
    assert find_incident(store.con, [], "gpu_oom", when, ["gpu-b-13"], RULES) is None
