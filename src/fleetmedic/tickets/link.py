"""Which stored jobs a ticket is about, and what the store knows of them.

Every lookup is SQL over the store (a point lookup, or a scan that DuckDB runs in parallel), so
the cost does not grow with Python loops over a million jobs. The rules, most certain first:

1. ``exact``: a candidate (named job id, id-like word, pod name less its replica suffix) is a job id.
2. ``suffix``: a job id ends with ``/<candidate>`` or ``-<candidate>`` (Kubernetes imports key
   jobs as ``ns/job/name``; a pasted id may miss its prefix).
3. ``pod``: an event about ``pod/<ns>/<candidate>`` carries the job id (simulator, k8s imports),
   or the candidate is a job name whose pods are ``<candidate>-<role>-<n>`` (Kubeflow, JobSet).
4. ``prefix``: a truncated id (at least 8 characters, two or more missing) starts exactly one
   job id, else exactly one of the reporter's, else exactly one that failed within three hours of
   the ticket's time. One character short is treated as a typo (rule 6).
5. ``suffix`` again for numbers (``#78``, ``job 764``, ``sim-003818``): exactly one of the
   reporter's jobs ends with that sequence number (and, unless the candidate is a bare number,
   is two or more characters longer: one character short is a typo, rule 6); ``fuzzy`` for an id typed without its
   separators (``sim89be6305003949``), among the reporter's jobs.
6. ``fuzzy``: a typo: edit distance 1 (two edits would match a random neighbour in a dense id
   space), searched among the ticket user's jobs first, then among jobs submitted in the two weeks
   before the ticket's time, then among all jobs sharing half of the id (one edit leaves one half
   intact). Within a scope, ties go to a job with a diagnosed failure, then to a failed one, then
   to the one that ended (else was submitted) nearest the time the ticket names.
7. Someone else's job named exactly is replaced by the reporter's own job one edit away (a typo
   that hit another id), or dropped when another of the reporter's jobs is linked (a pasted id).
8. ``user_time`` (:func:`by_category`, called by triage once it knows the failure category from a
   pasted log or the catalog): no job named, and the reporter has exactly one failure of that
   category within three hours of the time the ticket states (or its filing time).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb

from fleetmedic.tickets.models import Entities, JobLink, LinkHow

MAX_LINKS = 20
FUZZY_SCOPE_DAYS = 14
USER_TIME_WINDOW = timedelta(hours=3)
_REPLICA = re.compile(
    r"-(?:worker|master|launcher|chief|ps|evaluator|driver|executor|head|trainer|rank)-\d+$"
)
_FAILED = ("failed", "timeout", "preempted", "cancelled")
_SCORES: dict[LinkHow, float] = {
    "exact": 1.0,
    "suffix": 0.95,
    "pod": 0.95,
    "prefix": 0.8,
    "fuzzy": 0.7,
    "user_time": 0.5,
}


@dataclass(frozen=True)
class Found:
    job_id: str
    how: LinkHow
    mention: str


def _naive(when: datetime | None) -> datetime | None:
    if when is None or when.tzinfo is None:
        return when
    return when.astimezone(UTC).replace(tzinfo=None)


def _column(con: duckdb.DuckDBPyConnection, sql: str, params: Sequence[Any]) -> list[Any]:
    return [row[0] for row in con.execute(sql, list(params)).fetchall()]


def _exact(con: duckdb.DuckDBPyConnection, candidates: dict[str, str]) -> list[Found]:
    if not candidates:
        return []
    marks = ", ".join("?" for _ in candidates)
    found = _column(con, f"SELECT job_id FROM jobs WHERE job_id IN ({marks})", list(candidates))
    return [Found(j, "exact", candidates[j]) for j in found]


def _suffix(con: duckdb.DuckDBPyConnection, candidates: list[str]) -> list[Found]:
    if not candidates:
        return []
    rows = con.execute(
        "SELECT j.job_id, c.v FROM jobs j JOIN (SELECT unnest(?::VARCHAR[]) AS v) c "
        "ON length(c.v) >= 6 AND (suffix(j.job_id, '/' || c.v) OR suffix(j.job_id, '-' || c.v)) "
        "LIMIT 50",
        [candidates],
    ).fetchall()
    return [Found(job, "suffix", mention) for job, mention in rows]


_ROLES = "worker|master|launcher|chief|ps|evaluator|driver|executor|head|trainer|rank"
EVENT_DAYS_BEFORE = 30

_PODS_SQL = f"""
WITH p AS (SELECT unnest($pods::VARCHAR[]) AS v),
n AS (SELECT unnest($names::VARCHAR[]) AS v),
e AS (
    SELECT split_part(object, '/', 3) AS pod, json_extract_string(raw, '$.job_id') AS job_id
    FROM events
    WHERE starts_with(object, 'pod/') AND raw IS NOT NULL AND ts BETWEEN $lo AND $hi
)
SELECT DISTINCT e.job_id, p.v, 'pod' FROM e JOIN p ON e.pod = p.v
UNION
SELECT DISTINCT e.job_id, n.v, 'name' FROM e
JOIN n ON regexp_replace(e.pod, '-({_ROLES})-[0-9]+$', '') = n.v
LIMIT 100
"""


def _pods(
    con: duckdb.DuckDBPyConnection, pods: list[str], names: list[str], at: datetime | None
) -> list[Found]:
    """Jobs whose pods the ticket names, or whose name its pods carry (``<name>-worker-3``).

    Read from the events of the month before the ticket: pod names are reused over time.
    """
    if not pods and not names:
        return []
    when = _naive(at) or datetime(2100, 1, 1)
    params = {
        "pods": pods,
        "names": names,
        "lo": when - timedelta(days=EVENT_DAYS_BEFORE),
        "hi": when + timedelta(days=1),
    }
    rows = con.execute(_PODS_SQL, params).fetchall()
    return [Found(job, "pod", mention) for job, mention, _ in rows if job]


_TRAILING = re.compile(r"(\d{2,})$")
_SEPARATORS = re.compile(r"[-_./:]")


def _numbered(con: duckdb.DuckDBPyConnection, candidates: list[str], user: str) -> list[Found]:
    """``#78``, ``job 764``, ``sim-003818``: one of the reporter's jobs ends with that number."""
    out = []
    for candidate in candidates:
        match = _TRAILING.search(candidate)
        if match is None or len(match.group(1)) > 12:
            continue
        number = match.group(1).lstrip("0") or "0"
        shorter = 0 if candidate.isdigit() else len(candidate) + 2  # a chunk missing, not a typo
        rows = _column(
            con,
            'SELECT job_id FROM jobs WHERE "user" = ? AND regexp_matches(job_id, ?) '
            "AND length(job_id) >= ? LIMIT 2",
            [user, f"(^|[^0-9])0*{number}$", shorter],
        )
        if len(rows) == 1:
            out.append(Found(rows[0], "suffix", candidate))
    return out


