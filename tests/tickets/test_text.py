"""Cleaning, caps and tokens: what every ticket goes through before anything reads it."""

from __future__ import annotations

import time

import pytest

from fleetmedic.model.errors import InputError
from fleetmedic.tickets.text import MAX_CHARS, clean, decode, plain, tokenize


def test_terminal_escapes_and_control_characters_are_removed() -> None:
    text, warnings = clean("job\x1b[31m red\x1b[0m done\x00\x07 \u202eevil\r\nnext")

    assert text == "job red done evil\nnext"
    assert warnings == ["control characters removed"]


def test_a_huge_ticket_keeps_head_and_tail_and_says_so() -> None:
    text, warnings = clean("HEAD " + "x" * (3 * MAX_CHARS) + " TAIL")

    assert len(text) < MAX_CHARS + 100
    assert text.startswith("HEAD") and text.endswith("TAIL")
    assert "cut in the middle" in warnings[0]


def test_binary_is_refused_and_bad_utf8_is_replaced() -> None:
    with pytest.raises(InputError, match="binary data"):
        decode(b"\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00" * 64, "core")
    assert decode("crash caf\xe9".encode("latin-1"), "t") == "crash caf\ufffd"


def test_html_from_a_tracker_is_read_as_words() -> None:
    html = "<p>Job <b>etl-001</b> failed</p><br><div>Stale&nbsp;file handle</div><p>x</p>"

    assert plain(html).split() == ["Job", "etl-001", "failed", "Stale", "file", "handle", "x"]
    assert plain("def f(): return <lambda>") == "def f(): return <lambda>"


def test_tokens_fold_case_plurals_and_drop_noise_in_any_language() -> None:
    tokens = tokenize("My 8 GPUs: CUDA-Fehler beim Laden, erreur mémoire 2024-06-03 ab12")

    assert "gpu" in tokens and "cuda" in tokens and "fehler" in tokens and "mémoire" in tokens
    assert "my" not in tokens and "06" not in tokens and "2024" in tokens


def test_cleaning_a_ten_megabyte_line_is_fast() -> None:
    started = time.perf_counter()
    text, _ = clean("a" * 10_000_000)
    tokenize(text)
    assert time.perf_counter() - started < 2.0
