"""The write-ahead audit: every action is in the control store's ``actions`` table before it runs.

One writer (:class:`AuditLog`) owns the table. An action is inserted ``proposed`` under a
deterministic key (:func:`action_key`), so the same decision made twice, by a duplicated event
or a restarted controller, finds its row instead of acting again. States only move forward::

    proposed ──► approved ──► executing ──► done
        │  │         │            └──────► failed
        │  └► rejected  (by a person)
        └──────────┴───────────┴─► refused (guard, budget)    proposed/approved ──► failed

``done``, ``failed``, ``refused`` and ``rejected`` are final: :meth:`AuditLog.transition`
refuses to leave them, which is what makes "never repeat a done action" hold even against bugs.

Every write commits on its own unless it runs inside :meth:`AuditLog.batch`, which groups a burst
of proposals into one commit (the event pipeline uses it); :meth:`AuditLog.flush` commits early,
and the controller calls it before any executor call, so a row is durable before its side effect.
Outcomes written after the side effect may use :meth:`AuditLog.relaxed` (no ``fsync`` each).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime

from fleetmedic.heal.state import ControlStore, iso
from fleetmedic.model.errors import InputError
from fleetmedic.model.records import Action, ActionMode, ActionState

FINAL: frozenset[str] = frozenset({"done", "failed", "refused", "rejected", "rolled_back"})
PENDING: tuple[str, ...] = ("proposed", "approved", "executing")
_NEXT: dict[str, frozenset[str]] = {
    "proposed": frozenset({"approved", "rejected", "refused", "executing", "failed"}),
    "approved": frozenset({"executing", "refused", "failed"}),
    "executing": frozenset({"done", "failed", "refused"}),
}
_COLUMNS = "action_id, kind, target, because, mode, state, created_at, updated_at, result"


def action_key(kind: str, target: str, because: Iterable[str]) -> str:
    """Idempotency key: SHA-256 of kind, target and the sorted, de-duplicated cause ids."""
    causes = sorted(set(because))
    text = "\x1f".join([kind, target, *causes])
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


class TransitionError(RuntimeError):
    """A state change that the audit's state machine forbids: a bug in the caller, not retried."""


