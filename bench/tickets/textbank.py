"""Phrasing for the labeled ticket set: log excerpts, kubectl output and the users' own words.

Everything here is written for this set (no text copied from other eval sets). The log excerpts are
built around the key line the simulated cluster really showed for the job (taken from the store),
padded with the kind of lines a researcher pastes along with it.
"""

from __future__ import annotations

import hashlib
import random
import re
from datetime import datetime, timedelta

# --------------------------------------------------------------------------------------------------
# small helpers


def ip_of(node: str) -> str:
    """A stable made-up pod-network address for a node."""
    h = int(hashlib.sha1(node.encode()).hexdigest()[:6], 16)
    return f"10.{40 + h % 8}.{(h >> 8) % 250}.{(h >> 16) % 250 + 2}"


def hexid(seed: str, n: int = 12) -> str:
    return hashlib.sha256(seed.encode()).hexdigest()[:n]


def ts_torch(t: datetime) -> str:  # [2024-06-05 14:37:02,118]
    return t.strftime("%Y-%m-%d %H:%M:%S,") + f"{t.microsecond // 1000:03d}"


def ts_glog(t: datetime) -> str:  # E0605 14:37:02.118203
    return t.strftime("%m%d %H:%M:%S.") + f"{t.microsecond:06d}"


def ts_dmesg(t: datetime) -> str:  # [Wed Jun  5 14:37:02 2024]
    return "[" + t.strftime("%a %b ") + f"{t.day:2d} " + t.strftime("%H:%M:%S %Y") + "]"


def k8s_time(t: datetime) -> str:  # Wed, 05 Jun 2024 14:37:02 +0000
    return t.strftime("%a, %d %b %Y %H:%M:%S +0000")


def age(delta: timedelta) -> str:
    s = int(delta.total_seconds())
    if s < 120:
        return f"{s}s"
    if s < 3 * 3600:
        return f"{s // 60}m"
    if s < 48 * 3600:
        return f"{s // 3600}h"
    return f"{s // 86400}d"


IMAGES = {
    "llm-pretrain": "registry.internal/ml/llm",
    "multimodal": "registry.internal/ml/vlm",
    "vision": "registry.internal/ml/vision",
    "speech": "registry.internal/ml/asr",
    "research": "registry.internal/ml/research",
    "recsys": "registry.internal/ml/rec",
    "agents": "registry.internal/ml/rlhf",
    "eval": "registry.internal/ml/eval",
}


def image_for(team: str, rng: random.Random) -> str:
    return f"{IMAGES.get(team, 'registry.internal/ml/base')}:v{rng.randint(1, 9)}.{rng.randint(0, 30)}"


# --------------------------------------------------------------------------------------------------
# log excerpts, one family per category. ctx: dict with job facts (see make_labeled.Ctx)


def _rank_prefix(ctx, rank: int) -> str:
    return f"[rank{rank}]:" if ctx["gpus"] > 1 else ""


def _torchrun_tail(ctx, t: datetime, code: int, rng) -> list[str]:
    pid = rng.randint(2000, 60000)
    host = ctx["node"]
    return [
        f"E{ts_glog(t)} {rng.randint(100, 9000)} torch/distributed/elastic/multiprocessing/api.py:833] failed "
        f"(exitcode: {code}) local_rank: {rng.randint(0, max(0, min(7, ctx['gpus'] - 1)))} (pid: {pid}) of binary: /usr/bin/python3",
        "Traceback (most recent call last):",
        '  File "/usr/local/bin/torchrun", line 8, in <module>',
        "    sys.exit(main())",
        "torch.distributed.elastic.multiprocessing.errors.ChildFailedError:",
        "============================================================",
        "train.py FAILED",
        "------------------------------------------------------------",
        "Root Cause (first observed failure):",
        "[0]:",
        f"  time      : {t.strftime('%Y-%m-%d_%H:%M:%S')}",
        f"  host      : {ctx['pod']}.{host}",
        f"  rank      : {rng.randint(0, max(0, ctx['gpus'] - 1))}",
        f"  exitcode  : {code} (pid: {pid})",
    ]


