"""Every generator fault through the raw gate: caught by the expectation meant for it, quarantined, nothing
published changes; and a clean generated extraction passes every raw suite with no critical failure.

One clean base extraction (300 patients, 2024-01-01) is generated and published once for the module; each
fault is then generated once, as the next extraction (2024-04-01) on a copy of that landing, so checks
against the previous accepted extraction (row counts, months covered) have their reference.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
from gates_marts import mart_tables, settings_for, write_warehouse
from oncopipe.contracts.sources import SOURCES
from oncopipe.quality import GateFailed, QualityConfig, run_raw_gate
from oncopipe.quality.suites import FAULT_EXPECTATIONS
from oncopipe.synth.extraction import generate
from oncopipe.synth.faults import FAULT_KINDS
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


@pytest.mark.parametrize("kind", [f.kind for f in FAULT_KINDS])
def test_fault_is_caught_by_its_expectation_and_quarantined(kind, base_home, tmp_path):
    settings = _copy_home(base_home, tmp_path / "home")
    generate(settings.landing, PATIENTS, SEED, NEXT, faults=kind)
    truth = json.loads((settings.landing / "_truth" / f"extraction={NEXT}" / "truth.json").read_text())
    assert kind in json.dumps(truth.get("faults", truth))
    source, expectation = FAULT_EXPECTATIONS[kind]
    published_before = tree_hashes(settings.published)
    current_before = versions.current_version(settings)

    with pytest.raises(GateFailed) as caught:
        run_raw_gate(NEXT, settings, FAST, sources=[source])

    report = caught.value.report
    assert (source, expectation) in report.failed_names("critical"), report.summary()
    failure = next(o for o in report.critical_failures if o.expectation == expectation)
    message = str(caught.value)
    assert f"{source}: expectation {expectation}" in message
    assert "observed" in failure.message and failure.observed
    # The sample names what is wrong: the breaking lines (line rules, keys) or the offending file/column/month.
    assert failure.sample, failure.message
    assert "sample rows: none" not in failure.message
    if failure.suite.endswith(".rows"):
        assert "checked on every line" in failure.observed, failure.observed
    # Quarantined: every source of the extraction left the landing, with the validation result beside it.
    target = settings.quarantine / NEXT
    assert (target / "validation.json").exists()
    assert json.loads((target / "validation.json").read_text())["passed"] is False
    for src in SOURCES:
        assert not (settings.landing / src.name / f"extraction={NEXT}").exists()
        assert (target / src.name / f"extraction={NEXT}").is_dir()
    assert (settings.landing / "er_pha_f" / f"extraction={BASE}").is_dir()
    # Nothing published changed.
    assert tree_hashes(settings.published) == published_before
    assert versions.current_version(settings) == current_before
