"""Optional: have a language model reword the templated draft (an OpenAI-compatible endpoint).

Never required: without ``FLEETMEDIC_LLM_URL`` nothing is sent anywhere, and when the endpoint
fails the templated draft is kept (the caller gets :class:`RewriteError` and says so). The model
only rewords: the prompt forbids new facts, and its output is treated as untrusted text (tags
neutralized) like the ticket itself. The HTTP transport is injected so tests need no server.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping

from fleetmedic.model.errors import FleetmedicError
from fleetmedic.tickets.draft import neutral_text

ENV_URL = "FLEETMEDIC_LLM_URL"
ENV_MODEL = "FLEETMEDIC_LLM_MODEL"
ENV_KEY = "FLEETMEDIC_LLM_KEY"
DEFAULT_MODEL = "gpt-4o-mini"
MAX_OUTPUT_CHARS = 20_000
PROMPT = (
    "You are helping an ML platform engineer answer a user's ticket. Reword the draft below so "
    "it reads naturally and kindly. Keep every fact, job id, node name, number and link exactly; "
    "add no new facts, no guesses and no HTML. Answer with the reworded text only."
)

Transport = Callable[[str, Mapping[str, str], bytes, float], bytes]


class RewriteError(FleetmedicError):
    """The endpoint could not reword the draft; the templated draft stands."""


def urllib_transport(url: str, headers: Mapping[str, str], body: bytes, timeout: float) -> bytes:
    request = urllib.request.Request(url, data=body, headers=dict(headers), method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            data: bytes = response.read(1_000_000)
            return data
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise RewriteError(f"LLM endpoint {url}: {exc}") from exc


def configured() -> bool:
    return bool(os.environ.get(ENV_URL))


def rewrite(
    draft: str,
    *,
    url: str | None = None,
    model: str | None = None,
    key: str | None = None,
    transport: Transport = urllib_transport,
    timeout: float = 30.0,
) -> str:
    """The draft reworded by the model at ``url`` (default: ``$FLEETMEDIC_LLM_URL``)."""
    base = url or os.environ.get(ENV_URL)
    if not base:
        raise RewriteError(f"no LLM endpoint: set {ENV_URL} (an OpenAI-compatible /v1 URL)")
    endpoint = base.rstrip("/") + "/chat/completions"
    headers = {"Content-Type": "application/json"}
    token = key or os.environ.get(ENV_KEY)
    if token:
        headers["Authorization"] = f"Bearer {token}"
    body = {
        "model": model or os.environ.get(ENV_MODEL) or DEFAULT_MODEL,
        "temperature": 0,
        "messages": [
            {"role": "system", "content": PROMPT},
            {"role": "user", "content": draft},
        ],
    }
    raw = transport(endpoint, headers, json.dumps(body).encode("utf-8"), timeout)
    try:
        content = json.loads(raw)["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        raise RewriteError(f"LLM endpoint {endpoint}: unexpected answer ({exc})") from exc
    if not isinstance(content, str) or not content.strip():
        raise RewriteError(f"LLM endpoint {endpoint}: empty answer")
    return neutral_text(content.strip()[:MAX_OUTPUT_CHARS])
