"""What the simulated cluster shows: Kubernetes events, kernel lines, pod objects, per-rank logs.

Two outputs, both derived from one seeded RNG per attempt so they agree with each other:

* :func:`cluster_events`: the rows a platform's event pipeline would have (stored in ``events``);
* :func:`bundle`: what an engineer would collect for a failed attempt (rank logs, ``dmesg``, the
  pod and its events as ``kubectl get -o json`` prints them), for the diagnosis engine.

The injected category only selects *which* text the cluster prints (``templates.yaml``); no line
says what was injected. Variable parts (ranks, PIDs, PCI addresses, sizes, paths, timestamps) are
randomized and benign noise lines are mixed in, so a diagnoser cannot key on a fixed string.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from importlib import resources
from typing import Any

import yaml

from fleetmedic.sim.config import GPUS_PER_NODE
from fleetmedic.sim.workload import JobSpec

MAX_POD_LOGS = 3  # culprit + two peers: what a person collects, and what keeps diagnosis fast
STEP_LINES = 16
IMAGE = "registry.internal/ml/{repo}:{tag}"


@dataclass(frozen=True, slots=True)
class FailureContext:
    """One interrupted attempt, as the emitter needs it. ``category`` is the injected truth."""

    job: JobSpec
    attempt: int
    nodes: tuple[str, ...]
    start: float
    stop: float  # when the cause happened (progress stopped)
    end: float  # when the attempt was over
    category: str
    culprit: int  # index in ``nodes`` of the node where the cause happened
    xid: str | None
    user_side: bool
    resumed_step: int
    origin: datetime
    seed: int
    restart: float


@dataclass(frozen=True, slots=True)
class EventRow:
    """One stored event (times in simulated seconds)."""

    ts: float
    source: str
    kind: str
    obj: str
    reason: str
    message: str
    severity: str
    job_id: str | None = None
    attempt: int | None = None


@dataclass
class Bundle:
    """What one failed attempt left behind: logs by file name, Kubernetes objects by file name."""

    logs: dict[str, bytes] = field(default_factory=dict)
    objects: dict[str, Any] = field(default_factory=dict)


@cache
def templates() -> dict[str, Any]:
    text = resources.files("fleetmedic.sim").joinpath("templates.yaml").read_text("utf-8")
    data: dict[str, Any] = yaml.safe_load(text)
    return data


class _Fmt(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def _rng(ctx: FailureContext) -> random.Random:
    return random.Random(f"{ctx.seed}/{ctx.job.job_id}/{ctx.attempt}")


class _Clock:
    """Formats simulated seconds the way each component prints time."""

    def __init__(self, origin: datetime) -> None:
        self.origin = origin

    def at(self, t: float) -> datetime:
        return self.origin + timedelta(seconds=t)

    def py(self, t: float) -> str:
        d = self.at(t)
        return d.strftime("%Y-%m-%d %H:%M:%S") + f",{d.microsecond // 1000:03d}"

    def iso(self, t: float) -> str:
        return self.at(t).strftime("%Y-%m-%dT%H:%M:%SZ")

    def glog(self, t: float) -> tuple[str, str]:
        d = self.at(t)
        return d.strftime("%m%d"), d.strftime("%H:%M:%S") + f".{d.microsecond:06d}"

    def dmesg(self, t: float) -> str:
        d = self.at(t)
        return "[" + d.strftime("%a %b ") + f"{d.day:2d} " + d.strftime("%H:%M:%S %Y") + "]"


def _names(ctx: FailureContext) -> tuple[str, str, list[str]]:
    job = ctx.job
    pods = [f"{job.name}-worker-{i}" for i in range(len(ctx.nodes))]
    return job.team, job.name, pods


def _values(ctx: FailureContext, rng: random.Random, clock: _Clock) -> _Fmt:
    """The random variable parts every template may use."""
    job = ctx.job
    host = ctx.nodes[ctx.culprit] if ctx.nodes else "unassigned"
    per_node = min(job.gpus, GPUS_PER_NODE)
    local = rng.randrange(per_node)
    repo = rng.choice(["llm", "vlm", "asr", "rec", "sft", "rlhf"])
    tag = f"v{rng.randint(1, 9)}.{rng.randint(0, 30)}"
    glogdate, glogtime = clock.glog(ctx.stop)
    timeout_ms = 600000
    values = _Fmt(
        host=host,
        rank=ctx.culprit * GPUS_PER_NODE + local,
        local_rank=local,
        gpu=local,
        world=job.gpus,
        pid=rng.randint(1000, 60000),
        pid2=rng.randint(1000, 60000),
        tid=rng.randint(1000, 60000),
        ip=f"10.{rng.randint(0, 63)}.{rng.randint(0, 255)}.{rng.randint(2, 254)}",
        peer_ip=f"10.{rng.randint(0, 63)}.{rng.randint(0, 255)}.{rng.randint(2, 254)}",
        port=rng.randint(30000, 60000),
        hex=f"{rng.getrandbits(48):012x}",
        bus=f"{rng.choice([18, 29, 58, 90, 171, 186, 219, 232]):02x}",
        repo=repo,
        tag=tag,
        image=IMAGE.format(repo=repo, tag=tag),
        job=job.name,
        ns=job.team,
        pod=f"{job.name}-worker-{ctx.culprit}",
        line=rng.randint(100, 700),
        line2=rng.randint(20, 400),
        alloc=f"{rng.uniform(0.25, 8):.2f}",
        free_mib=rng.randint(3, 900),
        d1=rng.randint(0, 9),
        d2=rng.randint(10, 99),
        seq=rng.randint(1000, 900000),
        op=rng.choice(["ALLREDUCE", "ALLGATHER", "_REDUCE_SCATTER_BASE", "BROADCAST"]),
        numel=rng.choice([1, 1048576, 262144000, 632043520]),
        timeout_ms=timeout_ms,
        ran_ms=timeout_ms + rng.randint(5, 400),
        glogdate=glogdate,
        glogtime=glogtime,
        dmesg_ts=clock.dmesg(ctx.stop),
        ts=clock.py(ctx.stop),
        workers=rng.choice([4, 8, 12, 16]),
        shard=rng.randint(0, 1023),
        dataset=rng.choice(["pile-v2", "code-mix", "laion-subset", "asr-en"]),
        module=rng.choice(["apex", "flash_attn", "xformers", "transformer_engine"]),
        mem=f"{rng.uniform(60, 78):.1f}",
        power=rng.randint(85, 110),
        vm=rng.randint(10**8, 9 * 10**8),
        rss=rng.randint(10**8, 5 * 10**8),
        pgt=rng.randint(100000, 900000),
        master=f"{job.name}-worker-0",
        uuid=f"{rng.getrandbits(128):032x}",
        pci=f"0000:{rng.choice([18, 29, 58, 90, 171, 186, 219, 232]):02x}:00",
        childtime=clock.at(ctx.stop).strftime("%Y-%m-%d_%H:%M:%S"),
        resource=rng.choice(["ephemeral-storage", "memory"]),
        threshold="10Gi",
        available=f"{rng.randint(1, 9)}Gi",
        usage=f"{rng.randint(20, 90)}Gi",
        nodes=0,
        busy=0,
        other=0,
        step=ctx.resumed_step,
        secs=f"{rng.uniform(5, 60):.1f}",
    )
    values["seq_prev"] = int(values["seq"]) - 1
    return values


def _peer_count(ctx: FailureContext) -> int:
    return len(ctx.nodes)


# -- cluster events (stored) -------------------------------------------------------------------
def cluster_events(ctx: FailureContext) -> list[EventRow]:
    """Events and kernel lines the cluster records for this interrupted attempt."""
    rng = _rng(ctx)
    clock = _Clock(ctx.origin)
    values = _values(ctx, rng, clock)
    spec = templates()["categories"][ctx.category]
    ns, name, pods = _names(ctx)
    out: list[EventRow] = []
    key = (ctx.job.job_id, ctx.attempt)
    for i, line in enumerate(_dmesg_lines(ctx, spec, values)):
        out.append(
            EventRow(
                ctx.stop + i * 0.001,
                "kernel",
                "kernel_log",
                f"node/{values['host']}",
                _kernel_reason(line),
                line,
                "error",
                *key,
            )
        )
    for i, ev in enumerate(_event_items(ctx, spec, values, rng)):
        obj = ev["involvedObject"]
        ref = (
            f"{obj['kind'].lower()}/{obj['namespace']}/{obj['name']}"
            if obj.get("namespace")
            else f"{obj['kind'].lower()}/{obj['name']}"
        )
        sev = "warning" if ev["type"] == "Warning" else "info"
        out.append(
            EventRow(
                ctx.stop + i * 0.001,
                "k8s",
                "k8s_event",
                ref,
                ev["reason"],
                ev["message"],
                sev,
                *key,
            )
        )
    container = spec.get("container")
    if container:
        out.append(
            EventRow(
                ctx.end,
                "k8s",
                "container_terminated",
                f"pod/{ns}/{pods[ctx.culprit] if pods else name}",
                container["reason"],
                f"container pytorch terminated: {container['reason']} "
                f"(exit code {container['exitCode']})",
                "error",
                *key,
            )
        )
    return out


def _kernel_reason(line: str) -> str:
    if "Xid" in line:
        return "NVRM_Xid"
    if "oom" in line.lower() or "out of memory" in line:
        return "OOMKill"
    return "KernelError"


def _dmesg_lines(ctx: FailureContext, spec: dict[str, Any], values: _Fmt) -> list[str]:
    lines = spec.get("dmesg") or []
    if not lines:
        return []
    if ctx.category == "gpu_hardware" and ctx.xid:
        xid = spec["xid"][ctx.xid]
        values = _Fmt(values, xid=ctx.xid, xid_text=xid["text"].format_map(values))
    return [str(line).format_map(values) for line in lines]


def _event_items(
    ctx: FailureContext, spec: dict[str, Any], values: _Fmt, rng: random.Random
) -> list[dict[str, Any]]:
    """Kubernetes Event objects (``kubectl get events -o json`` items) of this failure."""
    ns, name, pods = _names(ctx)
    clock = _Clock(ctx.origin)
    items = []
    pull = templates()["user_pull_errors" if ctx.user_side else "pull_errors"]
    values = _Fmt(values, pull_error=rng.choice(pull).format_map(values))
    if ctx.category == "scheduling":
        total = 16 + rng.randrange(500)
        values.update(nodes=total, busy=total - 4, other=4)
    for i, ev in enumerate(spec.get("events") or []):
        kind = {"pod": "Pod", "node": "Node", "job": "Job"}[ev["object"]]
        target = {
            "Pod": pods[ctx.culprit] if pods else f"{name}-worker-0",
            "Node": values["host"],
            "Job": name,
        }[kind]
        ts = clock.iso(ctx.stop + i)
        involved: dict[str, Any] = {"apiVersion": "v1", "kind": kind, "name": target}
        if kind != "Node":
            involved["namespace"] = ns
        items.append(
            {
                "apiVersion": "v1",
                "kind": "Event",
                "type": ev["type"],
                "reason": ev["reason"],
                "message": str(ev["message"]).format_map(values),
                "involvedObject": involved,
                "firstTimestamp": ts,
                "lastTimestamp": ts,
                "count": 1,
                "source": {"component": ev["component"], "host": values["host"]},
                "metadata": {"name": f"{target}.{rng.getrandbits(64):016x}", "namespace": ns},
            }
        )
    return items


# -- bundle (collected for diagnosis) ----------------------------------------------------------
def bundle(ctx: FailureContext) -> Bundle:
    """The logs and objects a person would collect for this failed attempt."""
    rng = _rng(ctx)
    clock = _Clock(ctx.origin)
    values = _values(ctx, rng, clock)
    tpl = templates()
    spec = tpl["categories"][ctx.category]
    out = Bundle()
    dmesg = _dmesg_lines(ctx, spec, values)
    events = _event_items(ctx, spec, values, rng)
    collect = tpl["collection"]
    keep_culprit = rng.random() < collect["culprit_log"]
    if rng.random() >= collect["dmesg"]:
        dmesg = []
    for pod_index in _log_pods(ctx, rng):
        if pod_index == ctx.culprit and not keep_culprit and len(ctx.nodes) > 1:
            continue
        text = _pod_log(ctx, spec, values, clock, rng, pod_index)
        if text is not None:
            out.logs[f"{ctx.job.name}-worker-{pod_index}.log"] = text.encode("utf-8")
    if dmesg:
        out.logs[f"dmesg-{values['host']}.log"] = ("\n".join(dmesg) + "\n").encode("utf-8")
    out.objects[f"pod-{values['pod']}.json"] = _pod_object(ctx, spec, values, clock)
    if events:
        out.objects["events.json"] = {"apiVersion": "v1", "kind": "List", "items": events}
    if ctx.category == "timeout":
        out.objects[f"job-{ctx.job.name}.json"] = _job_object(ctx, clock)
    if ctx.category == "node_failure":
        out.objects[f"node-{values['host']}.json"] = _node_object(ctx, values, clock)
    return out


def _log_pods(ctx: FailureContext, rng: random.Random) -> list[int]:
    """Which pods' logs are collected: the culprit's and up to two peers'."""
    if not ctx.nodes:
        return []
    others = [i for i in range(len(ctx.nodes)) if i != ctx.culprit]
    peers = rng.sample(others, min(len(others), MAX_POD_LOGS - 1))
    return [ctx.culprit, *sorted(peers)]


