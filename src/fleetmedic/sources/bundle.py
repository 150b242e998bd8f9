"""Read what a failed job left behind (files, directories, stdin, pipes) into documents.

Detection is by content, not by name: gzip by its magic bytes, Kubernetes objects by parsing JSON or
YAML that carries ``kind``/``apiVersion``, everything else is a log. Logs are never read whole here:
the document keeps an opener and the engine streams it.

Damaged input is read as far as it goes: a truncated or corrupt ``.gz`` yields everything that
decompresses before the damage (the engine then warns where reading stopped); only input that has
nothing readable at all (a missing file, a gzip that is corrupt from its first block, binary data)
is an error.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import re
import stat
import sys
import zlib
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, BinaryIO, cast

import yaml

from fleetmedic.model.errors import InputError
from fleetmedic.model.inputs import Document, FactLine
from fleetmedic.sources.flight_recorder import analyze, is_flight_recorder
from fleetmedic.sources.kubernetes_objects import looks_like_kubernetes, to_fact_lines

GZIP_MAGIC = b"\x1f\x8b"
SNIFF_BYTES = 8192
# Kubernetes dumps are parsed whole; anything larger is read as a log instead.
MAX_OBJECT_BYTES = 256 * 1024 * 1024
_PIECE = 256 * 1024  # decompressed bytes asked for at a time, so damage loses little
_READ_ERRORS = (OSError, EOFError, zlib.error)
_NUL_RUNS = re.compile(rb"\x00+")
_YAML_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when available


def read_inputs(paths: Iterable[str]) -> list[Document]:
    """Documents of every path, in the order given; directories expand to their files, sorted."""
    documents: list[Document] = []
    for path in paths:
        if path == "-":
            documents.append(_stdin_document())
        elif os.path.isdir(path):
            documents.extend(_directory(Path(path)))
        elif _is_stream(path):  # a FIFO or <(process substitution): can be read only once
            documents.append(_pipe_document(Path(path)))
        else:
            documents.append(_file_document(Path(path), explicit=True))
    return documents + _flight_recorder(documents)


def _flight_recorder(documents: list[Document]) -> list[Document]:
    """One document with the cross-rank verdict of the NCCL flight recorder dumps, if any."""
    dumps: dict[str, Any] = {}
    for document in documents:
        if document.kind == "k8s" and not document.facts and os.path.isfile(document.name):
            with open(document.name, "rb") as stream:
                obj, _ = _parse(stream.read(MAX_OBJECT_BYTES).decode("utf-8", errors="replace"))
            if is_flight_recorder(obj):
                dumps[document.name] = obj
    facts = analyze(dumps)
    if not facts:
        return []
    first = sorted(dumps)[0]
    return [Document(name=first, kind="k8s", facts=tuple(FactLine(text=f, line=1) for f in facts))]


def _is_stream(path: str) -> bool:
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False  # reported when opened
    return stat.S_ISFIFO(mode) or stat.S_ISCHR(mode)


def _directory(folder: Path) -> Iterator[Document]:
    files = sorted(
        p
        for p in folder.rglob("*")
        if p.is_file() and not any(s.startswith(".") for s in p.parts[len(folder.parts) :])
    )
    if not files:
        raise InputError(f"{folder}: directory holds no files")
    for path in files:
        try:
            yield _file_document(path, explicit=False)
        except InputError as exc:  # one bad file does not sink the rest of the bundle
            yield Document(name=str(path), kind="log", opener=None, warnings=(f"{exc}; skipped",))


def _open_path(path: Path) -> BinaryIO:
    try:
        return open(path, "rb")
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from exc


def _file_document(path: Path, *, explicit: bool) -> Document:
    with _open_path(path) as raw:
        try:
            head = raw.read(SNIFF_BYTES)
        except OSError as exc:
            raise InputError(f"cannot read {path}: {exc.strerror or exc}") from exc
    compressed = head.startswith(GZIP_MAGIC)
    name = str(path)

    def opener() -> BinaryIO:
        stream = _open_path(path)
        return _salvage(stream) if compressed else stream

    if compressed:
        with opener() as stream:
            head = _gzip_head(name, stream)
    if _is_binary(head):
        if explicit:
            raise InputError(f"{path}: binary data, not a log, JSON or YAML file")
        return Document(name=name, kind="log", opener=None, warnings=(f"{path}: binary, skipped",))
    return _classify(name, head, opener, size=_size(path, compressed))


def _gzip_head(name: str, stream: BinaryIO) -> bytes:
    """The first decompressed bytes; an error only if not even those can be had."""
    try:
        return stream.read(SNIFF_BYTES)
    except _READ_ERRORS as exc:
        raise InputError(f"{name}: corrupt gzip data ({_reason(exc)})") from exc


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _size(path: Path, compressed: bool) -> int:
    size = path.stat().st_size
    return size * 10 if compressed else size


def _stdin_document() -> Document:
    if sys.stdin is None:
        raise InputError("standard input is closed")
    return _stream_document("<stdin>", "standard input", sys.stdin.buffer)


def _pipe_document(path: Path) -> Document:
    return _stream_document(str(path), str(path), _open_path(path))


def _stream_document(name: str, label: str, raw: BinaryIO) -> Document:
    """A stream that can be read only once (stdin, a pipe): sniff the head, then replay it."""
    try:
        head = raw.read(SNIFF_BYTES)
    except OSError as exc:
        raise InputError(f"cannot read {label}: {exc.strerror or exc}") from exc
    stream = _replay(head, raw)
    if head.startswith(GZIP_MAGIC):
        stream = _salvage(stream)
        head = _gzip_head(label, stream)
        stream = _replay(head, stream)
    if _is_binary(head):
        raise InputError(f"{label}: binary data, not a log, JSON or YAML")
    if _looks_structured(head):
        payload, stopped = _read_up_to(stream, MAX_OBJECT_BYTES + 1)
        warnings: tuple[str, ...] = ()
        if len(payload) <= MAX_OBJECT_BYTES:
            document, warnings = _structured(name, payload)
            if document is not None:
                return document
        if stopped is not None:
            warnings += (
                f"{name}: read stopped after {len(payload)} bytes ({_reason(stopped)}); "
                "diagnosed what was readable",
            )
        replay = _replay(payload, stream)
        return Document(name=name, kind="log", opener=lambda: replay, warnings=warnings)
    return Document(name=name, kind="log", opener=lambda: stream)


def _read_up_to(stream: BinaryIO, limit: int) -> tuple[bytes, BaseException | None]:
    """Up to ``limit`` bytes (fewer at the end), and the error that stopped reading, if any."""
    parts: list[bytes] = []
    got = 0
    while got < limit:
        try:
            piece = stream.read(limit - got)
        except _READ_ERRORS as exc:
            return b"".join(parts), exc
        if not piece:
            break
        parts.append(piece)
        got += len(piece)
    return b"".join(parts), None


def _replay(first: bytes, rest: BinaryIO) -> BinaryIO:
    return cast(BinaryIO, _Replay(first, rest))


def _salvage(raw: BinaryIO) -> BinaryIO:
    return cast(BinaryIO, _Salvage(gzip.GzipFile(fileobj=raw, mode="rb"), raw))


class _Replay(io.RawIOBase):
    """Bytes already taken from a one-shot stream while sniffing, then the rest of the stream.

    Reads may come back short; they never lose data: an error from the stream is raised by the
    read after the one that returned the last good bytes.
    """

    def __init__(self, first: bytes, rest: BinaryIO) -> None:
        super().__init__()
        self._first = first
        self._rest = rest

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            first, self._first = self._first, b""
            return first + self._rest.read()
        if self._first:
            first, self._first = self._first[:size], self._first[size:]
            return first
        return self._rest.read(size)

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        if not self.closed:
            self._rest.close()
        super().close()


class _Salvage(io.RawIOBase):
    """A decompressing stream that hands over what decompressed before damage.

    ``GzipFile.read(n)`` drops everything it decompressed in a call that ends in an error (a
    truncated file loses its whole last 4 MiB, or all of it when smaller); this reads in pieces and
    raises the error on the read after the good bytes.
    """

    def __init__(self, inner: gzip.GzipFile, raw: BinaryIO) -> None:
        super().__init__()
        self._inner = inner
        self._raw = raw
        self._error: BaseException | None = None

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        if self._error is not None:
            error, self._error = self._error, None
            raise error
        wanted = None if size is None or size < 0 else size
        parts: list[bytes] = []
        got = 0
        while wanted is None or got < wanted:
            try:
                piece = self._inner.read1(_PIECE if wanted is None else min(_PIECE, wanted - got))
            except _READ_ERRORS as exc:
                if not parts:
                    raise
                self._error = exc
                break
            if not piece:
                break
            parts.append(piece)
            got += len(piece)
        return b"".join(parts)

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        if not self.closed:
            try:
                self._inner.close()
            finally:
                self._raw.close()
        super().close()


def _is_binary(head: bytes) -> bool:
    """A core dump, a checkpoint, an image, UTF-16: scattered NULs, control or non-UTF-8 bytes.

    A log may hold a run or two of NUL bytes (zero-filled blocks after a crash, or a file truncated
    under a writer that kept its offset); those do not make it binary.
    """
    if not head:
        return False
    if len(_NUL_RUNS.findall(head)) > 4:
        return True
    text = _NUL_RUNS.sub(b"", head)
    if not text:
        return False
    controls = sum(1 for b in text if b < 9 or 13 < b < 32)
    if controls / len(text) > 0.1:
        return True
    decoded = text.decode("utf-8", errors="replace")
    return decoded.count("\ufffd") / len(decoded) > 0.1


def _looks_structured(head: bytes) -> bool:
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if text[:1] == b"{":
        return text[1:].lstrip()[:1] in (b'"', b"}") and not _is_json_lines(text)
    if text[:1] == b"[":  # a JSON list, not a "[rank0]:" or "[2024-..." log prefix
        return text[1:].lstrip()[:1] in (b"{", b"]")
    # YAML as kubectl prints it: a top-level key near the top. A leading "---" alone is not enough
    # (logs open with "-----" banners and "--- Logging error ---"), and parsing a long log as YAML
    # takes minutes.
    first_lines = text.split(b"\n", 20)[:20]
    return any(line.startswith((b"apiVersion:", b"kind:", b"items:")) for line in first_lines)


def _is_json_lines(text: bytes | str) -> bool:
    """Structured logs (one JSON object a line, more than one line) are logs, not objects."""
    lines = text.split(b"\n" if isinstance(text, bytes) else "\n", 2)  # type: ignore[arg-type]
    if len(lines) < 2 or not lines[1].strip():
        return False  # a single line, or the first line is not complete yet
    try:
        return isinstance(json.loads(lines[0]), dict)
    except (ValueError, RecursionError):  # JSONDecodeError and UnicodeDecodeError
        return False


def _classify(name: str, head: bytes, opener: Callable[[], BinaryIO], size: int) -> Document:
    if _looks_structured(head) and size <= MAX_OBJECT_BYTES:
        with opener() as stream:
            payload, stopped = _read_up_to(stream, MAX_OBJECT_BYTES + 1)
        if not payload and stopped is not None:
            raise InputError(f"{name}: unreadable ({_reason(stopped)})")
        if len(payload) > MAX_OBJECT_BYTES:  # a .gz that inflates past the limit: a log
            return Document(name=name, kind="log", opener=opener)
        document, warnings = _structured(name, payload)
        if document is not None:
            return document
        return Document(name=name, kind="log", opener=opener, warnings=warnings)
    return Document(name=name, kind="log", opener=opener)


def _structured(name: str, payload: bytes) -> tuple[Document | None, tuple[str, ...]]:
    """A Kubernetes document if the payload parses as Kubernetes JSON/YAML; else None and, when
    the payload does not parse, a warning that says why it is read as plain text."""
    text = payload.decode("utf-8", errors="replace")
    obj, problem = _parse(text)
    if problem is not None:
        return None, (f"{name}: {problem}; read as plain text",)
    if is_flight_recorder(obj):
        return Document(name=name, kind="k8s", facts=()), ()  # read across ranks, below
    if obj is None or not looks_like_kubernetes(obj):
        return None, ()
    return Document(name=name, kind="k8s", facts=tuple(to_fact_lines(obj, text))), ()


def _parse(text: str) -> tuple[Any, str | None]:
    """(object, None) when the text parses as JSON/YAML, else (None, what is wrong)."""
    stripped = text.lstrip("\ufeff \t\r\n")
    if stripped[:1] in ("{", "["):
        try:
            return json.loads(stripped), None
        except json.JSONDecodeError as exc:
            if _is_json_lines(stripped):  # a structured log whose lines outgrew the sniffed head
                return None, None
            return None, f"invalid JSON ({exc.msg} at line {exc.lineno})"
        except RecursionError:
            return None, "invalid JSON (nested too deeply)"
    try:
        docs = [doc for doc in yaml.load_all(text, Loader=_YAML_LOADER) if doc is not None]
    except yaml.YAMLError as exc:
        lines = str(exc).splitlines()
        return None, f"invalid YAML ({lines[0] if lines else 'parse error'})"
    except RecursionError:
        return None, "invalid YAML (nested too deeply)"
    if len(docs) == 1:
        return docs[0], None
    return (docs or None), None
