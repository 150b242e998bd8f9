"""``fleetmedic diagnose`` as users run it: a real process, real files, pipes and standard input.

The contract (DESIGN.md): exit 0 with a diagnosis (``unknown`` included); exit 2 with exactly one
line on stderr, ``fleetmedic: error: ...``, for usage errors and unreadable input; never a
traceback. Damaged input that still has readable parts (a truncated .gz, malformed JSON/YAML) gets
a best-effort diagnosis and a one-line warning.

Every invocation starts a Python process (about a second of imports), so all of them are started
together at the beginning, a few at a time, and each test checks its own result.
"""

from __future__ import annotations

import gzip
import json
import os
import random
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

OOM = "[rank3]:torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.50 GiB. GPU 3 has a total capacity of 79.15 GiB of which 1.21 GiB is free."
NOISE = "\n".join(
    f"2024-05-14 08:{i // 60 % 60:02d}:{i % 60:02d},123 - INFO - trainer.py:412 - step {i} | loss 2.{i % 97:02d}"
    for i in range(2000)
)
OOM_LOG = f"{NOISE}\n{OOM}\n[rank0]:terminate called after throwing an instance of 'c10::DistBackendError'\n"
POD = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "train-0", "namespace": "ml"},
    "status": {
        "phase": "Failed",
        "containerStatuses": [
            {
                "name": "trainer",
                "state": {
                    "terminated": {
                        "reason": "OOMKilled",
                        "exitCode": 137,
                        "finishedAt": "2024-05-14T09:00:00Z",
                    }
                },
            }
        ],
    },
}
DESIGN_FIELDS = {
    "input",
    "category",
    "owner",
    "confidence",
    "summary",
    "evidence",
    "action",
    "retryable",
    "signature",
    "secondary",
}
TIMEOUT = 90  # seconds; a hang fails the test instead of blocking the suite
ENV = {**os.environ, "COLUMNS": "50", "LC_ALL": "C.UTF-8", "PYTHONUNBUFFERED": "1"}


@dataclass(frozen=True)
class Result:
    code: int
    out: str
    err: str
    seconds: float

    def json(self) -> dict:
        return json.loads(self.out)


def fleetmedic(*args: str, stdin: bytes | None = None) -> Result:
    start = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "fleetmedic", *args],
        input=stdin if stdin is not None else b"",
        capture_output=True,
        timeout=TIMEOUT,
        env=ENV,
    )
    return Result(
        proc.returncode,
        proc.stdout.decode("utf-8", "replace"),
        proc.stderr.decode("utf-8", "replace"),
        time.monotonic() - start,
    )


def through_fifo(fifo: Path, data: bytes) -> Result:
    """``fleetmedic diagnose FIFO`` while another process writes into the pipe."""

    def writer() -> None:
        with open(fifo, "wb") as pipe:  # blocks until fleetmedic opens the other end
            pipe.write(data)

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    result = fleetmedic("diagnose", str(fifo), "--format", "json")
    thread.join(timeout=5)
    return result