def _pod_log(
    ctx: FailureContext,
    spec: dict[str, Any],
    values: _Fmt,
    clock: _Clock,
    rng: random.Random,
    pod: int,
) -> str | None:
    """One pod's log: start-up, steps until the failure, then what this pod saw of it."""
    tpl = templates()
    culprit = pod == ctx.culprit
    peers_mode = spec.get("peers", "silent")
    if ctx.category == "node_failure" and culprit:
        return None  # the node is gone: its pods' logs cannot be fetched
    if spec.get("waiting") or ctx.category == "scheduling":
        return None  # the container never started
    if spec.get("progress") == "none" and not (culprit or peers_mode == "same"):
        return None
    local = values["local_rank"] if culprit else rng.randrange(min(ctx.job.gpus, GPUS_PER_NODE))
    own = _Fmt(
        values,
        rank=pod * GPUS_PER_NODE + local,
        local_rank=local,
        gpu=local,
        host=ctx.nodes[pod],
        pid=rng.randint(1000, 60000),
    )
    lines: list[str] = []
    t0 = ctx.start + 2.0
    for i, line in enumerate(tpl["preamble"]):
        lines.append(line.format_map(_Fmt(own, ts=clock.py(t0 + i * 0.4))))
    first_step = ctx.start + ctx.restart
    if ctx.resumed_step:
        lines.append(
            tpl["resume"].format_map(_Fmt(own, ts=clock.py(first_step - 1), step=ctx.resumed_step))
        )
    if spec.get("progress") != "none":
        lines.extend(_steps(ctx, own, clock, rng, first_step))
    lines.extend(_ending(ctx, spec, own, clock, rng, culprit, peers_mode))
    return "\n".join(lines) + "\n"


