"""Check bench/tickets/labeled.jsonl against its store and the taxonomy, and print its counts.

    .venv/bin/python bench/tickets/validate.py /tmp/tickets_eval.duckdb [bench/tickets/labeled.jsonl] [--markdown]

Exit 1 with one line per problem when anything is off.
"""

from __future__ import annotations

import json
import re
import sys
from collections import Counter
from pathlib import Path

import duckdb
import yaml

ROOT = Path(__file__).resolve().parents[2]
ROUTES = {"user-support", "ml-infra", "hw-ops", "unknown"}
OWNER_ROUTE = {"user": "user-support", "platform": "ml-infra", "hardware": "hw-ops"}
KEYS = ["ticket_id", "user", "created_at", "title", "text", "truth"]
TRUTH_KEYS = ["job_ids", "nodes", "category", "owner", "route", "duplicate_of", "incident"]


def main() -> int:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    store = args[0] if args else "/tmp/tickets_eval.duckdb"
    path = Path(args[1]) if len(args) > 1 else Path(__file__).with_name("labeled.jsonl")
    taxonomy = yaml.safe_load((ROOT / "src/fleetmedic/model/taxonomy.yaml").read_text())
    c = duckdb.connect(store, read_only=True)
    jobs = {r[0]: r[1] for r in c.execute("select job_id, user from jobs").fetchall()}
    nodes = {r[0] for r in c.execute("select node_id from nodes").fetchall()}
    diag = {(j, a): cat for j, a, cat in c.execute("select job_id, attempt, category from diagnoses").fetchall()}
    att_nodes: dict[tuple[str, int], set[str]] = {}
    for j, a, n in c.execute("select job_id, attempt, node_id from attempt_nodes").fetchall():
        att_nodes.setdefault((j, a), set()).add(n)

    problems: list[str] = []
    fp_path = path.with_name("store_fingerprint.json")
    if fp_path.exists():
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from make_labeled import fingerprint

        want, got = json.loads(fp_path.read_text()), fingerprint(store)
        if want["sha256"] != got["sha256"]:
            problems.append(f"the store is not the one the set was written about (fingerprint {got['sha256'][:12]} != "
                            f"{want['sha256'][:12]}, counts {got['counts']} vs {want['counts']}): the simulator changed; "
                            "regenerate with make_labeled.py or use the simulator version named in README.md")
    rows = []
    raw = path.read_bytes().decode("utf-8")
    lines = raw.split("\n")
    if lines[-1] == "":
        lines.pop()
    if len(raw.splitlines()) != len(lines):
        problems.append("a line contains a character str.splitlines() breaks on")
    for i, line in enumerate(lines, 1):
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as e:
            problems.append(f"line {i}: not JSON ({e})")
    seen: dict[str, int] = {}
    for k, r in enumerate(rows):
        tid = r.get("ticket_id", f"line{k + 1}")
        for key in KEYS:
            if key not in r:
                problems.append(f"{tid}: missing {key}")
        t = r.get("truth", {})
        for key in TRUTH_KEYS:
            if key not in t:
                problems.append(f"{tid}: truth missing {key}")
        if not re.fullmatch(r"T-\d{4}", tid) or tid in seen:
            problems.append(f"{tid}: bad or repeated ticket_id")
        seen[tid] = k
        if not re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", r.get("created_at", "")):
            problems.append(f"{tid}: created_at not ISO-8601 UTC")
        for j in t.get("job_ids", []):
            if j not in jobs:
                problems.append(f"{tid}: job {j} not in the store")
        for n in t.get("nodes", []) + t.get("culprit_nodes", []):
            if n not in nodes:
                problems.append(f"{tid}: node {n} not in the store")
        cat, owner, route = t.get("category"), t.get("owner"), t.get("route")
        if cat is not None and cat not in taxonomy:
            problems.append(f"{tid}: category {cat} is not a taxonomy id")
        if route not in ROUTES:
            problems.append(f"{tid}: route {route}")
        if owner not in (None, "user", "platform", "hardware"):
            problems.append(f"{tid}: owner {owner}")
        if cat is not None:
            want = taxonomy[cat]["owner"]
            if owner != want and not (cat == "image_pull" and owner == "user"):
                problems.append(f"{tid}: owner {owner} but taxonomy says {want} for {cat}")
        if owner in OWNER_ROUTE and route != OWNER_ROUTE[owner]:
            problems.append(f"{tid}: route {route} for owner {owner}")
        if cat is None and owner is not None:
            problems.append(f"{tid}: owner without category")
        for j, a in (t.get("attempts") or {}).items():
            if j not in t.get("job_ids", []):
                problems.append(f"{tid}: attempt for a job not in job_ids")
            stored = diag.get((j, a))
            tags = t.get("tags", [])
            if stored is not None and cat is not None and stored != cat and "misleading_symptom" not in tags:
                problems.append(f"{tid}: category {cat} but the stored diagnosis of {j}#{a} is {stored}")
            if stored is None and cat is not None and "no_stored_diagnosis" not in tags:
                problems.append(f"{tid}: {j}#{a} has no stored diagnosis")
        want_nodes = set()
        for j, a in (t.get("attempts") or {}).items():
            want_nodes |= att_nodes.get((j, a), set())
        if set(t.get("nodes", [])) != want_nodes and t.get("job_ids"):
            problems.append(f"{tid}: nodes {t.get('nodes')} != nodes of the focus attempts {sorted(want_nodes)}")
        d = t.get("duplicate_of")
        if d is not None and (d not in seen or seen[d] >= k):
            problems.append(f"{tid}: duplicate_of {d} is not an earlier ticket")
        if "ref_wrong_id_typo" in t.get("tags", []) and any(j in r["text"] for j in t["job_ids"]):
            pass  # the right id may appear elsewhere, e.g. in a pasted pod name; allowed
    incidents = Counter(r["truth"]["incident"] for r in rows if r["truth"]["incident"])
    for inc, n in incidents.items():
        if n < 2:
            problems.append(f"incident {inc} has one ticket")
    for p in problems:
        print(p)
    stats(rows, "--markdown" in sys.argv)
    return 1 if problems else 0


def stats(rows: list[dict], markdown: bool) -> None:
    T = [r["truth"] for r in rows]
    out = {
        "tickets": len(rows),
        "category": Counter(str(t["category"]) for t in T).most_common(),
        "route": Counter(t["route"] for t in T).most_common(),
        "owner": Counter(str(t["owner"]) for t in T).most_common(),
        "lang": Counter(t.get("lang", "?") for t in T).most_common(),
        "duplicates": sum(1 for t in T if t["duplicate_of"]),
        "incidents": Counter(t["incident"] for t in T if t["incident"]).most_common(),
        "no_job": sum(1 for t in T if not t["job_ids"]),
        "multi_job": sum(1 for t in T if len(t["job_ids"]) > 1),
        "distinct_jobs": len({j for t in T for j in t["job_ids"]}),
        "tags": Counter(x for t in T for x in t.get("tags", [])).most_common(),
    }
    if not markdown:
        for k, v in out.items():
            print(f"{k}: {v}")
        return
    for k in ("category", "route", "owner", "lang", "incidents", "tags"):
        print(f"\n| {k} | tickets |\n| --- | ---: |")
        for name, n in out[k]:
            print(f"| {name} | {n} |")
    print(f"\ntickets {out['tickets']}, duplicates {out['duplicates']}, no job {out['no_job']}, "
          f"multi-job {out['multi_job']}, distinct jobs {out['distinct_jobs']}")


if __name__ == "__main__":
    sys.exit(main())
