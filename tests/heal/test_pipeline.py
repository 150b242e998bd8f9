"""The event pipeline: duplicates, late attempts, bad lines, crashes, approvals, back-pressure,
shutdown, metrics, and ``fleetmedic heal run`` end to end."""

from __future__ import annotations

import asyncio
import io
import json
import os
import signal
import socket
import threading
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from healkit import AUTO_POLICIES, Crash, FakeClock, Rig, event
from typer.testing import CliRunner

from fleetmedic.cli import app
from fleetmedic.heal.audit import AuditLog
from fleetmedic.heal.controller import HealEvent
from fleetmedic.heal.events import Incoming, Malformed, parse_event, read_events
from fleetmedic.heal.pipeline import Pipeline, Summary
from fleetmedic.heal.policy import parse_policies
from fleetmedic.heal.state import ControlStore

POLICIES = parse_policies(AUTO_POLICIES)
APPROVE_CORDONS = parse_policies(
    AUTO_POLICIES.replace(
        "action: cordon_and_drain\n    mode: auto", "action: cordon_and_drain\n    mode: approval"
    )
)


def line(ev: HealEvent, **extra: object) -> str:
    body: dict[str, object] = {"diagnosis": ev.diagnosis.model_dump(mode="json")}
    if ev.job is not None:
        body["job"] = ev.job.model_dump(mode="json")
    if ev.node is not None:
        body["node"] = ev.node
    body.update(extra)
    return json.dumps(body)


def jsonl(*lines: str) -> io.BytesIO:
    return io.BytesIO("".join(f"{text}\n" for text in lines).encode())


def incoming(ev: HealEvent) -> Incoming:
    item = parse_event(line(ev))
    assert isinstance(item, Incoming)
    return item


def run(pipeline: Pipeline, *lines: str) -> Summary:
    return asyncio.run(pipeline.run(read_events(jsonl(*lines), "ev.jsonl")))


def calls(rig: Rig) -> Counter[tuple[str, str]]:
    return Counter((c[0], c[1]) for c in rig.executor.calls)


def test_duplicated_events_act_once(rig: Rig) -> None:
    hw = line(event("gpu_hardware", node="n3"))
    summary = run(Pipeline(rig.controller), hw, hw, line(event("nccl_comm", "job-2")), hw)
    assert (summary.received, summary.duplicates, summary.handled) == (4, 2, 2)
    assert calls(rig) == {
        ("cordon", "n3"): 1,
        ("drain", "n3"): 1,
        ("requeue", "job-1"): 1,
        ("restart_from_checkpoint", "job-2"): 1,
    }
    assert len(rig.audit.all()) == 3 and summary.actions == {"done": 3}


def test_duplicates_the_recent_set_forgot_still_act_once(rig: Rig) -> None:
    """The set is only an optimisation: the controller's idempotency keys are the guarantee."""
    a, b = line(event("gpu_hardware", node="n3")), line(event("nccl_comm", "job-2"))
    summary = run(Pipeline(rig.controller, recent=1), a, b, a, b)
    assert summary.duplicates == 0 and summary.handled == 4
    assert sum(calls(rig).values()) == 4 and len(rig.audit.all()) == 3


def test_event_id_names_a_duplicate_even_if_the_content_differs(rig: Rig) -> None:
    first = line(event("nccl_comm", "job-2"), event_id="e-1")
    resent = line(event("nccl_comm", "job-2", node="n5"), event_id="e-1")
    assert run(Pipeline(rig.controller), first, resent).duplicates == 1


def retries(control: ControlStore, clock: FakeClock, *lines: str) -> tuple[Rig, set[str]]:
    no_cooldown = parse_policies(
        AUTO_POLICIES.replace("cooldown_seconds: 60", "cooldown_seconds: 0")
    )
    rig = Rig(control, no_cooldown, clock)
    run(Pipeline(rig.controller), *lines)
    causes = {c for a in rig.audit.all() if a.kind == "retry_from_checkpoint" for c in a.because}
    return rig, causes


