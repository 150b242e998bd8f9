"""Importers for public GPU-cluster traces and Kubernetes dumps, one module per format.

Every module in this package that defines a :class:`~fleetmedic.sources.traces.base.TraceImporter`
registers it with ``@register``; importing the package imports them all, so adding a format is
adding a module (no list to keep in step). :func:`import_traces` runs an import.
"""

from __future__ import annotations

import importlib
import pkgutil

from fleetmedic.sources.traces.base import ImportOptions, TraceImporter, register, registry
from fleetmedic.sources.traces.runner import (
    FileReport,
    ImportReport,
    ProgressHook,
    formats,
    import_traces,
    importer,
)

_NOT_FORMATS = {"base", "files", "runner", "slurm", "sql", "mapping"}

for _info in pkgutil.iter_modules(__path__):
    if _info.name not in _NOT_FORMATS and not _info.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_info.name}")

__all__ = [
    "FileReport",
    "ImportOptions",
    "ImportReport",
    "ProgressHook",
    "TraceImporter",
    "formats",
    "import_traces",
    "importer",
    "register",
    "registry",
]
