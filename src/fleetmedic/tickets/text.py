"""Ticket text made safe to analyse: decoded, capped, stripped of control characters, tokenized.

Why caps: a ticket is typed by a person but often carries a pasted log or an attachment, and every
later step (regexes, the diagnosis engine, the index) costs time in its length. A ticket longer
than :data:`MAX_CHARS` keeps its head and its tail (a log ends with the error) and says what was
cut; nothing downstream ever sees more. The original markup is kept as text: output escapes it.
"""

from __future__ import annotations

import html
import re
from collections import Counter

from fleetmedic.model.errors import InputError

MAX_CHARS = 1_000_000
"""Characters of a ticket that are analysed and kept; more is cut (head 3/4, tail 1/4)."""
MAX_INDEXED_TOKENS = 4_000
"""Tokens of a ticket that go into the similarity index: the start says what it is about."""
_BINARY_SAMPLE = 65_536

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u200b-\u200f\u202a-\u202e\u2066-\u2069]")
_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]{0,512}(?:\x07|\x1b\\)?")
_TAG = re.compile(r"<(?:br|p|div|li|tr|/p|/div|/li|/tr|h\d|/h\d)\b[^<>]{0,200}>", re.I)
_ANY_TAG = re.compile(r"</?[A-Za-z][A-Za-z0-9-]{0,30}\b[^<>]{0,500}>")
_WORD = re.compile(r"[^\W_]+")

STOP_WORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "been",
        "but",
        "by",
        "can",
        "could",
        "did",
        "do",
        "does",
        "for",
        "from",
        "had",
        "has",
        "have",
        "hi",
        "hello",
        "i",
        "if",
        "in",
        "into",
        "is",
        "it",
        "its",
        "me",
        "my",
        "no",
        "not",
        "of",
        "on",
        "or",
        "our",
        "please",
        "so",
        "than",
        "thanks",
        "thank",
        "that",
        "the",
        "their",
        "them",
        "then",
        "there",
        "these",
        "they",
        "this",
        "to",
        "us",
        "was",
        "we",
        "were",
        "what",
        "when",
        "where",
        "which",
        "while",
        "who",
        "why",
        "will",
        "with",
        "would",
        "you",
        "your",
        "yours",
        "any",
        "all",
        "also",
        "am",
        "again",
        "after",
        "before",
        "about",
        "just",
        "get",
        "got",
        "still",
        "since",
        "some",
        "how",
        "job",
        "der",
        "die",
        "das",
        "und",
        "ist",
        "nicht",
        "mit",
        "ein",
        "eine",
        "ich",
        "le",
        "la",
        "les",
        "et",
        "est",
        "pas",
        "une",
        "des",
        "el",
        "los",
        "las",
        "es",
        "por",
        "que",
    ]
)


def looks_binary(data: bytes) -> bool:
    """Scattered NUL or control bytes, or mostly invalid UTF-8: an attachment, not a ticket."""
    sample = data[:_BINARY_SAMPLE]
    if not sample:
        return False
    if sample.count(0) > 4:
        return True
    controls = sum(1 for b in sample if b < 9 or 13 < b < 32)
    if controls / len(sample) > 0.1:
        return True
    decoded = sample.decode("utf-8", errors="replace")
    return decoded.count("\ufffd") / max(len(decoded), 1) > 0.1


def decode(data: bytes, label: str) -> str:
    """Bytes of a ticket as text; binary data is refused (``InputError``), bad UTF-8 replaced."""
    if looks_binary(data):
        raise InputError(f"{label}: binary data, not the text of a ticket")
    return data.decode("utf-8", errors="replace")


def clean(text: str) -> tuple[str, list[str]]:
    """Text fit to analyse and store, and warnings about what was changed.

    Terminal escapes and control characters go (they could repaint a terminal or hide text);
    line ends become ``\\n``; a ticket over :data:`MAX_CHARS` keeps its head and tail.
    """
    warnings: list[str] = []
    if len(text) > MAX_CHARS:
        head, tail = MAX_CHARS * 3 // 4, MAX_CHARS // 4
        cut = len(text) - head - tail
        text = f"{text[:head]}\n[... {cut:,} characters cut ...]\n{text[-tail:]}"
        warnings.append(f"ticket longer than {MAX_CHARS:,} characters: {cut:,} cut in the middle")
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _ANSI.sub("", text)
    stripped = _CONTROL.sub("", text)
    if len(stripped) != len(text) and not warnings:
        warnings.append("control characters removed")
    return stripped, warnings


def plain(text: str) -> str:
    """The words of a ticket whose text is HTML (a tracker's rendered field), for analysis only.

    Line-breaking tags become newlines and other tags go; entities are decoded. Ticket text that
    is not HTML passes through (a ``<lambda>`` in a traceback is not worth the guess).
    """
    if len(_ANY_TAG.findall(text[:20_000])) < 3:
        return text
    text = _TAG.sub("\n", text)
    return html.unescape(_ANY_TAG.sub(" ", text))


def _stem(word: str) -> str:
    """Plural to singular, the one variation that splits most ticket words (GPUs, errors)."""
    if len(word) >= 4 and word.endswith("s") and not word.endswith("ss"):
        return word[:-1]
    return word


def tokenize(text: str) -> list[str]:
    """Lower-case words and numbers for retrieval, minus stop words and noise.

    Words of one letter, numbers of fewer than three digits (clock times, dates) and tokens
    longer than 40 characters (hashes, base64) carry no topic.
    """
    out = []
    for word in _WORD.findall(text.lower()):
        if len(word) < 2 or len(word) > 40 or word in STOP_WORDS:
            continue
        if word.isdigit() and len(word) < 3:
            continue
        out.append(_stem(word))
    return out


def term_counts(text: str) -> tuple[Counter[str], int]:
    """Term frequencies of the indexed part of a ticket, and its length in tokens."""
    tokens = tokenize(text)[:MAX_INDEXED_TOKENS]
    return Counter(tokens), len(tokens)
