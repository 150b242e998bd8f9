"""The healing controller: diagnosis events in, guarded and audited actions out.

For each :class:`HealEvent` (events may arrive twice, late, or out of order):

1. drop it when the job has already moved on (a later attempt, or no longer failed), for retries;
2. ask the policies which actions apply;
3. for each, compute the idempotency key; a known key means "already decided": nothing happens;
4. write the action ``proposed`` (write-ahead), then refuse it if it is a retry the cause or the
   budget does not allow;
5. by mode: ``dry-run`` only asks the guard (without spending) and stays ``proposed``;
   ``approval`` waits for :meth:`Controller.approve`; ``auto`` runs at once;
6. running = guard → ``executing`` → executor → verify → ``done`` or ``failed``.

Executor errors carry intent: :class:`TemporaryActionError` or ``TimeoutError`` end the action
``failed`` with a "temporary" result (a later event may try again under a new cause);
:class:`PermanentActionError` ends it ``failed``. Anything else is a bug or a crash and propagates,
leaving the action ``executing`` for :meth:`Controller.resume` to finish.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from fleetmedic.heal.audit import AuditLog, action_key
from fleetmedic.heal.guard import Guard
from fleetmedic.heal.policy import NODE_KINDS, RETRY_KINDS, Policy, PolicySet, RetryBudget
from fleetmedic.model.errors import InputError
from fleetmedic.model.executor import Executor, PermanentActionError, TemporaryActionError
from fleetmedic.model.records import Action, ActionMode, Diagnosis, Job

_NODE_CAUSE = "node:"
_MOVED_ON = frozenset({"succeeded", "cancelled", "running", "pending"})


class Notifier(Protocol):
    def notify(self, target: str, message: str) -> None: ...


class HealthCheck(Protocol):
    def healthy(self, node: str) -> bool: ...


class Verifier(Protocol):
    def verify(self, action: Action) -> str | None:
        """``None`` when the action had its effect, else what is wrong."""
        ...


@dataclass(frozen=True)
class HealEvent:
    """One diagnosis with the context the controller needs: the job and the node it points at."""

    diagnosis: Diagnosis
    job: Job | None = None
    node: str | None = None
    attempt: int | None = None

    ref: str | None = None
    """The source event's id; names the cause of an event about a node and no job."""

    @property
    def job_ref(self) -> str | None:
        return self.diagnosis.job_id or (self.job.job_id if self.job else None)

    @property
    def attempt_no(self) -> int:
        return self.attempt or self.diagnosis.attempt or 1

    @property
    def cause_id(self) -> str:
        job_id = self.job_ref
        if job_id is not None:
            return f"{job_id}#{self.attempt_no}:{self.diagnosis.category}"
        if self.ref is None:
            raise InputError(f"event for {self.diagnosis.input} names no job and no ref")
        return f"{self.ref}:{self.diagnosis.category}"

    @property
    def node_id(self) -> str | None:
        return self.node or self.diagnosis.details.get("node")


_PRUNE_EVERY = 1000


def _node_memory(policies: PolicySet) -> timedelta | None:
    """How long node failures matter to the policies; None when some policy counts them for ever."""
    windows = [p.match.within_hours for p in policies.policies if p.match.min_node_repeats > 1]
    if any(w is None for w in windows):
        return None
    return timedelta(hours=max((w for w in windows if w is not None), default=0.0))


def _within(budget: RetryBudget) -> str:
    return "" if budget.window_hours is None else f" within {budget.window_hours:g} h"


class _Quiet:
    def notify(self, target: str, message: str) -> None:
        return None


class _AlwaysHealthy:
    def healthy(self, node: str) -> bool:
        return True


class _Trusting:
    def verify(self, action: Action) -> str | None:
        return None