def build_inputs(root: Path) -> dict[str, Callable[[], Result]]:
    """Write every input file; return the invocations to run, by case name."""
    (root / "oom.log").write_text(OOM_LOG)
    (root / "other.log").write_text("all good\n")
    (root / "empty.log").write_bytes(b"")
    (root / "plain.txt").write_text("not a directory\n")
    (root / "emptydir").mkdir()
    whole = gzip.compress((OOM + "\n" + NOISE * 20 + "\n").encode(), mtime=0)
    (root / "truncated.log.gz").write_bytes(whole[: len(whole) // 2])
    (root / "corrupt.log.gz").write_bytes(
        b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03" + b"\xff" * 64
    )
    (root / "invalid-utf8.log").write_bytes(
        b"\xff\xfe\xc3\x28 garbage \xe2\x82\n" + OOM.encode() + b" \xf0\x28\x8c\x28\n\x80\x81\n"
    )
    (root / "core.bin").write_bytes(random.Random(7).randbytes(64 * 1024))
    with open(root / "single-line.log", "wb") as out:
        block = b"0123456789abcdef" * 65536  # 1 MiB, no newline
        for _ in range(50):
            out.write(block)
        out.write(b" " + OOM.encode() + b"\n")
    pod = json.dumps(POD, indent=2)
    (root / "pod-malformed.json").write_text(pod[: pod.index("137") + 3])  # cut off mid-object
    (root / "pod-malformed.yaml").write_text(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: train-0\n status:\n"
        "  containerStatuses: [{name: trainer, state: {terminated: {reason: OOMKilled\n"
    )
    locked = root / "locked.log"
    locked.write_text(OOM_LOG)
    locked.chmod(0)
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(root / "socket.log"))  # open() fails with ENXIO, even for root
    os.mkfifo(root / "named-pipe.log")

    def run(*args: str, stdin: bytes | None = None) -> Callable[[], Result]:
        return lambda: fleetmedic(*args, stdin=stdin)

    p = {name: str(root / name) for name in os.listdir(root)}
    return {
        "help": run("--help"),
        "diagnose-help": run("diagnose", "--help"),
        "missing": run("diagnose", str(root / "no-such.log")),
        "not-a-directory": run("diagnose", str(root / "plain.txt" / "child.log")),
        "permission-denied": run("diagnose", p["locked.log"]),
        "socket": run("diagnose", p["socket.log"]),
        "empty-directory": run("diagnose", p["emptydir"]),
        "corrupt-gzip": run("diagnose", p["corrupt.log.gz"], "--format", "json"),
        "truncated-gzip": run("diagnose", p["truncated.log.gz"], "--format", "json"),
        "invalid-utf8": run("diagnose", p["invalid-utf8.log"], "--format", "json"),
        "binary": run("diagnose", p["core.bin"], "--format", "json"),
        "single-line-50mb": run("diagnose", p["single-line.log"], "--format", "json"),
        "malformed-json": run("diagnose", p["pod-malformed.json"], "--format", "json"),
        "malformed-yaml": run("diagnose", p["pod-malformed.yaml"], "--format", "json"),
        "empty-file": run("diagnose", p["empty.log"], "--format", "json"),
        "json": run("diagnose", p["oom.log"], "--format", "json"),
        "text": run("diagnose", p["oom.log"]),
        "jsonl": run("diagnose", p["oom.log"], p["empty.log"], p["other.log"], "--format", "jsonl"),
        "stdin-text": run("diagnose", "-", "--format", "json", stdin=OOM_LOG.encode()),
        "stdin-gzip": run(
            "diagnose", "-", "--format", "json", stdin=gzip.compress(OOM_LOG.encode())
        ),
        "stdin-json": run("diagnose", "-", "--format", "json", stdin=json.dumps(POD).encode()),
        "stdin-binary": run("diagnose", "-", stdin=random.Random(3).randbytes(20_000)),
        "stdin-empty": run("diagnose", "-", "--format", "json", stdin=b""),
        "fifo": lambda: through_fifo(root / "named-pipe.log", gzip.compress(OOM_LOG.encode())),
        "usage-missing-path": run("diagnose"),
        "usage-bad-format": run("diagnose", p["oom.log"], "--format", "xml"),
    }


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Future[Result]]]:
    root = tmp_path_factory.mktemp("cli")
    cases = build_inputs(root)
    with ThreadPoolExecutor(max_workers=4) as pool:
        # the slow one first, so that it overlaps with the rest
        order = sorted(cases, key=lambda name: name != "single-line-50mb")
        yield {name: pool.submit(cases[name]) for name in order}
    (root / "locked.log").chmod(0o600)


def get(results: dict[str, Future[Result]], name: str) -> Result:
    return results[name].result(timeout=TIMEOUT * 2)


def assert_error(result: Result, *, mentions: str = "") -> None:
    assert result.code == 2, result
    lines = result.err.splitlines()
    assert len(lines) == 1, result.err
    assert lines[0].startswith("fleetmedic: error: "), result.err
    assert mentions in lines[0]
    assert "Traceback" not in result.err + result.out


def assert_diagnosis(result: Result, category: str | None = None) -> dict:
    assert result.code == 0, result.err
    assert "Traceback" not in result.err
    found = result.json()
    if category is not None:
        assert found["category"] == category, found
    return found


def warnings_of(result: Result) -> list[str]:
    lines = result.err.splitlines()
    assert all(line.startswith("fleetmedic: warning: ") for line in lines), result.err
    return lines


# --- unreadable input: exit 2, one line ---------------------------------------------------------


def test_missing_path(results: dict[str, Future[Result]]) -> None:
    assert_error(get(results, "missing"), mentions="No such file or directory")


def test_path_through_a_regular_file(results: dict[str, Future[Result]]) -> None:
    assert_error(get(results, "not-a-directory"), mentions="Not a directory")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_permission_denied(results: dict[str, Future[Result]]) -> None:
    assert_error(get(results, "permission-denied"), mentions="Permission denied")


def test_a_socket_cannot_be_read_even_by_root(results: dict[str, Future[Result]]) -> None:
    assert_error(get(results, "socket"), mentions="cannot read")


def test_empty_directory(results: dict[str, Future[Result]]) -> None:
    assert_error(get(results, "empty-directory"), mentions="no files")


def test_corrupt_gzip(results: dict[str, Future[Result]]) -> None:
    assert_error(get(results, "corrupt-gzip"), mentions="corrupt gzip")


def test_binary_file(results: dict[str, Future[Result]]) -> None:
    assert_error(get(results, "binary"), mentions="binary")


def test_binary_on_stdin(results: dict[str, Future[Result]]) -> None:
    assert_error(get(results, "stdin-binary"), mentions="binary")


@pytest.mark.parametrize("case", ["usage-missing-path", "usage-bad-format"])
def test_usage_errors_are_one_line(results: dict[str, Future[Result]], case: str) -> None:
    assert_error(get(results, case))