def _steps(
    ctx: FailureContext, own: _Fmt, clock: _Clock, rng: random.Random, first_step: float
) -> list[str]:
    """Step lines (every ~30-60 s) ending at the stop, with noise and checkpoint lines."""
    tpl = templates()
    interval = rng.uniform(30, 60)
    last = ctx.end if ctx.category == "timeout" else ctx.stop
    if last <= first_step:
        return []
    count = min(STEP_LINES, int((last - first_step) / interval) + 1)
    step0 = ctx.resumed_step + int((last - first_step) / interval) * 10
    out = []
    for k in range(count, 0, -1):
        t = last - k * interval + rng.uniform(0, 0.5)
        if t < first_step:
            continue
        step = step0 - k * 10
        out.append(
            tpl["step"].format_map(
                _Fmt(
                    own,
                    ts=clock.py(t),
                    step=step,
                    loss=f"{2.2 - step * 1e-5:.4f}",
                    lr=f"{3e-4:.1e}",
                    gnorm=f"{rng.uniform(0.2, 1.5):.3f}",
                    tps=rng.randint(2000, 9000),
                )
            )
        )
        if rng.random() < 0.25:
            noise = rng.choice(tpl["noise"])
            gd, gt = clock.glog(t + 1)
            out.append(
                noise.format_map(
                    _Fmt(
                        own,
                        ts=clock.py(t + 1),
                        glogdate=gd,
                        glogtime=gt,
                        ch=rng.randint(0, 9),
                        next=(int(own["rank"]) + 1) % ctx.job.gpus,
                        next_gpu=(int(own["gpu"]) + 1) % 8,
                        tps=rng.randint(2000, 9000),
                        mfu=rng.randint(30, 55),
                        ms=rng.randint(5, 900),
                        secs=f"{rng.uniform(1, 9):.2f}",
                    )
                )
            )
    return out


