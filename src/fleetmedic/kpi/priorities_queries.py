"""The three aggregate queries behind a priorities ranking, each returning one row per cause.

Why so few: compiling an Ibis expression over the run facts costs a noticeable fraction of a
second and, on Spark, every query has a fixed start-up cost, so per-cause numbers, places and
tickets are each computed in one query (a UNION of small aggregates) rather than one per metric.
The three read the failed runs materialized once (:func:`materialized`): deriving them from the
run facts is the expensive part (a window over every attempt, joins with jobs and diagnoses).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import ibis
import ibis.expr.types as ir

from fleetmedic.kpi.priorities_loss import CURRENT, PREVIOUS, attribution
from fleetmedic.kpi.priorities_model import Window

KEY = ["category", "sig"]
Key = tuple[str, str]


def rows(expr: ir.Table) -> list[dict[str, Any]]:
    """Execute and return plain Python rows (no pandas: NULL stays None, ints stay ints)."""
    return list(expr.to_pyarrow().to_pylist())


@contextmanager
def materialized(backend: Any, expr: ir.Table) -> Iterator[ir.Table]:
    """``expr`` computed once into a temporary table, dropped on exit.

    On DuckDB the temporary table is created and dropped here: ibis 12 renders its own
    ``DROP TABLE`` without the table name under sqlglot 30, so ``Table.cache()`` could not be
    released there. Other engines use ``Table.cache()`` (a cached temporary view on Spark), after
    registering the in-memory tables ``expr`` reads (the run facts' windows): ibis 12's Spark
    cache compiles the query without doing so, unlike every other way of executing it.
    """
    if backend.name != "duckdb":
        backend._run_pre_execute_hooks(expr)
        with expr.cache() as cached:
            yield cached
        return
    name = ibis.util.gen_name("fleetmedic_priorities")
    table = backend.create_table(name, expr, temp=True)
    try:
        yield table
    finally:
        backend.raw_sql(f'DROP TABLE IF EXISTS temp.main."{name}"')


@dataclass(frozen=True)
class CauseStats:
    """Per-cause numbers for the ranked window, the previous one's losses, and the fleet total."""

    current: list[dict[str, Any]]
    previous: dict[Key, float]
    total_gpu_hours: float | None
    """None when ``failed`` is empty, so nothing carried the total (see ``window_gpu_hours``)."""


def cause_stats(failed: ir.Table) -> CauseStats:
    """Lost GPU-hours, failures, jobs, users and owner per cause; previous losses; total GPU-hours.

    ``failed`` is :func:`~fleetmedic.kpi.priorities_loss.loss_facts` keyed by ``sig``: the total
    is its ``window_gpu_hours`` (the same on every row; None when there is no row at all).
    The owner is the one carrying most lost hours in the cause (a diagnosis may refine the
    taxonomy's owner, e.g. a missing image tag is the user's).
    """
    now = failed.pkey == CURRENT
    per_cause = failed.group_by(KEY).aggregate(
        lost=ibis.ifelse(now, failed.lost_gpu_hours, 0.0).sum(),
        previous=ibis.ifelse(failed.pkey == PREVIOUS, failed.lost_gpu_hours, 0.0).sum(),
        failures=ibis.ifelse(now, 1, 0).sum(),
        jobs=ibis.ifelse(now, failed.job_id, ibis.null("string")).nunique(),
        users=ibis.ifelse(now, failed.user, ibis.null("string")).nunique(),
        owner=failed.owner.argmax(ibis.ifelse(now, failed.lost_gpu_hours, -1.0)),
    )
    total = failed.aggregate(
        category=ibis.literal("", "string"),
        sig=ibis.literal("", "string"),
        lost=failed.window_gpu_hours.max(),
        previous=ibis.literal(0.0),
        failures=ibis.literal(-1, "int64"),
        jobs=ibis.literal(0, "int64"),
        users=ibis.literal(0, "int64"),
        owner=ibis.literal("", "string"),
    )
    schema = {
        "category": "string",
        "sig": "string",
        "lost": "float64",
        "previous": "float64",
        "failures": "int64",
        "jobs": "int64",
        "users": "int64",
        "owner": "string",
    }
    found = rows(per_cause.cast(schema).union(total.cast(schema)))
    totals = [r["lost"] for r in found if r["failures"] == -1 and r["lost"] is not None]
    causes = [r for r in found if r["failures"] != -1]
    return CauseStats(
        current=[r for r in causes if r["failures"] > 0],
        previous={(r["category"], r["sig"]): float(r["previous"] or 0.0) for r in causes},
        total_gpu_hours=float(totals[0]) if totals else None,
    )


Places = dict[str, dict[Key, tuple[str, float]]]


def top_places(backend: Any, current: ir.Table) -> Places:
    """For each cause, the node, pool and image carrying most of its lost GPU-hours.

    Returns ``{"node"|"pool"|"image": {cause: (name, lost GPU-hours there)}}``.
    """
    located = attribution(backend, current)
    causes = current.select("job_id", "attempt", "category", "sig", "lost_gpu_hours")
    joined = located.join(causes, ["job_id", "attempt"])
    weighted = joined.select(
        "category", "sig", "node_id", "pool", hours=joined.lost_gpu_hours * joined.share
    )
    images = current.select("category", "sig", "image", hours=current.lost_gpu_hours)
    parts = [
        _top(weighted, "node", weighted.node_id),
        _top(weighted, "pool", weighted.pool),
        _top(images, "image", images.image),
    ]
    found: Places = {"node": {}, "pool": {}, "image": {}}
    for row in rows(parts[0].union(*parts[1:])):
        found[row["kind"]][(row["category"], row["sig"])] = (row["place"], float(row["hours"]))
    return found


def _top(table: ir.Table, kind: str, place: ir.Value) -> ir.Table:
    known = table.mutate(place=place.cast("string")).filter(lambda t: t.place.notnull())
    per_place = known.group_by([*KEY, "place"]).aggregate(hours=known.hours.sum())
    order = ibis.row_number().over(
        group_by=[per_place.category, per_place.sig],
        order_by=[ibis.desc(per_place.hours), per_place.place],
    )
    top = per_place.mutate(pos=order).filter(lambda t: t.pos == 0)
    return top.select(
        kind=ibis.literal(kind, "string"),
        category=top.category,
        sig=top.sig,
        place=top.place,
        hours=top.hours.cast("float64"),
    )


def _job_ids(column: ir.Value) -> ir.ArrayValue:
    """The job ids of a ticket's ``job_ids``, a JSON array of strings.

    DuckDB keeps it as JSON; a lake copy (Spark, Parquet) as its text, which is taken apart with
    regular expressions so no JSON function is needed (ids holding a ``"`` are not supported).
    Nothing is applied to the unnested value: Spark refuses a function around an ``explode``.
    """
    if column.type().is_json():
        return column.array.map(lambda item: item.str)
    text = column.cast("string")
    inner = text.re_replace(r"^\s*\[\s*\"?|\"?\s*\]\s*$", "")
    return inner.re_replace(r"\"\s*,\s*\"", "\u001f").split("\u001f")


REPEAT_AFTER_HOURS = 24
"""A ticket filed this long after the first ticket of its cause is a repeat (docs/tickets.md)."""


@dataclass(frozen=True)
class TicketCounts:
    """Tickets naming an affected job (per cause) and tickets naming no job (per category), and
    of each the repeats: filed :data:`REPEAT_AFTER_HOURS` or more after the first of their kind."""

    linked: dict[Key, int]
    unlinked: dict[str, int]
    repeat_linked: dict[Key, int]
    repeat_unlinked: dict[str, int]

    def count(self, key: Key) -> int:
        return self.linked.get(key, 0) + self.unlinked.get(key[0], 0)

    def repeats(self, key: Key) -> int:
        return self.repeat_linked.get(key, 0) + self.repeat_unlinked.get(key[0], 0)


def _repeats(table: ir.Table, keys: list[str]) -> ir.Table:
    """Per ``keys``, the distinct tickets filed a day or more after the first one of that key."""
    rows = table.select(*keys, "ticket_id", "created_at").distinct()
    first = rows.created_at.min().over(ibis.window(group_by=[rows[k] for k in keys]))
    rows = rows.mutate(first_at=first)
    late = rows.filter(rows.created_at >= rows.first_at + ibis.interval(hours=REPEAT_AFTER_HOURS))
    return late.group_by(keys).aggregate(n=late.ticket_id.nunique())


def ticket_counts(backend: Any, current: ir.Table, window: Window) -> TicketCounts | None:
    """Tickets per cause: those naming an affected job, plus unlinked ones of the same category.

    None when the store holds no ticket at all, so "0 tickets" is never claimed without data.
    A linked ticket counts whenever it was filed; an unlinked one only if filed in the window.
    """
    tickets = backend.table("tickets")
    linked = tickets.filter(tickets.job_ids.notnull())
    linked = linked.select("ticket_id", "created_at", job_id=_job_ids(linked.job_ids).unnest())
    linked = linked.filter(linked.job_id.notnull() & (linked.job_id != ""))
    jobs = current.select("job_id", *KEY).distinct()
    matched = jobs.join(linked, "job_id")
    by_cause = matched.group_by(KEY).aggregate(n=matched.ticket_id.nunique())

    filed = tickets.filter(
        (tickets.created_at >= window.since) & (tickets.created_at < window.until)
    )
    loose = filed.anti_join(linked, "ticket_id")
    loose = loose.filter(loose.category.notnull())
    per_category = loose.group_by("category").aggregate(
        sig=ibis.null("string"), n=loose.ticket_id.nunique()
    )
    loose_repeats = _repeats(loose, ["category"]).mutate(sig=ibis.null("string"))
    total = tickets.aggregate(
        category=ibis.null("string"), sig=ibis.null("string"), n=tickets.count()
    )
    schema = {"kind": "string", "category": "string", "sig": "string", "n": "int64"}
    parts = [
        part.mutate(kind=ibis.literal(kind, "string")).select(*schema).cast(schema)
        for kind, part in (
            ("linked", by_cause),
            ("unlinked", per_category),
            ("repeat_linked", _repeats(matched, KEY)),
            ("repeat_unlinked", loose_repeats),
            ("total", total),
        )
    ]
    found = rows(parts[0].union(*parts[1:]))
    if not any(r["kind"] == "total" and r["n"] > 0 for r in found):
        return None

    def keyed(kind: str) -> dict[Key, int]:
        return {(r["category"], r["sig"]): r["n"] for r in found if r["kind"] == kind}

    def by_category(kind: str) -> dict[str, int]:
        return {r["category"]: r["n"] for r in found if r["kind"] == kind}

    return TicketCounts(
        linked=keyed("linked"),
        unlinked=by_category("unlinked"),
        repeat_linked=keyed("repeat_linked"),
        repeat_unlinked=by_category("repeat_unlinked"),
    )
