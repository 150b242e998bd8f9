"""Open a trace file as a DuckDB table function, refusing files that cannot be what we expect.

The checks here turn every way a file can be wrong *as a whole* (missing, empty, binary, not UTF-8,
not JSON, not Parquet, missing columns) into one :class:`InputError` line that names the file and
what was expected. Rows that are wrong one by one are the importers' business: they are counted,
never fatal.
"""

from __future__ import annotations

import gzip
import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import duckdb

from fleetmedic.model.errors import InputError
from fleetmedic.sources.traces.sql import ident, lit

FileKind = Literal["csv", "parquet", "json"]

HEAD_BYTES = 1 << 20
"""How much of a text file is checked for binary data and UTF-8 up front (rows beyond it that
hold invalid UTF-8 are rejected one by one and counted as malformed)."""

_SUFFIXES: dict[str, FileKind] = {
    ".csv": "csv",
    ".tsv": "csv",
    ".txt": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".json": "json",
    ".jsonl": "json",
    ".ndjson": "json",
}

_scan_ids = itertools.count(1)


def _suffix(path: Path) -> str:
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] in (".gz", ".zst"):
        suffixes = suffixes[:-1]
    return suffixes[-1] if suffixes else ""


def file_kind(path: Path) -> FileKind:
    """CSV, Parquet or JSON, from the suffix, else from the first bytes."""
    kind = _SUFFIXES.get(_suffix(path))
    if kind is not None:
        return kind
    head = _head(path, 64)
    if head.startswith(b"PAR1"):
        return "parquet"
    if head.lstrip(b"\xef\xbb\xbf \t\r\n").startswith((b"{", b"[")):
        return "json"
    return "csv"


def _head(path: Path, size: int) -> bytes:
    try:
        if path.suffix.lower() == ".gz":
            with gzip.open(path, "rb") as handle:
                return handle.read(size)
        with path.open("rb") as handle:
            return handle.read(size)
    except (OSError, EOFError) as exc:
        raise InputError(f"{path}: cannot read: {exc}") from exc


def check_path(path: Path, expected: str) -> None:
    """Refuse a path that is not a non-empty regular file."""
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.is_dir():
        raise InputError(f"{path}: is a directory; expected {expected}")
    if path.stat().st_size == 0:
        raise InputError(f"{path}: empty file; expected {expected}")


def check_file(path: Path, kind: FileKind, expected: str) -> None:
    """Refuse a file that cannot hold ``expected`` at all, before DuckDB sees it."""
    check_path(path, expected)
    if kind == "parquet":
        if not _head(path, 4).startswith(b"PAR1"):
            raise InputError(f"{path}: not a Parquet file; expected {expected}")
        return
    head = _head(path, HEAD_BYTES)
    if b"\x00" in head:
        raise InputError(f"{path}: binary data, not {kind.upper()} text; expected {expected}")
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        cut = len(head) == HEAD_BYTES and exc.reason == "unexpected end of data"
        if not cut:  # a character cut by the end of the sample is fine, anything else is not
            raise InputError(
                f"{path}: not UTF-8 text (byte 0x{head[exc.start]:02x} at offset {exc.start}); "
                f"expected {expected}"
            ) from None
        text = head[: exc.start].decode("utf-8")
    body = text.lstrip("\ufeff \t\r\n")
    if not body:
        raise InputError(f"{path}: empty file; expected {expected}")
    if kind == "json" and not body.startswith(("{", "[")):
        raise InputError(f"{path}: not JSON; expected {expected}")


