"""Throughput and memory of ``fleetmedic diagnose`` on a big noisy log, next to ``grep -E -c``.

Usage:
    python bench/bench_diagnose.py --size 2G [--repeat 3] [--out /tmp/bench-diagnose.log] [--keep]
    python bench/bench_diagnose.py --size 256M --generate-only --out /tmp/x.log

Generates (deterministically, from ``--seed``) a realistic multi-rank training log: eight ranks
interleaved with ``[rankN]:`` prefixes, Python logging timestamps, NCCL INFO lines, glog lines,
tqdm progress bars (some with hundreds of ``\\r`` updates on one line), step/loss lines, warnings,
occasional long lines (config dumps, one line over 1 MiB) and, near the end, one real failure: a CUDA
OOM traceback on rank 3 followed ten minutes later by NCCL watchdog timeouts on the other ranks and
torchrun's ChildFailedError. The expected diagnosis is ``gpu_oom``.

Then times, in one run and on the same (page-cached) file:
- ``fleetmedic diagnose FILE --format json`` (default engine, Hyperscan),
- ``fleetmedic diagnose SLICE --format json --engine regex`` on the last ``--regex-size`` bytes
  (the portable fallback is much slower, so it gets a smaller slice that still holds the failure),
- ``grep -i -E -c -f patterns.txt FILE`` with the catalog's patterns converted to POSIX ERE,
and prints wall time, MB/s, peak RSS and the ratio to grep. Peak RSS comes from ``/usr/bin/time -v``
when present, else from ``resource.getrusage(RUSAGE_CHILDREN)``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

MB = 1_000_000  # throughput in decimal MB/s, like dd and most benchmarks
RANKS = 8
START = datetime(2024, 5, 14, 8, 0, 0, tzinfo=UTC)
LINE_STEP_MS = 4  # mean wall-clock time between two log lines

# ----------------------------------------------------------------------------------------------
# log generator


def parse_size(text: str) -> int:
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([KMGT]?)i?B?", text.strip(), re.IGNORECASE)
    if not match:
        raise argparse.ArgumentTypeError(f"bad size {text!r} (e.g. 256M, 2G)")
    factor = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}[match[2].upper()]
    return int(float(match[1]) * factor)


class Clock:
    """Log time that moves forward a few ms per line; formatting cached per second (it is hot)."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.ms = 0
        self._second = -1
        self._iso = ""
        self._glog = ""

    def tick(self) -> None:
        self.ms += self.rng.randrange(2 * LINE_STEP_MS)

    def advance(self, seconds: float) -> None:
        self.ms += int(seconds * 1000)

    def _refresh(self) -> None:
        second = self.ms // 1000
        if second != self._second:
            self._second = second
            now = START + timedelta(seconds=second)
            self._iso = now.strftime("%Y-%m-%d %H:%M:%S")
            self._glog = now.strftime("%m%d %H:%M:%S")

    def iso(self) -> str:
        """Python logging's default: 2024-05-14 08:00:01,123."""
        self._refresh()
        return f"{self._iso},{self.ms % 1000:03d}"

    def glog(self) -> str:
        """glog/c10: 0514 08:00:01.123456."""
        self._refresh()
        return f"{self._glog}.{(self.ms % 1000) * 1000 + self.rng.randrange(1000):06d}"


_WARNINGS = (
    "/opt/conda/lib/python3.10/site-packages/torch/utils/checkpoint.py:464: UserWarning: "
    "torch.utils.checkpoint: the use_reentrant parameter should be passed explicitly. In version "
    "2.4 we will raise an exception if use_reentrant is not passed.",
    "/opt/conda/lib/python3.10/site-packages/torch/cuda/amp/grad_scaler.py:120: FutureWarning: "
    "`torch.cuda.amp.GradScaler(args...)` is deprecated. Please use "
    "`torch.amp.GradScaler('cuda', args...)` instead.",
    "/workspace/src/data/loader.py:88: UserWarning: The given NumPy array is not writable, and "
    "PyTorch does not support non-writable tensors.",
    "[W reducer.cpp:1389] Warning: find_unused_parameters=True was specified in DDP constructor, "
    "but did not find any unused parameters in the forward pass. This flag results in an extra "
    "traversal of the autograd graph every iteration, which can adversely affect performance. "
    "(function operator())",
    "/opt/conda/lib/python3.10/site-packages/transformers/tokenization_utils_base.py:1601: "
    "FutureWarning: `clean_up_tokenization_spaces` was not set. It will be set to `True` by default.",
    "  warnings.warn(",
)

