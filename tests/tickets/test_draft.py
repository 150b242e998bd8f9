"""The drafted answer: deterministic, and the ticket's markup is never rendered."""

from __future__ import annotations

from ticketkit import aware

from fleetmedic.store import Store
from fleetmedic.tickets.draft import neutral_markdown, neutral_text
from fleetmedic.tickets.models import TicketIn
from fleetmedic.tickets.triage import Settings, render_draft, triage

HOSTILE = (
    "<script>alert('x')</script> my job train-llama-0042 died "
    "<img src=x onerror=alert(1)> [click](javascript:alert(1)) **bold** `code`"
)


def _triage(store: Store, text: str, user: str | None = "<b>alice</b>") -> object:
    ticket = TicketIn(ticket_id="T-<i>1</i>", text=text, user=user, created_at=aware(2))
    return triage(store.con, ticket, Settings())


def test_script_and_links_from_the_ticket_are_escaped_in_every_format(store: Store) -> None:
    result = _triage(store, HOSTILE)
    settings = Settings()

    markdown = result.draft  # type: ignore[attr-defined]
    html = render_draft(result, settings, "html")  # type: ignore[arg-type]
    text = render_draft(result, settings, "text")  # type: ignore[arg-type]
    for output in (markdown, html, text):
        assert "<script" not in output and "<img" not in output and "<b>" not in output
    assert "&lt;b&gt;alice&lt;/b&gt;" in markdown and "&lt;b&gt;alice&lt;/b&gt;" in html
    assert "](javascript" not in markdown


def test_the_answer_names_cause_owner_evidence_and_fix(store: Store) -> None:
    result = _triage(store, "why did train-llama-0042 die?", user="alice")
    text = render_draft(result, Settings(), "text")  # type: ignore[arg-type]

    assert "Hi alice," in text
    assert "gpu_oom" in text and "Tried to allocate 3.82 GiB" in text
    assert "fix is on your side" in text
    assert "activation checkpointing" in text
    assert "docs/taxonomy.md#gpu_oom" in text


def test_the_platform_answer_says_what_was_done(store: Store) -> None:
    result = _triage(store, "pretrain-big died again?!", user="heidi")
    text = render_draft(result, Settings(), "text")  # type: ignore[arg-type]

    assert "hardware fault" in text and "Infra / hardware ops" in text
    assert "cordon gpu-b-13" in text
    assert "was restarted (attempt 2) from its checkpoint of 2024-06-05 13:00 UTC" in text
    assert "INC-node-gpu-b-13" in text


def test_the_same_triage_gives_the_same_words(store: Store) -> None:
    assert _triage(store, HOSTILE).draft == _triage(store, HOSTILE).draft  # type: ignore[attr-defined]


def test_neutralizers() -> None:
    assert neutral_text("a <script> b < c") == "a &lt;script> b < c"
    assert neutral_markdown("# x [a](b) <i> |") == "\\# x \\[a\\](b) &lt;i&gt; \\|"
