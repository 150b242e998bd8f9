"""Calibration: every rate is cited and consistent, and short runs land within stated tolerances.

The tolerances are the ones docs/simulator.md states; they are wide where a short run has few
events (Poisson noise), narrow where it has many.
"""

from __future__ import annotations

import pytest
from sim_runs import simulate

from fleetmedic.model.taxonomy import CATEGORIES
from fleetmedic.sim import SimConfig, SimResult, load_calibration, load_params
from fleetmedic.sim.metrics import calibration

TOLERANCE = {
    "hardware_rate": 0.15,  # relative, 1,500 nodes x 60 days (~585 failures)
    "mttf_1024": 0.35,  # relative, one 1,024-GPU run for 60 days (~180 failures)
    "job_share": 0.07,  # absolute, 256 GPUs x 3 days (~3,000 jobs)
}


def test_every_rate_has_a_source_or_says_it_is_assumed() -> None:
    calib = load_calibration()
    rates = calib.rates()
    assert len(rates) > 40
    for path, rate in rates:
        assert rate.kind == "assumed" or rate.source in calib.references, path
        assert rate.kind != "assumed" or rate.note or path.startswith("user.share"), path


def test_injected_categories_are_taxonomy_ids() -> None:
    calib = load_calibration()
    for name in [*calib.hardware.kind_share, *calib.infra.share, *calib.user.share]:
        assert name in CATEGORIES


def test_params_come_from_the_fit_script() -> None:
    params = load_params()
    assert set(params.profiles) == {"kalos", "seren", "philly", "helios"}
    assert len(params.arrivals.hourly) == 24 and len(params.arrivals.weekday) == 7
    assert sum(params.arrivals.hourly) / 24 == pytest.approx(1.0, abs=0.02)
    for profile in params.profiles.values():
        assert sum(profile.outcomes.job_share.values()) == pytest.approx(1.0, abs=0.01)


def test_hardware_failure_rate_matches_meta_rsc1() -> None:
    config = SimConfig(gpus=12_000, days=60, seed=3, workload=False, pretrain={"share": 0.0})
    result = simulate(config)
    got = 1000 * len(result.hardware) / (config.nodes * config.days)
    assert got == pytest.approx(6.50, rel=TOLERANCE["hardware_rate"])


def test_job_mttf_at_1024_gpus_matches_meta() -> None:
    config = SimConfig(gpus=4096, days=60, seed=4, workload=False, heal="auto")
    result = simulate(config)
    mttf = calibration(result, load_calibration(), load_params())["job_mttf"]["gpus_1024"]
    assert mttf["failures"] > 100
    assert mttf["simulated_hours"] == pytest.approx(7.9, rel=TOLERANCE["mttf_1024"])


def test_job_status_shares_match_the_trace(small: SimResult) -> None:
    shares = calibration(small, load_calibration(), load_params())["job_status_share"]
    for status, row in shares.items():
        assert row["simulated"] == pytest.approx(row["published"], abs=TOLERANCE["job_share"]), (
            status
        )


def test_every_rate_and_scenario_field_is_documented() -> None:
    from pathlib import Path

    doc = (Path(__file__).parents[2] / "docs" / "simulator.md").read_text("utf-8")
    missing = [path for path, _ in load_calibration().rates() if f"`{path}`" not in doc]
    assert not missing, f"rates not in docs/simulator.md: {missing}"
    for name, field in SimConfig.model_fields.items():
        nested = getattr(field.annotation, "model_fields", None)
        names = [f"{name}.{sub}" for sub in nested] if nested else [name]
        for entry in names:
            assert f"`{entry}`" in doc, f"scenario field {entry} not in docs/simulator.md"