_NCCL = (
    "NCCL INFO Channel {c:02d}/24 : {r}[{r}] -> {n}[{n}] via P2P/IPC/read",
    "NCCL INFO Channel {c:02d}/0 : {r}[{r}] -> {n}[{n}] [send] via NET/IB/{c}/GDRDMA",
    "NCCL INFO comm 0x55d3{c:04x}b0 rank {r} nranks 16 cudaDev {r} nvmlDev {r} busId {bus}000 "
    "commId 0x1b2c9e4f77aa - Init COMPLETE",
    "NCCL INFO NET/IB : Using [0]mlx5_0:1/IB [1]mlx5_1:1/IB [2]mlx5_2:1/IB [3]mlx5_3:1/IB ; "
    "OOB ib0:10.42.{c}.17<0>",
    "NCCL INFO Connected all rings",
    "NCCL INFO Connected all trees",
    "NCCL INFO threadThresholds 8/8/64 | 128/8/64 | 512 | 512",
    "NCCL INFO {c} coll channels, 0 collnet channels, 0 nvls channels, 32 p2p channels, "
    "32 p2p channels per peer",
    "NCCL INFO cudaDriverVersion 12040",
    "NCCL INFO Bootstrap : Using eth0:10.42.{c}.17<0>",
    "NCCL INFO NCCL_IB_TIMEOUT set by environment to 22.",
)

_INFO = (
    "data.py:88 - loaded shard {s:05d} (8192 samples, 33554432 tokens) from "
    "/mnt/datasets/pile-dedup/train/shard-{s:05d}.parquet",
    "trainer.py:301 - dataloader worker {w} prefetch queue depth 4, pin_memory=True",
    "metrics.py:52 - throughput {tput} tokens/s, MFU 0.{mfu:02d}, GPU memory allocated "
    "61.{mfu:02d} GiB, reserved 74.20 GiB",
    "checkpoint.py:77 - saved checkpoint to /ckpt/run-42/step_{step:08d} in 14.{w}s",
    "scheduler.py:40 - lr warmup done, cosine decay to 3.0e-05 over 480000 steps",
    "eval.py:133 - validation perplexity {ppl:.3f} on 512 batches",
    "watchdog.py:20 - heartbeat ok, last step {step} (pid {pid})",
)

_GLOG = (
    "ProcessGroupNCCL.cpp:1234] [PG 0 Rank {r}] ProcessGroupNCCL initialization options: "
    "size: 16, global rank: {r}, TIMEOUT(ms): 600000, USE_HIGH_PRIORITY_STREAM: 0",
    "ProcessGroupNCCL.cpp:2074] [PG 1 Rank {r}] NCCL_DEBUG: INFO",
    "reducer.cpp:1121] Reducer buckets have been rebuilt in this iteration.",
    "CUDAGuardImpl.h:119] Warning: CUDA caching allocator reports a memory fragmentation of 3.1%",
)

_TEARDOWN = (
    "[rank{r}]:node-a17:{pid}:{tid} [{r}] NCCL INFO comm 0x55d3{r:04x}b0 rank {r} nRanks 16 "
    "localRanks 8 localRank {r} MNNVL 0 - Abort COMPLETE",
    "[rank{r}]:node-a17:{pid}:{tid} [{r}] NCCL INFO [Service thread] Connection closed by localRank {r}",
    "[rank{r}]:node-a17:{pid}:{tid} [{r}] NCCL INFO comm 0x55d3{r:04x}b0 rank {r} - Destroy COMPLETE",
    "[rank{r}]:/opt/conda/lib/python3.10/multiprocessing/resource_tracker.py:254: UserWarning: "
    "resource_tracker: There appear to be 6 leaked semaphore objects to clean up at shutdown",
)

