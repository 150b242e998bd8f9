"""Every signature family decides at least one end-to-end case (STYLE: one family, one fixture set)."""

from __future__ import annotations

from pathlib import Path

from fleetmedic.diagnose.catalog import load_catalog
from fleetmedic.diagnose.engine import diagnose
from fleetmedic.sources.bundle import read_inputs

CASES = Path(__file__).parent / "cases"


def test_each_family_decides_a_case() -> None:
    deciding: set[str] = set()
    for expected in CASES.glob("*/*/expected.yaml"):
        inputs = [str(p) for p in sorted(expected.parent.iterdir()) if p.name != "expected.yaml"]
        result = diagnose(read_inputs(inputs), name=expected.parent.name)
        if result.signature:
            deciding.add(result.signature.split(".")[0])
    families = {f.family for f in load_catalog().families} - {"progress"}
    prefixes = {s.id.split(".")[0]: f.family for f in load_catalog().families for s in f.signatures}
    decided = {prefixes.get(p, p) for p in deciding}
    assert families <= decided, f"families without a deciding case: {sorted(families - decided)}"
