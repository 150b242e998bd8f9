"""The signal catalog: the packaged one loads, and every mistake is one line naming the field."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from fleetmedic.model.errors import InputError
from fleetmedic.sources.prometheus_catalog import load_catalog, parse_catalog

DOCS = Path(__file__).parents[2] / "docs" / "run-on-cluster.md"

GOOD = """
version: 1
node_labels: [Hostname]
signals:
  - name: gpu_xid
    kind: event
    query: DCGM_FI_DEV_XID_ERRORS != 0
    reason: XidError
    message: "Xid {value} on {node}"
    category: gpu_hardware
"""


def test_the_packaged_catalog_covers_the_dcgm_fields() -> None:
    catalog = load_catalog()
    queries = " ".join(s.query for s in catalog.signals)
    for field in (
        "DCGM_FI_DEV_XID_ERRORS",
        "DCGM_FI_DEV_ECC_DBE_VOL_TOTAL",
        "DCGM_FI_DEV_ROW_REMAP_FAILURE",
        "DCGM_FI_DEV_UNCORRECTABLE_REMAPPED_ROWS",
        "DCGM_FI_DEV_NVLINK_RECOVERY_ERROR_COUNT_TOTAL",
        "DCGM_FI_DEV_GPU_TEMP",
        "DCGM_FI_DEV_POWER_USAGE",
        "DCGM_FI_DEV_GPU_UTIL",
        "DCGM_FI_PROF_SM_ACTIVE",
        "DCGM_FI_DEV_MEM_COPY_UTIL",
        "node_filesystem_avail_bytes",
    ):
        assert field in queries, field
    assert {s.metric for s in catalog.of_kind("usage")} >= {
        "gpu_util",
        "sm_active",
        "mem_copy_util",
    }


def test_every_packaged_signal_is_documented() -> None:
    text = DOCS.read_text("utf-8")
    for signal in load_catalog().signals:
        assert re.search(rf"`{signal.name}`", text), f"{signal.name} is not in {DOCS.name}"


def test_a_good_catalog_parses() -> None:
    catalog = parse_catalog(GOOD)
    assert catalog.signals[0].category == "gpu_hardware"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            ("category: gpu_hardware", "category: gpu_hardwar"),
            "signals.gpu_xid: Value error, unknown category 'gpu_hardwar'",
        ),
        (("{node}", "{nodes}"), "message names {nodes}"),
        (
            ("reason: XidError", "reasn: XidError"),
            "signals.gpu_xid.reasn: Extra inputs are not permitted",
        ),
        (
            ("kind: event", "kind: alert"),
            "signals.gpu_xid.kind: Input should be 'event' or 'usage'",
        ),
        (("version: 1", "version: 2"), "version: Input should be 1"),
        (("name: gpu_xid", "name: Gpu-Xid"), "signals.Gpu-Xid.name: String should match pattern"),
        (
            ('    message: "Xid {value} on {node}"\n', ""),
            "an event signal needs reason and message",
        ),
    ],
)
def test_mistakes_are_refused_with_the_field(change: tuple[str, str], message: str) -> None:
    text = GOOD.replace(*change)
    with pytest.raises(InputError) as caught:
        parse_catalog(text, "mine.yaml")
    assert str(caught.value).startswith("mine.yaml: ") and message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_usage_signals_need_a_metric_and_no_event_fields() -> None:
    usage = "version: 1\nnode_labels: [Hostname]\nsignals:\n  - {name: u, kind: usage, query: x}\n"
    with pytest.raises(InputError, match="a usage signal needs metric"):
        parse_catalog(usage)
    both = usage.replace("query: x", "query: x, metric: m, reason: R")
    with pytest.raises(InputError, match="reason, message and category are for event signals"):
        parse_catalog(both)


def test_duplicates_yaml_errors_and_missing_files() -> None:
    twice = GOOD + GOOD.split("signals:\n")[1]
    with pytest.raises(InputError, match="'gpu_xid' is defined twice"):
        parse_catalog(twice)
    with pytest.raises(InputError, match="not YAML"):
        parse_catalog("signals: [unclosed")
    with pytest.raises(InputError, match="cannot read catalog"):
        load_catalog(Path("/nonexistent/catalog.yaml"))


def test_a_label_named_in_labels_may_be_used_in_the_message() -> None:
    text = GOOD.replace('"Xid {value} on {node}"', '"{mountpoint} on {node}"')
    with pytest.raises(InputError, match="mountpoint"):
        parse_catalog(text)
    catalog = parse_catalog(text.replace("    reason:", "    labels: [mountpoint]\n    reason:"))
    assert catalog.signals[0].labels == ("mountpoint",)