_BAR = " ▏▎▍▌▋▊▉"


def _bar(done: int, total: int, rng: random.Random, loss: float) -> str:
    frac = done / total
    cells = frac * 10
    full = int(cells)
    part = _BAR[int((cells - full) * 8)].strip() if full < 10 else ""
    bar = ("█" * full + part).ljust(10)
    elapsed = done // 2
    left = (total - done) // 2
    rate = 1.9 + rng.random() / 5
    return (
        f"Epoch 1: {int(frac * 100):3d}%|{bar}| {done}/{total} "
        f"[{elapsed // 60:02d}:{elapsed % 60:02d}<{left // 3600}:{left % 3600 // 60:02d}:"
        f"{left % 60:02d}, {rate:5.2f}it/s, loss={loss:.3f}]"
    )


class LogWriter:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.clock = Clock(self.rng)
        self.step = 0
        self.loss = 11.0
        self.pids = [2210 + r for r in range(RANKS)]

    def _line(self) -> str:
        rng, clock = self.rng, self.clock
        clock.tick()
        rank = rng.randrange(RANKS)
        p = f"[rank{rank}]:"
        kind = rng.random()
        if kind < 0.22:  # step/loss line, rank 0 mostly
            self.step += 1
            self.loss = max(1.6, self.loss * 0.99995 + (rng.random() - 0.5) * 0.02)
            return (
                f"[rank0]:{clock.iso()} - INFO - trainer.py:412 - step {self.step}/500000 | "
                f"loss {self.loss:.4f} | lr {3e-4 * (1 - self.step / 600000):.3e} | "
                f"grad_norm {0.5 + rng.random():.3f} | tok/s {380000 + rng.randrange(60000)} | "
                f"mem 61.{rng.randrange(100):02d}GiB"
            )
        if kind < 0.50:
            c = rng.randrange(24)
            text = _NCCL[rng.randrange(len(_NCCL))].format(
                c=c, r=rank, n=(rank + 1) % RANKS, bus=hex(0x18 + rank * 0x10)[2:]
            )
            return f"{p}node-a17:{self.pids[rank]}:{self.pids[rank] + 209} [{rank}] {text}"
        if kind < 0.68:
            return f"{p}{_bar(self.step % 10000, 10000, rng, self.loss)}"
        if kind < 0.84:
            text = _INFO[rng.randrange(len(_INFO))].format(
                s=rng.randrange(100000),
                w=rng.randrange(8),
                tput=380000 + rng.randrange(60000),
                mfu=rng.randrange(30, 60),
                step=self.step,
                ppl=7 + rng.random(),
                pid=self.pids[rank],
            )
            return f"{p}{clock.iso()} - INFO - {text}"
        if kind < 0.93:
            text = _GLOG[rng.randrange(len(_GLOG))].format(r=rank)
            return f"{p}I{clock.glog()} {self.pids[rank]} {text}"
        if kind < 0.99:
            return f"{p}{_WARNINGS[rng.randrange(len(_WARNINGS))]}"
        if kind < 0.9995:
            return f"{p}{clock.iso()} - DEBUG - collate.py:61 - batch keys input_ids, attention_mask, labels"
        return self._long_line(p)

    def _long_line(self, p: str) -> str:
        rng = self.rng
        if rng.random() < 0.5:  # tqdm without a tty: hundreds of \r updates on one line
            start = self.step % 10000
            updates = [
                _bar(min(start + i, 10000), 10000, rng, self.loss)
                for i in range(rng.randrange(100, 600))
            ]
            return p + "\r".join(updates)
        config = {
            f"model.layers.{i}.{k}": rng.random()
            for i in range(rng.randrange(50, 400))
            for k in ("attn.q_proj", "attn.k_proj", "mlp.up_proj")
        }
        return (
            f"{p}{self.clock.iso()} - INFO - config.py:12 - resolved config: {json.dumps(config)}"
        )

    def huge_line(self) -> str:
        """One line over 1 MiB (a tensor repr someone printed): the scanner reads it in pieces."""
        values = ", ".join(f"{self.rng.uniform(-3, 3):.4f}" for _ in range(170_000))
        return f"[rank2]:{self.clock.iso()} - DEBUG - debug.py:9 - activations: tensor([{values}])"

    def noise(self, nbytes: int, out: list[str]) -> int:
        written = 0
        line = self._line
        while written < nbytes:
            text = line()
            out.append(text)
            written += len(text.encode("utf-8")) + 1 if not text.isascii() else len(text) + 1
        return written

    def failure(self) -> list[str]:
        """Rank 3 runs out of GPU memory; ten minutes later the other ranks' watchdogs fire."""
        clock, rng = self.clock, self.rng
        clock.tick()
        lines = [
            f"[rank0]:{clock.iso()} - INFO - trainer.py:412 - step {self.step + 1}/500000 | loss "
            f"{self.loss:.4f} | lr 2.1e-04 | grad_norm 0.931 | tok/s 401223 | mem 77.93GiB",
        ]
        trace = [
            "Traceback (most recent call last):",
            '  File "/workspace/train.py", line 612, in <module>',
            "    main()",
            '  File "/workspace/train.py", line 588, in main',
            "    loss = train_step(model, batch, optimizer, scaler)",
            '  File "/workspace/train.py", line 431, in train_step',
            "    outputs = model(**batch)",
            '  File "/opt/conda/lib/python3.10/site-packages/torch/nn/modules/module.py", line 1553, '
            "in _wrapped_call_impl",
            "    return self._call_impl(*args, **kwargs)",
            '  File "/opt/conda/lib/python3.10/site-packages/torch/nn/parallel/distributed.py", '
            "line 1636, in forward",
            "    else self._run_ddp_forward(*inputs, **kwargs)",
            '  File "/workspace/src/model/attention.py", line 217, in forward',
            "    attn = torch.softmax(scores.float(), dim=-1).to(q.dtype)",
            "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.50 GiB. GPU 3 has a "
            "total capacity of 79.15 GiB of which 1.21 GiB is free. Process 2213 has 77.93 GiB "
            "memory in use. Of the allocated memory 74.20 GiB is allocated by PyTorch, and 2.31 GiB "
            "is reserved by PyTorch but unallocated. If reserved but unallocated memory is large try "
            "setting PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True to avoid fragmentation.  See "
            "documentation for Memory Management  "
            "(https://pytorch.org/docs/stable/notes/cuda.html#environment-variables)",
        ]
        for i, text in enumerate(trace):
            lines.append(f"[rank3]:{text}")
            if i % 5 == 4:  # other ranks keep logging in between
                r = rng.choice([1, 4, 6])
                lines.append(
                    f"[rank{r}]:node-a17:{self.pids[r]}:{self.pids[r] + 209} [{r}] "
                    "NCCL INFO Connected all rings"
                )
        clock.advance(600.04)
        for rank in (0, 1, 2, 4, 5, 6, 7):
            e = f"[rank{rank}]:[E{clock.glog()} {self.pids[rank]} ProcessGroupNCCL.cpp:616] [Rank {rank}]"
            lines += [
                f"{e} Watchdog caught collective operation timeout: WorkNCCL(SeqNum=123456, "
                "OpType=ALLREDUCE, NumelIn=262144, NumelOut=262144, Timeout(ms)=600000) ran for "
                "600043 milliseconds before timing out.",
                f"{e} Exception (either an error or timeout) detected by watchdog at work: 123456, "
                "last enqueued NCCL work: 123456, last completed NCCL work: 123455.",
                f"{e} Some NCCL operations have failed or timed out. Due to the asynchronous nature "
                "of CUDA kernels, subsequent GPU operations might run on corrupted/incomplete data.",
                f"{e} To avoid data inconsistency, we are taking the entire process down.",
            ]
            clock.tick()
        lines += [
            "[rank0]:terminate called after throwing an instance of 'c10::DistBackendError'",
            "[rank0]:  what():  [PG 0 Rank 0] Process group watchdog thread terminated with exception: "
            "[Rank 0] Watchdog caught collective operation timeout: WorkNCCL(SeqNum=123456, "
            "OpType=ALLREDUCE, NumelIn=262144, NumelOut=262144, Timeout(ms)=600000) ran for "
            "600043 milliseconds before timing out.",
            f"W{clock.glog()} 140 torch/distributed/elastic/multiprocessing/api.py:858] Sending "
            "process 2210 closing signal SIGTERM",
            f"E{clock.glog()} 140 torch/distributed/elastic/multiprocessing/api.py:833] failed "
            "(exitcode: 1) local_rank: 3 (pid: 2213) of binary: /opt/conda/bin/python",
            "Traceback (most recent call last):",
            '  File "/opt/conda/bin/torchrun", line 8, in <module>',
            "    sys.exit(main())",
            "torch.distributed.elastic.multiprocessing.errors.ChildFailedError: ",
            "============================================================",
            "train.py FAILED",
            "------------------------------------------------------------",
            "Root Cause (first observed failure):",
            "[0]:",
            f"  time      : {clock.iso()[:19].replace(' ', '_')}",
            "  host      : node-a17",
            "  rank      : 3 (local_rank: 3)",
            "  exitcode  : 1 (pid: 2213)",
            "  error_file: <N/A>",
            "  traceback : To enable traceback see: https://pytorch.org/docs/stable/elastic/errors.html",
            "============================================================",
        ]
        return lines


