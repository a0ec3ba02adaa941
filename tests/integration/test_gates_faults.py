"""A clean generated extraction passes every raw suite with no critical failure (all its dirt is a warning).

Every fault, the generator's and the hand-made ones, runs in the fault catalogue (test_fault_catalogue.py).
One clean base extraction (300 patients, 2024-01-01) is generated and published once for the module; the next
extraction (2024-04-01) lands on a copy of that landing, so checks against the previous accepted extraction
(row counts, months covered, fingerprints, distributions) have their reference.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest
from gates_marts import mart_tables, settings_for, write_warehouse
from oncopipe.contracts.sources import SOURCES
from oncopipe.quality import QualityConfig, run_raw_gate
from oncopipe.synth.extraction import generate
from oncopipe.warehouse import versions

PATIENTS = 300
SEED = 7
BASE, NEXT = "2024-01-01", "2024-04-01"
FAST = QualityConfig(build_docs=False)


def tree_hashes(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def base_home(tmp_path_factory) -> Path:
    """A home with the clean base extraction landed, raw-gated and marts published."""
    home = tmp_path_factory.mktemp("gates_base")
    settings = settings_for(home)
    generate(settings.landing, PATIENTS, SEED, BASE)
    run_raw_gate(BASE, settings, FAST)
    write_warehouse(settings.warehouse, mart_tables())
    versions.publish_candidate(extraction_date=BASE, settings=settings)
    return home


def _copy_home(base: Path, target: Path):
    for name in ("landing", "published"):
        shutil.copytree(base / name, target / name)
    return settings_for(target)


def test_clean_generated_extractions_pass_every_raw_suite(base_home, tmp_path):
    settings = _copy_home(base_home, tmp_path / "home")
    generate(settings.landing, PATIENTS, SEED, NEXT)
    report = run_raw_gate(NEXT, settings, QualityConfig())
    assert report.passed, report.summary()
    assert not report.skipped
    evaluated_suites = {o.suite for o in report.outcomes}
    assert {f"raw.{s.name}.rows" for s in SOURCES} <= evaluated_suites
    assert report.critical_failures == []
    # The generator's ordinary dirt (exact duplicates, information-only lines, ...) is shown, not fatal.
    assert all(o.severity == "warning" for o in report.outcomes if not o.success)
    assert (settings.landing / "er_pha_f" / f"extraction={NEXT}").is_dir()
    assert (settings.quality / "data_docs" / "index.html").exists()
