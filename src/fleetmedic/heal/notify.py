"""Outgoing notifications: generic JSON webhooks and Slack-compatible ones, one message per root
cause, rate-limited, with a message when the cause clears.

* **Deduplicated by root cause, not by text.** The key is ``category|signature|scope`` (the scope
  is what the cause is about: a job or a node). The same cause seen again while its incident is
  open, however its message is worded, is counted and not sent, until ``repeat_after`` has passed
  (then it is sent again with the count, as Alertmanager's ``repeat_interval`` does).
* **Rate-limited per destination** by a token bucket (``burst`` messages at once, then
  ``rate_per_minute``): a storm of distinct causes cannot flood a channel. Refused messages are
  counted, and the next message to that destination says how many were held back. Resolves are
  not rate-limited: there is at most one per message that got through.
* **Resolve** (:meth:`WebhookNotifier.resolve`) sends a "resolved" message to each destination that
  got the incident, and closes it.
* **Delivery** happens on one background thread (the controller must not wait on Slack), with
  retries and exponential backoff on 5xx, 429 (``Retry-After`` honoured) and timeouts; other 4xx
  are not retried. A full queue drops the message and counts it.

The controller calls :meth:`WebhookNotifier.notify` (its ``Notifier`` protocol) for ``notify`` and
``suggest_fix`` actions, with the job as target and a message that starts with the policy and the
category; the signature comes from the cause recorded for that target by
:meth:`WebhookNotifier.notify_incident` (the watch loop calls it for every diagnosis), so the
controller's message and the watch loop's for the same failure are one incident.
"""

from __future__ import annotations

import queue
import random
import re
import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import httpx

Severity = Literal["info", "warning", "critical"]
Format = Literal["generic", "slack"]
_POLICY_MESSAGE = re.compile(r"policy [a-z0-9_-]+: (?P<category>[a-z_]+): ")
_RETRY_CODES = frozenset({408, 425, 429})
_ICONS = {"critical": ":rotating_light:", "warning": ":warning:", "info": ":information_source:"}


@dataclass(frozen=True)
class Destination:
    url: str
    format: Format = "generic"
    rate_per_minute: float = 20.0
    burst: int = 10


def incident_key(category: str, signature: str | None, scope: str) -> str:
    """What makes two notifications the same incident: the root cause and what it is about."""
    return f"{category}|{signature or '-'}|{scope}"


@dataclass
class Incident:
    key: str
    category: str
    signature: str
    scope: str
    severity: Severity
    summary: str
    first_seen: datetime
    last_sent: float
    count: int = 1
    destinations: set[int] = field(default_factory=set)


@dataclass
class _Bucket:
    rate: float
    burst: float
    tokens: float
    stamp: float
    held: int = 0

    def take(self, now: float) -> bool:
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        self.held += 1
        return False


@dataclass(frozen=True)
class _Message:
    destination: int
    body: dict[str, Any]


