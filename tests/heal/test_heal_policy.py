"""Policies are data: the packaged file loads, and every kind of mistake is one InputError line."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from healkit import diagnosis

from fleetmedic.heal.policy import ACTION_KINDS, load_policies, parse_policies
from fleetmedic.model.errors import InputError
from fleetmedic.model.taxonomy import CATEGORIES

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def test_default_policies_load_and_are_dry_run() -> None:
    policies = load_policies()
    assert policies.policies
    assert all(p.mode == "dry-run" for p in policies.policies)
    assert {p.action for p in policies.policies} <= set(ACTION_KINDS)


def test_default_policies_never_retry_user_causes() -> None:
    policies = load_policies()
    for cat in CATEGORIES.values():
        kinds = {p.action for p in policies.matching(diagnosis(cat.id), [NOW] * 5, NOW)}
        if cat.owner == "user" or not cat.retryable:
            assert not kinds & {"retry_from_checkpoint", "requeue_excluding_node"}, cat.id


def test_gpu_hardware_requeues_and_a_third_within_two_weeks_cordons() -> None:
    policies = load_policies()
    gpu = diagnosis("gpu_hardware")
    for history in ([NOW], [NOW - timedelta(days=3), NOW]):
        assert [p.action for p in policies.matching(gpu, history, NOW)] == [
            "requeue_excluding_node"
        ]
    third = [NOW - timedelta(days=13), NOW - timedelta(days=2), NOW]
    assert [p.action for p in policies.matching(gpu, third, NOW)] == [
        "cordon_and_drain",
        "requeue_excluding_node",
    ]
    old = [NOW - timedelta(days=15), NOW - timedelta(days=2), NOW]
    assert "cordon_and_drain" not in {p.action for p in policies.matching(gpu, old, NOW)}


def test_a_lemon_detection_quarantines_the_node() -> None:
    flagged = diagnosis("gpu_hardware", signature="lemon.failure_rate", job_id=None)
    kinds = [p.action for p in load_policies().matching(flagged, [NOW], NOW)]
    assert kinds[0] == "cordon_and_drain"


def test_min_node_repeats() -> None:
    policies = load_policies()
    once = {p.action for p in policies.matching(diagnosis("nccl_comm"), [NOW], NOW)}
    thrice = {p.action for p in policies.matching(diagnosis("nccl_comm"), [NOW] * 3, NOW)}
    assert "cordon_and_drain" not in once
    assert "cordon_and_drain" in thrice


def test_with_mode_switches_every_policy() -> None:
    auto = load_policies().with_mode("auto")
    assert {p.mode for p in auto.policies} == {"auto"}
    assert [p.name for p in auto.policies] == [p.name for p in load_policies().policies]


def test_signature_regex_match() -> None:
    text = """
policies:
  - name: xid79
    match: {categories: [gpu_hardware], signature: "xid_?79"}
    action: notify
"""
    policies = parse_policies(text)
    assert list(policies.matching(diagnosis("gpu_hardware", signature="gpu.xid79")))
    assert not list(policies.matching(diagnosis("gpu_hardware", signature="gpu.ecc")))


BAD = {
    "unknown field": (
        "policies:\n  - {name: a, match: {categories: [gpu_oom]}, action: notify, colour: red}",
        "colour",
    ),
    "unknown category": (
        "policies:\n  - {name: a, match: {categories: [gpu_oops]}, action: notify}",
        "unknown categories",
    ),
    "unknown action": (
        "policies:\n  - {name: a, match: {}, action: reboot_cluster}",
        "action",
    ),
    "bad mode": (
        "policies:\n  - {name: a, match: {}, action: notify, mode: yolo}",
        "mode",
    ),
    "retry user cause": (
        "policies:\n  - {name: a, match: {categories: [gpu_oom]}, action: retry_from_checkpoint,"
        " retry_budget: {per_job: 1, per_cause: 1}}",
        "non-retryable or user-owned",
    ),
    "retry without budget": (
        "policies:\n  - {name: a, match: {categories: [nccl_comm]}, action: retry_from_checkpoint}",
        "needs a retry_budget",
    ),
    "retry matching anything": (
        "policies:\n  - {name: a, match: {}, action: retry_from_checkpoint,"
        " retry_budget: {per_job: 1, per_cause: 1}}",
        "must name the categories",
    ),
    "budget on notify": (
        "policies:\n  - {name: a, match: {}, action: notify, retry_budget: {per_job: 1, per_cause: 1}}",
        "only applies to retries",
    ),
    "duplicate names": (
        "policies:\n  - {name: a, match: {}, action: notify}\n  - {name: a, match: {}, action: notify}",
        "duplicate policy names",
    ),
    "bad regex": (
        "policies:\n  - {name: a, match: {signature: '('}, action: notify}",
        "bad signature regex",
    ),
    "bad guard value": (
        "guard: {max_cordoned_fraction: 2}\npolicies: []",
        "max_cordoned_fraction",
    ),
    "not a mapping": ("- just a list", "expected a mapping"),
    "not yaml": ("policies: [unclosed", "not valid YAML"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_policy_is_one_line_input_error(case: str) -> None:
    text, expected = BAD[case]
    with pytest.raises(InputError) as info:
        parse_policies(text, "bad.yaml")
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("bad.yaml: ")
    assert expected in message


def test_unreadable_policy_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cannot read policy file"):
        load_policies(tmp_path / "missing.yaml")


def test_policy_file_from_disk(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text("policies:\n  - {name: a, match: {}, action: notify, mode: auto}\n")
    assert load_policies(path).policies[0].mode == "auto"


def test_docs_name_every_action_kind_and_guard_setting() -> None:
    from fleetmedic.heal.policy import GuardConfig

    text = (Path(__file__).parents[2] / "docs" / "healing.md").read_text("utf-8")
    for name in (*ACTION_KINDS, *GuardConfig.model_fields):
        assert f"`{name}`" in text, name