def test_a_late_event_for_an_older_attempt_is_not_retried(clock: FakeClock) -> None:
    first = line(event("nccl_comm", "job-2", attempt=1, node="n1"))
    second = line(event("nccl_comm", "job-2", attempt=2, node="n1"))
    with ControlStore() as a, ControlStore() as b:
        in_order, in_order_causes = retries(a, clock, first, second)
        late, late_causes = retries(b, clock, second, first)
    assert in_order_causes == {"job-2#1:nccl_comm", "job-2#2:nccl_comm"}
    assert late_causes == {"job-2#2:nccl_comm"}  # attempt 1 was already superseded
    assert calls(in_order)[("restart_from_checkpoint", "job-2")] == 2
    assert calls(late)[("restart_from_checkpoint", "job-2")] == 1


def test_a_malformed_line_in_the_middle_is_counted_and_the_rest_processed(rig: Rig) -> None:
    warnings: list[str] = []
    pipeline = Pipeline(rig.controller, warn=warnings.append)
    summary = run(
        pipeline, line(event("nccl_comm", "job-2")), '{"half": ', line(event("storage_io", "job-3"))
    )
    assert (summary.malformed, summary.handled) == (1, 2)
    assert warnings == ["ev.jsonl:2: skipped: not JSON: Expecting value: line 1 column 10 (char 9)"]
    assert calls(rig) == {
        ("restart_from_checkpoint", "job-2"): 1,
        ("restart_from_checkpoint", "job-3"): 1,
    }


def test_warnings_stop_after_the_cap_but_counting_goes_on(rig: Rig) -> None:
    warnings: list[str] = []
    summary = run(Pipeline(rig.controller, warn=warnings.append, max_warnings=3), *["x"] * 10)
    assert summary.malformed == 10 and len(warnings) == 4
    assert warnings[-1] == "further malformed events are counted, not shown"


def test_a_crash_mid_batch_then_a_restart_repeats_nothing(tmp_path: Path, clock: FakeClock) -> None:
    db = tmp_path / "heal.sqlite"
    lines = [
        line(event("nccl_comm", "job-2", node="n1")),
        line(event("gpu_hardware", "job-1", node="n3")),
        line(event("storage_io", "job-4", node="n2")),
    ]
    with ControlStore(db) as control:
        rig = Rig(control, POLICIES, clock)
        executor = rig.executor
        executor.fail[("requeue", "job-1")] = Crash("process killed")
        pipeline = Pipeline(rig.controller, batch_size=10)
        with pytest.raises(Crash):
            asyncio.run(preloaded(pipeline, lines))
        before = dict(calls(rig))
        assert before == {
            ("restart_from_checkpoint", "job-2"): 1,
            ("cordon", "n3"): 1,
            ("drain", "n3"): 1,
        }
        # the batch was decided whole, then the crash hit while acting on its second event:
        # job-4's retry was admitted (durable, executing) but never ran
        assert pipeline.handled == 3
        states = {a.target: a.state for a in AuditLog(control).all()}
        assert states["job-1"] == "executing" and states["job-4"] == "executing"
    with ControlStore(db) as control:  # a new process: new store handle, controller, pipeline
        executor.fail.clear()
        rig = Rig(control, POLICIES, clock)
        rig.executor = executor
        rig.restart()
        summary = run(Pipeline(rig.controller), *lines)  # the source sends everything again
    assert summary.actions["done"] == 2  # the resumed requeue and job-4 retry
    assert calls(rig) == {
        ("restart_from_checkpoint", "job-2"): 1,
        ("cordon", "n3"): 1,
        ("drain", "n3"): 1,
        ("requeue", "job-1"): 1,
        ("restart_from_checkpoint", "job-4"): 1,
    }


