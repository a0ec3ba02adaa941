"""Open the committed Great Expectations file context (``expectations/``) quietly.

The committed ``great_expectations.yml`` points the validation-results store and the Data Docs site at
``${ONCOPIPE_GX_QUALITY_DIR}``; :func:`open_context` sets that variable to the resolved ``<quality>`` folder
before loading, so results and docs land next to the gate history (``<quality>/gx_validations``,
``<quality>/data_docs``) and never inside the checkout. Progress bars are off in the committed config.

Gates load a private copy of the committed context (a temporary folder removed when the process exits), never
the committed folder
itself: running a checkpoint lets GX save its suites back (measured: every gate run appended duplicate
expectations to the committed JSON), and production mounts ``expectations/`` read-only.
"""

from __future__ import annotations

import atexit
import logging
import os
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any

from oncopipe.contracts.settings import EXPECTATIONS_DIR, Settings

QUALITY_DIR_VARIABLE = "ONCOPIPE_GX_QUALITY_DIR"
DATASOURCE = "oncopipe_frames"
BATCH_DEFINITION = "whole_frame"
DATA_DOCS_SITE = "oncopipe_data_docs"


def quiet_gx() -> None:
    """Silence GX analytics and its noisy loggers; call before importing great_expectations."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    logging.getLogger("great_expectations._docs_decorators").setLevel(logging.ERROR)
    logging.getLogger("great_expectations").setLevel(logging.ERROR)
    # GX imports pyspark (installed for the Spark engine), which warns about pandas 3 on every import; the platform
    # never hands pandas frames to pyspark (dbt-spark and the Spark engine use Spark SQL and Arrow).
    warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas", category=FutureWarning)


def open_context(settings: Settings, root: Path = EXPECTATIONS_DIR, *, in_place: bool = False) -> Any:
    """Load the file context at ``root`` with its stores pointed at ``settings.quality``.

    Args:
        settings: resolved locations; ``settings.quality`` receives GX validation results and Data Docs.
        root: the context folder (the committed ``expectations/`` by default).
        in_place: load ``root`` itself (only to rewrite the committed suites); by default a private copy of it
            in a temporary folder is loaded, so running gates never changes ``root``.

    Returns:
        The ``FileDataContext``.
    """
    quiet_gx()
    settings.quality.mkdir(parents=True, exist_ok=True)
    if not in_place:
        # Each Airflow task is a process of its own: a copy kept under <quality> would pile up, one per gate task.
        copy = Path(tempfile.mkdtemp(prefix="oncopipe-gx-context-")) / "context"
        atexit.register(shutil.rmtree, copy.parent, True)
        shutil.copytree(root, copy, ignore=shutil.ignore_patterns("uncommitted"))
        root = copy
    os.environ[QUALITY_DIR_VARIABLE] = str(settings.quality)
    import great_expectations as gx

    return gx.get_context(mode="file", context_root_dir=str(root))