def generate(path: Path, size: int, seed: int, with_failure: bool = True) -> int:
    """Write about ``size`` bytes of log to ``path`` in 8 MiB blocks; returns the bytes written."""
    writer = LogWriter(seed)
    block = 8 << 20
    tail = writer.failure if with_failure else None
    failure_at = max(0, size - 48 * 1024)  # the failure, then a little teardown noise
    huge_at = size // 3 if size >= 64 << 20 else None
    written = 0
    with open(path, "w", encoding="utf-8", newline="\n", buffering=block) as out:
        while written < failure_at:
            lines: list[str] = []
            written += writer.noise(min(block, failure_at - written), lines)
            if huge_at is not None and written >= huge_at:
                lines.append(writer.huge_line())
                written += len(lines[-1]) + 1
                huge_at = None
            out.write("\n".join(lines))
            out.write("\n")
        if tail is not None:
            text = "\n".join(tail()) + "\n"
            out.write(text)
            written += len(text.encode("utf-8"))
        lines = []
        rng = writer.rng
        while written < size:  # ranks tearing down: NCCL destroy/abort chatter, no progress
            r = rng.randrange(RANKS)
            text = rng.choice(_TEARDOWN).format(r=r, pid=writer.pids[r], tid=writer.pids[r] + 209)
            lines.append(text)
            written += len(text) + 1
        if lines:
            out.write("\n".join(lines) + "\n")
    return path.stat().st_size