def _squashed(con: duckdb.DuckDBPyConnection, candidates: list[str], user: str) -> list[Found]:
    """An id typed without its dashes (``sim89be6305003949``), among the reporter's jobs."""
    out = []
    for candidate in candidates:
        if _SEPARATORS.search(candidate) or len(candidate) < 8:
            continue
        rows = _column(
            con,
            'SELECT job_id FROM jobs WHERE "user" = ? '
            "AND regexp_replace(job_id, '[-_./:]', '', 'g') = ? LIMIT 2",
            [user, candidate],
        )
        if len(rows) == 1:
            out.append(Found(rows[0], "fuzzy", candidate))
    return out


def _prefix(
    con: duckdb.DuckDBPyConnection, candidates: list[str], user: str | None, at: datetime | None
) -> list[Found]:
    """A truncated id: linked when it starts one job only, else one of the reporter's, else one
    that failed within three hours of the ticket's time."""
    out: list[Found] = []
    when = _naive(at)
    for candidate in candidates:
        if len(candidate) < 8:
            continue
        rows = con.execute(
            'SELECT job_id, "user", ended_at FROM jobs WHERE starts_with(job_id, ?) LIMIT 200',
            [candidate],
        ).fetchall()
        rows = [row for row in rows if len(row[0]) - len(candidate) >= 2]  # one less: a typo
        if len(rows) > 1 and user:
            rows = [row for row in rows if row[1] == user] or rows
        if len(rows) > 1 and when is not None:
            rows = [r for r in rows if r[2] is not None and abs(r[2] - when) <= USER_TIME_WINDOW]
        if len(rows) == 1:
            out.append(Found(rows[0][0], "prefix", candidate))
    return out


