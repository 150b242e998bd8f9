"""docs/kpis.md documents every field ``fleetmedic kpi --format json`` prints."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from kpi_fleet import QUIET, Fleet

from fleetmedic.kpi import GROUP_BY

DOC = Path(__file__).resolve().parents[2] / "docs" / "kpis.md"

# Objects keyed by data (statuses, categories, owners, size buckets, group values).
_DATA_KEYED = {
    "by_status", "count_by_status", "hours_by_status", "by_category", "by_owner", "by_size",
    "ettr_by_size", "queue_wait_hours_by_size", "groups",
}

pytestmark = QUIET


def _field_names(value: Any, out: set[str]) -> set[str]:
    if isinstance(value, dict):
        for key, child in value.items():
            out.add(key)
            if key not in _DATA_KEYED:
                _field_names(child, out)
    return out


def test_every_json_field_is_documented(fleet: Fleet) -> None:
    fleet.node("n1", 8)
    fleet.job("a", status="failed", gpus=8, start=0, end=2, attempts=2)
    fleet.attempt("a", 1, 0, 1, "failed", ckpt=0.5)
    fleet.attempt("a", 2, 1.5, 2, "failed")
    fleet.diagnosis("a", 1, "gpu_hardware", diagnosed=1.2)
    kpis = fleet.kpis(by="pool")
    text = DOC.read_text("utf-8")
    names = _field_names(kpis, set()) | _field_names(next(iter(kpis["groups"].values())), set())
    missing = sorted(n for n in names if not re.search(rf"\b{re.escape(n)}\b", text))
    assert not missing, f"fields not described in docs/kpis.md: {missing}"


def test_every_grouping_is_documented() -> None:
    text = DOC.read_text("utf-8")
    assert "--by team|user|size|gpu_model|pool|week|cluster" in text
    assert "|".join(GROUP_BY) == "team|user|size|gpu_model|pool|week|cluster"
