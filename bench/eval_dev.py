"""Accuracy of ``fleetmedic diagnose`` on labelled real log excerpts.

Usage: python bench/eval_dev.py [PATH.jsonl] [--engine auto|hyperscan|regex] [--show-misses]

Each line of the JSONL file has ``id``, ``category`` (the root-cause label) and ``log`` (the excerpt).
Prints top-1 category accuracy, owner accuracy, a confusion table of the misses, and a reliability
table (accuracy per confidence band) that shows whether confidence means what it says.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
from collections import Counter
from pathlib import Path

from fleetmedic.diagnose.engine import diagnose
from fleetmedic.model.inputs import Document

DEFAULT = Path(__file__).resolve().parents[2] / "shared" / "eval" / "dev.jsonl"
BANDS = ((0.0, 0.3), (0.3, 0.5), (0.5, 0.7), (0.7, 0.85), (0.85, 1.01))


def load(path: Path) -> list[dict[str, str]]:
    return [json.loads(line) for line in path.read_text("utf-8").splitlines() if line.strip()]


def run(rows: list[dict[str, str]], engine: str) -> list[tuple[dict[str, str], object]]:
    results = []
    for row in rows:
        data = row["log"].encode("utf-8")
        doc = Document(name=row["id"], kind="log", opener=lambda d=data: io.BytesIO(d))
        results.append((row, diagnose([doc], name=row["id"], engine=engine)))
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", nargs="?", type=Path, default=DEFAULT)
    parser.add_argument("--engine", default="auto")
    parser.add_argument("--show-misses", action="store_true")
    args = parser.parse_args()
    if not args.path.exists():
        print(f"no labelled set at {args.path}", file=sys.stderr)
        return 2
    results = run(load(args.path), args.engine)
    total = len(results)
    right = [r for r, d in results if d.category == r["category"]]  # type: ignore[attr-defined]
    owners = sum(1 for r, d in results if d.owner == r.get("owner"))  # type: ignore[attr-defined]
    print(f"{args.path.name}: {total} excerpts")
    print(f"top-1 category accuracy: {len(right) / total:.1%} ({len(right)}/{total})")
    print(f"owner accuracy:          {owners / total:.1%}")
    misses = Counter((r["category"], d.category) for r, d in results if d.category != r["category"])  # type: ignore[attr-defined]
    if misses:
        print("\nmisses (expected -> got):")
        for (want, got), n in misses.most_common():
            print(f"  {want:24s} -> {got:24s} {n}")
    print("\nreliability (confidence band: accuracy, count):")
    for low, high in BANDS:
        band = [(r, d) for r, d in results if low <= d.confidence < high]  # type: ignore[attr-defined]
        if band:
            acc = sum(1 for r, d in band if d.category == r["category"]) / len(band)  # type: ignore[attr-defined]
            print(f"  [{low:.2f}, {min(high, 1.0):.2f}): {acc:6.1%}  n={len(band)}")
    if args.show_misses:
        for r, d in results:
            if d.category != r["category"]:  # type: ignore[attr-defined]
                print(
                    f"\n## {r['id']}: want {r['category']}, got {d.category} "  # type: ignore[attr-defined]
                    f"({d.signature}, {d.confidence}): {d.summary[:160]}"
                )  # type: ignore[attr-defined]
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
