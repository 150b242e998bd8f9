"""KPI analytics: outcomes, goodput/badput, ETTR, reliability, capacity and developer velocity.

Written once as Ibis expressions, so the same code runs on the DuckDB store and on Spark (or any
Ibis backend holding the store's tables). Formulas and sources: docs/kpis.md.
"""

from fleetmedic.kpi.facts import GROUP_BY, SIZE_BUCKETS
from fleetmedic.kpi.suite import compute_kpis
from fleetmedic.kpi.tables import STATUSES, KpiTables, as_backend, load_tables

__all__ = [
    "GROUP_BY",
    "SIZE_BUCKETS",
    "STATUSES",
    "KpiTables",
    "as_backend",
    "compute_kpis",
    "load_tables",
]
