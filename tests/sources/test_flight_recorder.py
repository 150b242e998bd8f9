from __future__ import annotations

from typing import Any

from fleetmedic.sources.flight_recorder import analyze, is_flight_recorder


def dump(entries: list[tuple[int, str]], op: str = "nccl:all_reduce") -> dict[str, Any]:
    return {
        "version": "2.4",
        "pg_config": {"0": {"name": "0", "desc": "default_pg", "ranks": "[0, 1, 2, 3]"}},
        "entries": [
            {"record_id": i, "pg_id": 0, "collective_seq_id": seq, "p2p_seq_id": 0, "op_id": seq,
             "profiling_name": op, "state": state, "is_p2p": False, "timeout_ms": 600000}
            for i, (seq, state) in enumerate(entries)
        ],
    }


def test_laggard_rank_is_named() -> None:
    waiting = [(117, "completed"), (118, "started")]
    dumps = {f"nccl_trace_rank_{r}": dump(waiting) for r in (0, 1, 2)}
    dumps["nccl_trace_rank_3"] = dump([(116, "completed"), (117, "completed")])
    (fact,) = analyze(dumps)
    assert "ranks 0,1,2 wait in collective #118" in fact
    assert "rank(s) 3 never entered" in fact


def test_everyone_inside_is_a_transport_stall() -> None:
    dumps = {f"rank{r}.json": dump([(51, "completed"), (52, "scheduled")]) for r in range(4)}
    (fact,) = analyze(dumps)
    assert "all 4 ranks entered collective #52" in fact


def test_all_completed_is_no_finding() -> None:
    dumps = {f"rank{r}.json": dump([(51, "completed"), (52, "completed")]) for r in range(2)}
    assert analyze(dumps) == []


def test_recognises_dumps() -> None:
    assert is_flight_recorder(dump([(1, "completed")]))
    assert not is_flight_recorder({"entries": []})
    assert not is_flight_recorder({"kind": "Pod"})


def test_dumps_in_a_bundle_are_diagnosed_as_a_hang(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import json

    from fleetmedic.diagnose.engine import diagnose
    from fleetmedic.sources.bundle import read_inputs

    for rank in range(3):
        (tmp_path / f"nccl_trace_rank_{rank}.json").write_text(
            json.dumps(dump([(40, "completed"), (41, "started")]))
        )
    (tmp_path / "nccl_trace_rank_3.json").write_text(json.dumps(dump([(40, "completed")])))
    result = diagnose(read_inputs([str(tmp_path)]), name="b")
    assert result.category == "hang"
    assert result.signature == "hang.flight_recorder_laggard"
    assert result.details["laggards"] == "3"
