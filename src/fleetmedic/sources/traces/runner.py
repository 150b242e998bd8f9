"""Run an import: check every file, stage each one, hand it to the writer, account for rows.

This is the only place that joins importers to the store's writer, so the command line, tests and
the benchmark all import the same way.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import duckdb

from fleetmedic.model.errors import InputError
from fleetmedic.sources.traces.base import (
    ImportOptions,
    StageContext,
    TraceImporter,
    drop_stage,
    registry,
)
from fleetmedic.store.db import Store
from fleetmedic.store.writer import ImportRecord, WriteCounts, Writer

_UNREADABLE = (
    duckdb.InvalidInputException,
    duckdb.IOException,
    duckdb.ConversionException,
    duckdb.OutOfRangeException,
)
"""DuckDB errors that mean the *file* is unreadable mid-way (corrupt page, cut-off gzip...).
Binder and parser errors are bugs and propagate."""


class ProgressHook(Protocol):
    """Told what happens, so a caller can draw progress; the runner never draws anything."""

    def file_started(self, path: Path, steps: int) -> None: ...

    def step(self, label: str) -> None: ...

    def file_done(self) -> None: ...


class _Silent:
    def file_started(self, path: Path, steps: int) -> None:
        return None

    def step(self, label: str) -> None:
        return None

    def file_done(self) -> None:
        return None


STEPS_PER_FILE = 3
"""Reading and checking, staging, writing: what a progress bar counts per file."""


@dataclass(frozen=True)
class FileReport:
    """What one file gave: rows read, good and bad (by reason), rows written per table."""

    path: str
    rows_read: int
    rows_ok: int
    rows_bad: int
    bad_reasons: dict[str, int]
    written: WriteCounts
    seconds: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "rows_read": self.rows_read,
            "rows_ok": self.rows_ok,
            "rows_bad": self.rows_bad,
            "bad_reasons": self.bad_reasons,
            "written": self.written.as_dict(),
            "seconds": round(self.seconds, 3),
        }


@dataclass(frozen=True)
class ImportReport:
    """The whole import, as ``fleetmedic import --format json`` prints it."""

    format: str
    db: str
    files: list[FileReport] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def written(self) -> WriteCounts:
        total = WriteCounts()
        for report in self.files:
            total = total + report.written
        return total

    def as_dict(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "db": self.db,
            "files": [f.as_dict() for f in self.files],
            "rows_read": sum(f.rows_read for f in self.files),
            "rows_ok": sum(f.rows_ok for f in self.files),
            "rows_bad": sum(f.rows_bad for f in self.files),
            "written": self.written.as_dict(),
            "seconds": round(self.seconds, 3),
        }


def formats() -> list[str]:
    """The FORMAT names ``fleetmedic import`` accepts, sorted."""
    return sorted(registry())


def importer(name: str) -> TraceImporter:
    """The importer for FORMAT ``name``; an unknown name is bad input."""
    found = registry().get(name)
    if found is None:
        raise InputError(f"unknown import format {name!r}; choose one of {', '.join(formats())}")
    return found()


def import_traces(
    store: Store,
    fmt: str,
    paths: Sequence[Path],
    *,
    options: ImportOptions | None = None,
    progress: ProgressHook | None = None,
) -> ImportReport:
    """Import ``paths`` in format ``fmt`` into ``store``; each file in its own transaction.

    Every file is checked before the first is written, so a wrong path or schema fails the whole
    command cleanly instead of leaving it half done.
    """
    started = time.perf_counter()
    chosen = importer(fmt)
    writer = Writer(store)
    hook = progress or _Silent()
    report = ImportReport(format=fmt, db=store.path)
    if not paths:
        raise InputError("no PATH given")
    for path in paths:
        chosen.check(StageContext(writer.con, options or ImportOptions()), path)
    for path in paths:
        hook.file_started(path, STEPS_PER_FILE)
        report.files.append(_import_file(writer, chosen, fmt, path, options, hook))
        hook.file_done()
    return ImportReport(report.format, report.db, report.files, time.perf_counter() - started)


def _import_file(
    writer: Writer,
    chosen: TraceImporter,
    fmt: str,
    path: Path,
    options: ImportOptions | None,
    hook: ProgressHook,
) -> FileReport:
    began_at = datetime.now(UTC)
    began = time.perf_counter()
    ctx = StageContext(writer.con, options or ImportOptions(), hook.step)
    try:
        staging = chosen.stage(ctx, path)
        hook.step("writing to the store")
        written = writer.write(staging.staged)
    except _UNREADABLE as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"{path}: cannot import: {first}") from None
    finally:
        drop_stage(writer.con)
    writer.record_import(
        ImportRecord(
            format=fmt,
            path=str(path.resolve()),
            rows_read=staging.rows_read,
            rows_ok=staging.rows_ok,
            rows_bad=staging.rows_bad,
            started_at=began_at,
            finished_at=datetime.now(UTC),
        )
    )
    return FileReport(
        path=str(path),
        rows_read=staging.rows_read,
        rows_ok=staging.rows_ok,
        rows_bad=staging.rows_bad,
        bad_reasons=staging.bad_reasons,
        written=written,
        seconds=time.perf_counter() - began,
    )