def log_code_error(ctx, rng) -> str:
    t = ctx["end"]
    summ = ctx["summary"]
    r = _rank_prefix(ctx, rng.randint(0, max(0, ctx["gpus"] - 1)))
    if "KeyError" in summ:
        frames = [
            f'{r}  File "/workspace/src/train.py", line {rng.randint(180, 420)}, in <module>',
            f"{r}    main(cfg)",
            f'{r}  File "/workspace/src/train.py", line {rng.randint(120, 179)}, in main',
            f"{r}    metrics = trainer.train_step(batch)",
            f'{r}  File "/workspace/src/trainer/loop.py", line {rng.randint(60, 140)}, in train_step',
            f'{r}    loss = self.criterion(out.logits, batch["labels"])',
            f"{r}KeyError: 'labels'",
        ]
    elif "AttributeError" in summ:
        frames = [
            f'{r}  File "/workspace/models/llama.py", line {rng.randint(200, 300)}, in forward',
            f"{r}    h = blk(h, positions)",
            f'{r}  File "/usr/local/lib/python3.10/dist-packages/torch/nn/modules/module.py", line 1553, in _call_impl',
            f"{r}    return forward_call(*args, **kwargs)",
            f'{r}  File "/workspace/models/llama.py", line {rng.randint(100, 199)}, in forward',
            f"{r}    q, k = self.rope(q, k, positions)",
            f'{r}  File "/usr/local/lib/python3.10/dist-packages/torch/nn/modules/module.py", line 1729, in __getattr__',
            f"{r}    raise AttributeError(f\"'{{type(self).__name__}}' object has no attribute '{{name}}'\")",
            f"{r}AttributeError: 'LlamaBlock' object has no attribute 'rope'",
        ]
    elif "TypeError" in summ:
        frames = [
            f'{r}  File "/workspace/src/train.py", line {rng.randint(200, 400)}, in main',
            f"{r}    sched.step()",
            f'{r}  File "/usr/local/lib/python3.10/dist-packages/torch/optim/lr_scheduler.py", line 238, in step',
            f"{r}    values = self.get_lr()",
            f'{r}  File "/workspace/src/optim/warmup.py", line {rng.randint(30, 90)}, in get_lr',
            f"{r}    return [base * self.scale() for base in self.base_lrs]",
            f"{r}TypeError: scale() missing 1 required positional argument: 'step'",
        ]
    else:
        frames = [f"{r}{ctx['evidence'][0] if ctx['evidence'] else 'RuntimeError'}"]
    lines = [f"{r}Traceback (most recent call last):", *frames]
    if rng.random() < 0.5:
        lines += ["", *_torchrun_tail(ctx, t, 1, rng)[:6]]
    return "\n".join(lines)


def log_gpu_oom(ctx, rng) -> str:
    ev = next((e for e in ctx["evidence"] if "OutOfMemory" in e or "out of memory" in e), None)
    if ev is None:
        ev = f"torch.OutOfMemoryError: CUDA out of memory. Tried to allocate {rng.randint(2, 9)}.{rng.randint(10, 99)} GiB."
    r = _rank_prefix(ctx, rng.randint(0, max(0, ctx["gpus"] - 1)))
    lines = [
        f"{r}Traceback (most recent call last):",
        f'{r}  File "/workspace/train.py", line {rng.randint(150, 400)}, in <module>',
        f"{r}    loss.backward()",
        f'{r}  File "/usr/local/lib/python3.10/dist-packages/torch/_tensor.py", line 521, in backward',
        f"{r}    torch.autograd.backward(",
        f'{r}  File "/usr/local/lib/python3.10/dist-packages/torch/autograd/graph.py", line 768, in _engine_run_backward',
        f"{r}    return Variable._execution_engine.run_backward(  # Calls into the C++ engine to run the backward pass",
        f"{r}{ev}",
    ]
    if rng.random() < 0.4:
        lines = lines[-1:]
    return "\n".join(lines)


