"""Quiet Great Expectations before it is imported (its own module: the suites and the context both need it, and
the context builds suites when a deployment changes a gate threshold)."""

from __future__ import annotations

import logging
import os
import warnings


def quiet_gx() -> None:
    """Silence GX analytics and its noisy loggers; call before importing great_expectations."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    logging.getLogger("great_expectations._docs_decorators").setLevel(logging.ERROR)
    logging.getLogger("great_expectations").setLevel(logging.ERROR)
    # GX imports pyspark (installed for the Spark engine), which warns about pandas 3 on every import; the platform
    # never hands pandas frames to pyspark (dbt-spark and the Spark engine use Spark SQL and Arrow).
    warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas", category=FutureWarning)
