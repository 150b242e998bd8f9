"""End-to-end fixture cases: each folder under ``cases/<category>/<name>/`` holds what one failed job
left behind (rank logs, pod/job/event objects, dmesg, ...) and an ``expected.yaml`` with the root cause.

The cases were written independently of the engine's signatures; a failing case means the engine is
wrong about it, not that the case should be changed.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from fleetmedic.cli import app

CASES_DIR = Path(__file__).parent / "cases"
CASES = sorted(p.parent for p in CASES_DIR.glob("*/*/expected.yaml"))


def _load_expected(case: Path) -> dict:
    return yaml.safe_load((case / "expected.yaml").read_text("utf-8"))


def _diagnose(case: Path) -> dict:
    inputs = [str(p) for p in sorted(case.iterdir()) if p.name != "expected.yaml"]
    result = CliRunner().invoke(app, ["diagnose", *inputs, "--format", "json"])
    assert result.exit_code == 0, f"exit {result.exit_code}: {result.output}"
    return json.loads(result.stdout)


def test_every_category_has_cases() -> None:
    by_cat: dict[str, int] = {}
    for case in CASES:
        cat = _load_expected(case)["category"]
        assert case.parent.name == cat, f"{case} lives under the wrong category folder"
        by_cat[cat] = by_cat.get(cat, 0) + 1
    assert len(by_cat) == 22
    assert all(n >= 3 for n in by_cat.values()), by_cat


@pytest.mark.parametrize("case", CASES, ids=[f"{c.parent.name}/{c.name}" for c in CASES])
def test_case(case: Path) -> None:
    expected = _load_expected(case)
    got = _diagnose(case)
    context = f"signature={got.get('signature')} summary={got.get('summary')!r}"
    assert got["category"] == expected["category"], context
    if expected.get("owner"):
        assert got["owner"] == expected["owner"], context
    wanted_secondary = set(expected.get("secondary_includes") or [])
    if wanted_secondary:
        have = {s.get("category") for s in got.get("secondary") or []}
        missing = wanted_secondary - have
        assert not missing, (
            f"secondary lacks {sorted(missing)}; has {sorted(h for h in have if h)}; {context}"
        )
