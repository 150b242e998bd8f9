"""BM25 over the store's ticket index, and over the in-memory catalog."""

from __future__ import annotations

from datetime import UTC, datetime

from fleetmedic.store import Store
from fleetmedic.tickets.models import TicketIn
from fleetmedic.tickets.save import Staged, save_bulk
from fleetmedic.tickets.similar import MemoryBM25, similar_tickets

WHEN = datetime(2024, 6, 3, 12, tzinfo=UTC)
PAST = {
    "T-1": "checkpoint save fails with Stale file handle on /mnt/shared since noon",
    "T-2": "CUDA out of memory when I raise the batch size to 64 on A100",
    "T-3": "pod stuck in ImagePullBackOff, manifest unknown for tag v2",
    "T-4": "loss becomes NaN after warmup, bf16, lr 3e-4",
    "T-5": "job train-llama-0042 died, CUDA out of memory again",
}


def _index(store: Store) -> None:
    tickets = [
        TicketIn(ticket_id=k, text=v, created_at=WHEN, user="alice") for k, v in PAST.items()
    ]
    save_bulk(
        store.con,
        Staged(
            tickets=tickets,
            candidates=[["train-llama-0042"] if t.ticket_id == "T-5" else [] for t in tickets],
            categories=[None] * len(tickets),
        ),
    )


def test_the_nearest_ticket_ranks_first_and_the_same_words_score_one(store: Store) -> None:
    _index(store)

    found = similar_tickets(store.con, "Stale file handle when saving the checkpoint", k=3)
    assert found[0].ticket_id == "T-1"
    same = similar_tickets(store.con, PAST["T-3"], k=1)
    assert same[0].ticket_id == "T-3" and same[0].score > 0.95


def test_the_ticket_itself_is_excluded_and_shared_jobs_are_reported(store: Store) -> None:
    _index(store)

    found = similar_tickets(store.con, PAST["T-5"], k=5, exclude="T-5")
    assert "T-5" not in [s.ticket_id for s in found]
    assert found[0].ticket_id == "T-2"
    found = similar_tickets(store.con, "CUDA out of memory", k=5, jobs=["train-llama-0042"])
    assert {s.ticket_id: s.shared_jobs for s in found} == {
        "T-2": (),
        "T-5": ("train-llama-0042",),
    }


def test_an_empty_index_or_a_query_of_stop_words_finds_nothing(store: Store) -> None:
    assert similar_tickets(store.con, "out of memory", k=3) == []
    _index(store)
    assert similar_tickets(store.con, "the and of it is", k=3) == []


def test_memory_bm25_normalizes_by_the_query_itself() -> None:
    index = MemoryBM25(["gpu memory full", "stale file handle", "gpu fell off the bus"])

    scores = index.scores("stale file handle")
    assert scores.index(max(scores)) == 1 and abs(scores[1] - 1.0) < 1e-9
    assert index.scores("") == [0.0, 0.0, 0.0]