def tail_slice(source: Path, dest: Path, size: int) -> int:
    """The last ``size`` bytes of ``source``, starting at a line boundary."""
    total = source.stat().st_size
    with open(source, "rb") as src, open(dest, "wb") as out:
        src.seek(max(0, total - size))
        if total > size:
            src.readline()
        shutil.copyfileobj(src, out, 8 << 20)
    return dest.stat().st_size


# ----------------------------------------------------------------------------------------------
# catalog -> POSIX ERE for grep

_CLASS_ESCAPES = {"r": "\r", "f": "\f", "v": "\v", "d": "0-9", "s": "[:space:]", "w": "[:alnum:]_"}
_ESCAPES = {
    "d": "[0-9]",
    "D": "[^0-9]",
    "s": "[[:space:]]",
    "S": "[^[:space:]]",
    "w": "[[:alnum:]_]",
    "W": "[^[:alnum:]_]",
    "t": "\t",
    "b": r"\b",
    "B": r"\B",
}
_ERE_SPECIAL = set(".[]{}()*+?|^$\\")


def _class_to_ere(body: str) -> str:
    """A Python character class body (without the brackets) to POSIX: no escapes inside."""
    negate = body.startswith("^")
    if negate:
        body = body[1:]
    items: list[str] = []
    has_dash = has_bracket = has_caret = False
    i = 0
    while i < len(body):
        char = body[i]
        if char == "\\" and i + 1 < len(body):
            nxt = body[i + 1]
            i += 2
            if nxt in _CLASS_ESCAPES:
                items.append(_CLASS_ESCAPES[nxt])
            elif nxt in "SDW":
                raise ValueError("negated shorthand inside a class")
            elif nxt in "tfv":
                items.append({"t": "\t", "f": "\f", "v": "\v"}[nxt])
            elif nxt in "nr":
                pass  # grep matches within a line: no newline to match (or exclude)
            elif nxt == "-":
                has_dash = True
            elif nxt == "]":
                has_bracket = True
            elif nxt == "^":
                has_caret = True
            else:
                items.append(nxt)
            continue
        if char == "-" and (i == 0 or i == len(body) - 1):
            has_dash = True
        elif char == "]":
            has_bracket = True
        elif char == "^":
            has_caret = True
        else:
            items.append(char)
        i += 1
    # POSIX: ']' first, '-' last, '^' anywhere but first.
    out = (
        ("]" if has_bracket else "")
        + "".join(items)
        + ("^" if has_caret else "")
        + ("-" if has_dash else "")
    )
    if not out:
        if negate:
            return "."  # [^\n]: any character of the line
        raise ValueError("empty class")
    return "[" + ("^" if negate else "") + out + "]"


