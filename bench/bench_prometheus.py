"""Benchmark the Prometheus source on a 10k-GPU fleet's query results (docs/bench-live.md).

Not a test. Builds the JSON a Prometheus server returns for a fleet of ``--gpus`` GPUs (8 per
node, DCGM exporter labels), for an event signal where every GPU has a fault (the worst case: one
event per series) and for a usage signal (one sample per GPU), then times, per signal:

* ``fleetmedic`` — :meth:`PrometheusAPI.query` (over an in-memory transport, so JSON parsing is
  counted, the network is not) and :meth:`PrometheusSource.read`;
* ``naive`` — the reference: the same response flattened with ``pandas.json_normalize`` and turned
  into records row by row with ``DataFrame.apply``, the usual first version of such an adapter;

and the write of the results to a DuckDB store through the writer.

    .venv/bin/python bench/bench_prometheus.py [--gpus 10000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from datetime import UTC, datetime
from typing import Any

import httpx
import pandas as pd

from fleetmedic.model.records import Event
from fleetmedic.sources.prometheus import PrometheusSource, save
from fleetmedic.sources.prometheus_api import PrometheusAPI
from fleetmedic.sources.prometheus_catalog import load_catalog
from fleetmedic.store import Store
from fleetmedic.store.writer import GpuUsageRow

AT = 1_767_225_600.0


def response(gpus: int, value: str) -> bytes:
    result = []
    for n in range(gpus):
        node, gpu = divmod(n, 8)
        labels = {
            "__name__": "DCGM_FI_DEV_XID_ERRORS",
            "gpu": str(gpu),
            "UUID": f"GPU-{n:08x}-5d1e-4c3b-9f8a-1b2c3d4e5f60",
            "device": f"nvidia{gpu}",
            "modelName": "NVIDIA H100 80GB HBM3",
            "Hostname": f"gpu-node-{node:05d}",
            "DCGM_FI_DRIVER_VERSION": "550.90.07",
            "pci_bus_id": f"00000000:{0x18 + gpu:02X}:00.0",
            "instance": f"10.1.{node // 250}.{node % 250}:9400",
            "job": "dcgm-exporter",
            "namespace": "gpu-operator",
            "pod": f"nvidia-dcgm-exporter-{node:05x}",
        }
        result.append({"metric": labels, "value": [AT, value]})
    body = {"status": "success", "data": {"resultType": "vector", "result": result}}
    return json.dumps(body).encode()


def fleetmedic_run(body: bytes, signal_name: str) -> tuple[int, Any]:
    catalog = load_catalog()
    signal = next(s for s in catalog.signals if s.name == signal_name)
    transport = httpx.MockTransport(lambda _r: httpx.Response(200, content=body))
    with PrometheusAPI("http://bench", transport=transport) as api:
        found = api.query(signal.query)
    result = PrometheusSource(api, catalog).read(signal, found.series)
    return len(result.events) + len(result.usage), result


def naive_run(body: bytes, signal_name: str) -> int:
    catalog = load_catalog()
    signal = next(s for s in catalog.signals if s.name == signal_name)
    frame = pd.json_normalize(json.loads(body)["data"]["result"])
    frame["ts"] = frame["value"].map(lambda v: float(v[0]))
    frame["v"] = frame["value"].map(lambda v: float(v[1]))

    def row_to_record(row: pd.Series) -> Any:
        node = next(row[f"metric.{n}"] for n in catalog.node_labels if row.get(f"metric.{n}"))
        ts = datetime.fromtimestamp(row["ts"], UTC)
        if signal.kind == "usage":
            return GpuUsageRow(
                ts, node, row["metric.gpu"], str(signal.metric), row["v"] * signal.scale
            )
        labels = {k[len("metric.") :]: v for k, v in row.items() if str(k).startswith("metric.")}
        message = str(signal.message).format(
            node=node,
            gpu=labels.get("gpu"),
            uuid=labels.get("UUID"),
            model=labels.get("modelName"),
            value=f"{row['v']:.0f}",
            value_name=signal.value_names.get(int(row["v"]), "unknown"),
        )
        return Event(
            ts=ts,
            source="prometheus",
            kind="gpu",
            object=f"node/{node}/gpu/{labels['gpu']}",
            reason=str(signal.reason),
            message=message,
            severity=signal.severity,
            raw={"signal": signal.name, "value": row["v"], "labels": labels},
        )

    return len(list(frame.apply(row_to_record, axis=1)))


def best(fn: Any, repeat: int) -> tuple[float, float]:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times), statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--gpus", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    rows = []
    for signal, value in (("gpu_xid", "79"), ("gpu_util", "97")):
        body = response(args.gpus, value)
        n, result = fleetmedic_run(body, signal)
        assert n == args.gpus
        assert naive_run(body, signal) == args.gpus
        fast, fast_median = best(lambda b=body, s=signal: fleetmedic_run(b, s), args.repeat)
        slow, slow_median = best(lambda b=body, s=signal: naive_run(b, s), args.repeat)
        with Store(":memory:") as store:
            write, _ = best(lambda r=result, st=store: save(st, r), 1)
        rows.append((signal, len(body), fast, fast_median, slow, slow_median, write))
    print(f"{args.gpus} GPUs, best of {args.repeat} (median in brackets)")
    print(
        "| signal | response | fleetmedic | signals/s | naive (pandas) | signals/s | speed-up | store write |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for signal, size, fast, fast_m, slow, slow_m, write in rows:
        print(
            f"| {signal} | {size / 1e6:.1f} MB | {fast * 1000:.0f} ms ({fast_m * 1000:.0f}) | "
            f"{args.gpus / fast:,.0f} | {slow * 1000:.0f} ms ({slow_m * 1000:.0f}) | {args.gpus / slow:,.0f} | "
            f"{slow / fast:.1f}x | {write * 1000:.0f} ms |"
        )


if __name__ == "__main__":
    main()