class Controller:
    """Synchronous controller; every collaborator (clock included) is injected."""

    def __init__(
        self,
        policies: PolicySet,
        guard: Guard,
        audit: AuditLog,
        executor: Executor,
        *,
        clock: Callable[[], datetime],
        notifier: Notifier | None = None,
        health: HealthCheck | None = None,
        verifier: Verifier | None = None,
    ) -> None:
        self.policies = policies
        self.guard = guard
        self.audit = audit
        self.executor = executor
        self.clock = clock
        self.notifier = notifier or _Quiet()
        self.health = health or _AlwaysHealthy()
        self.verifier = verifier or _Trusting()
        self._node_causes: dict[tuple[str, str], dict[str, datetime]] = {}
        self._deferred: list[Action] | None = None
        self._handled = 0
        self._memory = _node_memory(policies)

    # events ------------------------------------------------------------------------------
    def handle(self, event: HealEvent) -> list[Action]:
        """Decide and act on one event; returns the actions it created (none for a duplicate)."""
        self._handled += 1
        if self._handled % _PRUNE_EVERY == 0:
            self._prune_node_history()
        history: list[datetime] = []
        node = event.node_id
        if node is not None:
            seen = self._node_causes.setdefault((node, event.diagnosis.category), {})
            seen.setdefault(event.cause_id, self.clock())
            history = list(seen.values())
        created = []
        for policy in self.policies.matching(event.diagnosis, history, self.clock()):
            action = self._decide(policy, event)
            if action is not None:
                created.append(action)
        return created

    def _prune_node_history(self) -> None:
        """Forget node failures no policy can still count, so a long run's memory stays bounded."""
        if self._memory is None:
            return
        start = self.clock() - self._memory
        for key, seen in list(self._node_causes.items()):
            kept = {cause: at for cause, at in seen.items() if at >= start}
            if kept:
                self._node_causes[key] = kept
            else:
                del self._node_causes[key]

    def _decide(self, policy: Policy, event: HealEvent) -> Action | None:
        kind, node, job = policy.action, event.node_id, event.job_ref
        target = node if kind in NODE_KINDS else job
        if target is None:
            return None
        because = [event.cause_id]
        if kind == "requeue_excluding_node" and node is not None:
            because.append(_NODE_CAUSE + node)
        if kind in RETRY_KINDS and self._moved_on(event):
            return None
        if self.audit.get(action_key(kind, target, because)) is not None:
            return None
        message = f"{event.diagnosis.category}: {event.diagnosis.action.advice}"
        note = f"policy {policy.name}: {message}"
        if policy.mode == "dry-run":
            note = f"dry-run: would {kind} {target}; {note}"
        elif policy.mode == "approval":
            note = f"awaiting approval; {note}"
        action, _ = self.audit.propose(kind, target, because, policy.mode, self.clock(), note)
        if kind in RETRY_KINDS:
            refusal = self._retry_refusal(policy, event, action)
            if refusal:
                return self.audit.transition(action.action_id, "refused", self.clock(), refusal)
        return self._by_mode(action)

    def _by_mode(self, action: Action) -> Action:
        """Dry-run asks the guard without spending; approval waits; auto runs now."""
        if action.mode == "dry-run":
            reason = self.guard.check(action.kind, action.target, commit=False)
            if reason:
                return self.audit.transition(action.action_id, "refused", self.clock(), reason)
            return action
        if action.mode == "approval":
            return action
        return self._drive(action)

    def _moved_on(self, event: HealEvent) -> bool:
        job = event.job
        return job is not None and (job.attempts > event.attempt_no or job.status in _MOVED_ON)

    def _retry_refusal(self, policy: Policy, event: HealEvent, action: Action) -> str | None:
        diagnosis = event.diagnosis
        if not diagnosis.retryable or diagnosis.owner == "user":
            return f"not retried: {diagnosis.category} (owner {diagnosis.owner}) is not retryable"
        budget = policy.retry_budget
        assert budget is not None  # the policy validator requires one for retry kinds
        start = datetime.min.replace(tzinfo=UTC)
        if budget.window_hours is not None:
            start = self.clock() - timedelta(hours=budget.window_hours)
        spent = [
            a
            for a in self.audit.for_target(action.target)
            if a.kind in RETRY_KINDS
            and a.state not in ("refused", "rejected")
            and a.action_id != action.action_id
            and a.created_at >= start
        ]
        if len(spent) >= budget.per_job:
            return f"retry budget exhausted: {len(spent)}/{budget.per_job} retries for this job{_within(budget)}"
        suffix = f":{diagnosis.category}"
        same = [a for a in spent if any(c.endswith(suffix) for c in a.because)]
        if len(same) >= budget.per_cause:
            return (
                f"retry budget exhausted: {len(same)}/{budget.per_cause} retries for "
                f"{diagnosis.category} on this job{_within(budget)}"
            )
        return None

    # operators ---------------------------------------------------------------------------
    def approve(self, action_id: str, by: str = "") -> Action:
        """A person approved an ``approval``-mode action: run it now (still through the guard)."""
        return self._drive(self.audit.approve(action_id, self.clock(), by))

    def reject(self, action_id: str, by: str = "", why: str = "") -> Action:
        return self.audit.reject(action_id, self.clock(), by, why)

    def run_approved(self) -> list[Action]:
        """Run actions approved from elsewhere (``heal approve`` in another process, the API)."""
        return [self._drive(a) for a in self.audit.pending(("approved",))]

    def resume(self) -> list[Action]:
        """After a restart: finish what was admitted but not finished; never touch final rows.

        Dry-run rows and approval rows still waiting for a person are left as they are. The guard
        first replays what it admitted recently, so its limits count actions from before the crash.
        """
        since = self.clock() - timedelta(seconds=self.guard.lookback_seconds())
        self.guard.replay(self.audit.since(since, ("executing", "done", "failed")))
        waiting = self.audit.pending(("proposed", "approved", "executing"), active_only=True)
        return [self._drive(a) for a in waiting if a.state != "proposed" or a.mode == "auto"]

    # running -----------------------------------------------------------------------------
    @contextmanager
    def batch(self) -> Iterator[list[Action]]:
        """Decide a burst of events first, then act: one durable commit for all admitted actions.

        Inside, :meth:`handle` decides as usual (guard, ``executing``) but defers the executor
        calls; on leaving, the batch is committed once (every row durable before its side effect,
        one ``fsync`` per batch instead of one per action), then the deferred actions run in
        order, each outcome committed as it comes (process-crash safe, no ``fsync``: see
        :meth:`AuditLog.relaxed`). If the block raises, what was admitted is left ``executing``
        for :meth:`resume`. The list yielded fills with final states. Nested calls join the outer
        batch.
        """
        finished: list[Action] = []
        if self._deferred is not None:
            yield finished
            return
        self._deferred = []
        try:
            with self.audit.batch():  # one durable commit for every proposal and admission
                yield finished
        finally:
            admitted, self._deferred = self._deferred, None
        with self.audit.relaxed():
            finished.extend(self._run(a) for a in admitted)

    def _drive(self, action: Action) -> Action:
        if action.state != "executing":  # an executing row was admitted before a crash
            reason = self.guard.check(action.kind, action.target)
            if reason:
                return self.audit.transition(action.action_id, "refused", self.clock(), reason)
            action = self.audit.transition(action.action_id, "executing", self.clock())
        if self._deferred is not None:
            self._deferred.append(action)
            return action
        self.audit.flush()  # the row is durable before the cluster is touched
        return self._run(action)

    def _run(self, action: Action) -> Action:
        try:
            self._execute(action)
        except (TimeoutError, TemporaryActionError) as exc:
            what = "timed out" if isinstance(exc, TimeoutError) else "temporary error"
            result = f"{what}: {exc or type(exc).__name__}; may be retried"
            return self.audit.transition(action.action_id, "failed", self.clock(), result)
        except PermanentActionError as exc:
            result = f"permanent error: {exc}; not retried"
            return self.audit.transition(action.action_id, "failed", self.clock(), result)
        problem = self.verifier.verify(action)
        if problem:
            result = f"verification failed: {problem}"
            return self.audit.transition(action.action_id, "failed", self.clock(), result)
        if action.kind == "health_check_then_uncordon":
            self.guard.mark_uncordoned(action.target)
        return self.audit.transition(action.action_id, "done", self.clock(), "ok")

    def _execute(self, action: Action) -> None:
        """Rebuild the call from the stored, validated fields; never from free text."""
        kind, target = action.kind, action.target
        if kind == "retry_from_checkpoint":
            self.executor.restart_from_checkpoint(target)
        elif kind == "requeue_excluding_node":
            nodes = [c[len(_NODE_CAUSE) :] for c in action.because if c.startswith(_NODE_CAUSE)]
            self.executor.requeue(target, exclude_nodes=nodes)
        elif kind == "cordon_and_drain":
            self.executor.cordon(target)
            self.executor.drain(target)
        elif kind == "health_check_then_uncordon":
            if not self.health.healthy(target):
                raise PermanentActionError(f"{target} failed its health check; stays cordoned")
            self.executor.uncordon(target)
        elif kind in ("notify", "suggest_fix"):
            self.notifier.notify(target, action.result or kind)
        else:
            raise PermanentActionError(f"unknown action kind {kind!r}")

    # node lifecycle ----------------------------------------------------------------------
    def node_repaired(self, node: str, repair_id: str, mode: ActionMode = "dry-run") -> Action:
        """A cordoned node came back from repair: health-check it, then uncordon.

        ``repair_id`` names the repair (a ticket, an event id) so a repeated report is a no-op.
        """
        kind = "health_check_then_uncordon"
        note = f"dry-run: would {kind} {node}" if mode == "dry-run" else None
        action, new = self.audit.propose(
            kind, node, [f"repair:{repair_id}"], mode, self.clock(), note
        )
        return self._by_mode(action) if new else action