async def preloaded(pipeline: Pipeline, lines: list[str]) -> Summary:
    """Queue every event before the pipeline starts, so the first batch holds all of them."""
    for text in lines:
        item = parse_event(text)
        assert isinstance(item, Incoming)
        await pipeline.offer(item)
    return await pipeline.run()


def test_approvals_given_from_another_connection_are_run(tmp_path: Path, clock: FakeClock) -> None:
    db = tmp_path / "heal.sqlite"
    with ControlStore(db) as control, ControlStore(db) as operator:
        rig = Rig(control, APPROVE_CORDONS, clock)
        pipeline = Pipeline(rig.controller, approvals_every=0.02)

        async def source() -> AsyncIterator[Incoming | Malformed]:
            yield incoming(event("gpu_hardware", node="n3"))
            waiting = await until(lambda: AuditLog(operator).pending())
            AuditLog(operator).approve(waiting[0].action_id, clock(), "carol")
            # no more events: only the timer can run the approved cordon now
            await until(lambda: ("cordon", "n3") in calls(rig))

        summary = asyncio.run(pipeline.run(source()))
    assert calls(rig)[("cordon", "n3")] == 1
    assert summary.actions == {"done": 2}  # the requeue at once, the cordon once approved


async def until(probe: object, timeout: float = 5.0) -> list[object]:
    """Poll ``probe`` (a callable) until it returns something true; give up after ``timeout``."""
    assert callable(probe)
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not (found := probe()):
        assert loop.time() < end, "timed out"
        await asyncio.sleep(0.01)
    return found if isinstance(found, list) else [found]


def test_a_small_queue_makes_readers_wait_and_loses_nothing(rig: Rig) -> None:
    roomy = AUTO_POLICIES.replace("burst: 100", "burst: 1000").replace(
        "storm_actions: 100", "storm_actions: 1000"
    )
    rig = Rig(rig.store, parse_policies(roomy), rig.clock)
    lines = [line(event("nccl_comm", f"job-{i}", node=None)) for i in range(200)]
    pipeline = Pipeline(rig.controller, queue_size=2, batch_size=1)
    depth: list[int] = []
    original = pipeline._decide

    def watched(batch: list[object]) -> list[str]:
        depth.append(pipeline.queue.qsize())
        return original(batch)  # type: ignore[arg-type]

    pipeline._decide = watched  # type: ignore[method-assign]
    summary = run(pipeline, *lines)
    assert summary.handled == 200 and summary.unprocessed == 0
    assert calls(rig) == {("restart_from_checkpoint", f"job-{i}"): 1 for i in range(200)}
    assert max(depth) <= 2


def test_stop_finishes_the_current_batch_and_takes_no_more(rig: Rig) -> None:
    lines = [line(event("nccl_comm", f"job-{i}", node=None)) for i in range(10)]
    pipeline = Pipeline(rig.controller, batch_size=4)

    class StopsMidBatch:
        def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
            self.loop = loop

        def restart_from_checkpoint(self, job: str) -> None:
            if job == "job-0":
                self.loop.call_soon_threadsafe(pipeline.stop)  # a SIGTERM during the batch
                threading.Event().wait(0.05)
            rig.executor.restart_from_checkpoint(job)

    async def main() -> Summary:
        rig.controller.executor = StopsMidBatch(asyncio.get_running_loop())  # type: ignore[assignment]
        return await preloaded(pipeline, lines)

    summary = asyncio.run(main())
    assert summary.stopped and (summary.handled, summary.unprocessed) == (4, 6)
    assert [c[1] for c in rig.executor.calls] == ["job-0", "job-1", "job-2", "job-3"]


async def forever() -> AsyncIterator[Incoming | Malformed]:
    await asyncio.Event().wait()
    yield Malformed(0, "never")  # pragma: no cover


def test_stop_while_idle_returns_at_once(rig: Rig) -> None:
    async def main() -> Summary:
        pipeline = Pipeline(rig.controller)
        asyncio.get_running_loop().call_later(0.05, pipeline.stop)
        return await asyncio.wait_for(pipeline.run(forever()), 5)

    summary = asyncio.run(main())
    assert summary.stopped and summary.handled == 0