def test_usage_errors_exit_2_without_traceback(results: dict[str, Future[Result]]) -> None:
    for case in ("usage-missing-path", "usage-bad-format"):
        result = get(results, case)
        assert result.code == 2 and "Traceback" not in result.err


# --- damaged but readable input: best effort, exit 0 --------------------------------------------


def test_truncated_gzip_is_diagnosed_from_what_decompresses(
    results: dict[str, Future[Result]],
) -> None:
    result = get(results, "truncated-gzip")
    found = assert_diagnosis(result, "gpu_oom")
    (warning,) = warnings_of(result)
    assert "read stopped after" in warning and "truncated.log.gz" in warning
    assert found["warnings"] == [warning.removeprefix("fleetmedic: warning: ")]


def test_invalid_utf8(results: dict[str, Future[Result]]) -> None:
    found = assert_diagnosis(get(results, "invalid-utf8"), "gpu_oom")
    assert found["evidence"][0]["line"] == 2


def test_a_50_mb_single_line_is_scanned_in_pieces(results: dict[str, Future[Result]]) -> None:
    result = get(results, "single-line-50mb")
    found = assert_diagnosis(result, "gpu_oom")
    assert "CUDA out of memory" in found["evidence"][0]["text"]
    assert len(found["evidence"][0]["text"]) <= 2000
    assert any("scanned in pieces" in w for w in warnings_of(result))


def test_malformed_json_that_looks_like_a_pod(results: dict[str, Future[Result]]) -> None:
    result = get(results, "malformed-json")
    assert_diagnosis(result, "host_oom")  # still read as text: "reason": "OOMKilled"
    (warning,) = warnings_of(result)
    assert "invalid JSON" in warning and "read as plain text" in warning


def test_malformed_yaml(results: dict[str, Future[Result]]) -> None:
    result = get(results, "malformed-yaml")
    assert_diagnosis(result, "host_oom")
    (warning,) = warnings_of(result)
    assert "invalid YAML" in warning


def test_empty_file_is_unknown(results: dict[str, Future[Result]]) -> None:
    found = assert_diagnosis(get(results, "empty-file"), "unknown")
    assert found["evidence"] == [] and found["signature"] is None


# --- standard input and pipes ---------------------------------------------------------------------


def test_plain_text_on_stdin(results: dict[str, Future[Result]]) -> None:
    found = assert_diagnosis(get(results, "stdin-text"), "gpu_oom")
    assert found["input"] == "-"
    assert found["evidence"][0]["line"] == 2001


def test_gzip_on_stdin(results: dict[str, Future[Result]]) -> None:
    assert_diagnosis(get(results, "stdin-gzip"), "gpu_oom")


def test_pod_json_on_stdin(results: dict[str, Future[Result]]) -> None:
    found = assert_diagnosis(get(results, "stdin-json"), "host_oom")
    assert "OOMKilled" in found["evidence"][0]["text"]


def test_empty_stdin(results: dict[str, Future[Result]]) -> None:
    assert_diagnosis(get(results, "stdin-empty"), "unknown")


def test_named_pipe_is_read_once_from_its_first_byte(results: dict[str, Future[Result]]) -> None:
    # as with <(kubectl logs ...) or <(zcat ...): the sniffed head must not be lost
    found = assert_diagnosis(get(results, "fifo"), "gpu_oom")
    assert found["evidence"][0]["line"] == 2001


# --- output formats ---------------------------------------------------------------------------------


def test_json_has_every_design_field(results: dict[str, Future[Result]]) -> None:
    found = assert_diagnosis(get(results, "json"), "gpu_oom")
    assert found.keys() >= DESIGN_FIELDS
    assert isinstance(found["input"], str) and found["input"].endswith("oom.log")
    assert isinstance(found["owner"], str) and isinstance(found["summary"], str)
    assert 0.0 <= found["confidence"] <= 1.0
    assert isinstance(found["retryable"], bool)
    assert isinstance(found["signature"], str)
    assert set(found["action"]) >= {"kind", "advice"}
    assert found["evidence"]
    for item in found["evidence"]:
        assert set(item) >= {"file", "line", "text"}
        assert isinstance(item["line"], int) and item["line"] >= 1
    for other in found["secondary"]:
        assert {"category", "evidence"} <= other.keys()


def test_text_output(results: dict[str, Future[Result]]) -> None:
    result = get(results, "text")
    assert result.code == 0 and "gpu_oom" in result.out and "Traceback" not in result.err


def test_jsonl_prints_one_line_per_path_in_order(results: dict[str, Future[Result]]) -> None:
    result = get(results, "jsonl")
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert len(lines) == 3
    found = [json.loads(line) for line in lines]
    assert [Path(f["input"]).name for f in found] == ["oom.log", "empty.log", "other.log"]
    assert [f["category"] for f in found] == ["gpu_oom", "unknown", "unknown"]
    assert all(f.keys() >= DESIGN_FIELDS for f in found)


def test_help(results: dict[str, Future[Result]]) -> None:
    for case in ("help", "diagnose-help"):
        result = get(results, case)
        assert result.code == 0, result.err
        assert "diagnose" in result.out
