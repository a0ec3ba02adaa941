"""Quarantine: move a refused extraction out of the landing, with the validation result beside it.

``<landing>/<source>/extraction=<date>/`` of every source becomes
``<quarantine>/<date>/<source>/extraction=<date>/``, and ``<quarantine>/<date>/validation.json`` holds the
gate report. Moves are renames (same volume) and nothing is deleted; if the date was already quarantined
once, the new folder gets the run id as suffix so an earlier quarantine is never overwritten.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from oncopipe.contracts.sources import SOURCES
from oncopipe.landing.layout import extraction_dir
from oncopipe.quality.outcomes import GateReport


def quarantine_extraction(report: GateReport, landing: Path, quarantine: Path) -> Path:
    """Move every source's folder of ``report.extraction`` to the quarantine and write the report there.

    Returns:
        The quarantine folder of this extraction.
    """
    target = quarantine / report.extraction
    if target.exists():
        target = quarantine / f"{report.extraction}-{report.run_id}"
    target.mkdir(parents=True)
    report.quarantined_to = str(target)
    tmp = target / "validation.json.tmp"
    tmp.write_text(json.dumps(report.as_dict(), indent=2, default=str, ensure_ascii=False), encoding="utf-8")
    os.replace(tmp, target / "validation.json")
    for src in SOURCES:
        folder = extraction_dir(landing, src.name, report.extraction)
        if folder.exists():
            (target / src.name).mkdir()
            shutil.move(str(folder), str(target / src.name / folder.name))
    return target