class WebhookNotifier:
    """Implements the controller's ``Notifier``; :attr:`stats` counts what happened."""

    def __init__(
        self,
        destinations: Sequence[Destination],
        *,
        repeat_after: float = 4 * 3600.0,
        timeout: float = 5.0,
        retries: int = 3,
        backoff: float = 0.5,
        queue_size: int = 1000,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        sleep: Callable[[float], None] = time.sleep,
        warn: Callable[[str], None] | None = None,
        remember: int = 10_000,
    ) -> None:
        self.destinations = list(destinations)
        self.repeat_after = repeat_after
        self.retries = retries
        self.backoff = backoff
        self.clock, self.now, self.sleep = clock, now, sleep
        self.warn = warn or (lambda _message: None)
        self.remember = remember
        self.stats: Counter[str] = Counter()
        self.incidents: OrderedDict[str, Incident] = OrderedDict()
        self._causes: OrderedDict[str, tuple[str, str]] = OrderedDict()
        self._buckets = [
            _Bucket(d.rate_per_minute / 60.0, d.burst, float(d.burst), clock())
            for d in self.destinations
        ]
        self._lock = threading.Lock()
        self._queue: queue.Queue[_Message | None] = queue.Queue(maxsize=queue_size)
        self._http = httpx.Client(timeout=timeout, transport=transport)
        self._rng = random.Random()
        self._worker = threading.Thread(target=self._deliver, name="fleetmedic-notify", daemon=True)
        self._worker.start()

    # the controller's Notifier protocol ----------------------------------------------------------
    def notify(self, target: str, message: str) -> None:
        """A ``notify`` or ``suggest_fix`` action: the incident of the target's recorded cause."""
        found = _POLICY_MESSAGE.search(message)
        with self._lock:
            category, signature = self._causes.get(target, ("", ""))
        if found is not None and found["category"] != category:
            category, signature = found["category"], ""
        category = category or "notice"
        key = incident_key(category, signature, target)
        self.notify_incident(
            key, message, "warning", category=category, signature=signature, scope=target
        )

    # incidents -----------------------------------------------------------------------------------
    def notify_incident(
        self,
        key: str,
        summary: str,
        severity: Severity = "warning",
        *,
        category: str = "",
        signature: str = "",
        scope: str = "",
    ) -> bool:
        """Open (or repeat) the incident ``key``; True when a message was queued for sending."""
        now = self.clock()
        with self._lock:
            if scope and category:
                self._remember_cause(scope, category, signature)
            incident = self.incidents.get(key)
            if incident is not None and now - incident.last_sent < self.repeat_after:
                incident.count += 1
                self.stats["deduplicated"] += 1
                return False
            if incident is None:
                incident = Incident(
                    key, category, signature, scope, severity, summary, self.now(), now
                )
                self._keep(incident)
            else:
                incident.count += 1
                incident.last_sent = now
            return self._fan_out(incident, "firing", now)

    def resolve(self, key: str) -> bool:
        """The cause cleared: tell every destination that heard of it; False if none did."""
        with self._lock:
            incident = self.incidents.pop(key, None)
            if incident is None or not incident.destinations:
                return False
            self.stats["resolved"] += 1
            for index in sorted(incident.destinations):
                self._put(_Message(index, self._body(index, incident, "resolved", 0)))
            return True

    def open_keys(self, scope: str) -> list[str]:
        with self._lock:
            return [k for k, i in self.incidents.items() if i.scope == scope]

    def _remember_cause(self, scope: str, category: str, signature: str) -> None:
        self._causes[scope] = (category, signature)
        self._causes.move_to_end(scope)
        while len(self._causes) > self.remember:
            self._causes.popitem(last=False)

    def _keep(self, incident: Incident) -> None:
        self.incidents[incident.key] = incident
        while len(self.incidents) > self.remember:
            self.incidents.popitem(last=False)

    def _fan_out(self, incident: Incident, status: str, now: float) -> bool:
        queued = False
        for index, bucket in enumerate(self._buckets):
            if not bucket.take(now):
                self.stats["rate_limited"] += 1
                continue
            held, bucket.held = bucket.held, 0
            incident.destinations.add(index)
            queued = self._put(_Message(index, self._body(index, incident, status, held))) or queued
        return queued

    def _put(self, message: _Message) -> bool:
        try:
            self._queue.put_nowait(message)
        except queue.Full:
            self.stats["dropped"] += 1
            return False
        return True

    # payloads ------------------------------------------------------------------------------------
    def _body(self, index: int, incident: Incident, status: str, held: int) -> dict[str, Any]:
        if self.destinations[index].format == "slack":
            return slack_body(incident, status, held)
        return generic_body(incident, status, held, self.now())

    # delivery ------------------------------------------------------------------------------------
    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every queued message was delivered or given up; False on timeout."""
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.01)
        return True

    def close(self, timeout: float = 10.0) -> None:
        self.flush(timeout)
        self._queue.put(None)
        self._worker.join(timeout=1.0)
        self._http.close()

    def _deliver(self) -> None:
        while True:
            message = self._queue.get()
            try:
                if message is None:
                    return
                self._post(message)
            finally:
                self._queue.task_done()

    def _post(self, message: _Message) -> None:
        url = self.destinations[message.destination].url
        for attempt in range(self.retries + 1):
            wait = self._try(url, message.body)
            if wait is None:
                self.stats["sent"] += 1
                return
            if wait < 0 or attempt == self.retries:
                break
            self.stats["retries"] += 1
            self.sleep(wait)
        self.stats["failed"] += 1

    def _try(self, url: str, body: dict[str, Any]) -> float | None:
        """None when delivered; else seconds to wait before a retry, or -1 for "do not retry"."""
        try:
            response = self._http.post(url, json=body)
        except httpx.TimeoutException as exc:
            self.warn(f"notification to {url} timed out ({exc})")
            return self._delay()
        except httpx.TransportError as exc:
            self.warn(f"notification to {url} failed: {type(exc).__name__}: {exc}")
            return self._delay()
        if response.status_code < 300:
            return None
        self.warn(f"notification to {url}: HTTP {response.status_code} {response.text[:200]}")
        if response.status_code in _RETRY_CODES or response.status_code >= 500:
            return max(self._delay(), _retry_after(response))
        return -1.0

    def _delay(self) -> float:
        return self.backoff * (1 + self._rng.random())


def _retry_after(response: httpx.Response) -> float:
    try:
        return min(60.0, max(0.0, float(response.headers.get("Retry-After", "0"))))
    except ValueError:
        return 0.0


def generic_body(incident: Incident, status: str, held: int, now: datetime) -> dict[str, Any]:
    """The generic JSON shape (docs/live.md, "Notifications")."""
    return {
        "source": "fleetmedic",
        "version": 1,
        "status": status,
        "key": incident.key,
        "category": incident.category,
        "signature": incident.signature or None,
        "scope": incident.scope,
        "severity": incident.severity,
        "summary": incident.summary,
        "count": incident.count,
        "first_seen": incident.first_seen.isoformat(),
        "sent_at": now.isoformat(),
        "held_back": held,
    }


def _escape(text: str) -> str:
    """Slack's mrkdwn treats ``&``, ``<`` and ``>`` as markup."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_body(incident: Incident, status: str, held: int) -> dict[str, Any]:
    """Slack's incoming-webhook shape: ``text`` (notifications, fallback) and ``blocks``."""
    word = "RESOLVED" if status == "resolved" else "FIRING"
    icon = ":white_check_mark:" if status == "resolved" else _ICONS[incident.severity]
    title = f"[{word}] {incident.category} on {incident.scope}"
    details = [f"severity {incident.severity}", f"seen {incident.count}x"]
    if incident.signature:
        details.append(f"signature `{_escape(incident.signature)}`")
    if held:
        details.append(f"{held} other notification(s) held back by the rate limit")
    return {
        "text": f"{icon} {_escape(title)}: {_escape(incident.summary)}",
        "blocks": [
            {
                "type": "section",
                "text": {
                    "type": "mrkdwn",
                    "text": f"{icon} *{_escape(title)}*\n{_escape(incident.summary)}",
                },
            },
            {"type": "context", "elements": [{"type": "mrkdwn", "text": " · ".join(details)}]},
        ],
    }
