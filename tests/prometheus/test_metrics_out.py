"""The metrics collector: the values are the KPIs', every family is declared, failures degrade."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from typer.testing import CliRunner

from fleetmedic.cli import app
from fleetmedic.kpi import compute_kpis, metrics_out
from fleetmedic.kpi.metrics_out import METRIC_NAMES, FleetCollector
from fleetmedic.store import Store


def scrape(collector: FleetCollector) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """name -> {sorted labels: value}, as Prometheus would read the exposition."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    text = generate_latest(registry).decode()
    out: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return out


def one(
    found: dict[str, dict[tuple[tuple[str, str], ...], float]], name: str, **labels: str
) -> float:
    return found[name][tuple(sorted(labels.items()))]


def test_values_are_the_kpis_and_the_control_store(fleet_db: Path, control_db: Path) -> None:
    found = scrape(FleetCollector(fleet_db, control_db))
    with Store(fleet_db, read_only=True) as store:
        kpis = compute_kpis(store)
    assert one(found, "fleetmedic_goodput_ratio") == pytest.approx(kpis["goodput"])
    assert one(found, "fleetmedic_ettr_ratio") == pytest.approx(kpis["ettr"])
    assert (
        one(found, "fleetmedic_jobs", status="failed") == kpis["jobs"]["count_by_status"]["failed"]
    )
    lost = {labels: v for labels, v in found["fleetmedic_gpu_hours_lost"].items()}
    expected = {c: e["gpu_hours_lost"] for c, e in kpis["failures"]["by_category"].items()}
    assert {dict(k)["cause"]: v for k, v in lost.items()} == pytest.approx(expected)
    owners = {dict(k)["cause"]: dict(k)["owner"] for k in lost}
    assert owners["nccl_comm"] == "platform" and owners["gpu_oom"] == "user"
    assert one(found, "fleetmedic_actions", kind="cordon_and_drain", state="proposed") == 2
    assert one(found, "fleetmedic_actions", kind="cordon_and_drain", state="done") == 1
    assert one(found, "fleetmedic_actions", kind="retry_from_checkpoint", state="refused") == 1
    assert one(found, "fleetmedic_actions_awaiting_approval") == 2
    assert one(found, "fleetmedic_heal_switch_engaged", switch="kill_switch") == 1
    assert one(found, "fleetmedic_heal_switch_engaged", switch="breaker") == 0
    assert one(found, "fleetmedic_gpu_usage_mean", metric="gpu_util") == pytest.approx(0.65)
    assert one(found, "fleetmedic_gpus_reporting", metric="gpu_util") == 8
    assert one(found, "fleetmedic_signal_events_24h", reason="XidError") == 1
    assert one(found, "fleetmedic_store_up") == 1 and one(found, "fleetmedic_control_up") == 1
    assert one(found, "fleetmedic_queue_wait_hours", quantile="0.9") == pytest.approx(
        kpis["queue_wait_hours"]["p90"]
    )


def test_every_declared_family_is_served(fleet_db: Path, control_db: Path) -> None:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(FleetCollector(fleet_db, control_db))
    families = {f.name for f in text_string_to_metric_families(generate_latest(registry).decode())}
    assert families == set(METRIC_NAMES)


def test_kpis_are_cached_until_the_store_changes(
    fleet_db: Path, control_db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "copy.duckdb"
    shutil.copy(fleet_db, db)
    calls: list[Path] = []
    real = metrics_out.read_store

    def counting(path: Path, *args: Any) -> Any:
        calls.append(path)
        return real(path, *args)

    monkeypatch.setattr(metrics_out, "read_store", counting)
    now = [0.0]
    collector = FleetCollector(db, control_db, kpi_ttl=60, clock=lambda: now[0])
    scrape(collector)
    now[0] = 120
    scrape(collector)
    assert len(calls) == 1, "unchanged store: not read again"
    for n, (at, reads) in enumerate(((130, 2), (140, 2), (200, 3))):
        with Store(db) as store:
            store.con.execute(f"CREATE TABLE touched_{n} AS SELECT 1 AS x")
        now[0] = at
        scrape(collector)
        assert len(calls) == reads, f"changed at {at}: the last read is {at - 130} s old"


def test_missing_or_locked_stores_degrade_to_up_0(tmp_path: Path, fleet_db: Path) -> None:
    collector = FleetCollector(tmp_path / "none.duckdb", tmp_path / "none.sqlite")
    found = scrape(collector)
    assert one(found, "fleetmedic_store_up") == 0 and one(found, "fleetmedic_control_up") == 0
    assert one(found, "fleetmedic_collect_errors_total", store="store") == 1
    assert "fleetmedic_goodput_ratio" not in found
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"not a database at all" * 100)
    found = scrape(FleetCollector(None, junk))
    assert one(found, "fleetmedic_control_up") == 0


def test_a_store_held_by_a_writer_serves_the_last_values(fleet_db: Path, tmp_path: Path) -> None:
    db = tmp_path / "held.duckdb"
    shutil.copy(fleet_db, db)
    now = [0.0]
    collector = FleetCollector(db, None, kpi_ttl=0, kpi_max_age=0, clock=lambda: now[0])
    first = one(scrape(collector), "fleetmedic_goodput_ratio")
    import subprocess
    import sys

    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import duckdb,sys,time; c=duckdb.connect({str(db)!r}); print('held', flush=True); time.sleep(30)",
        ],
        stdout=subprocess.PIPE,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == b"held"
        now[0] = 10
        found = scrape(collector)
    finally:
        holder.kill()
        holder.wait()
    assert one(found, "fleetmedic_goodput_ratio") == first
    assert one(found, "fleetmedic_store_up") == 0
    assert collector.last_error["store"]


def test_metrics_once_prints_the_exposition(fleet_db: Path, control_db: Path) -> None:
    result = CliRunner().invoke(
        app, ["metrics", "--db", str(fleet_db), "--control", str(control_db), "--once"]
    )
    assert result.exit_code == 0, result.output
    assert "fleetmedic_goodput_ratio " in result.stdout
    assert 'fleetmedic_heal_switch_engaged{switch="kill_switch"} 1.0' in result.stdout
