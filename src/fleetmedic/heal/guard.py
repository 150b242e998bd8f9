"""The safety guard: every action the controller wants to run asks here first.

Rules, checked in this order; the first that refuses gives the reason string:

1. kill switch: a global stop, engaged and released by an operator;
2. circuit breaker: more than ``storm_actions`` requests within ``storm_window_seconds`` means
   something is wrong (a bad signature, a flapping source): it trips and *stays open* until
   :meth:`Guard.reset_breaker`, because a storm that stops by itself is still a storm; only the
   ``storm_kinds`` count (by default those that change the cluster, not notifications);
3. cooldown: the same kind on the same target not again within ``cooldown_seconds``;
4. fleet state for cordons: the node must be known and not cordoned; cordoned nodes may not
   exceed ``max_cordoned_fraction`` of the fleet nor ``max_cordoned_fraction_per_pool`` of its
   pool; and the pool keeps at least ``min_schedulable_per_pool`` schedulable nodes;
   an uncordon needs a cordoned node;
5. rate limit: a token bucket per action kind (``burst`` tokens, refilled at the kind's hourly rate).

The clock is injected (a callable returning an aware datetime) so tests move time by hand.
``check(..., commit=False)`` answers without spending anything, for dry-runs.

Restart safety: the kill switch and the breaker live in the control store (:class:`Switches`), so
they hold across restarts and an operator can flip them from another process; cooldowns, the storm
window and the rate buckets are rebuilt from the audit by :meth:`Guard.replay`, so a restarted
controller cannot run a second burst the limits had already refused.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime

from fleetmedic.heal.policy import GuardConfig
from fleetmedic.heal.state import ControlStore, Switches
from fleetmedic.model.records import Action, Node

Clock = Callable[[], datetime]


@dataclass
class Fleet:
    """What the guard knows of the cluster: each node's pool, and which nodes are cordoned."""

    pools: dict[str, str]
    cordoned: set[str] = field(default_factory=set)

    @classmethod
    def from_nodes(cls, nodes: Iterable[Node]) -> Fleet:
        pools: dict[str, str] = {}
        cordoned: set[str] = set()
        for node in nodes:
            pools[node.node_id] = node.pool or "default"
            if node.cordoned:
                cordoned.add(node.node_id)
        return cls(pools, cordoned)

    def pool_nodes(self, pool: str) -> list[str]:
        return [n for n, p in self.pools.items() if p == pool]


@dataclass
class _Bucket:
    tokens: float
    stamp: float


