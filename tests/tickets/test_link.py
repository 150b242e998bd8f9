"""Job linking against the scenario store: every rule of fleetmedic.tickets.link, and no guesses."""

from __future__ import annotations

from ticketkit import aware

from fleetmedic.store import Store
from fleetmedic.tickets.extract import extract
from fleetmedic.tickets.link import by_category, link_jobs
from fleetmedic.tickets.models import JobLink


def links(store: Store, text: str, user: str | None = None, hours: float = 80) -> list[JobLink]:
    when = aware(hours)
    return link_jobs(store.con, extract(text, when), user, when)


def test_a_named_job_is_linked_with_its_diagnosis_and_evidence(store: Store) -> None:
    (link,) = links(store, "why did train-llama-0042 die??")

    assert (link.job_id, link.how, link.score) == ("train-llama-0042", "exact", 1.0)
    assert (link.category, link.owner, link.user) == ("gpu_oom", "user", "alice")
    assert "Tried to allocate 3.82 GiB" in link.evidence[0]
    assert link.gpu_hours == 8.0


def test_a_pod_name_finds_its_job_through_the_events(store: Store) -> None:
    (link,) = links(store, "kubectl logs research-eval-96-worker-0 says file not found")

    assert (link.job_id, link.how) == ("sim-abc12345-000096", "pod")


def test_a_kubernetes_job_name_finds_the_imported_key(store: Store) -> None:
    found = {link.job_id: link.how for link in links(store, "pytorchjob/resnet-ddp hangs")}

    assert found == {"kube:ml/job/resnet-ddp": "suffix"}
    found = {link.job_id for link in links(store, "worker resnet-ddp-worker-1 crashed")}
    assert found == {"kube:ml/job/resnet-ddp"}


def test_a_truncated_id_is_recovered_by_prefix_when_unambiguous(store: Store) -> None:
    (link,) = links(store, "job ft-bert-00 broke")
    assert (link.job_id, link.how) == ("ft-bert-0007", "prefix")
    # 0042 or 0043: no prefix guess, but one edit away from both, and 0042 is the failed one
    (link,) = links(store, "job train-llama-004 broke", user="alice")
    assert (link.job_id, link.how) == ("train-llama-0042", "fuzzy")


def test_a_typo_is_recovered_and_ranked_by_the_reporter(store: Store) -> None:
    (link,) = links(store, "my job train-lama-0042 failed", user="alice")

    assert (link.job_id, link.how, link.mention) == ("train-llama-0042", "fuzzy", "train-lama-0042")
    ranked = links(store, "job train-llama-0044 failed", user="alice")
    assert [link.job_id for link in ranked] == ["train-llama-0042"]  # tie with 0043: the failed


def test_no_job_is_linked_from_words_that_merely_look_like_ids(store: Store) -> None:
    assert links(store, "using torch-2.3.1 and cuda-12.4 on python3.11, job failed") == []


def test_the_reporters_only_failure_of_the_category_is_found_near_the_time(store: Store) -> None:
    (found,) = by_category(store.con, "bob", "code_error", aware(4))

    assert (found.job_id, found.how) == ("ft-bert-0007", "user_time")
    assert by_category(store.con, "bob", "gpu_oom", aware(4)) == []  # not that kind
    assert by_category(store.con, "bob", "code_error", aware(30)) == []  # too far in time
    assert links(store, "my job just died", user="bob", hours=4) == []  # no category: no guess


def test_bare_numbers_and_mangled_ids_are_the_reporters_numbered_jobs(store: Store) -> None:
    (link,) = links(store, "#42 is dead, pls help", user="alice")
    assert (link.job_id, link.how) == ("train-llama-0042", "suffix")
    assert links(store, "#42 is dead, pls help") == []  # whose 42? no reporter, no guess
    (link,) = links(store, "job trainllama0042 crashed", user="alice")
    assert link.job_id == "train-llama-0042"  # by its number, or with the dashes put back


def test_a_job_name_finds_its_job_through_its_pods(store: Store) -> None:
    (link,) = links(store, "research-eval-96 died", user="judy", hours=14)
    assert (link.job_id, link.how) == ("sim-abc12345-000096", "pod")


def test_someone_elses_id_gives_way_to_the_reporters_own_job(store: Store) -> None:
    (link,) = links(store, "my job train-llama-0043 failed (typo?)", user="bob", hours=5)
    assert link.job_id == "train-llama-0043"  # bob has no job one edit away: kept
    (link,) = links(store, "my job ft-bert-0007 failed", user="alice", hours=5)
    assert link.job_id == "ft-bert-0007"


def test_actions_and_restarts_are_reported(store: Store) -> None:
    (link,) = links(store, "pretrain-big died again")

    assert link.attempts == 2
    assert any("restart_from_checkpoint" in a for a in link.actions)
    assert any(a.startswith("cordon gpu-b-13") for a in link.actions)
