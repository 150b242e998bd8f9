"""The healing controller's state as the dashboard shows it, and the answers people give it.

Reads page through the control store's ``actions`` table with LIMIT/OFFSET (``AuditLog.recent``
has no offset); every write goes through :class:`~fleetmedic.heal.audit.AuditLog` and
:class:`~fleetmedic.heal.state.Switches`, the same code as ``fleetmedic heal approve`` and
``heal kill-switch``, so the state machine and the audit trail are the controller's own.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from fleetmedic.heal.audit import AuditLog
from fleetmedic.heal.policy import NODE_KINDS, load_policies
from fleetmedic.heal.state import ControlStore, Switches
from fleetmedic.model.records import Action
from fleetmedic.web import schemas as s

_COLUMNS = "action_id, kind, target, because, mode, state, created_at, updated_at, result"


def action_out(action: Action) -> s.ActionOut:
    return s.ActionOut(
        action_id=action.action_id,
        kind=action.kind,
        target=action.target,
        because=list(action.because),
        mode=action.mode,
        state=action.state,
        created_at=action.created_at.astimezone(UTC),
        updated_at=action.updated_at.astimezone(UTC),
        result=action.result,
    )


def _from_row(row: Sequence[Any]) -> s.ActionOut:
    return s.ActionOut(
        action_id=row[0],
        kind=row[1],
        target=row[2],
        because=[str(c) for c in (json.loads(row[3]) if row[3] else [])],
        mode=row[4],
        state=row[5],
        created_at=datetime.fromisoformat(row[6]).astimezone(UTC),
        updated_at=datetime.fromisoformat(row[7]).astimezone(UTC),
        result=row[8],
    )


def list_actions(
    control: ControlStore,
    *,
    state: str | None = None,
    mode: str | None = None,
    kind: str | None = None,
    kinds: Sequence[str] = (),
    target: str | None = None,
    limit: int,
    offset: int,
) -> tuple[list[s.ActionOut], int]:
    """A page of the audit trail, newest first, filtered on exact values."""
    where, params = _filters(state=state, mode=mode, kind=kind, target=target)
    if kinds:
        where.append(f"kind IN ({', '.join('?' for _ in kinds)})")
        params.extend(kinds)
    clause = f" WHERE {' AND '.join(where)}" if where else ""
    rows = control.con.execute(
        f"SELECT {_COLUMNS} FROM actions{clause} "
        "ORDER BY created_at DESC, action_id LIMIT ? OFFSET ?",
        [*params, limit, offset],
    ).fetchall()
    total = control.con.execute(f"SELECT count(*) FROM actions{clause}", params).fetchone()
    return [_from_row(r) for r in rows], int(total[0]) if total else 0


def get_action(control: ControlStore, action_id: str) -> s.ActionOut | None:
    found = AuditLog(control).get(action_id)
    return action_out(found) if found is not None else None


def _filters(**values: str | None) -> tuple[list[str], list[Any]]:
    where, params = [], []
    for column, value in values.items():
        if value:
            where.append(f"{column} = ?")
            params.append(value)
    return where, params


def _like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def job_actions(control: ControlStore, job_id: str, limit: int = 100) -> list[s.ActionOut]:
    """Actions on the job, or caused by one of its attempts (cause ids are ``job#attempt:cat``)."""
    encoded = json.dumps(job_id)[1:-1]  # as the id appears inside the stored JSON array
    rows = control.con.execute(
        f"SELECT {_COLUMNS} FROM actions WHERE target = ? OR because LIKE ? ESCAPE '\\' "
        "ORDER BY created_at DESC, action_id LIMIT ?",
        [job_id, f'%"{_like(encoded)}#%', limit],
    ).fetchall()
    return [_from_row(r) for r in rows]


def cordon_history(
    control: ControlStore, node_id: str | None, limit: int, offset: int
) -> tuple[list[s.ActionOut], int]:
    return list_actions(
        control, kinds=sorted(NODE_KINDS), target=node_id, limit=limit, offset=offset
    )


def summary(control: ControlStore | None, path: str) -> s.ControlOut:
    """Switches, actions per state and the guard's limits, for the Actions page."""
    guard = load_policies().guard.model_dump(mode="json")
    if control is None:
        off = s.SwitchOut(engaged=False, changed_at=None, changed_by=None, reason=None)
        return s.ControlOut(
            control_store=False,
            path=path,
            switches={"kill_switch": off, "breaker": off},
            actions_by_state={},
            awaiting_approval=0,
            guard=guard,
        )
    switches = {
        name: s.SwitchOut.model_validate(info)
        for name, info in Switches(control).describe().items()
    }
    waiting = control.con.execute(
        "SELECT count(*) FROM actions WHERE mode = 'approval' AND state = 'proposed'"
    ).fetchone()
    return s.ControlOut(
        control_store=True,
        path=path,
        switches=switches,
        actions_by_state=AuditLog(control).counts(),
        awaiting_approval=int(waiting[0]) if waiting else 0,
        guard=guard,
    )


def decide(
    control: ControlStore, action_id: str, approve: bool, who: str, why: str = ""
) -> s.ActionOut:
    """A person's answer to an approval-mode action, recorded in the audit trail."""
    audit, now = AuditLog(control), datetime.now(UTC)
    action = (
        audit.approve(action_id, now, who) if approve else audit.reject(action_id, now, who, why)
    )
    return action_out(action)


def set_kill_switch(control: ControlStore, engaged: bool, who: str, reason: str) -> None:
    Switches(control).set("kill_switch", engaged, datetime.now(UTC), who, reason)


def reset_breaker(control: ControlStore, who: str) -> None:
    Switches(control).set("breaker", False, datetime.now(UTC), who, "reset")
