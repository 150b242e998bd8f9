"""The cause/symptom model on multi-rank bundles: the root cause, not the loudest symptom."""

from __future__ import annotations

from collections.abc import Callable

from fleetmedic.model.records import Diagnosis

Run = Callable[..., Diagnosis]

STEPS = "\n".join(
    f"2024-06-02 11:0{m}:{s:02d},000 INFO trainer.py:88 step {m * 60 + s} loss 1.{s:02d}"
    for m in range(2)
    for s in range(0, 60, 5)
)


def test_oom_on_one_rank_beats_nccl_timeouts_elsewhere(run: Run) -> None:
    rank3 = (
        STEPS
        + "\n2024-06-02 11:02:01,500 ERROR Traceback (most recent call last):\n"
        + '  File "/app/train.py", line 90, in step\n'
        + "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 5.00 GiB. GPU 3 has a total capacity of 39.39 GiB of which 1.02 GiB is free.\n"
    )
    others = (
        STEPS
        + "\n[rank0]:[E0602 11:12:03.118000 ProcessGroupNCCL.cpp:616] [Rank 0] Watchdog caught collective operation timeout: WorkNCCL(SeqNum=77, OpType=ALLREDUCE, Timeout(ms)=600000) ran for 600012 milliseconds before timing out.\n"
        + "[rank0]:terminate called after throwing an instance of 'c10::DistBackendError'\n"
    )
    launcher = (
        "2024-06-02 11:12:05,000 ERROR failed (exitcode: -6) local_rank: 0 (pid: 12) of binary: /usr/bin/python\n"
        "torch.distributed.elastic.multiprocessing.errors.ChildFailedError:\n"
    )
    result = run({"rank0.log": others, "rank3.log": rank3, "torchrun.log": launcher})
    assert result.category == "gpu_oom"
    assert result.evidence[0].file == "rank3.log"
    assert {"nccl_comm", "native_crash"} <= {s.category for s in result.secondary}


def test_late_child_failed_error_does_not_hide_the_exception(run: Run) -> None:
    log = (
        "Traceback (most recent call last):\n"
        '  File "train.py", line 12, in <module>\n'
        "ValueError: Target size (torch.Size([8, 1])) must be the same as input size (torch.Size([8, 10]))\n"
        "ERROR:torch.distributed.elastic.multiprocessing.api:failed (exitcode: 1) local_rank: 0 (pid: 5) of binary: /usr/bin/python3\n"
        "torch.distributed.elastic.multiprocessing.errors.ChildFailedError:\n"
    )
    result = run({"out.log": log})
    assert result.category == "code_error"
    assert "ValueError" in result.summary


def test_xid_before_cuda_unknown_error_is_hardware(run: Run) -> None:
    dmesg = "[Sun Jun  2 11:00:58 2024] NVRM: Xid (PCI:0000:c1:00): 79, pid=4410, name=python, GPU has fallen off the bus.\n"
    rank = (
        "2024-06-02 11:01:00,120 INFO step 400\n"
        "RuntimeError: CUDA error: unknown error\n"
        "CUDA kernel errors might be asynchronously reported at some other API call\n"
    )
    result = run({"dmesg.txt": dmesg, "rank5.log": rank})
    assert result.category == "gpu_hardware"
    assert result.details.get("xid") == "79"
    assert result.owner == "hardware"


def test_cuda_unknown_error_alone_is_a_weak_hardware_guess(run: Run) -> None:
    result = run({"rank.log": "RuntimeError: CUDA error: unknown error\n"})
    assert result.category == "gpu_hardware"
    assert result.confidence < 0.6


def test_exception_on_one_rank_then_exits_elsewhere(run: Run) -> None:
    r1 = (
        "2024-06-02 11:00:00,000 INFO step 10\n"
        "2024-06-02 11:00:01,000 ERROR Traceback (most recent call last):\n"
        "KeyError: 'input_ids'\n"
    )
    r0 = "2024-06-02 11:00:40,000 INFO step 10\nsubprocess exited with non-zero exit status 1\n"
    result = run({"r0.log": r0, "r1.log": r1})
    assert result.category == "code_error"