def _ending(
    ctx: FailureContext,
    spec: dict[str, Any],
    own: _Fmt,
    clock: _Clock,
    rng: random.Random,
    culprit: bool,
    peers_mode: str,
) -> list[str]:
    tpl = templates()
    out: list[str] = []
    if ctx.category == "hang":
        out.extend(_monitor(ctx, spec, own, clock))
        out.extend(_block(tpl["peers"]["sigterm"], own, clock, ctx.end))
        return out
    if ctx.category == "timeout":
        return _block(tpl["peers"]["sigterm"], own, clock, ctx.end)
    blocks = spec.get("culprit") or []
    if (culprit or peers_mode == "same") and blocks:
        values = own
        if ctx.category == "gpu_hardware" and ctx.xid:
            values = _Fmt(own, cuda_error=spec["xid"][ctx.xid]["cuda"])
        out.extend(_block(rng.choice(blocks), values, clock, ctx.stop + 1.0))
        if spec.get("launcher") is not None:
            out.extend(
                _block(
                    tpl["launcher"], _Fmt(values, exitcode=spec["launcher"]), clock, ctx.stop + 2.0
                )
            )
        return out
    if culprit:
        return out
    delay = {
        "watchdog": 600.0 + rng.uniform(0, 5),
        "nccl_error": rng.uniform(2, 30),
        "sigterm": rng.uniform(1, 5),
    }.get(peers_mode)
    if delay is None:
        return out
    return _block(tpl["peers"][peers_mode], own, clock, ctx.stop + delay)