@pytest.mark.skipif(threading.current_thread() is not threading.main_thread(), reason="signals")
def test_sigterm_stops_the_pipeline(rig: Rig) -> None:
    async def main() -> Summary:
        pipeline = Pipeline(rig.controller)
        loop = asyncio.get_running_loop()
        loop.call_later(0.05, os.kill, os.getpid(), signal.SIGTERM)
        return await asyncio.wait_for(pipeline.run(forever(), signals=True), 5)

    assert asyncio.run(main()).stopped
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL


def test_a_broken_source_stops_the_pipeline_and_is_raised(rig: Rig) -> None:
    async def broken() -> AsyncIterator[Incoming | Malformed]:
        yield incoming(event("nccl_comm", "job-2", node=None))
        raise RuntimeError("source bug")

    with pytest.raises(RuntimeError, match="source bug"):
        asyncio.run(Pipeline(rig.controller).run(broken()))


def test_metrics_and_latencies(rig: Rig) -> None:
    pipeline = Pipeline(rig.controller, keep_latencies=True)
    other = Pipeline(rig.controller)  # its own registry: no clash with the first
    hw = line(event("gpu_hardware", node="n3"))
    run(pipeline, hw, hw, "junk", line(event("gpu_oom", "job-5")))
    text = pipeline.metrics.text()
    for sample in (
        "fleetmedic_heal_events_received_total 3.0",
        "fleetmedic_heal_events_duplicate_total 1.0",
        "fleetmedic_heal_events_malformed_total 1.0",
        "fleetmedic_heal_events_handled_total 2.0",
        'fleetmedic_heal_actions_total{kind="cordon_and_drain",state="done"} 1.0',
        'fleetmedic_heal_actions_total{kind="suggest_fix",state="done"} 1.0',
        "fleetmedic_heal_queue_depth 0.0",
        "fleetmedic_heal_decision_latency_seconds_count 2.0",
    ):
        assert sample in text, sample
    assert "fleetmedic_heal_events_received_total 0.0" in other.metrics.text()
    assert len(pipeline.latencies) == 2 and len(pipeline.commit_latencies) == 2
    assert all(
        0 <= a <= b < 5 for a, b in zip(pipeline.latencies, pipeline.commit_latencies, strict=True)
    )


# fleetmedic heal run -------------------------------------------------------------------------
runner = CliRunner()
NODES = {
    "kind": "NodeList",
    "items": [
        {"metadata": {"name": f"n{i}", "labels": {"fleetmedic.io/pool": "a"}}, "spec": {}}
        for i in range(10)
    ],
}


def heal_run(*args: str, stdin: str | None = None) -> tuple[int, str, str]:
    result = runner.invoke(app, ["heal", "run", *args], input=stdin)
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    paths = {
        "events": tmp_path / "events.jsonl",
        "policies": tmp_path / "auto.yaml",
        "nodes": tmp_path / "nodes.json",
        "control": tmp_path / "heal.sqlite",
    }
    hw = line(event("gpu_hardware", node="n3"))
    text = [hw, hw, "not json", line(event("gpu_oom", "job-5", node=None))]
    paths["events"].write_text("\n".join(text) + "\n")
    paths["policies"].write_text(AUTO_POLICIES)
    paths["nodes"].write_text(json.dumps(NODES))
    return paths