class Guard:
    """Decides whether an action may run now; returns ``None`` or the reason it may not."""

    def __init__(
        self, config: GuardConfig, fleet: Fleet, clock: Clock, switches: Switches | None = None
    ) -> None:
        self.config = config
        self.fleet = fleet
        self.clock = clock
        self.switches = switches or Switches(ControlStore())
        self._buckets: dict[str, _Bucket] = {}
        self._last: dict[tuple[str, str], float] = {}
        self._recent: deque[float] = deque()

    @property
    def killed(self) -> bool:
        return self.switches.engaged("kill_switch")

    @property
    def breaker_open(self) -> bool:
        return self.switches.engaged("breaker")

    # operator controls -------------------------------------------------------------------
    def engage_kill_switch(self, by: str = "", reason: str = "") -> None:
        self.switches.set("kill_switch", True, self.clock(), by, reason)

    def release_kill_switch(self, by: str = "") -> None:
        self.switches.set("kill_switch", False, self.clock(), by)

    def reset_breaker(self, by: str = "") -> None:
        """Close the breaker after a person has looked at the storm."""
        self.switches.set("breaker", False, self.clock(), by, "reset")
        self._recent.clear()

    def lookback_seconds(self) -> float:
        """How far back an admitted action can still limit a new one."""
        config = self.config
        slowest = min([config.default_rate_per_hour, *config.rate_per_kind.values()])
        refill = 3600.0 * config.burst / slowest
        return max(config.cooldown_seconds, config.storm_window_seconds, refill)

    def replay(self, admitted: Iterable[Action]) -> None:
        """Rebuild cooldowns, the storm window and rate buckets from actions the guard let run.

        Each action counts at its ``updated_at``: for a finished action that is later than the
        moment it was allowed, which errs on the side of refusing.
        """
        for action in sorted(admitted, key=lambda a: a.updated_at):
            at = action.updated_at.timestamp()
            self._last[(action.kind, action.target)] = at
            if action.kind in self.config.storm_kinds:
                self._recent.append(at)
            self._rate(action.kind, at, commit=True)

    # fleet bookkeeping -------------------------------------------------------------------
    def mark_uncordoned(self, node: str) -> None:
        self.fleet.cordoned.discard(node)

    # the decision ------------------------------------------------------------------------
    def check(self, kind: str, target: str, *, commit: bool = True) -> str | None:
        """``None`` when ``kind`` on ``target`` may run now; else why not.

        With ``commit`` an allowed action spends a token, starts its cooldown and, for a cordon,
        counts the node as cordoned at once (a reservation, so two cordons cannot both squeeze
        under the fraction limit).
        """
        now = self.clock().timestamp()
        if self.killed:
            return "kill switch engaged: no action runs until it is released"
        if self.breaker_open:
            return "circuit breaker open after an action storm: needs a manual reset"
        if commit and kind in self.config.storm_kinds and self._storm(now):
            self.switches.set("breaker", True, self.clock(), "guard", "action storm")
            return (
                f"circuit breaker tripped: more than {self.config.storm_actions} actions within "
                f"{self.config.storm_window_seconds:g}s; needs a manual reset"
            )
        reason = self._cooldown(kind, target, now) or self._fleet_rule(kind, target)
        reason = reason or self._rate(kind, now, commit)
        if reason is None and commit:
            self._last[(kind, target)] = now
            if kind == "cordon_and_drain":
                self.fleet.cordoned.add(target)
        return reason

    def _storm(self, now: float) -> bool:
        window = self.config.storm_window_seconds
        while self._recent and self._recent[0] <= now - window:
            self._recent.popleft()
        self._recent.append(now)
        return len(self._recent) > self.config.storm_actions

    def _cooldown(self, kind: str, target: str, now: float) -> str | None:
        last = self._last.get((kind, target))
        wait = self.config.cooldown_seconds
        if last is not None and now - last < wait:
            return f"cooldown: {kind} on {target} ran {now - last:.0f}s ago (cooldown {wait:g}s)"
        return None

    def _fleet_rule(self, kind: str, node: str) -> str | None:
        if kind == "health_check_then_uncordon" and node not in self.fleet.cordoned:
            return f"{node} is not cordoned: nothing to uncordon"
        if kind != "cordon_and_drain":
            return None
        fleet = self.fleet
        if node not in fleet.pools:
            return f"unknown node {node}: not in the fleet the guard was given"
        if node in fleet.cordoned:
            return f"{node} is already cordoned"
        after = len(fleet.cordoned) + 1
        limit = self.config.max_cordoned_fraction
        if after > limit * len(fleet.pools):
            return (
                f"fleet limit: cordoning {node} would make {after}/{len(fleet.pools)} nodes "
                f"cordoned (max {limit:.0%})"
            )
        pool = fleet.pools[node]
        members = fleet.pool_nodes(pool)
        in_pool = sum(1 for n in members if n in fleet.cordoned) + 1
        pool_limit = self.config.max_cordoned_fraction_per_pool
        if in_pool > pool_limit * len(members):
            return (
                f"pool limit: cordoning {node} would make {in_pool}/{len(members)} nodes of pool "
                f"{pool} cordoned (max {pool_limit:.0%})"
            )
        left = len(members) - in_pool
        if left < self.config.min_schedulable_per_pool:
            return (
                f"minimum capacity: pool {pool} would keep {left} schedulable nodes "
                f"(min {self.config.min_schedulable_per_pool})"
            )
        return None

    def _rate(self, kind: str, now: float, commit: bool) -> str | None:
        rates = {str(k): v for k, v in self.config.rate_per_kind.items()}
        per_hour = rates.get(kind, self.config.default_rate_per_hour)
        capacity = float(self.config.burst)
        bucket = self._buckets.get(kind) or _Bucket(capacity, now)
        tokens = min(capacity, bucket.tokens + (now - bucket.stamp) * per_hour / 3600)
        if tokens < 1:
            return f"rate limit: {kind} allows {per_hour:g}/h with bursts of {self.config.burst}"
        if commit:
            self._buckets[kind] = _Bucket(tokens - 1, now)
        return None
