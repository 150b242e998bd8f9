"""Benchmark the Kubernetes watcher and detector: events per second and memory (docs/bench-watch.md).

Not a test. A fake API server (``tests/sources/kube_watch_fake.FakeApi``, the one the tests use,
with pod pages rendered from a recorded pod's JSON instead of stored) runs in its own process; the
client under test runs in another, so each has a core and its own RSS. The server holds
``--pods`` pods (4.3 KB of JSON each, a training pod as ``kubectl get -o json`` prints it, 8 ranks per
PyTorchJob over ``--nodes`` nodes); the client lists them (pages of 500), then watches while the
server streams ``--events`` MODIFIED events (every pod changes once; one in ``--fail-every``
fails, so the detector opens episodes).

Variants, each in a fresh process:

* ``fleetmedic`` — :class:`~fleetmedic.sources.kube_watch.Watcher` into the pod cache, every change
  through :class:`~fleetmedic.sources.kube_detect.Detector` (what ``fleetmedic watch`` runs);
* ``naive`` — the reference: the same HTTP streams, each line ``json.loads``-ed and the whole
  object kept in a dict by namespace/name;
* ``lightkube`` — lightkube's own ``AsyncClient.list`` and ``AsyncClient.watch``, each object
  decoded into its full typed model and kept in a dict.

Memory is the client's RSS after the list and after the events, above its RSS before the first
request (imports done), and its peak RSS.

Usage::

    .venv/bin/python bench/bench_watch.py [--pods 100000] [--events 100000] [--nodes 10000]
        [--fail-every 1000] [--variants fleetmedic,naive,lightkube] [--repeat 1]
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import json
import multiprocessing as mp
import resource
import sys
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "sources"))

from kube_watch_fake import FakeApi, fixture, running  # noqa: E402


# the server ----------------------------------------------------------------------------------
def _templates() -> tuple[str, str]:
    """A running and a failed pod, with placeholders where pods differ."""
    failed = next(o for o in fixture("pytorchjob-llm-7b.json") if o["kind"] == "Pod")
    failed = copy.deepcopy(failed)
    meta = failed["metadata"]
    meta.update(name="@NAME@", namespace="@NS@", uid="@UID@", resourceVersion="@RV@")
    meta["labels"]["training.kubeflow.org/job-name"] = "@JOB@"
    meta["labels"]["training.kubeflow.org/replica-index"] = "@RANK@"
    meta["ownerReferences"][0]["name"] = "@JOB@"
    failed["spec"]["nodeName"] = "@NODE@"
    return json.dumps(running(failed)), json.dumps(failed)


def render(template: str, i: int, rv: int, nodes: int) -> str:
    job, rank = divmod(i, 8)
    return (
        template.replace("@NAME@", f"train-{job:05d}-worker-{rank}")
        .replace("@NS@", f"team-{job % 20:02d}")
        .replace("@UID@", f"{i:08x}-0000-4000-8000-{i:012x}")
        .replace("@RV@", str(rv))
        .replace("@JOB@", f"train-{job:05d}")
        .replace("@RANK@", str(rank))
        .replace("@NODE@", f"gpu-{i % nodes:05d}")
    )


class BenchApi(FakeApi):
    """FakeApi whose pods are rendered per page rather than stored (100k stored pods would cost
    the server gigabytes); watches are the fake's own code."""

    pods: int = 0
    nodes: int = 1
    template: str = ""

    def _serve_list(self, handler: Any, key: Any, ns: Any, query: dict[str, str]) -> None:
        if key != ("", "pods"):
            return super()._serve_list(handler, key, ns, query)
        limit = int(query.get("limit") or 500)
        start = int(query.get("continue", "0:0").split(":")[0])
        items = ",".join(
            render(self.template, i, self.rv, self.nodes)
            for i in range(start, min(start + limit, self.pods))
        )
        meta = {"resourceVersion": str(self.rv)}
        if start + limit < self.pods:
            meta["continue"] = f"{start + limit}:{self.rv}"
        body = f'{{"kind":"PodList","apiVersion":"v1","metadata":{json.dumps(meta)},"items":[{items}]}}'
        from kube_watch_fake import _send

        _send(handler, 200, body.encode())


def serve(conn: Connection, pods: int, events: int, nodes: int, fail_every: int) -> None:
    ok, bad = _templates()
    api = BenchApi(max_watch_seconds=600)
    api.pods, api.nodes, api.template = pods, nodes, ok
    base = api.rv
    lines = []
    for n in range(events):
        i = n % pods
        template = bad if fail_every and n % fail_every == fail_every - 1 else ok
        obj = render(template, i, base + n + 1, nodes)
        lines.append(b'{"type":"MODIFIED","object":' + obj.encode() + b"}\n")
    conn.send((api.start(), sum(map(len, lines)) / len(lines)))
    conn.recv()  # the client has listed
    api.emit_lines(("", "pods"), lines)
    conn.recv()  # the client is done
    api.stop()


# the clients ---------------------------------------------------------------------------------
def rss() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


