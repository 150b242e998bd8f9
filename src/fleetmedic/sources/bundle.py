"""Read what a failed job left behind (files, directories, stdin) into documents.

Detection is by content, not by name: gzip by its magic bytes, Kubernetes objects by parsing JSON or
YAML that carries ``kind``/``apiVersion``, everything else is a log. Logs are never read whole here:
the document keeps an opener and the engine streams it.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

import yaml

from fleetmedic.model.errors import InputError
from fleetmedic.model.inputs import Document
from fleetmedic.sources.kubernetes_objects import looks_like_kubernetes, to_fact_lines

GZIP_MAGIC = b"\x1f\x8b"
SNIFF_BYTES = 8192
# Kubernetes dumps are parsed whole; anything larger is read as a log instead.
MAX_OBJECT_BYTES = 256 * 1024 * 1024


def read_inputs(paths: Iterable[str]) -> list[Document]:
    """Documents of every path, in the order given; directories expand to their files, sorted."""
    documents: list[Document] = []
    for path in paths:
        if path == "-":
            documents.append(_stdin_document())
        elif os.path.isdir(path):
            documents.extend(_directory(Path(path)))
        else:
            documents.append(_file_document(Path(path), explicit=True))
    return documents


def _directory(folder: Path) -> Iterator[Document]:
    files = sorted(
        p for p in folder.rglob("*") if p.is_file() and not any(s.startswith(".") for s in p.parts[len(folder.parts):])
    )
    if not files:
        raise InputError(f"{folder}: directory holds no files")
    for path in files:
        yield _file_document(path, explicit=False)


def _open_path(path: Path) -> BinaryIO:
    try:
        return open(path, "rb")
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from exc


def _file_document(path: Path, *, explicit: bool) -> Document:
    with _open_path(path) as raw:
        head = raw.read(SNIFF_BYTES)
    compressed = head.startswith(GZIP_MAGIC)
    name = str(path)

    def opener() -> BinaryIO:
        stream = _open_path(path)
        return gzip.GzipFile(fileobj=stream, mode="rb") if compressed else stream

    if compressed:
        head = _gzip_head(path)
    if _is_binary(head):
        if explicit:
            raise InputError(f"{path}: binary data, not a log, JSON or YAML file")
        return Document(name=name, kind="log", opener=None, warnings=(f"{path}: binary, skipped",))
    return _classify(name, head, opener, size=_size(path, compressed))


def _gzip_head(path: Path) -> bytes:
    try:
        with gzip.open(path, "rb") as stream:
            return stream.read(SNIFF_BYTES)
    except (OSError, EOFError) as exc:
        raise InputError(f"{path}: corrupt gzip file ({exc})") from exc


def _size(path: Path, compressed: bool) -> int:
    size = path.stat().st_size
    return size * 10 if compressed else size


def _stdin_document() -> Document:
    data = sys.stdin.buffer
    peekable = data if isinstance(data, io.BufferedReader) else io.BufferedReader(data)  # type: ignore[arg-type]
    head = peekable.peek(SNIFF_BYTES)[:SNIFF_BYTES]
    stream: BinaryIO = peekable
    if head.startswith(GZIP_MAGIC):
        stream = gzip.GzipFile(fileobj=peekable, mode="rb")
        head = stream.peek(SNIFF_BYTES)[:SNIFF_BYTES] if hasattr(stream, "peek") else b""
    if _is_binary(head):
        raise InputError("standard input: binary data, not a log, JSON or YAML")
    if _looks_structured(head):
        payload = stream.read(MAX_OBJECT_BYTES + 1)
        if len(payload) <= MAX_OBJECT_BYTES:
            document = _structured("<stdin>", payload)
            if document is not None:
                return document
        return Document(name="<stdin>", kind="log", opener=_once(io.BytesIO(payload), stream))
    return Document(name="<stdin>", kind="log", opener=lambda: stream)


def _once(first: BinaryIO, rest: BinaryIO) -> Callable[[], BinaryIO]:
    """An opener for stdin that was partly consumed while sniffing: replay, then continue."""

    class _Joined(io.RawIOBase):
        def readable(self) -> bool:
            return True

        def readinto(self, buffer: Any) -> int:
            chunk = first.read(len(buffer)) or rest.read(len(buffer))
            buffer[: len(chunk)] = chunk
            return len(chunk)

    return lambda: io.BufferedReader(_Joined())  # type: ignore[return-value]


def _is_binary(head: bytes) -> bool:
    """NUL bytes or mostly non-text bytes: a core dump, a checkpoint, an image."""
    if not head:
        return False
    if b"\x00" in head:
        return True
    controls = sum(1 for b in head if b < 9 or 13 < b < 32)
    return controls / len(head) > 0.1


def _looks_structured(head: bytes) -> bool:
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if text[:1] == b"{":
        return text[1:].lstrip()[:1] in (b'"', b"}")
    if text[:1] == b"[":  # a JSON list, not a "[rank0]:" or "[2024-..." log prefix
        return text[1:].lstrip()[:1] in (b"{", b"]")
    first_lines = text.split(b"\n", 20)
    return any(
        line.startswith((b"apiVersion:", b"kind:", b"items:")) for line in first_lines
    ) or text.startswith(b"---")


def _classify(name: str, head: bytes, opener: Callable[[], BinaryIO], size: int) -> Document:
    if _looks_structured(head) and size <= MAX_OBJECT_BYTES:
        with opener() as stream:
            try:
                payload = stream.read()
            except (OSError, EOFError) as exc:
                raise InputError(f"{name}: unreadable ({exc})") from exc
        document = _structured(name, payload)
        if document is not None:
            return document
        return Document(name=name, kind="log", opener=opener, warnings=_malformed_warning(name, payload))
    return Document(name=name, kind="log", opener=opener)


def _structured(name: str, payload: bytes) -> Document | None:
    """A Kubernetes document if the payload parses as Kubernetes JSON/YAML; None for logs."""
    text = payload.decode("utf-8", errors="replace")
    obj = _parse(text)
    if obj is None or not looks_like_kubernetes(obj):
        return None
    return Document(name=name, kind="k8s", facts=tuple(to_fact_lines(obj, text)))


def _parse(text: str) -> Any:
    stripped = text.lstrip("\ufeff \t\r\n")
    if stripped[:1] in ("{", "["):
        try:
            return json.loads(stripped)
        except json.JSONDecodeError:
            return None
    try:
        docs = [doc for doc in yaml.safe_load_all(text) if doc is not None]
    except yaml.YAMLError:
        return None
    if len(docs) == 1:
        return docs[0]
    return docs or None


def _malformed_warning(name: str, payload: bytes) -> tuple[str, ...]:
    """Say why a file that looked like JSON/YAML is read as plain text instead."""
    text = payload.decode("utf-8", errors="replace")
    stripped = text.lstrip("\ufeff \t\r\n")
    if stripped[:1] in ("{", "["):
        try:
            json.loads(stripped)
        except json.JSONDecodeError as exc:
            if _is_json_lines(stripped):
                return ()
            return (f"{name}: invalid JSON ({exc.msg} at line {exc.lineno}); read as plain text",)
        return ()
    try:
        list(yaml.safe_load_all(text))
    except yaml.YAMLError as exc:
        first = str(exc).splitlines()[0] if str(exc) else "parse error"
        return (f"{name}: invalid YAML ({first}); read as plain text",)
    return ()


def _is_json_lines(text: str) -> bool:
    """Structured logs (one JSON object a line) are logs, not broken Kubernetes objects."""
    first = text.split("\n", 1)[0].strip()
    try:
        return isinstance(json.loads(first), dict)
    except json.JSONDecodeError:
        return False