class AuditLog:
    """The one writer of ``actions``."""

    def __init__(self, control: ControlStore) -> None:
        self.con = control.con

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Group the writes inside into one transaction (nested calls join the outer one)."""
        if self.con.in_transaction:
            yield
            return
        self.con.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            # Commit even when the block failed: every row is a fact (a proposal, an admission,
            # an outcome) and the audit must not forget one that already reached the cluster.
            self.con.execute("COMMIT")

    @contextmanager
    def relaxed(self) -> Iterator[None]:
        """Record outcomes without an ``fsync`` each: durable if this process dies, not on a
        power cut, where the action is redone on resume (executors are idempotent per action).

        Write-ahead rows (``proposed``, ``executing``) never go through here.
        """
        if self.con.in_transaction:
            self.con.execute("COMMIT")
        self.con.execute("PRAGMA synchronous=NORMAL")
        try:
            yield
        finally:
            self.con.execute("PRAGMA synchronous=FULL")

    def flush(self) -> None:
        """Make everything written so far durable now, even inside :meth:`batch`."""
        if self.con.in_transaction:
            self.con.execute("COMMIT")
            self.con.execute("BEGIN IMMEDIATE")

    def propose(
        self,
        kind: str,
        target: str,
        because: Sequence[str],
        mode: ActionMode,
        now: datetime,
        result: str | None = None,
    ) -> tuple[Action, bool]:
        """Write a ``proposed`` action; returns it and whether it is new (False: already known)."""
        key = action_key(kind, target, because)
        existing = self.get(key)
        if existing is not None:
            return existing, False
        causes = json.dumps(sorted(set(because)))
        ts = iso(now)
        self.con.execute(
            f"INSERT OR IGNORE INTO actions ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, 'proposed', ?, ?, ?)",
            [key, kind, target, causes, mode, ts, ts, result],
        )
        action = self.get(key)
        assert action is not None
        return action, True

    def transition(
        self, action_id: str, state: ActionState, now: datetime, result: str | None = None
    ) -> Action:
        """Move an action to ``state``; only the forward moves in the module docstring pass."""
        current = self.get(action_id)
        if current is None:
            raise TransitionError(f"no action {action_id}")
        if state not in _NEXT.get(current.state, frozenset()):
            raise TransitionError(f"action {action_id} cannot go {current.state} -> {state}")
        self.con.execute(
            "UPDATE actions SET state = ?, updated_at = ?, result = coalesce(?, result) "
            "WHERE action_id = ? AND state = ?",
            [state, iso(now), result, action_id, current.state],
        )
        updated = self.get(action_id)
        assert updated is not None
        return updated

    def approve(self, action_id: str, now: datetime, by: str) -> Action:
        """A person approves a waiting ``approval``-mode action; a controller then runs it."""
        return self._decide(action_id, "approved", now, f"approved by {by or 'an operator'}")

    def reject(self, action_id: str, now: datetime, by: str, why: str = "") -> Action:
        reason = f"rejected by {by or 'an operator'}" + (f": {why}" if why else "")
        return self._decide(action_id, "rejected", now, reason)

    def _decide(self, action_id: str, state: ActionState, now: datetime, note: str) -> Action:
        pending = self.get(action_id)
        if pending is None:
            raise InputError(f"no action {action_id}")
        if pending.mode != "approval" or pending.state != "proposed":
            raise InputError(
                f"action {action_id} is a {pending.state} {pending.mode} action; only proposed "
                "approval-mode actions wait for a person"
            )
        return self.transition(action_id, state, now, note)

    def get(self, action_id: str) -> Action | None:
        rows = self._select("WHERE action_id = ?", [action_id])
        return rows[0] if rows else None

    def for_target(self, target: str) -> list[Action]:
        return self._select("WHERE target = ? ORDER BY created_at, action_id", [target])

    def pending(
        self, states: Sequence[str] = PENDING, *, active_only: bool = False
    ) -> list[Action]:
        """Unfinished actions in ``states``, oldest first; ``active_only`` leaves out dry-runs,
        which stay ``proposed`` for ever and would make every restart slower as they pile up."""
        marks = ", ".join("?" for _ in states)
        skip = " AND mode != 'dry-run'" if active_only else ""
        return self._select(
            f"WHERE state IN ({marks}){skip} ORDER BY created_at, action_id", list(states)
        )

    def counts(self) -> dict[str, int]:
        """Actions per state (for ``heal status`` and metrics)."""
        rows = self.con.execute("SELECT state, count(*) FROM actions GROUP BY state").fetchall()
        return {str(state): int(n) for state, n in rows}

    def all(self) -> list[Action]:
        return self._select("ORDER BY created_at, action_id", [])

    def since(self, start: datetime, states: Sequence[str]) -> list[Action]:
        """Actions in ``states`` touched at or after ``start`` (the guard replays these)."""
        marks = ", ".join("?" for _ in states)
        return self._select(
            f"WHERE updated_at >= ? AND state IN ({marks}) ORDER BY updated_at, action_id",
            [iso(start), *states],
        )

    def recent(self, limit: int, state: str | None = None) -> list[Action]:
        """The newest ``limit`` actions (optionally in one state), newest first."""
        where, params = ("WHERE state = ? ", [state]) if state else ("", [])
        return self._select(
            f"{where}ORDER BY created_at DESC, action_id LIMIT ?", [*params, int(limit)]
        )

    def _select(self, where: str, params: list[object]) -> list[Action]:
        rows = self.con.execute(f"SELECT {_COLUMNS} FROM actions {where}", params).fetchall()
        return [
            Action(
                action_id=r[0],
                kind=r[1],
                target=r[2],
                because=tuple(json.loads(r[3]) if r[3] else ()),
                mode=r[4],
                state=r[5],
                created_at=datetime.fromisoformat(r[6]),
                updated_at=datetime.fromisoformat(r[7]),
                result=r[8],
            )
            for r in rows
        ]
