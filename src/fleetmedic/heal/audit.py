"""The write-ahead audit: every action is in the store's ``actions`` table before it runs.

One writer (:class:`AuditLog`) owns the table. An action is inserted ``proposed`` under a
deterministic key (:func:`action_key`), so the same decision made twice, by a duplicated event
or a restarted controller, finds its row instead of acting again. States only move forward::

    proposed ──► approved ──► executing ──► done
        │  │         │            └──────► failed
        │  └► rejected  (by a person)
        └──────────┴───────────┴─► refused (guard, budget)    proposed/approved ──► failed

``done``, ``failed``, ``refused`` and ``rejected`` are final: :meth:`AuditLog.transition`
refuses to leave them, which is what makes "never repeat a done action" hold even against bugs.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

from fleetmedic.model.records import Action, ActionMode, ActionState
from fleetmedic.store.db import Store

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


def _naive(ts: datetime) -> datetime:
    return ts.astimezone(UTC).replace(tzinfo=None) if ts.tzinfo else ts


def _aware(ts: datetime) -> datetime:
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts


class AuditLog:
    """The one writer of ``actions``."""

    def __init__(self, store: Store) -> None:
        self.con = store.con

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
        ts = _naive(now)
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
            [state, _naive(now), result, action_id, current.state],
        )
        updated = self.get(action_id)
        assert updated is not None
        return updated

    def get(self, action_id: str) -> Action | None:
        rows = self._select("WHERE action_id = ?", [action_id])
        return rows[0] if rows else None

    def for_target(self, target: str) -> list[Action]:
        return self._select("WHERE target = ? ORDER BY created_at, action_id", [target])

    def pending(self) -> list[Action]:
        """Actions a restarted controller must finish, oldest first."""
        marks = ", ".join("?" for _ in PENDING)
        return self._select(
            f"WHERE state IN ({marks}) ORDER BY created_at, action_id", list(PENDING)
        )

    def all(self) -> list[Action]:
        return self._select("ORDER BY created_at, action_id", [])

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
                created_at=_aware(r[6]),
                updated_at=_aware(r[7]),
                result=r[8],
            )
            for r in rows
        ]