def to_ere(pattern: str) -> str:
    """Python ``re`` syntax to GNU ``grep -E``; ValueError when it cannot be expressed."""
    out: list[str] = []
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char == "\\" and i + 1 < len(pattern):
            nxt = pattern[i + 1]
            i += 2
            if nxt in _ESCAPES:
                out.append(_ESCAPES[nxt])
            elif nxt in _ERE_SPECIAL:
                out.append("\\" + nxt)
            elif nxt.isalnum():
                raise ValueError(f"escape \\{nxt} (anchor, backreference or property)")
            else:
                out.append(nxt)  # \- \: \/ \" ... are plain characters
            continue
        if char == "[":
            j = i + 1
            if j < len(pattern) and pattern[j] == "^":
                j += 1
            if j < len(pattern) and pattern[j] == "]":
                j += 1
            while j < len(pattern) and pattern[j] != "]":
                j += 2 if pattern[j] == "\\" else 1
            if j >= len(pattern):
                raise ValueError("unterminated class")
            out.append(_class_to_ere(pattern[i + 1 : j]))
            i = j + 1
            continue
        if char == "(" and pattern.startswith("(?P<", i):
            i = pattern.index(">", i) + 1
            out.append("(")
            continue
        if char == "(" and pattern.startswith("(?:", i):
            out.append("(")
            i += 3
            continue
        if char == "(" and pattern.startswith("(?", i):
            raise ValueError("lookaround, conditional or inline-flag group")
        if (
            char == "?"
            and out
            and (out[-1] in ("*", "+", "?") or out[-1].endswith("}"))
            and _is_quantifier(out)
        ):
            i += 1  # lazy quantifier: same lines match
            continue
        out.append(char)
        i += 1
    return "".join(out)


def _is_quantifier(out: list[str]) -> bool:
    last = out[-1]
    if last in ("*", "+", "?"):
        return len(out) > 1 and out[-2] != "\\"
    # a {m,n} quantifier ends the output with "}" and has a "{" before it
    text = "".join(out[-12:])
    return re.search(r"\{\d*,?\d*\}$", text) is not None


def grep_patterns(dest: Path) -> tuple[int, int, list[str]]:
    """Write the catalog's log patterns as ERE, one a line; (converted, skipped, reasons)."""
    from fleetmedic.diagnose.catalog import load_catalog

    converted: list[str] = []
    skipped: list[str] = []
    env = {**os.environ, "LC_ALL": "C"}
    for sig in load_catalog().signatures:
        if "log" not in sig.sources:
            continue
        for pattern in sig.patterns:
            try:
                ere = to_ere(pattern)
            except ValueError as exc:
                skipped.append(f"{sig.id}: {pattern!r} ({exc})")
                continue
            check = subprocess.run(
                ["grep", "-E", "-e", ere], input=b"", capture_output=True, env=env
            )
            if check.returncode == 2 or check.stderr:
                skipped.append(f"{sig.id}: {pattern!r} (grep: {check.stderr.decode().strip()})")
                continue
            converted.append(ere)
    dest.write_text("\n".join(converted) + "\n", encoding="utf-8")
    return len(converted), len(skipped), skipped


