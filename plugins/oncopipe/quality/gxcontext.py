"""Open the committed Great Expectations file context (``expectations/``) quietly.

The committed ``great_expectations.yml`` points the validation-results store and the Data Docs site at
``${ONCOPIPE_GX_QUALITY_DIR}``; :func:`open_context` sets that variable to the resolved ``<quality>`` folder
before loading, so results and docs land next to the gate history (``<quality>/gx_validations``,
``<quality>/data_docs``) and never inside the checkout. Progress bars are off in the committed config.

Gates load a private copy of the committed context (a temporary folder removed when the process exits), never
the committed folder
itself: running a checkpoint lets GX save its suites back (measured: every gate run appended duplicate
expectations to the committed JSON), and production mounts ``expectations/`` read-only.

The committed suites hold the default gate thresholds. A deployment that changes one (``ONCOPIPE_GATE_*``,
docs/settings.md) gets the suites those thresholds bound rewritten from code into its private copy
(:func:`oncopipe.quality.suites.threshold_suites`, a few seconds), so the setting takes effect without touching
the committed folder.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from oncopipe.contracts.settings import EXPECTATIONS_DIR, Settings, get_settings
from oncopipe.quality.gxquiet import quiet_gx

QUALITY_DIR_VARIABLE = "ONCOPIPE_GX_QUALITY_DIR"
DATASOURCE = "oncopipe_frames"
BATCH_DEFINITION = "whole_frame"
DATA_DOCS_SITE = "oncopipe_data_docs"


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
        if customised_gate_thresholds():
            _write_threshold_suites(root)
    os.environ[QUALITY_DIR_VARIABLE] = str(settings.quality)
    import great_expectations as gx

    from oncopipe.quality import gxspeed

    gxspeed.install()  # the same judgements, faster (quality/gxspeed.py)
    return gx.get_context(mode="file", context_root_dir=str(root))


def customised_gate_thresholds() -> dict[str, Any]:
    """The gate thresholds this deployment sets away from their defaults (those the committed suites hold)."""
    settings = get_settings()
    return {name: getattr(settings, name) for name, info in Settings.model_fields.items()
            if name.startswith("gate_") and getattr(settings, name) != info.default}


def _write_threshold_suites(root: Path) -> None:
    # The suites are built with the same settings (suites.py reads get_settings()) and stored as GX stores them.
    from oncopipe.quality import suites

    for suite in suites.threshold_suites():
        path = root / "expectations" / (suite.name.replace(".", "/") + ".json")
        path.write_text(json.dumps(suite.to_json_dict(), indent=2, sort_keys=True, default=str) + "\n",
                        encoding="utf-8")
