"""Whatever bytes a log holds, the engine returns a valid diagnosis, in bounded time.

Property tests (Hypothesis) over random text, random bytes, invalid UTF-8, NUL bytes and very long
lines; a failure planted in noise is found whatever the chunk size (chunk edges, lines cut in
pieces); a failure at the far end of a very long line is found.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fleetmedic.diagnose import scan
from fleetmedic.diagnose.engine import compiled_catalog, diagnose
from fleetmedic.model.inputs import Document
from fleetmedic.model.records import Diagnosis
from fleetmedic.model.taxonomy import CATEGORIES

OOM = b"RuntimeError: CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 79.15 GiB total capacity)"

PROPERTY = settings(
    max_examples=60,
    deadline=timedelta(seconds=3),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@pytest.fixture(scope="module", autouse=True)
def _compiled() -> None:
    """Compile the catalog once, outside the per-example deadline."""
    compiled_catalog()


def document(data: bytes, name: str = "job.log") -> Document:
    return Document(name=name, kind="log", opener=lambda: io.BytesIO(data))


def check(result: Diagnosis) -> None:
    assert result.category in CATEGORIES
    assert 0.0 <= result.confidence <= 1.0
    if result.category != "unknown":
        assert result.evidence and result.signature
    for item in result.evidence:
        assert item.line >= 1 and isinstance(item.text, str)
    json.dumps(result.model_dump(mode="json"), ensure_ascii=False).encode("utf-8")


def run(*blobs: bytes) -> Diagnosis:
    docs = [document(b, f"rank{i}.log") for i, b in enumerate(blobs)]
    result = diagnose(docs, name="bundle")
    check(result)
    return result


# Pieces that real logs are made of, to mix with noise: failures, look-alikes, progress, times.
FRAGMENTS = [
    OOM,
    b"[rank3]:torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 20.00 MiB.",
    b"NCCL WARN Cuda failure 'out of memory'",
    b"[E ProcessGroupNCCL.cpp:475] Watchdog caught collective operation timeout: "
    b"WorkNCCL(SeqNum=1, OpType=ALLREDUCE, Timeout(ms)=600000) ran for 600043 milliseconds",
    b"NCCL INFO NET/Plugin : dlerror=libnccl-net.so: cannot open shared object file: No such file",
    b"ImportError: libcudnn.so.8: cannot open shared object file: No such file or directory",
    b"Traceback (most recent call last):",
    b"ValueError: bad batch",
    b"NVRM: Xid (PCI:0000:3b:00): 79, pid=1234, GPU has fallen off the bus.",
    b"Killed",
    b"2024-05-14 08:00:01,123 - INFO - step 12 loss 2.31",
    b"Epoch 1:  45%|####5     | 450/1000 [01:02<01:20,  6.80it/s]",
    b"I0514 08:00:02.123456 2210 ProcessGroupNCCL.cpp:1234] init",
    b"Jan 15 10:23:45 node kernel: Out of memory: Killed process 4242 (python)",
    b'{"level": "error", "msg": "CUDA error: an illegal memory access was encountered"}',
    b"\xff\xfe\xc3\x28\xe2\x82 invalid utf-8 \xf0\x28\x8c\x28",
    b"\x00\x00\x00\x00",
    b"\r",
    "ünïcödé ✓ 日本語 — ⚠".encode(),
]

lines_of_text = st.lists(st.text(max_size=200), max_size=60).map(lambda ls: "\n".join(ls).encode())
mixed_lines = st.lists(
    st.one_of(
        st.sampled_from(FRAGMENTS), st.binary(max_size=120), st.text(max_size=80).map(str.encode)
    ),
    max_size=80,
).map(lambda parts: b"\n".join(parts))


@PROPERTY
@given(lines_of_text)
def test_random_text_gives_a_valid_diagnosis(data: bytes) -> None:
    run(data)


@PROPERTY
@given(st.binary(max_size=20_000))
def test_random_bytes_give_a_valid_diagnosis(data: bytes) -> None:
    run(data)


@PROPERTY
@given(mixed_lines, mixed_lines)
def test_invalid_utf8_nul_bytes_and_real_lines_mixed(first: bytes, second: bytes) -> None:
    run(first, second)


@PROPERTY
@given(
    st.integers(min_value=0, max_value=3 * 1024 * 1024),
    st.sampled_from([b"x", b"\x00", b"\xff", b"a\r", "é".encode(), b" "]),
    st.sampled_from(FRAGMENTS),
    st.floats(min_value=0.0, max_value=1.0),
)
def test_very_long_lines(length: int, filler: bytes, fragment: bytes, where: float) -> None:
    body = filler * (length // len(filler))
    cut = int(len(body) * where)
    run(body[:cut] + fragment + body[cut:] + b"\nlast line")


@pytest.fixture
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Chunks of a few dozen bytes, so that every test crosses many chunk edges and long lines."""
    monkeypatch.setattr(scan, "CHUNK", 61)
    monkeypatch.setattr(scan, "MAX_LINE", 127)
    monkeypatch.setattr(scan, "TAIL_BYTES", 97)
    yield