# ----------------------------------------------------------------------------------------------
# timing


@dataclass
class Run:
    tool: str
    nbytes: int
    seconds: float
    rss_mb: float | None
    stdout: str
    stderr: str
    returncode: int

    @property
    def mb_s(self) -> float:
        return self.nbytes / MB / self.seconds if self.seconds else float("inf")


_TIME = "/usr/bin/time"


def timed(tool: str, argv: list[str], nbytes: int, env: dict[str, str] | None = None) -> Run:
    use_time = os.path.exists(_TIME)
    cmd = [_TIME, "-v", *argv] if use_time else argv
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, env=env)
    seconds = time.perf_counter() - start
    err = proc.stderr.decode("utf-8", "replace")
    rss: float | None = None
    if use_time:
        found = re.search(r"Maximum resident set size \(kbytes\): (\d+)", err)
        rss = int(found[1]) / 1024 if found else None
        err = err[: err.rfind("\tCommand being timed:")] if "\tCommand being timed:" in err else err
    else:
        after = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        rss = after / 1024 if after > before else None  # max over children so far: upper bound
    return Run(
        tool,
        nbytes,
        seconds,
        rss,
        proc.stdout.decode("utf-8", "replace"),
        err.strip(),
        proc.returncode,
    )


def fleetmedic_argv() -> list[str]:
    script = Path(sys.executable).with_name("fleetmedic")
    return [str(script)] if script.exists() else [sys.executable, "-m", "fleetmedic"]


def check_diagnosis(run: Run, expected: str) -> str:
    if run.returncode != 0:
        return f"exit {run.returncode}: {run.stderr.splitlines()[-1] if run.stderr else ''}"
    try:
        category = json.loads(run.stdout)["category"]
    except (ValueError, KeyError) as exc:
        return f"bad JSON output ({exc})"
    return "ok" if category == expected else f"WRONG: {category}"