def test_heal_run_end_to_end(files: dict[str, Path]) -> None:
    args = ["--control", str(files["control"]), "--policies", str(files["policies"])]
    code, out, err = heal_run(
        str(files["events"]), *args, "--nodes", str(files["nodes"]), "--format", "json"
    )
    assert code == 0, err
    summary = json.loads(out)
    assert summary["received"] == 3 and summary["duplicates"] == 1 and summary["malformed"] == 1
    assert summary["actions"] == {"done": 3}
    assert summary["dry_run_executor_calls"] == {"cordon": 1, "drain": 1, "requeue": 1}
    assert "events.jsonl:3: skipped: not JSON" in err
    assert "recorded done" in err  # auto policies with the dry-run executor: warned
    with ControlStore(files["control"]) as store:
        assert len(AuditLog(store).all()) == 3
    # the same events again, from stdin: all decided already, nothing repeats
    code, out, err = heal_run("-", *args, stdin=files["events"].read_text())
    assert code == 0, err
    assert "4 read, 1 duplicate, 1 malformed, 2 handled" in out
    assert "actions: none" in out and "<stdin>:3: skipped" in err


def test_heal_run_without_nodes_refuses_cordons_as_unknown(files: dict[str, Path]) -> None:
    code, _, err = heal_run(
        str(files["events"]),
        "--control",
        str(files["control"]),
        "--policies",
        str(files["policies"]),
    )
    assert code == 0, err
    with ControlStore(files["control"]) as store:
        (cordon,) = [a for a in AuditLog(store).all() if a.kind == "cordon_and_drain"]
    assert cordon.state == "refused" and "unknown node n3" in (cordon.result or "")


def test_heal_run_default_policies_only_propose(files: dict[str, Path]) -> None:
    code, out, err = heal_run(str(files["events"]), "--control", str(files["control"]))
    assert code == 0, err
    assert "recorded done" not in err and "dry-run executor (nothing changed): none" in out


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"events": "missing.jsonl"}, "no events file at"),
        ({"policies": "nodes.json"}, "policies: Field required"),
        ({"control": "."}, "cannot open control store"),
        ({"nodes": "events.jsonl"}, "is not JSON"),
        ({"nodes": "auto.yaml"}, "is not JSON"),
        ({"executor": "ssh"}, "--executor must be one of dry-run, kubernetes"),
        ({"format": "xml"}, "--format must be one of text, json"),
    ],
)
def test_heal_run_bad_input_exits_2(
    files: dict[str, Path], change: dict[str, str], says: str
) -> None:
    base = files["events"].parent
    opts = {
        "events": str(files["events"]),
        "policies": str(files["policies"]),
        "control": str(files["control"]),
        "nodes": str(files["nodes"]),
        "executor": "dry-run",
        "format": "text",
    }
    opts.update(
        {k: str(base / v) if k not in ("executor", "format") else v for k, v in change.items()}
    )
    events = opts.pop("events")
    args = [events, *(x for k, v in opts.items() for x in (f"--{k}", v))]
    code, out, err = heal_run(*args)
    assert code == 2, out
    assert err.startswith("fleetmedic: error: ") and says in err and err.count("\n") == 1


def test_heal_run_bad_kubeconfig_exits_2(files: dict[str, Path]) -> None:
    missing = str(files["events"].parent / "no-kubeconfig")
    args = ["--control", str(files["control"]), "--executor", "kubernetes", "--kubeconfig", missing]
    code, _, err = heal_run(str(files["events"]), *args)
    assert code == 2 and err.startswith("fleetmedic: error: cannot use kubeconfig")
    assert err.count("\n") == 1


def test_heal_run_metrics_port_in_use_exits_2(files: dict[str, Path]) -> None:
    with socket.socket() as taken:
        taken.bind(("", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        code, _, err = heal_run(
            str(files["events"]), "--control", str(files["control"]), "--metrics-port", port
        )
    assert code == 2 and f"cannot serve metrics on port {port}" in err


def test_heal_run_node_list_that_is_not_a_node_list_exits_2(files: dict[str, Path]) -> None:
    files["nodes"].write_text(json.dumps({"items": [{"metadata": {}}]}))
    code, _, err = heal_run(
        str(files["events"]), "--control", str(files["control"]), "--nodes", str(files["nodes"])
    )
    assert code == 2 and "a Node has no metadata.name" in err