digit_noise = st.lists(
    st.text(alphabet="0123456789 .:-/[]|=%", max_size=300), min_size=0, max_size=40
)


@settings(PROPERTY, max_examples=40, suppress_health_check=list(HealthCheck))
@given(before=digit_noise, after=digit_noise)
def test_a_failure_in_noise_is_found_across_chunk_edges(
    small_chunks: None, before: list[str], after: list[str]
) -> None:
    data = "\n".join(before).encode() + b"\n" + OOM + b"\n" + "\n".join(after).encode()
    result = run(data)
    assert result.category == "gpu_oom"
    assert any("CUDA out of memory" in e.text for e in result.evidence)


@pytest.mark.parametrize("position", ["middle", "end"])
def test_a_failure_far_into_a_very_long_line_is_found(position: str) -> None:
    # tqdm without a terminal writes every update on one line; the crash follows on the same line
    bar = b"\r 45%|####5     | 450/1000 [01:02<01:20,  6.80it/s]" * 40_000  # ~2 MiB
    data = bar + OOM + (bar if position == "middle" else b"") + b"\n"
    result = run(data)
    assert result.category == "gpu_oom"
    assert "CUDA out of memory" in result.evidence[0].text


def test_many_benign_look_alikes_stay_fast() -> None:
    """A chunk full of lines a signature excludes is walked once, not once per line."""
    look_alike = (
        b"[rank0]:node-a17:2210:2210 [0] NCCL INFO NET/Plugin : dlerror=libnccl-net.so: "
        b"cannot open shared object file: No such file or directory\n"
    )
    real = b"ImportError: libfoo.so: cannot open shared object file: No such file or directory\n"
    result = run(look_alike * 30_000 + real + look_alike * 10)  # ~4 MiB, one chunk
    assert result.category == "dependency_error"
    assert result.evidence[0].line == 30_001


def test_nothing_but_nul_bytes() -> None:
    assert run(b"\x00" * (5 * 1024 * 1024)).category == "unknown"


def test_empty_and_newline_only_documents() -> None:
    assert run(b"", b"\n" * 10_000, b"\r\n" * 10).category == "unknown"


def test_watchdog_lines_about_missing_progress_are_not_progress() -> None:
    """Lines the progress signature excludes ("no progress since last step N") keep a stall a
    stall: they must not count as progress in the window scan either."""
    steps = "\n".join(
        f"2024-07-01 09:{i // 30:02d}:{(i % 30) * 2:02d},000 INFO [rank0] step {i} loss 1.5"
        for i in range(300)
    )
    late = "\n".join(
        f"2024-07-01 09:{m:02d}:00,000 WARNING watchdog: no progress since last step 299"
        for m in range(20, 50)
    )
    assert run(f"{steps}\n{late}\n".encode()).category == "hang"