def _monitor(ctx: FailureContext, spec: dict[str, Any], own: _Fmt, clock: _Clock) -> list[str]:
    """A stuck job's GPUs spin: the sidecar keeps logging while the steps have stopped."""
    span = ctx.end - ctx.stop
    every = max(60.0, span / 30)
    out, t = [], ctx.stop + every
    while t < ctx.end:
        out.append(spec["monitor"].format_map(_Fmt(own, ts=clock.py(t))))
        t += every
    return out


def _block(text: str, values: _Fmt, clock: _Clock, t: float) -> list[str]:
    gd, gt = clock.glog(t)
    filled = text.format_map(
        _Fmt(values, ts=clock.py(t), glogdate=gd, glogtime=gt, dmesg_ts=clock.dmesg(t))
    )
    return filled.splitlines()


def _pod_object(
    ctx: FailureContext, spec: dict[str, Any], values: _Fmt, clock: _Clock
) -> dict[str, Any]:
    """The culprit's pod as ``kubectl get pod -o json`` prints it after the failure."""
    ns, _, _ = _names(ctx)
    per_node = min(ctx.job.gpus, GPUS_PER_NODE)
    status: dict[str, Any] = {"phase": "Failed", "startTime": clock.iso(ctx.start)}
    state: dict[str, Any] = {}
    if spec.get("waiting"):
        status["phase"] = "Pending"
        state = {"waiting": {k: str(v).format_map(values) for k, v in spec["waiting"].items()}}
    elif spec.get("container"):
        term = dict(spec["container"])
        term.update(startedAt=clock.iso(ctx.start), finishedAt=clock.iso(ctx.end))
        state = {"terminated": term}
    for key, value in (spec.get("pod") or {}).items():
        status[key] = str(value).format_map(values)
    if state:
        status["containerStatuses"] = [
            {
                "name": "pytorch",
                "ready": False,
                "restartCount": 0,
                "image": values["image"],
                "state": state,
            }
        ]
    spec_obj: dict[str, Any] = {
        "containers": [
            {
                "name": "pytorch",
                "image": values["image"],
                "resources": {"limits": {"nvidia.com/gpu": str(per_node)}},
            }
        ],
        "priorityClassName": {100: "prod-high", 50: "batch-normal"}.get(
            ctx.job.priority, "batch-low"
        ),
    }
    if ctx.category != "scheduling":
        spec_obj["nodeName"] = values["host"]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": values["pod"],
            "namespace": ns,
            "labels": {"app": ctx.job.name, "team": ctx.job.team},
            "creationTimestamp": clock.iso(ctx.start),
        },
        "spec": spec_obj,
        "status": status,
    }


def _job_object(ctx: FailureContext, clock: _Clock) -> dict[str, Any]:
    ns, name, _ = _names(ctx)
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "namespace": ns},
        "status": {
            "conditions": [
                {
                    "type": "Failed",
                    "status": "True",
                    "reason": "DeadlineExceeded",
                    "message": "Job was active longer than specified deadline",
                    "lastTransitionTime": clock.iso(ctx.end),
                }
            ]
        },
    }


def _node_object(ctx: FailureContext, values: _Fmt, clock: _Clock) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": values["host"]},
        "status": {
            "conditions": [
                {
                    "type": "Ready",
                    "status": "Unknown",
                    "reason": "NodeStatusUnknown",
                    "message": "Kubelet stopped posting node status.",
                    "lastTransitionTime": clock.iso(ctx.stop + 40),
                }
            ]
        },
    }


def to_json(obj: Any) -> str:
    """How ``kubectl get -o json`` prints an object (two-space indent)."""
    return json.dumps(obj, indent=2)


def utc(origin: datetime, t: float) -> datetime:
    return (origin + timedelta(seconds=t)).astimezone(UTC)