@dataclass(frozen=True)
class Scope:
    user: str | None
    at: datetime | None


def _fuzzy_one(
    con: duckdb.DuckDBPyConnection, candidate: str, scope: Scope, *, user_only: bool = False
) -> list[str]:
    """Job ids within the edit budget of ``candidate``: the user's first, then near in time."""
    edits = 1
    base = (
        "SELECT job_id, d FROM (SELECT job_id, status, ended_at, submitted_at, "
        "levenshtein(job_id, $c) AS d FROM jobs "
        "WHERE length(job_id) BETWEEN length($c) - $e AND length($c) + $e AND {where}) j "
        "WHERE d BETWEEN 1 AND $e "
        "ORDER BY d, NOT EXISTS (SELECT 1 FROM diagnoses x WHERE x.job_id = j.job_id), "
        "status NOT IN ('failed', 'timeout', 'preempted'), {rank}, job_id LIMIT 5"
    )
    at = _naive(scope.at)
    rank = "abs(epoch(coalesce(ended_at, submitted_at, TIMESTAMP '1970-01-01') - $at::TIMESTAMP))"
    params: dict[str, Any] = {"c": candidate, "e": edits}
    attempts: list[tuple[str, dict[str, Any]]] = []
    if scope.user:
        attempts.append(('"user" = $u', {"u": scope.user}))
    if user_only:
        attempts = attempts[:1]
    elif at is not None:
        window = timedelta(days=FUZZY_SCOPE_DAYS)
        attempts.append(("submitted_at BETWEEN $lo AND $hi", {"lo": at - window, "hi": at}))
    half = len(candidate) // 2
    if not user_only:
        attempts.append(
            (
                "(starts_with(job_id, $left) OR suffix(job_id, $right))",
                {"left": candidate[: max(half - 1, 1)], "right": candidate[half + 1 :]},
            )
        )
    for where, extra in attempts:
        sql = base.format(where=where, rank=rank if at is not None else "0")
        values = params | extra | ({"at": at} if at is not None else {})
        rows = con.execute(sql, values).fetchall()
        if rows:
            return [str(rows[0][0])]
    return []


def by_category(
    con: duckdb.DuckDBPyConnection, user: str, category: str, at: datetime
) -> list[Found]:
    """The reporter's one job that failed of ``category`` within three hours of ``at``.

    For a ticket that names no job but shows (pasted log) or describes (catalog) a failure: the
    job is the reporter's only failure of that kind around the time the ticket states.
    """
    when = _naive(at)
    assert when is not None
    if category == "scheduling":
        sql = (
            "SELECT job_id FROM jobs WHERE \"user\" = $u AND status = 'pending' "
            "AND submitted_at <= $hi LIMIT 2"
        )
    else:
        sql = (
            "SELECT DISTINCT d.job_id FROM diagnoses d JOIN jobs j USING (job_id) "
            "LEFT JOIN attempts a ON a.job_id = d.job_id AND a.attempt = d.attempt "
            'WHERE j."user" = $u AND d.category = $c '
            "AND coalesce(a.ended_at, d.diagnosed_at) BETWEEN $lo AND $hi LIMIT 2"
        )
    params: dict[str, Any] = {"u": user, "hi": when + USER_TIME_WINDOW}
    if category != "scheduling":
        params |= {"c": category, "lo": when - USER_TIME_WINDOW}
    found = [row[0] for row in con.execute(sql, params).fetchall()]
    return [Found(found[0], "user_time", user)] if len(found) == 1 else []


