"""Real services for the Prometheus tests: Debian's prometheus, and a DCGM-format exporter.

The binaries are started by the tests themselves, on free loopback ports with temporary
directories, never as system services. A missing binary fails the test (it does not skip), naming
the Debian package to install: a suite that silently skips its integration tests proves nothing.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import urllib.request
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import pytest
from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import Metric

T = TypeVar("T")


def binary(name: str, package: str) -> str:
    """The path of a service binary, or a failed test that says which package provides it."""
    found = shutil.which(name) or next(
        (str(p) for p in (Path("/usr/sbin") / name, Path("/usr/bin") / name) if p.is_file()), None
    )
    if found is None:
        pytest.fail(
            f"{name} not found: install the Debian package `{package}` "
            "(`bash scripts/setup.sh --dev` does, as root)",
            pytrace=False,
        )
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(check: Callable[[], T | None], timeout: float, what: str) -> T:
    """Poll ``check`` until it returns something truthy; fail with ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:g} s waiting for {what}", pytrace=False)
        time.sleep(0.2)


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


@contextmanager
def prometheus_server(tmp: Path, targets: list[str], *, interval: str = "1s") -> Iterator[str]:
    """Debian's Prometheus scraping ``targets`` (host:port) every ``interval``; yields its URL."""
    exe = binary("prometheus", "prometheus")
    port = free_port()
    config = tmp / "prometheus.yml"
    config.write_text(
        "global:\n"
        f"  scrape_interval: {interval}\n"
        f"  evaluation_interval: {interval}\n"
        "scrape_configs:\n"
        "  - job_name: test\n"
        f"    scrape_interval: {interval}\n"
        f"    static_configs:\n      - targets: {json.dumps(targets)}\n",
        encoding="utf-8",
    )
    log = (tmp / "prometheus.log").open("wb")
    process = subprocess.Popen(
        [
            exe,
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _ready(url, process, tmp), 30, "prometheus to be ready")
        yield url
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def _ready(url: str, process: subprocess.Popen[bytes], tmp: Path) -> bool:
    if process.poll() is not None:
        tail = (tmp / "prometheus.log").read_text(errors="replace")[-2000:]
        pytest.fail(f"prometheus exited with {process.returncode}:\n{tail}", pytrace=False)
    try:
        with urllib.request.urlopen(f"{url}/-/ready", timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def target_up(url: str, n: int) -> bool:
    """True once Prometheus has scraped ``n`` targets successfully."""
    found = get_json(f"{url}/api/v1/query?query=up")
    values = [float(r["value"][1]) for r in found["data"]["result"]]
    return len(values) >= n and all(v == 1 for v in values)


# A DCGM exporter stand-in -------------------------------------------------------------------
DCGM_FIELDS: dict[str, str] = {
    # dcgm-exporter's default-counters.csv: field name -> Prometheus type
    "DCGM_FI_DEV_GPU_UTIL": "gauge",
    "DCGM_FI_DEV_MEM_COPY_UTIL": "gauge",
    "DCGM_FI_PROF_SM_ACTIVE": "gauge",
    "DCGM_FI_DEV_GPU_TEMP": "gauge",
    "DCGM_FI_DEV_POWER_USAGE": "gauge",
    "DCGM_FI_DEV_XID_ERRORS": "gauge",
    "DCGM_FI_DEV_ECC_DBE_VOL_TOTAL": "counter",
    "DCGM_FI_DEV_ROW_REMAP_FAILURE": "gauge",
    "DCGM_FI_DEV_UNCORRECTABLE_REMAPPED_ROWS": "counter",
    "DCGM_FI_DEV_NVLINK_CRC_FLIT_ERROR_COUNT_TOTAL": "counter",
    "DCGM_FI_DEV_NVLINK_REPLAY_ERROR_COUNT_TOTAL": "counter",
    "DCGM_FI_DEV_NVLINK_RECOVERY_ERROR_COUNT_TOTAL": "counter",
}
HEALTHY = {
    "DCGM_FI_DEV_GPU_UTIL": 97.0,
    "DCGM_FI_DEV_MEM_COPY_UTIL": 41.0,
    "DCGM_FI_PROF_SM_ACTIVE": 0.83,
    "DCGM_FI_DEV_GPU_TEMP": 61.0,
    "DCGM_FI_DEV_POWER_USAGE": 612.5,
}
MODEL = "NVIDIA H100 80GB HBM3"
DRIVER = "550.90.07"


class DcgmExporter:
    """Serves what dcgm-exporter serves (its metric names, types and labels) for a few GPUs.

    Values are set by the test (``set(node, gpu, field, value)``) and read on every scrape.
    """

    def __init__(self, nodes: dict[str, int]) -> None:
        self.values: dict[tuple[str, int, str], float] = {}
        for node, gpus in nodes.items():
            for gpu in range(gpus):
                for name in DCGM_FIELDS:
                    self.values[(node, gpu, name)] = HEALTHY.get(name, 0.0)
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self)
        self.port = free_port()
        self.server, self.thread = start_http_server(
            self.port, addr="127.0.0.1", registry=self.registry
        )

    def set(self, node: str, gpu: int, name: str, value: float) -> None:
        self.values[(node, gpu, name)] = value

    def add(self, node: str, gpu: int, name: str, value: float) -> None:
        self.values[(node, gpu, name)] += value

    def collect(self) -> Iterator[Metric]:
        for name, kind in DCGM_FIELDS.items():
            metric = Metric(name, f"{name} (test exporter)", kind)
            for (node, gpu, field), value in sorted(self.values.items()):
                if field == name:
                    metric.add_sample(name, self.labels(node, gpu), value)
            yield metric

    @staticmethod
    def labels(node: str, gpu: int) -> dict[str, str]:
        uuid = f"GPU-{zlib.crc32(f'{node}/{gpu}'.encode()):08x}-5d1e-4c3b-9f8a-1b2c3d4e5f60"
        return {
            "gpu": str(gpu),
            "UUID": uuid,
            "device": f"nvidia{gpu}",
            "modelName": MODEL,
            "Hostname": node,
            "DCGM_FI_DRIVER_VERSION": DRIVER,
            "pci_bus_id": f"00000000:{0x18 + gpu:02X}:00.0",
        }

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
