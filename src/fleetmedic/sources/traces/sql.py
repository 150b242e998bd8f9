"""SQL building blocks the importers share: quoting, typed casts, time bases, status maps.

Every importer turns raw columns into typed ones the same way, so that "malformed" means the same
thing for every format: a value that is present but does not parse. Casts are ``TRY_CAST`` so a bad
cell yields NULL instead of aborting the file, and the importer records *why* the row is bad.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

import duckdb

Kind = Literal["text", "int", "float", "number", "time"]
"""``int`` and ``float`` are counts and sizes (never negative); ``number`` may be negative."""

NULL_TOKENS: tuple[str, ...] = ("", "None", "none", "NaN", "nan", "null", "NULL", "NA", "N/A")
"""Cell values that mean "no value" in numeric and time columns of the public traces."""


def lit(value: str) -> str:
    """A SQL string literal."""
    return "'" + value.replace("'", "''") + "'"


def json_objects(path: Path) -> str:
    """A table function over the JSON values of ``path``, whatever their size (Philly's one big
    array, a ``kubectl get -o json`` List): DuckDB's object-size limit is raised to the file's."""
    size = max(path.stat().st_size + 1024, 16 << 20)
    return (
        f"read_json_objects({lit(str(path))}, format = 'auto', "
        f"maximum_object_size = {min(size, 1 << 31)})"
    )


def ident(name: str) -> str:
    """A quoted SQL identifier (trace columns such as ``user`` are reserved words)."""
    return '"' + name.replace('"', '""') + '"'


_FLOAT_TYPES = frozenset({"DOUBLE", "FLOAT", "REAL"})


def is_text_type(sql_type: str) -> bool:
    return sql_type.upper().startswith(("VARCHAR", "TEXT", "STRING", "JSON"))


def _blank_to_null(expr: str) -> str:
    tokens = ", ".join(lit(t) for t in NULL_TOKENS)
    return f"CASE WHEN trim({expr}) IN ({tokens}) THEN NULL ELSE trim({expr}) END"


def normalized(expr: str, kind: Kind, sql_type: str = "VARCHAR") -> str:
    """Step 1 of typing a cell: the cell with every spelling of "no value" made NULL.

    Text stays text (trimmed); other types stay as they are, except float NaN which is NULL.
    """
    if is_text_type(sql_type):
        return f"NULLIF(trim({expr}), '')" if kind == "text" else _blank_to_null(expr)
    if sql_type.upper() in _FLOAT_TYPES:
        return f"(CASE WHEN isnan({expr}) THEN NULL ELSE {expr} END)"
    return expr


def cast(expr: str, kind: Kind, sql_type: str = "VARCHAR") -> str:
    """Step 2: a :func:`normalized` value as its kind's type, NULL when it does not parse.

    Times come out as naive UTC ``TIMESTAMP``: strings with an offset are exact, strings without
    one are read in the session ``TimeZone`` (see :func:`session_time_zone`), numbers are Unix
    seconds.
    """
    upper = sql_type.upper()
    if kind == "text":
        return expr if is_text_type(sql_type) else f"CAST({expr} AS VARCHAR)"
    if kind in ("int", "float", "number"):
        return f"TRY_CAST({expr} AS DOUBLE)"
    if is_text_type(sql_type):
        return f"timezone('UTC', TRY_CAST({expr} AS TIMESTAMPTZ))"
    if upper.startswith(("TIMESTAMP", "DATE")):
        return f"timezone('UTC', CAST({expr} AS TIMESTAMPTZ))"
    return f"timezone('UTC', to_timestamp(TRY_CAST({expr} AS DOUBLE)))"


def value(expr: str, kind: Kind, sql_type: str = "VARCHAR") -> str:
    """Both steps at once, for one-off cells (JSON fields); tables use :func:`checks_for`."""
    return cast(normalized(expr, kind, sql_type), kind, sql_type)


def present(expr: str, sql_type: str = "VARCHAR") -> str:
    """SQL condition: the cell holds a value (not NULL, not a null token)."""
    return f"({normalized(expr, 'time', sql_type)} IS NOT NULL)"


def checks_for(name: str, raw: str, typed: str, kind: Kind, *, required: bool) -> list[str]:
    """Step 3: ``WHEN`` clauses naming what is wrong with a cell, given step 1 and 2 columns.

    Missing when required; present but unparseable; for counts and sizes (``int``, ``float``)
    negative or infinite; for ``int`` not a whole number.
    """
    whens = []
    if required:
        whens.append(f"WHEN {raw} IS NULL THEN {lit('missing ' + name)}")
    bad = lit("bad " + name)
    whens.append(f"WHEN {raw} IS NOT NULL AND {typed} IS NULL THEN {bad}")
    if kind in ("int", "float"):
        whens.append(f"WHEN {typed} < 0 OR isinf({typed}) THEN {bad}")
    if kind == "int":
        whens.append(f"WHEN {typed} <> round({typed}) THEN {bad}")
    return whens


def case_map(expr: str, mapping: Mapping[str, str], *, default: str = "NULL") -> str:
    """``CASE expr WHEN k THEN v ... END``: how a source's vocabulary becomes ours."""
    whens = " ".join(f"WHEN {lit(k)} THEN {lit(v)}" for k, v in mapping.items())
    return f"(CASE {expr} {whens} ELSE {default} END)"


def first_reason(checks: list[tuple[str, str]]) -> str:
    """``CASE WHEN cond THEN reason ... END``: the first problem found names the row's fault."""
    if not checks:
        return "CAST(NULL AS VARCHAR)"
    whens = " ".join(f"WHEN {cond} THEN {reason}" for cond, reason in checks)
    return f"(CASE {whens} ELSE NULL END)"


@contextmanager
def session_time_zone(con: duckdb.DuckDBPyConnection, tz: str) -> Iterator[None]:
    """Read naive time strings in ``tz`` for the duration of the block.

    Why a session setting and not a per-value expression: ``TRY_CAST(s AS TIMESTAMPTZ)`` then
    honours an explicit offset when the string has one (Acme writes ``+08:00``) and uses ``tz``
    otherwise, in one vectorized cast with no regex per row.
    """
    row = con.execute("SELECT current_setting('TimeZone')").fetchone()
    previous = str(row[0]) if row else "UTC"
    con.execute(f"SET TimeZone = {lit(tz)}")
    try:
        yield
    finally:
        con.execute(f"SET TimeZone = {lit(previous)}")


SLURM_STATES: dict[str, str] = {
    "COMPLETED": "succeeded",
    "FAILED": "failed",
    "NODE_FAIL": "failed",
    "OUT_OF_MEMORY": "failed",
    "BOOT_FAIL": "failed",
    "CANCELLED": "cancelled",
    "TIMEOUT": "timeout",
    "DEADLINE": "timeout",
    "PREEMPTED": "preempted",
    "RUNNING": "running",
    "COMPLETING": "running",
    "CONFIGURING": "running",
    "PENDING": "pending",
    "REQUEUED": "pending",
    "SUSPENDED": "pending",
}
"""Slurm job states (Acme and Helios are Slurm traces) to fleetmedic statuses.

``CANCELLED by <uid>`` is matched on its first word. TIMEOUT stays ``timeout`` (the papers fold it
into failed; the KPI can do the same), NODE_FAIL is ``failed`` with the state kept as the attempt's
reason so diagnosis can blame the node.
"""


def slurm_state_word(expr: str) -> str:
    """The first word of a Slurm state, upper-cased (``CANCELLED by 123`` -> ``CANCELLED``)."""
    return f"upper(split_part(trim({expr}), ' ', 1))"