def _owners(con: duckdb.DuckDBPyConnection, found: list[Found]) -> dict[str, str | None]:
    rows = con.execute(
        'SELECT job_id, "user" FROM jobs WHERE job_id IN (SELECT unnest(?::VARCHAR[]))',
        [[f.job_id for f in found]],
    ).fetchall()
    return {str(job): user for job, user in rows}


def _own_jobs_first(
    con: duckdb.DuckDBPyConnection, found: list[Found], scope: Scope
) -> list[Found]:
    """An exactly named job of someone else is usually a typo or a paste of the wrong id: the
    reporter's own job one edit away replaces it; with another of the reporter's jobs linked, it
    goes. A teammate filing for a colleague names no job of their own, so nothing changes then."""
    if not scope.user or not found:
        return found
    owners = _owners(con, found)
    own = any(owners.get(f.job_id) == scope.user for f in found)
    out = []
    for item in found:
        if item.how != "exact" or owners.get(item.job_id) in (None, scope.user):
            out.append(item)
            continue
        mine = _fuzzy_one(con, item.mention, scope, user_only=True)
        if mine:
            out.append(Found(mine[0], "fuzzy", item.mention))
        elif not own:
            out.append(item)
    return out


def find_jobs(
    con: duckdb.DuckDBPyConnection, entities: Entities, user: str | None, at: datetime | None
) -> list[Found]:
    """The jobs a ticket names, by the rules of the module docstring, most certain first."""
    stripped = {_REPLICA.sub("", p): p for p in entities.pods}
    candidates: dict[str, str] = {}
    for value in (*entities.job_ids, *entities.tokens, *entities.pods):
        candidates.setdefault(value, value)
    for job, pod in stripped.items():
        candidates.setdefault(job, pod)
    found = _exact(con, candidates)
    seen = {f.mention for f in found} | {f.job_id for f in found}
    named = [c for c in (*entities.job_ids, *stripped) if c not in seen and "/" not in c]
    found += _suffix(con, named)
    seen |= {f.mention for f in found}
    names = [c for c in (*entities.job_ids, *entities.tokens) if c not in seen and "-" in c]
    found += _pods(con, [p for p in entities.pods if p not in seen], names, at)
    seen |= {f.mention for f in found}
    left = [c for c in (*entities.fuzzy_job_ids, *entities.job_ids) if c not in seen]
    left = list(dict.fromkeys(left))
    scope = Scope(user=user, at=at)
    for rule in (_prefix_rule, _numbered_rule, _squashed_rule):
        more = rule(con, left, scope)
        found += more
        seen |= {f.mention for f in more}
        left = [c for c in left if c not in seen]
    fuzzy = [c for c in entities.fuzzy_job_ids if c in left][:5]
    for candidate in fuzzy:
        found += [Found(job, "fuzzy", candidate) for job in _fuzzy_one(con, candidate, scope)]
    found = _own_jobs_first(con, found, scope)
    unique: dict[str, Found] = {}
    for item in found:
        unique.setdefault(item.job_id, item)
    return list(unique.values())[:MAX_LINKS]


def _prefix_rule(con: duckdb.DuckDBPyConnection, left: list[str], scope: Scope) -> list[Found]:
    return _prefix(con, left, scope.user, scope.at)


def _numbered_rule(con: duckdb.DuckDBPyConnection, left: list[str], scope: Scope) -> list[Found]:
    return _numbered(con, left, scope.user) if scope.user else []


def _squashed_rule(con: duckdb.DuckDBPyConnection, left: list[str], scope: Scope) -> list[Found]:
    return _squashed(con, left, scope.user) if scope.user else []