def table(runs: list[tuple[Run, str]], grep: Run) -> str:
    """A Markdown table; the ratio is MB/s over grep's MB/s (above 1: faster than grep)."""
    head = ["tool", "MB", "seconds", "MB/s", "peak RSS MB", "vs grep", "check"]
    rows = [head, ["---"] * len(head)]
    for run, check in runs:
        rss = f"{run.rss_mb:.0f}" if run.rss_mb is not None else "n/a"
        ratio = run.mb_s / grep.mb_s if grep.mb_s else float("nan")
        rows.append(
            [
                run.tool,
                f"{run.nbytes / MB:.0f}",
                f"{run.seconds:.2f}",
                f"{run.mb_s:.0f}" if run.mb_s >= 10 else f"{run.mb_s:.2f}",
                rss,
                f"{ratio:.2f}x",
                check,
            ]
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    return "\n".join(
        "| "
        + " | ".join(
            c.ljust(w) if i in (0, 6) else c.rjust(w)
            for i, (c, w) in enumerate(zip(r, widths, strict=True))
        )
        + " |"
        if r[0] != "---"
        else "|" + "|".join("-" * (w + 2) for w in widths) + "|"
        for r in rows
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--size", type=parse_size, default=parse_size("256M"), help="log size, e.g. 256M, 2G"
    )
    parser.add_argument(
        "--out", type=Path, help="where to write the log (default: a file under /tmp)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the generated files")
    parser.add_argument("--seed", type=int, default=20240514)
    parser.add_argument(
        "--regex-size",
        type=parse_size,
        default=parse_size("32M"),
        help="size of the tail slice scanned with --engine regex (0: skip)",
    )
    parser.add_argument(
        "--repeat", type=int, default=1, help="runs of fleetmedic on the big log (median shown)"
    )
    parser.add_argument("--generate-only", action="store_true")
    parser.add_argument(
        "--no-failure", action="store_true", help="noise only (to check it is clean)"
    )
    args = parser.parse_args(argv)

    workdir = Path(tempfile.mkdtemp(prefix="bench-diagnose-", dir="/tmp"))
    log = args.out or workdir / "train.log"
    created = [workdir] + ([log] if args.out else [])
    try:
        start = time.perf_counter()
        size = generate(log, args.size, args.seed, with_failure=not args.no_failure)
        print(
            f"generated {log}: {size / MB:.0f} MB in {time.perf_counter() - start:.1f} s",
            flush=True,
        )
        if args.generate_only:
            created.remove(log) if args.out else None
            return 0

        env = {**os.environ, "LC_ALL": "C"}
        fm = fleetmedic_argv()
        tiny = workdir / "tiny.log"
        tiny.write_text("hello\n")
        startup = timed(
            "fleetmedic startup (6-byte log)", [*fm, "diagnose", str(tiny), "--format", "json"], 6
        )
        print(
            f"fleetmedic start-up (import + catalog compile), 6-byte log: {startup.seconds:.2f} s",
            flush=True,
        )

        results: list[tuple[Run, str]] = []
        runs = [
            timed(
                "fleetmedic diagnose (hyperscan)",
                [*fm, "diagnose", str(log), "--format", "json"],
                size,
            )
            for _ in range(args.repeat)
        ]
        main_run = sorted(runs, key=lambda r: r.seconds)[len(runs) // 2]  # the median run
        if args.repeat > 1:
            print("fleetmedic runs (s):", ", ".join(f"{r.seconds:.2f}" for r in runs), flush=True)
            main_run.tool += f" (median of {args.repeat})"
        results.append((main_run, check_diagnosis(main_run, "gpu_oom")))
        if main_run.stderr:
            print("fleetmedic stderr:", main_run.stderr, sep="\n")

        if args.regex_size:
            piece = workdir / "slice.log"
            piece_size = tail_slice(log, piece, args.regex_size)
            rx = timed(
                "fleetmedic --engine regex (slow fallback, tail)",
                [*fm, "diagnose", str(piece), "--format", "json", "--engine", "regex"],
                piece_size,
            )
            results.append((rx, check_diagnosis(rx, "gpu_oom")))

        patterns = workdir / "patterns.txt"
        kept, skipped, reasons = grep_patterns(patterns)
        print(
            f"grep pattern set: {kept} patterns converted to POSIX ERE, {skipped} skipped",
            flush=True,
        )
        for reason in reasons:
            print(f"  skipped {reason}")
        grep = timed(
            "grep -i -E -c -f patterns.txt (LC_ALL=C)",
            ["grep", "-i", "-E", "-c", "-f", str(patterns), str(log)],
            size,
            env=env,
        )
        grep_check = (
            f"{grep.stdout.strip()} lines"
            if grep.returncode in (0, 1)
            else f"exit {grep.returncode}"
        )
        results.append((grep, grep_check))
        # For context only: without -i GNU grep stays on its DFA fast path. Not equivalent (the
        # catalog is case-insensitive), so it is not the baseline of the ratio.
        cased = timed(
            "grep -E -c -f patterns.txt (no -i: reference only)",
            ["grep", "-E", "-c", "-f", str(patterns), str(log)],
            size,
            env=env,
        )
        results.append((cased, f"{cased.stdout.strip()} lines"))

        print()
        print(
            f"log: {size / MB:.0f} MB ({size / (1 << 30):.2f} GiB), seed {args.seed}; "
            f"machine: {os.cpu_count()} cores; file in page cache"
        )
        print(table(results, grep))
        scan_seconds = main_run.seconds - startup.seconds
        print(
            f"\nfleetmedic excluding start-up ({startup.seconds:.2f} s): "
            f"{size / MB / scan_seconds:.0f} MB/s"
        )
        ok = results[0][1] == "ok" and (not args.regex_size or results[1][1] == "ok")
        return 0 if ok else 1
    finally:
        if not args.keep:
            for path in created:
                if path.is_dir():
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    path.unlink(missing_ok=True)


if __name__ == "__main__":
    sys.exit(main())
