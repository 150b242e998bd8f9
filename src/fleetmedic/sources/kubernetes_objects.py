"""Turn Kubernetes objects (as ``kubectl get -o json|yaml`` prints them) into fact lines.

Each fact is one line of text in the phrasing ``kubectl describe``/``kubectl get events`` use
("Reason: OOMKilled", "Warning FailedScheduling pod/x 0/8 nodes are available: ..."), so the same
signatures match a pasted describe output and a JSON object. Only what can explain a failure is kept:
abnormal container states, conditions that are not healthy, events.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from fleetmedic.model.inputs import FactLine

# Node conditions whose healthy status is "False"; every other condition is healthy when "True".
_NODE_PRESSURE = {"MemoryPressure", "DiskPressure", "PIDPressure", "NetworkUnavailable"}


def parse_time(value: Any) -> datetime | None:
    """Kubernetes times are RFC 3339 strings; anything else is ignored rather than guessed."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def _ref(obj: dict[str, Any], default_kind: str) -> str:
    meta = obj.get("metadata") or {}
    kind = str(obj.get("kind") or default_kind).lower()
    name = str(meta.get("name") or "?")
    namespace = meta.get("namespace")
    return f"{kind}/{namespace}/{name}" if namespace else f"{kind}/{name}"


def _clean(text: Any) -> str:
    return " ".join(str(text).split()) if text is not None else ""


def _container_facts(ref: str, status: dict[str, Any]) -> Iterator[tuple[str, datetime | None]]:
    name = status.get("name", "?")
    for which, label in (("state", "State"), ("lastState", "Last State")):
        state = status.get(which) or {}
        for phase, detail in state.items():
            if not isinstance(detail, dict) or phase == "running":
                continue
            parts = [f"{ref} container {name} {label}: {phase.capitalize()}"]
            if detail.get("reason"):
                parts.append(f"Reason: {detail['reason']}")
            if detail.get("exitCode") is not None:
                parts.append(f"Exit Code: {detail['exitCode']}")
            if detail.get("signal") is not None:
                parts.append(f"Signal: {detail['signal']}")
            if detail.get("message"):
                parts.append(f"Message: {_clean(detail['message'])}")
            clean_exit = detail.get("exitCode") == 0 and not detail.get("message")
            if phase == "terminated" and clean_exit and detail.get("reason") in (None, "Completed"):
                continue
            yield " ".join(parts), parse_time(detail.get("finishedAt"))


def _conditions(
    ref: str, status: dict[str, Any], kind: str
) -> Iterator[tuple[str, datetime | None]]:
    for cond in status.get("conditions") or []:
        if not isinstance(cond, dict):
            continue
        ctype, cstatus = str(cond.get("type", "")), str(cond.get("status", ""))
        healthy = cstatus == ("False" if ctype in _NODE_PRESSURE else "True")
        if kind == "node" and healthy:
            continue
        if kind == "pod" and ctype in {"Ready", "ContainersReady", "Initialized"}:
            continue
        if kind == "pod" and ctype == "PodScheduled" and cstatus == "True":
            continue
        if kind not in {"node", "pod"} and cstatus != "True":
            continue
        text = f"{ref} condition {ctype}={cstatus}"
        if cond.get("reason"):
            text += f" Reason: {cond['reason']}"
        if cond.get("message"):
            text += f" Message: {_clean(cond['message'])}"
        yield text, parse_time(cond.get("lastTransitionTime") or cond.get("lastUpdateTime"))


def _pod(obj: dict[str, Any]) -> Iterator[tuple[str, datetime | None]]:
    ref = _ref(obj, "pod")
    status = obj.get("status") or {}
    spec = obj.get("spec") or {}
    if status.get("reason") or status.get("phase") in {"Failed", "Unknown"}:
        text = f"{ref} Status: {status.get('phase', '?')}"
        if status.get("reason"):
            text += f" Reason: {status['reason']}"
        if status.get("message"):
            text += f" Message: {_clean(status['message'])}"
        yield text, None
    yield from _conditions(ref, status, "pod")
    for key in ("initContainerStatuses", "containerStatuses"):
        for cstatus in status.get(key) or []:
            if isinstance(cstatus, dict):
                yield from _container_facts(ref, cstatus)
    if spec.get("nodeName") and status.get("phase") in {"Failed", "Unknown"}:
        yield f"{ref} Node: {spec['nodeName']}", None