_DETAILS_SQL = """
WITH wanted AS (SELECT unnest($ids::VARCHAR[]) AS job_id),
diag AS (
    SELECT d.* FROM diagnoses d JOIN wanted USING (job_id)
    LEFT JOIN attempts x ON x.job_id = d.job_id AND x.attempt = d.attempt
    QUALIFY row_number() OVER (
        PARTITION BY d.job_id
        ORDER BY coalesce(x.ended_at, d.diagnosed_at) <= $filed DESC NULLS LAST, d.attempt DESC
    ) = 1
)
SELECT j.job_id, j."user", j.status, j.num_gpus, j.submitted_at, j.ended_at,
       coalesce(d.attempt, j.attempts) AS attempt, j.attempts, d.category, d.signature, d.owner,
       d.confidence, d.summary, CAST(d.evidence AS VARCHAR) AS evidence, d.node_id,
       a.nodes, a.last_checkpoint_at,
       coalesce(j.num_gpus, 0) * coalesce(epoch(a.ended_at - a.started_at), 0) / 3600.0 AS hours
FROM jobs j JOIN wanted USING (job_id)
LEFT JOIN diag d ON d.job_id = j.job_id
LEFT JOIN attempts a ON a.job_id = j.job_id AND a.attempt = coalesce(d.attempt, j.attempts)
"""

_ACTIONS_SQL = """
SELECT target, kind, state, coalesce(result, '') FROM actions
WHERE target IN (SELECT unnest($targets::VARCHAR[]))
UNION ALL
SELECT node_id, 'cordon', 'cordoned', coalesce(cordon_reason, '') FROM nodes
WHERE cordoned AND node_id IN (SELECT unnest($targets::VARCHAR[]))
"""


def _evidence(raw: str | None) -> tuple[str, ...]:
    if not raw:
        return ()
    try:
        items = json.loads(raw)
    except ValueError:
        return ()
    return tuple(str(item.get("text", ""))[:300] for item in items[:3] if isinstance(item, dict))


def _aware(value: datetime | None) -> datetime | None:
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


def describe(
    con: duckdb.DuckDBPyConnection, found: list[Found], filed: datetime | None = None
) -> list[JobLink]:
    """Each found job with its status, nodes, the platform's actions on it, and the diagnosis of
    its last attempt that failed before the ticket was ``filed`` (what the user asks about; a
    later restart may fail differently)."""
    if not found:
        return []
    when = _naive(filed) or datetime(2100, 1, 1)
    cursor = con.execute(_DETAILS_SQL, {"ids": [f.job_id for f in found], "filed": when})
    names = [d[0] for d in cursor.description or ()]
    rows = {r[0]: dict(zip(names, r, strict=True)) for r in cursor.fetchall()}
    targets = list(rows)
    for row in rows.values():
        targets += [n for n in (row["nodes"] or "").split(",") if n]
    actions: dict[str, list[str]] = {}
    for target, kind, state, result in con.execute(_ACTIONS_SQL, {"targets": targets}).fetchall():
        note = f": {result}" if result else ""
        actions.setdefault(target, []).append(f"{kind} {target} ({state}){note}")
    return [_link(item, rows[item.job_id], actions) for item in found if item.job_id in rows]


def _link(item: Found, row: dict[str, Any], actions: dict[str, list[str]]) -> JobLink:
    nodes = tuple(n for n in (row["nodes"] or "").split(",") if n)
    done = [a for target in (item.job_id, *nodes) for a in actions.get(target, [])]
    return JobLink(
        job_id=item.job_id,
        how=item.how,
        mention=item.mention[:200],
        score=_SCORES[item.how],
        user=row["user"],
        status=row["status"],
        num_gpus=float(row["num_gpus"] or 0.0),
        submitted_at=_aware(row["submitted_at"]),
        ended_at=_aware(row["ended_at"]),
        attempt=row["attempt"],
        attempts=int(row["attempts"] or 1),
        category=row["category"],
        signature=row["signature"],
        owner=row["owner"],
        confidence=row["confidence"],
        summary=row["summary"],
        evidence=_evidence(row["evidence"]),
        nodes=nodes,
        diagnosis_node=row["node_id"],
        gpu_hours=round(float(row["hours"] or 0.0), 3),
        last_checkpoint_at=_aware(row["last_checkpoint_at"]),
        actions=tuple(done[:10]),
    )


def link_jobs(
    con: duckdb.DuckDBPyConnection,
    entities: Entities,
    user: str | None,
    at: datetime | None,
    filed: datetime | None = None,
) -> list[JobLink]:
    """The ticket's jobs, described; see the module docstring for how they are found."""
    return describe(con, find_jobs(con, entities, user, at), filed or at)