async def fleetmedic(url: str, signal: Any, total: int) -> dict[str, Any]:
    from kube_watch_fake import session_for

    from fleetmedic.sources.kube_detect import Caches, Detector
    from fleetmedic.sources.kube_watch import KINDS, Watcher, WatchOptions

    class Api:
        pass

    api = Api()
    api.url = url  # type: ignore[attr-defined]
    session = session_for(api, timeout=60)  # type: ignore[arg-type]
    caches = Caches()
    detector = Detector(caches)
    options = WatchOptions(page_size=500, timeout_seconds=(600, 600))
    watcher = Watcher(session, KINDS["Pod"], caches.pods, detector.on_change, options=options)
    return await _drive(
        watcher.run(), lambda: watcher.stats["events"], signal, total, watcher.synced
    )


async def naive(url: str, signal: Any, total: int) -> dict[str, Any]:
    import httpx2

    objects: dict[str, Any] = {}
    seen = [0]
    synced = asyncio.Event()

    async def run() -> None:
        async with httpx2.AsyncClient(base_url=url, timeout=httpx2.Timeout(60, read=None)) as http:
            version, cont = "", ""
            while True:
                params = {"limit": "500", **({"continue": cont} if cont else {})}
                page = json.loads((await http.get("/api/v1/pods", params=params)).content)
                for item in page["items"]:
                    objects[f"{item['metadata']['namespace']}/{item['metadata']['name']}"] = item
                    seen[0] += 1
                version, cont = (
                    page["metadata"]["resourceVersion"],
                    page["metadata"].get("continue"),
                )
                if not cont:
                    break
            synced.set()
            query = {"watch": "true", "resourceVersion": version}
            async with http.stream("GET", "/api/v1/pods", params=query) as response:
                async for line in response.aiter_lines():
                    event = json.loads(line)
                    obj = event["object"]
                    objects[f"{obj['metadata']['namespace']}/{obj['metadata']['name']}"] = obj
                    seen[0] += 1

    return await _drive(run(), lambda: seen[0], signal, total, synced)


async def lightkube(url: str, signal: Any, total: int) -> dict[str, Any]:
    import httpx2
    from lightkube import ALL_NS, AsyncClient, KubeConfig
    from lightkube.config.models import Cluster, User
    from lightkube.resources.core_v1 import Pod

    config = KubeConfig.from_one(cluster=Cluster(server=url), user=User(token="t"))
    client = AsyncClient(config=config, timeout=httpx2.Timeout(60), trust_env=False)
    objects: dict[str, Any] = {}
    seen = [0]
    synced = asyncio.Event()

    async def run() -> None:
        listing = client.list(Pod, namespace=ALL_NS, chunk_size=500)
        async for pod in listing:
            objects[f"{pod.metadata.namespace}/{pod.metadata.name}"] = pod
            seen[0] += 1
        synced.set()
        watch = client.watch(Pod, namespace=ALL_NS, resource_version=listing.resourceVersion)
        async for _kind, pod in watch:
            objects[f"{pod.metadata.namespace}/{pod.metadata.name}"] = pod
            seen[0] += 1

    return await _drive(run(), lambda: seen[0], signal, total, synced)


async def _drive(
    work: Any, count: Any, signal: Any, total: int, synced: asyncio.Event
) -> dict[str, Any]:
    before = rss()
    started = time.perf_counter()
    task = asyncio.create_task(work)
    await synced.wait()
    listed_at = time.perf_counter()
    listed, after_list = count(), rss()
    signal()
    while count() < total and not task.done():
        await asyncio.sleep(0.005)
    done_at = time.perf_counter()
    result = {
        "listed": listed,
        "list_seconds": listed_at - started,
        "list_per_second": listed / (listed_at - started),
        "events": count() - listed,
        "watch_seconds": done_at - listed_at,
        "events_per_second": (count() - listed) / (done_at - listed_at),
        "rss_before_mb": before,
        "cache_after_list_mb": after_list - before,
        "cache_after_events_mb": rss() - before,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    task.cancel()
    return result


def client(variant: str, args: argparse.Namespace, out: Connection) -> None:
    ctx = mp.get_context("spawn")
    server_end, here = ctx.Pipe()
    server = ctx.Process(
        target=serve, args=(server_end, args.pods, args.events, args.nodes, args.fail_every)
    )
    server.start()
    url, line_bytes = here.recv()
    run = {"fleetmedic": fleetmedic, "naive": naive, "lightkube": lightkube}[variant]
    result = asyncio.run(run(url, lambda: here.send("emit"), args.pods + args.events))
    here.send("stop")
    server.join(timeout=30)
    out.send({"variant": variant, "line_bytes": line_bytes, **result})


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--pods", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--nodes", type=int, default=10_000)
    parser.add_argument("--fail-every", type=int, default=1000)
    parser.add_argument("--variants", default="fleetmedic,naive,lightkube")
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args(argv)
    ctx = mp.get_context("spawn")
    results = []
    for _ in range(args.repeat):
        for variant in args.variants.split(","):
            mine, theirs = ctx.Pipe()
            process = ctx.Process(target=client, args=(variant, args, theirs))
            process.start()
            result = mine.recv()
            process.join()
            results.append(result)
            print(json.dumps(result), flush=True)
    print(
        "\n| variant | list pods/s | events/s | cache after list MB | after events MB | peak RSS MB |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for r in results:
        print(
            f"| {r['variant']} | {r['list_per_second']:,.0f} | {r['events_per_second']:,.0f} | "
            f"{r['cache_after_list_mb']:,.0f} | {r['cache_after_events_mb']:,.0f} | "
            f"{r['peak_rss_mb']:,.0f} |"
        )


if __name__ == "__main__":
    main()