def test_earlier_cause_wins_over_later_unrelated_error(run: Run) -> None:
    a = "2024-06-02 10:00:00,000 ERROR OSError: [Errno 5] Input/output error: '/mnt/shared/ckpt/step_900.pt'\n"
    b = "2024-06-02 10:03:00,000 ERROR RuntimeError: NCCL communicator was aborted on rank 2.\n"
    result = run({"a.log": a, "b.log": b})
    assert result.category == "storage_io"
    assert "nccl_comm" in {s.category for s in result.secondary}


def test_shm_beats_the_storage_reading_of_the_same_line(run: Run) -> None:
    line = "RuntimeError: unable to write to file </torch_112_3141592653_7>: No space left on device (28)\n"
    assert run({"x.log": line}).category == "shm_exhausted"


def test_keyboard_interrupt_then_shutdown_error_is_cancelled(run: Run) -> None:
    log = (
        "Epoch 3: 41%|████      | 410/1000 [02:10<03:07, 3.14it/s, loss=0.88]\n"
        "Traceback (most recent call last):\n"
        '  File "fit.py", line 40, in <module>\n'
        "KeyboardInterrupt\n"
        "\nDuring handling of the above exception, another exception occurred:\n\n"
        "AttributeError: 'Trainer' object has no attribute 'summary'\n"
    )
    assert run({"x.log": log}).category == "cancelled"


def test_a_launcher_epilogue_alone_names_no_cause(run: Run) -> None:
    result = run({"x.log": "torch.distributed.elastic.multiprocessing.errors.ChildFailedError:\n"})
    assert result.category == "unknown"
    assert [s.signature for s in result.secondary] == ["pytorch.child_failed"]


def test_a_specific_symptom_alone_is_reported_with_lower_confidence(run: Run) -> None:
    result = run(
        {"x.log": "RuntimeError: DataLoader worker (pid 1884) is killed by signal: Killed.\n"}
    )
    assert result.category == "host_oom"
    assert result.confidence < 0.6


def test_nothing_recognisable_is_unknown(run: Run) -> None:
    result = run({"x.log": "INFO starting\nINFO loading model\nINFO done 0 errors\n"})
    assert result.category == "unknown"
    assert result.signature is None
    assert result.confidence == 0.0


def test_pod_oomkilled_beats_a_vague_killed_line(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import json

    from fleetmedic.diagnose.engine import diagnose
    from fleetmedic.sources.bundle import read_inputs

    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "etl-0", "namespace": "data"},
        "status": {
            "phase": "Failed",
            "containerStatuses": [
                {
                    "name": "main",
                    "state": {
                        "terminated": {
                            "exitCode": 137,
                            "reason": "OOMKilled",
                            "finishedAt": "2024-06-02T10:00:00Z",
                        }
                    },
                }
            ],
        },
    }
    (tmp_path / "pod.json").write_text(json.dumps(pod, indent=2))
    (tmp_path / "main.log").write_text(
        "loading shards 12/40\n/entry.sh: line 3:    7 Killed    python etl.py\n"
    )
    result = diagnose(read_inputs([str(tmp_path)]), name="b")
    assert result.category == "host_oom"
    assert result.signature == "k8s.oomkilled"
    assert any(e.file.endswith("pod.json") and "OOMKilled" in e.text for e in result.evidence)
    assert result.evidence[0].line > 1  # points at the reason inside the JSON


def test_regex_engine_agrees_with_hyperscan(run: Run) -> None:
    log = (
        "2024-06-02 11:00:00,000 INFO step 1\n"
        "NCCL WARN NET/IB : Got completion from peer 10.1.1.2<4455> with error 12, opcode 1, len 0, vendor err 129\n"
        "RuntimeError: NCCL communicator was aborted on rank 1.\n"
    )
    fast, slow = run({"x.log": log}, engine="hyperscan"), run({"x.log": log}, engine="regex")
    assert fast.category == slow.category == "nccl_comm"
    assert fast.evidence == slow.evidence