def log_dependency_error(ctx, rng) -> str:
    ev = ctx["evidence"][0] if ctx["evidence"] else "ImportError"
    if "no kernel image" in ev:
        return "\n".join([
            f"{ts_torch(ctx['start'] + timedelta(seconds=40))} INFO building model (bf16, flash-attn kernels)",
            "Traceback (most recent call last):",
            '  File "/workspace/train.py", line 57, in <module>',
            "    model = build_model(cfg).cuda()",
            '  File "/workspace/modeling/fused.py", line 112, in forward',
            "    return fused_layer_norm(x, self.weight, self.eps)",
            ev,
            "CUDA kernel errors might be asynchronously reported at some other API call, so the stacktrace below might be incorrect.",
            "For debugging consider passing CUDA_LAUNCH_BLOCKING=1",
            "Compile with `TORCH_USE_CUDA_DSA` to enable device-side assertions.",
        ])
    if "undefined symbol" in ev:
        return "\n".join([
            "Traceback (most recent call last):",
            '  File "/workspace/train.py", line 14, in <module>',
            "    from flash_attn import flash_attn_func",
            '  File "/usr/local/lib/python3.10/dist-packages/flash_attn/__init__.py", line 3, in <module>',
            "    from flash_attn.flash_attn_interface import (",
            '  File "/usr/local/lib/python3.10/dist-packages/flash_attn/flash_attn_interface.py", line 10, in <module>',
            "    import flash_attn_2_cuda as flash_attn_cuda",
            ev,
        ])
    return "\n".join([
        "Traceback (most recent call last):",
        '  File "/workspace/train.py", line 9, in <module>',
        "    from model.attention import FlashSelfAttention",
        '  File "/workspace/model/attention.py", line 3, in <module>',
        "    import flash_attn",
        ev,
    ])


def log_data_error(ctx, rng) -> str:
    ev = ctx["evidence"][0] if ctx["evidence"] else "FileNotFoundError"
    if "PytorchStreamReader" in ev:
        step = rng.randint(2, 60) * 500
        return "\n".join([
            f"{ts_torch(ctx['start'] + timedelta(seconds=25))} INFO resuming from /ckpt/{ctx['team']}/{ctx['name']}/step_{step}/model.pt",
            "Traceback (most recent call last):",
            '  File "/workspace/train.py", line 98, in <module>',
            "    state = torch.load(args.resume, map_location=\"cpu\")",
            '  File "/usr/local/lib/python3.10/dist-packages/torch/serialization.py", line 1072, in load',
            "    with _open_zipfile_reader(opened_file) as opened_zipfile:",
            '  File "/usr/local/lib/python3.10/dist-packages/torch/serialization.py", line 480, in __init__',
            "    super().__init__(torch._C.PyTorchFileReader(name_or_buffer))",
            ev,
        ])
    return "\n".join([
        "Traceback (most recent call last):",
        '  File "/workspace/data/stream.py", line 77, in __iter__',
        "    table = pq.read_table(path, columns=self.columns)",
        '  File "/usr/local/lib/python3.10/dist-packages/pyarrow/parquet/core.py", line 1793, in read_table',
        "    dataset = ParquetDataset(",
        ev,
    ])


def log_host_oom(ctx, rng) -> str:
    dm = [e for e in ctx["evidence"] if "oom" in e.lower() and e.startswith("[")]
    if dm and rng.random() < 0.6:
        return "\n".join(dm)
    return "\n".join([
        f"{ts_torch(ctx['end'] - timedelta(seconds=30))} INFO epoch 0 | building index over {rng.randint(20, 400)}M samples",
        f"{ts_torch(ctx['end'] - timedelta(seconds=3))} INFO DataLoader: spawning {rng.choice([16, 24, 32, 48])} workers",
        "command terminated with exit code 137",
    ])


def log_timeout(ctx, rng) -> str:
    step = rng.randint(2000, 90000)
    lr = rng.uniform(1, 6)
    return "\n".join([
        f"{ts_torch(ctx['end'] - timedelta(minutes=4))} INFO step {step} loss {rng.uniform(1.6, 2.4):.4f} lr {lr:.2e}".replace("e+00", "e-04"),
        f"{ts_torch(ctx['end'] - timedelta(minutes=2))} INFO step {step + 50} loss {rng.uniform(1.5, 2.3):.4f} lr {lr * 0.99:.2e}".replace("e+00", "e-04"),
        f"{ts_torch(ctx['end'])} WARNING received SIGTERM, shutting down",
        "Terminated",
    ])


