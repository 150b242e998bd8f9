"""`fleetmedic metrics` scraped by a real Prometheus: the series exist with the right values."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from promkit import free_port, get_json, prometheus_server, target_up, wait_for

from fleetmedic.kpi import compute_kpis
from fleetmedic.store import Store

pytestmark = [pytest.mark.services, pytest.mark.slow]


def _query(url: str, promql: str) -> dict[str, float]:
    """The instant vector of ``promql`` keyed by its labels (job and instance left out)."""
    from urllib.parse import quote

    found = get_json(f"{url}/api/v1/query?query={quote(promql)}")
    assert found["status"] == "success", found
    out: dict[str, float] = {}
    for row in found["data"]["result"]:
        labels = {
            k: v for k, v in row["metric"].items() if k not in ("job", "instance", "__name__")
        }
        key = ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
        out[key] = float(row["value"][1])
    return out


def test_prometheus_scrapes_the_kpis_and_the_controller(
    tmp_path: Path, fleet_db: Path, control_db: Path
) -> None:
    port = free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "fleetmedic",
            "metrics",
            "--db",
            str(fleet_db),
            "--control",
            str(control_db),
            "--port",
            str(port),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        with prometheus_server(tmp_path, [f"127.0.0.1:{port}"]) as url:
            wait_for(lambda: target_up(url, 1), 60, "fleetmedic metrics to be scraped")
            found: dict[str, Any] = wait_for(
                lambda: _query(url, "fleetmedic_goodput_ratio"), 30, "the goodput series"
            )
            jobs = _query(url, "fleetmedic_jobs")
            actions = _query(url, "fleetmedic_actions")
            switches = _query(url, "fleetmedic_heal_switch_engaged")
            lost = _query(url, "sum(fleetmedic_gpu_hours_lost)")
    finally:
        server.terminate()
        _, err = server.communicate(timeout=10)
    assert server.returncode == 0, err.decode()
    with Store(fleet_db, read_only=True) as store:
        kpis = compute_kpis(store)
    assert found[""] == pytest.approx(kpis["goodput"])
    assert jobs["status=succeeded"] == kpis["jobs"]["count_by_status"]["succeeded"]
    assert actions["kind=cordon_and_drain,state=proposed"] == 2
    assert switches == {"switch=breaker": 0.0, "switch=kill_switch": 1.0}
    expected = sum(e["gpu_hours_lost"] for e in kpis["failures"]["by_category"].values())
    assert lost[""] == pytest.approx(expected)
