"""The Prometheus source against a real Prometheus scraping a DCGM-format exporter.

An Xid and an ECC double-bit error appear mid-test on one GPU; the source must turn each into one
event (not one per poll), a heal event the controller accepts, and rows in the store.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from promkit import DcgmExporter, prometheus_server, target_up, wait_for

from fleetmedic.heal.events import Incoming, parse_event
from fleetmedic.sources.prometheus import PollResult, PrometheusSource, save
from fleetmedic.sources.prometheus_api import PrometheusAPI, PrometheusError
from fleetmedic.sources.prometheus_catalog import load_catalog
from fleetmedic.store import Store

pytestmark = [pytest.mark.services, pytest.mark.slow]


@pytest.fixture
def exporter() -> Iterator[DcgmExporter]:
    exp = DcgmExporter({"gpu-node-a": 2, "gpu-node-b": 2})
    try:
        yield exp
    finally:
        exp.close()


@pytest.fixture
def prom(tmp_path: Path, exporter: DcgmExporter) -> Iterator[str]:
    with prometheus_server(tmp_path, [f"127.0.0.1:{exporter.port}"]) as url:
        wait_for(lambda: target_up(url, 1), 30, "the exporter to be scraped")
        yield url


def _events_until(source: PrometheusSource, reason: str) -> PollResult:
    """Poll until an event with ``reason`` shows up (scrapes are every second)."""
    seen = PollResult()

    def check() -> PollResult | None:
        result = source.poll()
        seen.extend(result)
        return seen if any(e.reason == reason for e in seen.events) else None

    return wait_for(check, 30, f"a {reason} event")


def test_xid_and_ecc_appear_mid_run_as_one_event_each(
    prom: str, exporter: DcgmExporter, tmp_path: Path
) -> None:
    with PrometheusAPI(prom, timeout=5) as api:
        source = PrometheusSource(api, load_catalog())
        wait_for(lambda: source.poll().usage, 30, "utilization samples")
        quiet = source.poll()
        assert quiet.events == [] and quiet.errors == []

        exporter.set("gpu-node-a", 1, "DCGM_FI_DEV_XID_ERRORS", 79)
        found = _events_until(source, "XidError")
        xid = [e for e in found.events if e.reason == "XidError"]
        assert len(xid) == 1
        assert xid[0].source == "prometheus" and xid[0].kind == "gpu"
        assert xid[0].object == "node/gpu-node-a/gpu/1"
        assert "Xid 79 (GPU has fallen off the bus)" in xid[0].message
        assert xid[0].raw is not None and xid[0].raw["labels"]["DCGM_FI_DRIVER_VERSION"]
        heal = parse_event(json.dumps(found.heal[0]))
        assert isinstance(heal, Incoming)
        assert heal.event.node_id == "gpu-node-a"
        assert heal.event.diagnosis.category == "gpu_hardware"
        assert heal.event.diagnosis.signature == "prometheus.gpu_xid.79"

        exporter.add("gpu-node-b", 0, "DCGM_FI_DEV_ECC_DBE_VOL_TOTAL", 2)
        ecc = _events_until(source, "EccDoubleBit")
        assert [e.object for e in ecc.events if e.reason == "EccDoubleBit"] == [
            "node/gpu-node-b/gpu/0"
        ]
        later = [source.poll() for _ in range(3)]
        assert not any(e.reason == "XidError" for r in later for e in r.events)

        with Store(tmp_path / "fleet.duckdb") as store:
            found.extend(ecc)
            save(store, found)
            rows = store.con.execute(
                "SELECT reason, object FROM events WHERE source = 'prometheus' ORDER BY reason"
            ).fetchall()
            usage = store.con.execute(
                "SELECT metric, count(DISTINCT node_id || gpu), max(value) FROM gpu_usage "
                "GROUP BY metric ORDER BY metric"
            ).fetchall()
    assert rows == [
        ("EccDoubleBit", "node/gpu-node-b/gpu/0"),
        ("XidError", "node/gpu-node-a/gpu/1"),
    ]
    by_metric = {m: (gpus, top) for m, gpus, top in usage}
    assert by_metric["gpu_util"] == (4, pytest.approx(0.97))
    assert by_metric["power_watts"] == (4, pytest.approx(612.5))
    assert by_metric["sm_active"][0] == 4


def test_nan_samples_are_skipped_and_counted(prom: str, exporter: DcgmExporter) -> None:
    exporter.set("gpu-node-a", 0, "DCGM_FI_DEV_GPU_UTIL", float("nan"))
    with PrometheusAPI(prom, timeout=5) as api:
        source = PrometheusSource(api, load_catalog())
        result = wait_for(
            lambda: (r := source.poll()).counts.get("gpu_util.skipped") and r, 30, "a NaN sample"
        )
    gpus = {(u.node_id, u.gpu) for u in result.usage if u.metric == "gpu_util"}
    assert ("gpu-node-a", "0") not in gpus and len(gpus) == 3


def test_backfill_finds_the_onset_in_a_range(prom: str, exporter: DcgmExporter) -> None:
    from datetime import UTC, datetime, timedelta

    with PrometheusAPI(prom, timeout=5) as api:
        source = PrometheusSource(api, load_catalog())
        wait_for(lambda: source.poll().usage, 30, "utilization samples")
        exporter.set("gpu-node-b", 1, "DCGM_FI_DEV_XID_ERRORS", 48)
        wait_for(lambda: PrometheusSource(api, load_catalog()).poll().events, 30, "the Xid")
        now = datetime.now(UTC)
        result = PrometheusSource(api, load_catalog()).backfill(
            now - timedelta(minutes=2), now, 1.0
        )
    xid = [e for e in result.events if e.reason == "XidError"]
    assert len(xid) == 1 and "Xid 48 (double-bit ECC error)" in xid[0].message
    assert result.usage and not result.errors


def test_a_bad_query_is_one_error_line_and_the_rest_still_run(prom: str) -> None:
    with PrometheusAPI(prom, timeout=5) as api:
        with pytest.raises(PrometheusError, match=r"HTTP 400 bad_data: .*parse error"):
            api.query("sum(rate(DCGM_FI_DEV_GPU_UTIL[5m]")
        assert api.query("vector(1)").series[0].points[0][1] == 1.0


def test_the_poll_command_writes_the_store_and_heal_events(
    prom: str, exporter: DcgmExporter, tmp_path: Path
) -> None:
    import subprocess
    import sys

    exporter.set("gpu-node-b", 1, "DCGM_FI_DEV_XID_ERRORS", 94)
    db, heal = tmp_path / "fleet.duckdb", tmp_path / "heal.jsonl"

    def poll() -> dict[str, object] | None:
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "fleetmedic",
                "prometheus",
                "poll",
                "--url",
                prom,
                "--db",
                str(db),
                "--once",
                "--format",
                "json",
                "--heal-out",
                str(heal),
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        summary: dict[str, object] = json.loads(done.stdout)
        return summary if summary["events"] else None

    summary = wait_for(poll, 30, "the poll command to see the Xid")
    assert summary["errors"] == [] and summary["usage_rows"]
    envelope = json.loads(heal.read_text().splitlines()[0])
    assert envelope["diagnosis"]["signature"] == "prometheus.gpu_xid.94"
    with Store(db, read_only=True) as store:
        row = store.con.execute(
            "SELECT count(*) FROM events WHERE source = 'prometheus'"
        ).fetchone()
    assert row == (1,)


def test_the_poll_command_on_a_dead_server_is_one_line_per_signal_and_exit_1(
    tmp_path: Path,
) -> None:
    import subprocess
    import sys

    from promkit import free_port

    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "fleetmedic",
            "prometheus",
            "poll",
            "--url",
            f"http://127.0.0.1:{free_port()}",
            "--no-store",
            "--once",
            "--timeout",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 1
    assert lines and all(line.startswith("fleetmedic: error: ") for line in lines)
    assert "Traceback" not in done.stderr