def log_native_crash(ctx, rng) -> str:
    r = rng.randint(0, max(0, ctx["gpus"] - 1))
    ev = [e for e in ctx["evidence"] if e]
    lines = [
        "Fatal Python error: Segmentation fault",
        "",
        f"Thread 0x{hexid(ctx['job_id'] + 't', 12)} (most recent call first):",
        '  File "/usr/local/lib/python3.10/dist-packages/torch/utils/data/_utils/collate.py", line 141 in collate',
        '  File "/workspace/data/augment.py", line 88 in __call__',
        '  File "/usr/local/lib/python3.10/dist-packages/torchaudio/functional/functional.py", line 1652 in resample',
        "",
        "Extension modules: numpy.core._multiarray_umath, torch._C, torchaudio._torchaudio, _cffi_backend (total: 61)",
        "Segmentation fault (core dumped)",
    ]
    tail = [e for e in ev if "exitcode" in e]
    if tail:
        lines.append(tail[0])
    else:
        lines.append(f"E{ts_glog(ctx['end'])} 1 torch/distributed/elastic/multiprocessing/api.py:833] failed (exitcode: -11) local_rank: {r % 8}")
    return "\n".join(lines)


def log_numerical(ctx, rng) -> str:
    sig = ctx["signature"]
    t = ctx["end"]
    if sig == "frameworks.loss_scale_minimum":
        lines = []
        scale = 2.0 ** rng.randint(10, 16)
        for i in range(5):
            lines.append(f"[{ts_torch(t - timedelta(seconds=40 - 8 * i))}] [INFO] [loss_scaler.py:183:update_scale] [deepspeed] OVERFLOW! Rank 0 Skipping step. Attempted loss scale: {scale:g}, reducing to {scale / 2:g}")
            scale /= 2
        lines.append("Exception: Current loss scale already at minimum - cannot decrease scale anymore. Exiting run.")
        return "\n".join(lines)
    step = rng.randint(200, 20000)
    lr = rng.uniform(1, 6) * 1e-4
    lines = [
        f"{ts_torch(t - timedelta(seconds=90))} INFO trainer: step {step - 20} loss {rng.uniform(2, 4):.4f} lr {lr:.1e} grad_norm {rng.uniform(0.5, 3):.2f}",
        f"{ts_torch(t - timedelta(seconds=60))} INFO trainer: step {step - 10} loss {rng.uniform(6, 40):.4f} lr {lr:.1e} grad_norm {rng.uniform(50, 900):.2f}",
        f"{ts_torch(t - timedelta(seconds=30))} INFO trainer: step {step} loss nan lr {lr:.1e} grad_norm nan",
        f"FloatingPointError: Loss is nan at step {step}; stopping (set trainer.skip_nan=true to continue)",
    ]
    return "\n".join(lines)


def log_device_assert(ctx, rng) -> str:
    ev = [e for e in ctx["evidence"]]
    asserts = [e for e in ev if "Assertion" in e] or [
        "../aten/src/ATen/native/cuda/Loss.cu:250: nll_loss_forward_reduce_cuda_kernel_2d: block: [0,0,0], thread: [7,0,0] Assertion `t >= 0 && t < n_classes` failed."]
    a = asserts[0]
    more = [re.sub(r"thread: \[\d+,0,0\]", f"thread: [{th},0,0]", a) for th in sorted(rng.sample(range(0, 128), 3))]
    lines = [
        *more,
        "Traceback (most recent call last):",
        '  File "/workspace/train.py", line 203, in <module>',
        "    loss = F.cross_entropy(logits, target)",
        "RuntimeError: CUDA error: device-side assert triggered",
        "CUDA kernel errors might be asynchronously reported at some other API call, so the stacktrace below might be incorrect.",
        "For debugging consider passing CUDA_LAUNCH_BLOCKING=1",
    ]
    return "\n".join(lines)


def log_image_pull(ctx, rng) -> str:
    ev = ctx["evidence"][0] if ctx["evidence"] else ""
    return ev


def log_scheduling(ctx, rng) -> str:
    return ctx["evidence"][0] if ctx["evidence"] else ""


def log_preemption(ctx, rng) -> str:
    return ctx["evidence"][0] if ctx["evidence"] else ""


def log_generic(ctx, rng) -> str:
    return "\n".join(ctx["evidence"][:3])


LOGS = {
    "code_error": log_code_error,
    "gpu_oom": log_gpu_oom,
    "dependency_error": log_dependency_error,
    "data_error": log_data_error,
    "host_oom": log_host_oom,
    "timeout": log_timeout,
    "native_crash": log_native_crash,
    "numerical_divergence": log_numerical,
    "device_assert": log_device_assert,
    "image_pull": log_image_pull,
    "scheduling": log_scheduling,
    "preemption": log_preemption,
}