@dataclass(frozen=True)
class TableScan:
    """A file opened as a table: ``source`` goes after ``FROM``; ``columns`` maps name to type."""

    path: Path
    kind: FileKind
    source: str
    columns: dict[str, str]
    rejects: str | None = None
    malformed_flag: str | None = None

    def count_rejects(self, con: duckdb.DuckDBPyConnection) -> int:
        """Lines the CSV reader could not split into the header's columns (then forgets them)."""
        if self.rejects is None:
            return 0
        try:
            row = con.execute(
                f"SELECT count(DISTINCT line) FROM {self.rejects}_errors "
                f"WHERE scan_id = (SELECT max(scan_id) FROM {self.rejects}_errors)"
            ).fetchone()
        except duckdb.CatalogException:
            return 0
        finally:
            self.drop(con)
        return int(row[0]) if row and row[0] is not None else 0

    def drop(self, con: duckdb.DuckDBPyConnection) -> None:
        if self.rejects is not None:
            con.execute(f"DROP TABLE IF EXISTS {self.rejects}_errors")
            con.execute(f"DROP TABLE IF EXISTS {self.rejects}_scans")


def _describe(con: duckdb.DuckDBPyConnection, source: str) -> dict[str, str]:
    rows = con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()
    return {str(r[0]): str(r[1]) for r in rows}


def open_table(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    *,
    expected: str,
    required: Sequence[str],
    delimiter: str | None = None,
    kind: FileKind | None = None,
) -> TableScan:
    """Open ``path`` (CSV, Parquet or JSON lines) and check it has the ``required`` columns.

    CSV is read with every column as text, so that a bad cell is a bad *row* (found later by
    ``TRY_CAST``) rather than a failed file, and lines with the wrong number of fields are kept
    aside in a rejects table to be counted.
    """
    what = f"{expected} (columns: {', '.join(required)})" if required else expected
    check_path(path, what)
    kind = kind or file_kind(path)
    check_file(path, kind, what)
    rejects: str | None = None
    malformed: str | None = None
    try:
        if kind == "csv":
            rejects = f"_fm_rejects_{next(_scan_ids)}"
            options = "header = true, all_varchar = true"
            if delimiter is not None:
                options += f", delim = {lit(delimiter)}"
            # ignore_errors lets the sniffer settle the dialect despite a few bad lines; the
            # real scan below keeps those lines in the rejects table to be counted.
            columns = _describe(con, f"read_csv({lit(str(path))}, {options}, ignore_errors = true)")
            source = (
                f"read_csv({lit(str(path))}, {options}, store_rejects = true, "
                f"rejects_table = '{rejects}_errors', rejects_scan = '{rejects}_scans')"
            )
        elif kind == "parquet":
            source = f"read_parquet({lit(str(path))})"
            columns = _describe(con, source)
        else:
            source, columns = _json_lines(con, path)
            malformed = "__malformed"
    except duckdb.Error as exc:
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"{path}: cannot read as {kind.upper()}: {message}") from None
    missing = [c for c in required if c not in columns]
    if missing:
        raise InputError(
            f"{path}: not {expected}: missing columns {', '.join(missing)} "
            f"(found: {', '.join(list(columns)[:20]) or 'none'})"
        )
    return TableScan(path, kind, source, columns, rejects, malformed)


def _json_lines(con: duckdb.DuckDBPyConnection, path: Path) -> tuple[str, dict[str, str]]:
    """JSON lines (or one JSON array of objects) as a table with one text column per key.

    Values are extracted as text, like CSV cells, and typed by the importer; a line that is not
    JSON becomes a row with ``__malformed`` set, so it is counted rather than skipped.
    """
    objects = (
        f"read_json_objects({lit(str(path))}, format = 'auto', ignore_errors = true, "
        f"maximum_object_size = 268435456)"
    )
    keys = [
        str(r[0])
        for r in con.execute(
            f"SELECT DISTINCT unnest(json_keys(json)) AS k FROM {objects} "
            f"WHERE json_type(json) = 'OBJECT' ORDER BY k"
        ).fetchall()
    ]
    projections = [f"json ->> {lit(k)} AS {ident(k)}" for k in keys]
    projections.append("(json IS NULL OR json_type(json) <> 'OBJECT') AS __malformed")
    source = f"(SELECT {', '.join(projections)} FROM {objects})"
    columns = dict.fromkeys(keys, "VARCHAR")
    columns["__malformed"] = "BOOLEAN"
    return source, columns
