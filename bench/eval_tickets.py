"""Ticket triage against the held-out labeled set (bench/tickets/, written without this code).

Usage:
    python bench/eval_tickets.py [--db /tmp/tickets_eval.duckdb] [--reuse] [--json OUT]

Builds the store with ``bash bench/tickets/build_store.sh DB`` (``--reuse`` keeps an existing
one), then triages every ticket of ``labeled.jsonl`` in order, as a new ticket given only
``ticket_id``, ``user``, ``created_at``, ``title`` and ``text``, and saves it, so earlier tickets
are the past that similarity, duplicates and incidents see. Prints:

- job linking precision / recall over (ticket, job) pairs;
- category accuracy (a ``null`` truth counts as right when triage says ``unknown``);
- routing accuracy: triage's owner mapped to the set's routes (user → user-support,
  platform → ml-infra, hardware → hw-ops, none → unknown; bench/tickets/README.md "Route");
- duplicate detection precision / recall (right when the flagged ticket is the truth's original
  or a duplicate of it);
- incident grouping: pairwise precision / recall (two tickets in one predicted incident vs in one
  labelled incident);
- retrieval: for each duplicate, is its original among the top 1 / top 5 similar tickets, for
  BM25 (the store) and, when ``fleetmedic[embeddings]`` is installed, MiniLM sentence embeddings.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections import Counter, defaultdict
from datetime import UTC, datetime
from itertools import combinations
from pathlib import Path
from typing import Any

from fleetmedic.store import Store
from fleetmedic.tickets.models import TicketIn, Triage
from fleetmedic.tickets.save import save_triage
from fleetmedic.tickets.similar import EmbeddingRanker
from fleetmedic.tickets.text import clean
from fleetmedic.tickets.triage import Settings, triage

HERE = Path(__file__).resolve().parent
LABELED = HERE / "tickets" / "labeled.jsonl"
ROUTES = {"user": "user-support", "platform": "ml-infra", "hardware": "hw-ops", "—": "unknown"}


def load() -> list[dict[str, Any]]:
    return [json.loads(line) for line in LABELED.read_text(encoding="utf-8").splitlines() if line]


def ticket_of(row: dict[str, Any]) -> TicketIn:
    """What a tracker would hand over: never the truth."""
    text, _ = clean(row["text"])
    title = clean(row.get("title") or "")[0] or None
    created = datetime.fromisoformat(row["created_at"].replace("Z", "+00:00")).astimezone(UTC)
    return TicketIn(
        ticket_id=row["ticket_id"], text=text, title=title, user=row["user"], created_at=created
    )


def ratio(a: float, b: float) -> float | None:
    return round(a / b, 3) if b else None


def linking(rows: list[dict[str, Any]], results: list[Triage]) -> dict[str, Any]:
    tp = fp = fn = 0
    for row, result in zip(rows, results, strict=True):
        truth = set(row["truth"]["job_ids"])
        found = {link.job_id for link in result.jobs}
        tp += len(truth & found)
        fp += len(found - truth)
        fn += len(truth - found)
    return scores(tp, fp, fn)


def scores(tp: int, fp: int, fn: int) -> dict[str, Any]:
    return {
        "precision": ratio(tp, tp + fp),
        "recall": ratio(tp, tp + fn),
        "tp": tp,
        "fp": fp,
        "fn": fn,
    }


def category(rows: list[dict[str, Any]], results: list[Triage]) -> dict[str, Any]:
    right = 0
    by_lang: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    by_source: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    confusion: Counter[tuple[str, str]] = Counter()
    for row, result in zip(rows, results, strict=True):
        truth = row["truth"]["category"] or "unknown"
        ok = result.verdict.category == truth
        right += ok
        for key, table in ((row["truth"]["lang"], by_lang), (result.verdict.source, by_source)):
            table[key][0] += ok
            table[key][1] += 1
        if not ok:
            confusion[(truth, result.verdict.category)] += 1
    return {
        "accuracy": ratio(right, len(rows)),
        "by_lang": {k: f"{v[0]}/{v[1]}" for k, v in sorted(by_lang.items())},
        "by_verdict_source": {k: f"{v[0]}/{v[1]}" for k, v in sorted(by_source.items())},
        "top_confusions": [f"{t} -> {p}: {n}" for (t, p), n in confusion.most_common(8)],
    }


def routing(rows: list[dict[str, Any]], results: list[Triage]) -> dict[str, Any]:
    right = sum(
        ROUTES.get(result.route.owner, "unknown") == row["truth"]["route"]
        for row, result in zip(rows, results, strict=True)
    )
    return {"accuracy": ratio(right, len(rows))}


def duplicates(rows: list[dict[str, Any]], results: list[Triage]) -> dict[str, Any]:
    truth = {row["ticket_id"]: row["truth"]["duplicate_of"] for row in rows}

    def root(ticket: str) -> str:
        seen = set()
        while truth.get(ticket) and ticket not in seen:
            seen.add(ticket)
            ticket = truth[ticket]  # type: ignore[assignment]
        return ticket

    tp = fp = fn = 0
    for row, result in zip(rows, results, strict=True):
        expected, found = row["truth"]["duplicate_of"], result.duplicate_of
        if found and expected and root(found) == root(expected):
            tp += 1
        else:
            fp += bool(found)
            fn += bool(expected)
    return scores(tp, fp, fn)


def incidents(rows: list[dict[str, Any]], results: list[Triage]) -> dict[str, Any]:
    labels = [
        (row["truth"]["incident"], r.incident.incident_id if r.incident else None)
        for row, r in zip(rows, results, strict=True)
    ]
    tp = fp = fn = 0
    for (t1, p1), (t2, p2) in combinations(labels, 2):
        same_truth = t1 is not None and t1 == t2
        same_pred = p1 is not None and p1 == p2
        tp += same_truth and same_pred
        fp += same_pred and not same_truth
        fn += same_truth and not same_pred
    in_incident = sum(1 for t, p in labels if t and p)
    return {
        "pairwise_precision": ratio(tp, tp + fp),
        "pairwise_recall": ratio(tp, tp + fn),
        "labelled_tickets_given_an_incident": f"{in_incident}/{sum(1 for t, _ in labels if t)}",
        "predicted_incidents": len({p for _, p in labels if p}),
    }


def recall_at(hits: list[list[str]], rows: list[dict[str, Any]], k: int) -> float | None:
    wanted = [(row["truth"]["duplicate_of"], found) for row, found in zip(rows, hits, strict=True)]
    wanted = [(w, f) for w, f in wanted if w]
    return ratio(sum(w in f[:k] for w, f in wanted), len(wanted))


def run(db: Path, reuse: bool) -> dict[str, Any]:
    if not (reuse and db.is_file()):
        subprocess.run(["bash", str(HERE / "tickets" / "build_store.sh"), str(db)], check=True)
    rows = load()
    settings = Settings(similar_k=5)
    embed = EmbeddingRanker() if EmbeddingRanker.available() else None
    results: list[Triage] = []
    lexical: list[list[str]] = []
    dense: list[list[str]] = []
    times = []
    with Store(db) as store:
        store.con.execute("DELETE FROM tickets; DELETE FROM ticket_terms;")
        for row in rows:
            ticket = ticket_of(row)
            started = time.perf_counter()
            result = triage(store.con, ticket, settings)
            times.append(time.perf_counter() - started)
            save_triage(store.con, result, datetime.now(UTC))
            results.append(result)
            lexical.append([s.ticket_id for s in result.similar])
            if embed is not None:
                text = f"{ticket.title}\n{ticket.text}" if ticket.title else ticket.text
                dense.append([t for t, _ in embed.search(text, 5)])
                embed.add(ticket.ticket_id, text)
    times.sort()
    report: dict[str, Any] = {
        "tickets": len(rows),
        "job_linking": linking(rows, results),
        "category": category(rows, results),
        "routing": routing(rows, results),
        "duplicates": duplicates(rows, results),
        "incidents": incidents(rows, results),
        "retrieval": {
            "bm25": {
                "recall@1": recall_at(lexical, rows, 1),
                "recall@5": recall_at(lexical, rows, 5),
            },
            "embeddings": (
                {"recall@1": recall_at(dense, rows, 1), "recall@5": recall_at(dense, rows, 5)}
                if embed is not None
                else "not installed (pip install 'fleetmedic[embeddings]')"
            ),
        },
        "auto_answered": sum(r.auto_answered for r in results),
        "triage_ms": {
            "p50": round(times[len(times) // 2] * 1000, 1),
            "p95": round(times[int(len(times) * 0.95)] * 1000, 1),
        },
    }
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, default=Path("/tmp/tickets_eval.duckdb"))
    parser.add_argument("--reuse", action="store_true", help="Keep an existing store.")
    parser.add_argument("--json", type=Path, help="Also write the report here.")
    args = parser.parse_args()
    report = run(args.db, args.reuse)
    text = json.dumps(report, indent=2, ensure_ascii=False)
    sys.stdout.write(text + "\n")
    if args.json:
        args.json.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