def key_line(ctx) -> str:
    """The one line a terse user copies: the last evidence line that looks like an error."""
    ev = ctx["evidence"]
    for e in ev:
        if any(w in e for w in ("Error", "error", "Exception", "Assertion", "Failed", "failed", "not found", "Killed", "Preempted", "nodes are available")):
            return e
    return ev[0] if ev else ""


# --------------------------------------------------------------------------------------------------
# kubectl renderings


def kubectl_get_events(ctx, rng, now: datetime) -> str:
    rows = [("LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE")]
    for ev in ctx["events"]:
        if ev["source"] == "kernel":
            continue
        typ = "Warning" if ev["severity"] in ("warning", "error") else "Normal"
        reason = ev["reason"]
        msg = ev["message"]
        if ev["kind"] == "container_terminated":
            reason, typ = "BackoffLimitExceeded" if reason == "Error" else reason, "Warning"
            if reason == "BackoffLimitExceeded":
                msg = "Job has reached the specified backoff limit"
                obj = f"job/{ctx['name']}"
                rows.append((age(now - ev["ts"]), typ, reason, obj, msg))
                continue
        obj = ev["object"].split("/", 1)[0] + "/" + ev["object"].rsplit("/", 1)[-1]
        rows.append((age(now - ev["ts"]), typ, reason, obj, msg))
    w = [max(len(r[i]) for r in rows) for i in range(4)]
    return "\n".join(f"{r[0]:<{w[0]}}   {r[1]:<{w[1]}}   {r[2]:<{w[2]}}   {r[3]:<{w[3]}}   {r[4]}" for r in rows)


def kubectl_describe_pod(ctx, rng, now: datetime, worker: int = 0) -> str:
    cat = ctx["category"]
    pod = f"{ctx['name']}-worker-{worker}"
    node = ctx["nodes"][min(worker, len(ctx["nodes"]) - 1)] if ctx["nodes"] else "<none>"
    gpus_per_pod = int(min(8, ctx["gpus"]) if ctx["gpus"] >= 1 else 1)
    img = ctx.get("image") or image_for(ctx["team"], rng)
    start, end = ctx["start"], ctx["end"]
    if cat == "host_oom":
        state = ["    State:          Terminated", "      Reason:       OOMKilled", "      Exit Code:    137"]
        status = "Failed"
    elif cat == "image_pull":
        state = ["    State:          Waiting", "      Reason:       ImagePullBackOff"]
        status = "Pending"
    elif cat == "preemption" or cat == "timeout":
        state = ["    State:          Terminated", "      Reason:       Error", "      Exit Code:    143"]
        status = "Failed"
    elif cat == "scheduling":
        state = ["    State:          Waiting", "      Reason:       ContainerCreating"]
        status = "Pending"
        node = "<none>"
    else:
        code = 139 if cat == "native_crash" else 1
        state = ["    State:          Terminated", "      Reason:       Error", f"      Exit Code:    {code}"]
        status = "Failed"
    if "Terminated" in state[0]:
        state += [f"      Started:      {k8s_time(start)}", f"      Finished:     {k8s_time(end)}"]
    mem = rng.choice(["128Gi", "256Gi", "512Gi", "64Gi"])
    lines = [
        f"Name:                 {pod}",
        f"Namespace:            {ctx['team']}",
        f"Priority:             {ctx['priority']}",
        f"Priority Class Name:  {'low-preemptible' if ctx['priority'] <= 10 else ('high' if ctx['priority'] >= 100 else 'normal')}",
        "Service Account:      default",
        f"Node:                 {node}/{ip_of(node) if node != '<none>' else ''}".rstrip("/"),
        f"Start Time:           {k8s_time(start)}",
        "Labels:               batch.kubernetes.io/controller-uid=" + hexid(ctx["job_id"], 8) + "-" + hexid(ctx["job_id"] + "u", 4),
        f"                      batch.kubernetes.io/job-name={ctx['name']}",
        f"                      fleet.internal/user={ctx['user']}",
        f"Status:               {status}",
        f"IP:                   {ip_of(pod)}",
        f"Controlled By:        Job/{ctx['name']}",
        "Containers:",
        "  pytorch:",
        f"    Container ID:   containerd://{hexid(pod, 64)}" if status != "Pending" else "    Container ID:",
        f"    Image:          {img}",
        "    Port:           29500/TCP",
        "    Command:",
        "      torchrun",
        f"      --nnodes={max(1, len(ctx['nodes']))}",
        f"      --nproc-per-node={gpus_per_pod}",
        "      train.py",
        "      --config=/workspace/configs/run.yaml",
        *state,
        "    Ready:          False",
        "    Restart Count:  0",
        "    Limits:",
        f"      memory:          {mem}",
        f"      nvidia.com/gpu:  {gpus_per_pod}",
        "    Requests:",
        "      cpu:             16",
        f"      memory:          {mem}",
        f"      nvidia.com/gpu:  {gpus_per_pod}",
        "    Environment:",
        "      NCCL_DEBUG:              WARN",
        "      PYTORCH_CUDA_ALLOC_CONF: expandable_segments:True",
        "    Mounts:",
        "      /data from datasets (ro)",
        "      /ckpt from checkpoints (rw)",
        "      /dev/shm from dshm (rw)",
        "Conditions:",
        "  Type              Status",
        "  Initialized       True",
        "  Ready             False",
        "  ContainersReady   False",
        "  PodScheduled      " + ("False" if cat == "scheduling" else "True"),
        "QoS Class:                   Guaranteed",
        "Node-Selectors:              node-pool=gpu-" + ctx["gpu_model"].lower(),
        "Tolerations:                 nvidia.com/gpu:NoSchedule op=Exists",
        "Events:",
        "  Type     Reason     Age    From               Message",
        "  ----     ------     ----   ----               -------",
    ]
    for ev in ctx["events"]:
        if ev["source"] == "kernel" or not ev["object"].startswith("pod/"):
            continue
        if ev["kind"] == "container_terminated":
            continue
        typ = "Warning" if ev["severity"] in ("warning", "error") else "Normal"
        frm = "default-scheduler" if ev["reason"] in ("Scheduled", "FailedScheduling", "Preempted") else "kubelet"
        lines.append(f"  {typ:<8} {ev['reason']:<10} {age(now - ev['ts']):<6} {frm:<18} {ev['message']}")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------------
