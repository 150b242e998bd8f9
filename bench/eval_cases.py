"""Accuracy of ``fleetmedic diagnose`` on the end-to-end fixture cases.

Usage: python bench/eval_cases.py [CASES_DIR]

Runs the real CLI (``diagnose DIR --format json``) on every ``<category>/<case>/`` folder that holds an
``expected.yaml``, then prints per-category accuracy, overall accuracy, owner and secondary checks,
and the list of misses (expected -> got, signature, summary).
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path

import yaml
from typer.testing import CliRunner

from fleetmedic.cli import app

DEFAULT = Path(__file__).resolve().parents[1] / "tests" / "diagnose" / "cases"


def main() -> int:
    root = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT
    cases = sorted(p.parent for p in root.glob("*/*/expected.yaml"))
    if not cases:
        print(f"no cases under {root}", file=sys.stderr)
        return 2
    runner = CliRunner()
    per_cat: dict[str, list[bool]] = defaultdict(list)
    misses, owner_misses, secondary_misses = [], [], []
    for case in cases:
        exp = yaml.safe_load((case / "expected.yaml").read_text("utf-8"))
        inputs = [str(p) for p in sorted(case.iterdir()) if p.name != "expected.yaml"]
        res = runner.invoke(app, ["diagnose", *inputs, "--format", "json"])
        name = f"{case.parent.name}/{case.name}"
        if res.exit_code != 0:
            per_cat[exp["category"]].append(False)
            misses.append((name, exp["category"], f"<exit {res.exit_code}>", "", res.output.strip()[:160]))
            continue
        got = json.loads(res.stdout)
        ok = got["category"] == exp["category"]
        per_cat[exp["category"]].append(ok)
        if not ok:
            misses.append((name, exp["category"], got["category"], got.get("signature") or "", got.get("summary") or ""))
        if exp.get("owner") and got.get("owner") != exp["owner"]:
            owner_misses.append((name, exp["owner"], got.get("owner")))
        want = set(exp.get("secondary_includes") or [])
        have = {s.get("category") for s in got.get("secondary") or []}
        if want - have:
            secondary_misses.append((name, sorted(want - have), sorted(h for h in have if h)))
    total = sum(len(v) for v in per_cat.values())
    right = sum(sum(v) for v in per_cat.values())
    print(f"{root}: {total} cases")
    print(f"{'category':24s} {'acc':>6s}  right/total")
    for cat in sorted(per_cat):
        v = per_cat[cat]
        print(f"{cat:24s} {sum(v) / len(v):6.0%}  {sum(v)}/{len(v)}")
    print(f"\noverall top-1 category accuracy: {right / total:.1%} ({right}/{total})")
    if misses:
        print(f"\nmisses ({len(misses)}): case: expected -> got [signature] summary")
        for name, want, got, sig, summary in misses:
            print(f"  {name}: {want} -> {got} [{sig}] {summary[:140]}")
    if owner_misses:
        print(f"\nowner misses ({len(owner_misses)}):")
        for name, want, got in owner_misses:
            print(f"  {name}: {want} -> {got}")
    if secondary_misses:
        print(f"\nsecondary misses ({len(secondary_misses)}): case: missing (has)")
        for name, missing, have in secondary_misses:
            print(f"  {name}: {missing} (has {have})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
