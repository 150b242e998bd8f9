"""Safe arithmetic on aggregate results: one definition of "no data" for every KPI.

Why: a ratio with an empty denominator is *unknown*, not 0 or infinity, and engines return SQL
NULL as ``None``, ``NaN`` or ``pd.NA`` depending on the column type; the JSON must say ``null``.
"""

from __future__ import annotations

import decimal
import math
import numbers
from typing import Any


def ratio(numerator: float, denominator: float) -> float | None:
    """``numerator / denominator``, or ``None`` when the denominator is 0 (nothing to measure)."""
    return float(numerator) / float(denominator) if denominator else None


def share(numerator: float, denominator: float) -> float:
    """A share in 0..1; 0 for an empty denominator so ``by_status`` always lists every status."""
    return float(numerator) / float(denominator) if denominator else 0.0


def num(value: Any) -> float | None:
    """A float from a result cell; ``None`` for SQL NULL however the engine spelled it.

    DuckDB sums integers into HUGEINT, which reaches Python as ``Decimal``; Spark gives ints.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real | decimal.Decimal):
        return None
    number = float(value)
    return None if math.isnan(number) else number