# the users' own words, per category: (title, complaint). Placeholders: {ref} {when} {gpus} {kind}


TITLES = {
    "code_error": ["job crashed", "training died after a few minutes", "{ref} failed", "Job failing immediately?",
                   "cluster killed my run??", "help - run exits with code 1", "job fails on startup, worked last week",
                   "why did {ref} fail"],
    "gpu_oom": ["OOM on H100??", "CUDA OOM but it fit before", "job died - out of memory", "{ref} OOM",
                "GPU memory issue", "80GB not enough?!", "is the GPU broken? memory errors"],
    "dependency_error": ["ImportError in my job", "flash-attn broken in image?", "{ref} fails at import",
                         "no kernel image is available", "env issue after image update", "job can't start - undefined symbol"],
    "data_error": ["missing shard in /data?", "{ref}: file not found", "dataset disappeared??", "job fails reading data"],
    "data_error_ckpt": ["checkpoint won't load", "resume fails", "{ref} can't resume", "checkpoint corrupted?"],
    "host_oom": ["pod OOMKilled", "exit code 137", "job killed with no error", "{ref} OOMKilled - but GPU mem is fine?",
                 "container keeps getting killed"],
    "timeout": ["job killed at deadline", "DeadlineExceeded?", "my job got killed after N hours", "{ref} stopped by itself",
                "who killed my run"],
    "native_crash": ["segfault", "Segmentation fault (core dumped) in dataloader", "{ref} exit -11", "random crash, no python error"],
    "numerical_divergence": ["loss went NaN", "training diverged", "{ref} NaN loss, is it the hardware?",
                             "loss scale at minimum", "NaNs after a few k steps"],
    "device_assert": ["device-side assert triggered", "CUDA error on {ref}", "bad GPU? 'device-side assert'",
                      "Assertion `t >= 0 && t < n_classes` failed"],
    "image_pull": ["ImagePullBackOff", "image not found", "{ref} stuck pulling image", "job never starts: ErrImagePull"],
    "scheduling": ["job never scheduled", "FailedScheduling", "{ref} stuck pending then failed", "can't get {gpus_str}"],
    "preemption": ["job preempted", "why was my job killed (preempted)", "{ref} evicted", "eval keeps getting preempted"],
}

