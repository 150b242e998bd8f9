"""PySpark local mode for the equivalence test: one session, and a clear error when it cannot run.

The test must not be skipped silently in CI: without Java or pyspark it fails and says what to
install, unless ``FLEETMEDIC_SKIP_SPARK=1`` says that skipping is intended.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from typing import Any

SKIP_ENV = "FLEETMEDIC_SKIP_SPARK"


def spark_problem() -> str | None:
    """Why PySpark local mode cannot start here, or ``None`` when it can."""
    if importlib.util.find_spec("pyspark") is None:
        return "pyspark is not installed (pip install -e '.[dev]')"
    java_home = os.environ.get("JAVA_HOME")
    if java_home and os.access(os.path.join(java_home, "bin", "java"), os.X_OK):
        return None
    if shutil.which("java") is None:
        return "no Java runtime (install Java 17, e.g. apt-get install default-jre-headless)"
    return None


def start_session() -> Any:
    """A small local[2] session in UTC (timestamps in the store are naive UTC), tuned to start
    and answer tiny queries fast: C1-only JIT, one shuffle partition, no adaptive planning and
    no whole-stage code generation (compiling it costs more than it saves on a few rows)."""
    from pyspark.sql import SparkSession

    session = (
        SparkSession.builder.master("local[2]")
        .appName("fleetmedic-kpi-tests")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.shuffle.partitions", "1")
        .config("spark.default.parallelism", "2")
        .config("spark.sql.adaptive.enabled", "false")
        .config("spark.sql.codegen.wholeStage", "false")
        .config("spark.driver.extraJavaOptions", "-XX:TieredStopAtLevel=1")
        .config("spark.ui.enabled", "false")
        .config("spark.driver.memory", "1g")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    return session