def _event(obj: dict[str, Any]) -> Iterator[tuple[str, datetime | None]]:
    involved = obj.get("involvedObject") or obj.get("regarding") or {}
    kind = str(involved.get("kind", "object")).lower()
    target = f"{kind}/{involved.get('name', '?')}"
    message = _clean(obj.get("message") or obj.get("note") or "")
    etype = obj.get("type", "Normal")
    reason = obj.get("reason", "")
    ts = (
        parse_time(obj.get("lastTimestamp"))
        or parse_time(obj.get("eventTime"))
        or parse_time(obj.get("deprecatedLastTimestamp"))
        or parse_time(obj.get("firstTimestamp"))
        or parse_time((obj.get("metadata") or {}).get("creationTimestamp"))
    )
    source = obj.get("source") or {}
    origin = f" (from {source.get('component')})" if source.get("component") else ""
    yield f"{etype} {reason} {target} {message}{origin}", ts


def _node(obj: dict[str, Any]) -> Iterator[tuple[str, datetime | None]]:
    ref = _ref(obj, "node")
    yield from _conditions(ref, obj.get("status") or {}, "node")
    spec = obj.get("spec") or {}
    if spec.get("unschedulable"):
        yield f"{ref} Unschedulable: true (cordoned)", None
    for taint in spec.get("taints") or []:
        if isinstance(taint, dict) and taint.get("key", "").startswith("node.kubernetes.io/"):
            yield (
                f"{ref} Taints: {taint.get('key')}:{taint.get('effect', '')}",
                parse_time(taint.get("timeAdded")),
            )


def _workload(obj: dict[str, Any]) -> Iterator[tuple[str, datetime | None]]:
    """Jobs and the ML operators' CRDs (PyTorchJob, MPIJob, Kueue Workload, Volcano Job, RayJob)."""
    ref = _ref(obj, "job")
    status = obj.get("status") or {}
    yield from _conditions(ref, status, "workload")
    state = status.get("state")
    if isinstance(state, dict) and state.get("phase"):
        text = f"{ref} Phase: {state['phase']}"
        if state.get("reason"):
            text += f" Reason: {state['reason']}"
        if state.get("message"):
            text += f" Message: {_clean(state['message'])}"
        yield text, parse_time(state.get("lastTransitionTime"))
    if isinstance(status.get("phase"), str) and status.get("message"):
        # Argo Workflows, Spark and other operators: a phase and a free-text message.
        yield (
            f"{ref} Phase: {status['phase']} Message: {_clean(status['message'])}",
            parse_time(status.get("finishedAt")),
        )
    for key in ("jobStatus", "jobDeploymentStatus"):
        if status.get(key):
            yield f"{ref} {key}: {status[key]} Message: {_clean(status.get('message'))}", None


_HANDLERS = {"pod": _pod, "event": _event, "node": _node}


def facts_from_object(obj: Any) -> Iterator[tuple[str, datetime | None]]:
    """Facts of one object, descending into ``List``/``EventList`` items."""
    if isinstance(obj, list):
        for item in obj:
            yield from facts_from_object(item)
        return
    if not isinstance(obj, dict):
        return
    if isinstance(obj.get("items"), list):
        yield from facts_from_object(obj["items"])
        return
    kind = str(obj.get("kind", "")).lower()
    handler = _HANDLERS.get(kind)
    if handler is None and ("involvedObject" in obj or "regarding" in obj):
        handler = _event
    if handler is None and isinstance(obj.get("status"), dict):
        handler = _workload
    if handler is not None:
        yield from handler(obj)


def looks_like_kubernetes(obj: Any) -> bool:
    """True for a Kubernetes object or list of them (what ``kubectl get -o`` prints)."""
    if isinstance(obj, list):
        return bool(obj) and all(looks_like_kubernetes(item) for item in obj[:5])
    if not isinstance(obj, dict):
        return False
    if "kind" in obj and ("apiVersion" in obj or "metadata" in obj or "items" in obj):
        return True
    return "involvedObject" in obj or "regarding" in obj


def to_fact_lines(obj: Any, raw_text: str) -> list[FactLine]:
    """Facts with the line of the source text they come from (for evidence ``file:line``)."""
    lines: list[FactLine] = []
    for text, ts in facts_from_object(obj):
        lines.append(FactLine(text=text, line=_locate(raw_text, text), ts=ts))
    return lines


def _locate(raw_text: str, fact: str) -> int:
    """Line of the raw text holding the most specific word of the fact; 1 if not found."""
    for needle in _needles(fact):
        pos = raw_text.find(needle)
        if pos >= 0:
            return raw_text.count("\n", 0, pos) + 1
    return 1


def _needles(fact: str) -> Iterator[str]:
    for marker in ("Message: ", "Reason: "):
        if marker in fact:
            value = fact.split(marker, 1)[1].split(" Message: ")[0]
            yield value[:60]
            yield value.split()[0] if value.split() else value
    words = fact.split()
    if len(words) > 3:
        yield " ".join(words[3:])[:60]