COMPLAINTS = {
    "code_error": [
        "My job {ref} failed {when}. Can you check if something is wrong with the cluster? It was running fine yesterday.",
        "{ref} crashed {when}, exit code 1. I didn't change anything (well, I merged main, but that shouldn't matter).",
        "Hi team, {ref} keeps failing right after startup. Is there an issue with the nodes?",
        "Run {ref} died {when}. Not sure if it's me or the platform, logs below.",
        "My {kind} job {ref} is failing. I think the node might be bad because the same code works on my workstation.",
    ],
    "gpu_oom": [
        "{ref} died {when} with CUDA OOM. Same config ran last week on the same GPU type, did something change on the nodes?",
        "Getting out-of-memory on {ref}. Is someone else using my GPU? The job is supposed to have it exclusively.",
        "My {gpus_adj} job {ref} crashed with an OOM {when}. I only increased the sequence length a bit.",
        "OOM on {ref}. Could the GPU be faulty? nvidia-smi showed almost full memory before it died.",
        "{ref} failed {when}, looks like memory. Can you give me bigger GPUs?",
    ],
    "dependency_error": [
        "{ref} fails at startup {when}. I think the base image changed under me?",
        "My job {ref} can't import its CUDA extension since {when}. Did the driver get upgraded on the nodes?",
        "{ref} dies immediately. Same image worked on the other pool.",
        "Environment problem on {ref}: crash at import. Did you update CUDA on the cluster?",
    ],
    "data_error": [
        "{ref} failed {when} while loading data. Did something happen to the shared storage?",
        "{ref} crashed {when} reading the dataset. Was /data cleaned up?",
        "Can't read input for {ref}. Is the filesystem ok?",
    ],
    "data_error_ckpt": [
        "My run {ref} can't resume from checkpoint anymore. Is /ckpt corrupted?",
        "{ref} failed {when} while loading the checkpoint. Did something happen to the shared storage?",
        "Resuming {ref} fails since {when}. Is the filesystem ok?",
    ],
    "host_oom": [
        "{ref} was OOMKilled {when}, but GPU memory looks fine in the dashboard. What is killing it?",
        "My job {ref} got exit code 137 {when}. No python error at all. Is the node unstable?",
        "Pod for {ref} got killed, reason OOMKilled. I thought the node has 2TB of RAM?",
        "{ref} keeps dying silently during data loading ({when}).",
    ],
    "timeout": [
        "{ref} got killed {when} while it was still training fine. Who stopped it?",
        "My job {ref} stopped {when} with DeadlineExceeded. Can you restart it? I lost progress.",
        "{ref} was terminated but loss was still going down, nothing wrong in the logs.",
        "Why was {ref} stopped? It didn't crash.",
    ],
    "native_crash": [
        "{ref} segfaulted {when}. No Python traceback, just a core dump. Bad node?",
        "My job {ref} crashed with exit -11 {when}. Could this be a hardware issue?",
        "{ref} died with 'Segmentation fault (core dumped)'. Happens sometimes, not always.",
    ],
    "numerical_divergence": [
        "{ref} went NaN {when}. Could a bad GPU produce NaNs? Same seed worked before.",
        "Loss exploded in {ref} {when}. Is there silent data corruption on the node?",
        "{ref} stopped because of NaN loss. Please check the GPUs.",
    ],
    "device_assert": [
        "{ref} crashed {when} with 'device-side assert triggered'. Is the GPU ok?",
        "Getting CUDA errors on {ref}, I think the card is broken.",
        "{ref}: RuntimeError CUDA error {when}. Please check the hardware.",
    ],
    "image_pull": [
        "{ref} never started {when}: ImagePullBackOff. Is the registry down?",
        "My job {ref} is stuck on pulling the image and then failed. Can you check the registry?",
        "{ref} failed to pull its image. It says not found but I pushed it (I think).",
    ],
    "scheduling": [
        "{ref} sat in Pending forever and then failed with FailedScheduling. I asked for {gpus_str}.",
        "Why can't {ref} be scheduled? The cluster looks half empty on the dashboard.",
        "{ref} failed {when} without ever running. Something about Insufficient nvidia.com/gpu.",
    ],
    "preemption": [
        "{ref} was killed {when} - events say Preempted. Can I get a priority bump?",
        "My eval {ref} got preempted {when}. It only needed 20 more minutes.",
        "{ref} was evicted. Why does this keep happening?",
    ],
}

