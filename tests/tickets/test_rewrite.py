"""The optional LLM rewording: injected transport, untrusted output, never required."""

from __future__ import annotations

import json
from collections.abc import Mapping

import pytest

from fleetmedic.tickets.rewrite import RewriteError, rewrite


def answering(content: object) -> object:
    sent: dict[str, object] = {}

    def transport(url: str, headers: Mapping[str, str], body: bytes, timeout: float) -> bytes:
        sent.update(url=url, headers=dict(headers), body=json.loads(body))
        return json.dumps({"choices": [{"message": {"content": content}}]}).encode()

    transport.sent = sent  # type: ignore[attr-defined]
    return transport


def test_the_draft_is_sent_and_the_answer_neutralized() -> None:
    transport = answering("Hello! <script>x</script> Your job ran out of memory.")
    out = rewrite("draft", url="http://127.0.0.1:9/v1", key="k", transport=transport)  # type: ignore[arg-type]

    assert out == "Hello! &lt;script>x&lt;/script> Your job ran out of memory."
    sent = transport.sent  # type: ignore[attr-defined]
    assert sent["url"] == "http://127.0.0.1:9/v1/chat/completions"
    assert sent["headers"]["Authorization"] == "Bearer k"
    assert sent["body"]["messages"][1]["content"] == "draft"


def test_no_endpoint_or_a_bad_answer_is_a_rewrite_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FLEETMEDIC_LLM_URL", raising=False)
    with pytest.raises(RewriteError, match="no LLM endpoint"):
        rewrite("draft")
    with pytest.raises(RewriteError, match="empty answer"):
        rewrite("draft", url="http://127.0.0.1:9/v1", transport=answering(""))  # type: ignore[arg-type]
