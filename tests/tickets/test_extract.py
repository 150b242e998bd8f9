"""Entities from messy tickets: ids in prose, pasted kubectl output, relative times."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from fleetmedic.model.errors import InputError
from fleetmedic.tickets.extract import extract, parse_patterns

FILED = datetime(2024, 6, 4, 9, 30, tzinfo=UTC)

TICKET = """Hi team,
my run sim-939b8076-000014 died yesterday around 2024-06-03 14:30 UTC on node gpu-h100-0004,
kubectl logs -n research pod/research/research-eval-96-worker-0 shows:
  RuntimeError: CUDA error: an illegal memory access was encountered
Also job id: llama_ft-7b-v2 (submitted by @alice) and pytorchjob/resnet-ddp. thx
"""


def test_ids_pods_nodes_namespaces_users_and_errors_are_found() -> None:
    found = extract(TICKET, FILED)

    assert found.job_ids[:1] == ("sim-939b8076-000014",)
    assert {"llama_ft-7b-v2", "resnet-ddp"} <= set(found.job_ids)
    assert found.pods == ("research-eval-96-worker-0",)
    assert found.nodes == ("gpu-h100-0004",)
    assert found.namespaces[0] == "research"
    assert found.users == ("alice",)
    assert any("illegal memory access" in e for e in found.errors)
    assert "sim-939b8076-000014" in found.fuzzy_job_ids


def test_absolute_and_relative_times_are_anchored_on_the_filing_time() -> None:
    found = extract("failed 2024-06-03T14:30:00Z, and again 3 hours ago; also yesterday", FILED)

    assert found.times[0] == datetime(2024, 6, 3, 14, 30, tzinfo=UTC)
    assert FILED - timedelta(hours=3) in found.times
    assert FILED - timedelta(hours=24) in found.times


def test_a_replica_pod_is_not_also_taken_for_a_node() -> None:
    found = extract("see pod trainer-x-worker-3 and master trainer-x-master-0", FILED)

    assert set(found.pods) == {"trainer-x-worker-3", "trainer-x-master-0"}
    assert not any(n.startswith(("worker", "master")) for n in found.nodes)


def test_patterns_file_is_validated() -> None:
    with pytest.raises(InputError, match="invalid regular expression"):
        parse_patterns("job_id:\n  - {name: x, pattern: '(unclosed'}\n", "p.yaml")
    with pytest.raises(InputError, match="not a valid patterns file"):
        parse_patterns("jobid: []\n", "p.yaml")
    with pytest.raises(InputError, match="need `hours`"):
        parse_patterns("relative_time:\n  - {name: x, pattern: 'ago'}\n", "p.yaml")


def test_a_new_id_format_is_one_pattern_entry() -> None:
    patterns = parse_patterns("job_id:\n  - {name: acme, pattern: 'ACME#(?P<v>\\d{5})'}\n", "p")

    assert extract("broken: ACME#12345 again", FILED, patterns).job_ids == ("12345",)


@pytest.mark.parametrize(
    "text",
    [
        "sim-" * 2_500_000,
        "job " * 2_500_000,
        "a-" * 5_000_000,
        ("x" * 100_000 + "\n") * 100,
    ],
    ids=["repeated-prefix", "repeated-label", "dashes", "long-lines"],
)
def test_pathological_tickets_finish_quickly(text: str) -> None:
    started = time.perf_counter()
    extract(text, FILED)
    assert time.perf_counter() - started < 3.0