RAMBLE = [
    "For context, this is for the {team} quarterly results so it's somewhat urgent.",
    "I'm new to the cluster so apologies if this is something obvious.",
    "I already resubmitted once and the same thing happened.",
    "My manager asked me to file a ticket rather than DM people, so here it is.",
    "I tried looking at the dashboard but I'm not sure what I'm looking at.",
    "This blocks our paper deadline on Friday, any help appreciated!!",
    "Sorry for the long message, wanted to include everything.",
    "Not sure this is the right channel, please redirect if not.",
    "I checked my code twice and I'm fairly sure it's not on my side.",
    "Happy to jump on a call if that's easier.",
]

SIGNOFFS = ["Thanks!", "thx", "Thanks in advance,\n{user}", "cheers", "-- {user}", "Best,\n{user}", "ty", "", "", "Thanks a lot"]


# --------------------------------------------------------------------------------------------------
# other languages: generic shells around the pasted key line

LANG_SHELLS = {
    "zh": [
        ("任务 {ref} 失败了", "你好，我的训练任务 {ref} 在 {when_utc} (UTC) 左右挂了，报错如下：\n```\n{log}\n```\n请帮忙看看是集群的问题还是我代码的问题？谢谢！"),
        ("求助：作业跑不起来", "{ref} 一直失败，日志最后几行：\n{log}\n我什么都没改，昨天还能跑。是不是节点坏了？"),
    ],
    "es": [
        ("Mi job falló", "Hola, mi job {ref} falló hoy sobre las {when_hm} UTC. Este es el error que aparece en los logs:\n\n{log}\n\n¿Es un problema del clúster o mío? Gracias."),
        ("Error en {ref}", "Buenas, el trabajo {ref} se cayó. Pego el log:\n{log}\nYa lo relancé una vez y pasó lo mismo. Saludos."),
    ],
    "fr": [
        ("Job planté", "Bonjour,\n\nmon job {ref} a planté vers {when_hm} UTC. Voici la fin du log :\n\n{log}\n\nEst-ce un souci côté cluster ? Merci d'avance."),
        ("Problème avec {ref}", "Salut, {ref} ne passe pas, erreur ci-dessous :\n{log}\nJe n'ai rien modifié depuis la semaine dernière. Vous pouvez regarder ?"),
    ],
    "de": [
        ("Job abgestürzt", "Hallo zusammen,\n\nmein Job {ref} ist gegen {when_hm} Uhr (UTC) abgestürzt. Log-Auszug:\n\n{log}\n\nLiegt das am Cluster oder an meinem Code? Danke!"),
        ("Fehler bei {ref}", "Hi, {ref} läuft nicht mehr durch. Fehlermeldung:\n{log}\nGestern ging es noch. Könnt ihr bitte mal schauen?"),
    ],
    "ko": [
        ("작업 실패 문의", "안녕하세요, {ref} 작업이 {when_hm} UTC쯤 실패했습니다. 로그는 아래와 같습니다.\n\n{log}\n\n클러스터 문제인지 제 코드 문제인지 확인 부탁드립니다. 감사합니다."),
        ("{ref} 에러", "{ref} 이(가) 계속 죽어요. 에러:\n{log}\n어제는 잘 돌았는데 노드 문제일까요?"),
    ],
}


NONE_SENTENCE = {
    "code_error": "it exits with a Python exception after a few minutes",
    "gpu_oom": "it ran out of GPU memory",
    "dependency_error": "it crashes right at startup while importing",
    "data_error": "it fails while loading its data / checkpoint",
    "host_oom": "the pod got killed (137) with no Python error",
    "timeout": "it was stopped while still training",
    "native_crash": "it segfaulted",
    "numerical_divergence": "the loss went NaN",
    "device_assert": "it crashed with a CUDA error",
    "image_pull": "it never started, image pull errors",
    "scheduling": "it never got scheduled",
    "preemption": "it got preempted",
}

NONE_TITLES = ["job died", "my run failed", "failure on {node}", "job crashed ({when})", "something killed my {kind}"]
