"""Every fault of the catalogue (fault_catalogue.py) is stopped by its gate and rule, and nothing published moves.

One clean platform is built once for the module: two accepted 1,500-person extractions (BASE, MID) and a
published version. Each entry then lands its faulty next extraction (NEXT) on a copy of that home, runs the raw
gate on the entry's source, and asserts: the named rule failed critically, the message names the rule, the
observed value, the basis and the breaking rows, the extraction was quarantined, nothing is left for a refresh to
build from, and ``published/`` and ``exports/`` are byte-identical.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from pathlib import Path

import pytest
from fault_catalogue import BASE, CATALOGUE, MID, NEXT, Fault
from gates_marts import mart_tables, settings_for, write_warehouse
from oncopipe.contracts.sources import SOURCES
from oncopipe.quality import GateFailed, QualityConfig, run_raw_gate
from oncopipe.synth.extraction import generate
from oncopipe.warehouse import versions

PATIENTS = 1_500
SEED = 7
FAST = QualityConfig(build_docs=False)
COPIED = ("landing", "published", "exports")


def tree_hashes(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def platform(tmp_path_factory) -> Path:
    """A home with BASE and MID landed, MID's marts published and the clean NEXT generated beside it."""
    start = time.perf_counter()
    home = tmp_path_factory.mktemp("catalogue")
    settings = settings_for(home)
    generate(settings.landing, PATIENTS, SEED, BASE)
    generate(settings.landing, PATIENTS, SEED, MID)
    write_warehouse(settings.warehouse, mart_tables())
    versions.publish_candidate(extraction_date=MID, settings=settings)
    clean = tmp_path_factory.mktemp("catalogue_next")
    shutil.copytree(settings.landing, clean / "landing")
    generate(clean / "landing", PATIENTS, SEED, NEXT)
    (home / "clean_next").symlink_to(clean / "landing")
    print(f"\nfault catalogue platform built in {time.perf_counter() - start:.1f} s")
    return home


def _land(platform: Path, target: Path, fault: Fault):
    for name in COPIED:
        shutil.copytree(platform / name, target / name, dirs_exist_ok=True)
    settings = settings_for(target)
    if fault.generator:
        generate(settings.landing, PATIENTS, SEED, NEXT, faults=fault.generator)
    else:
        for src in SOURCES:
            shutil.copytree(platform / "clean_next" / src.name / f"extraction={NEXT}",
                            settings.landing / src.name / f"extraction={NEXT}")
        fault.plant(settings.landing)
    return settings


def test_clean_next_extraction_passes_the_delivery_rules(platform, tmp_path):
    """The clean NEXT delivery passes every rule the catalogue relies on (no false alarm to hide behind)."""
    settings = _land(platform, tmp_path / "home", Fault("clean", "er_pha_f", "", plant=lambda landing: None))
    report = run_raw_gate(NEXT, settings, FAST, sources=["er_pha_f", "ir_ben_r"])
    assert report.passed, report.summary()
    names = {o.expectation for o in report.outcomes}
    assert {"delivery_fingerprint", "distribution_drift", "flux_after_previous", "regularisation_matched",
            "cip13_in_referential", "care_after_birth", "row_count_vs_previous"} <= names


@pytest.mark.parametrize("fault", CATALOGUE, ids=[f.name for f in CATALOGUE])
def test_fault_is_stopped_by_its_rule(fault: Fault, platform, tmp_path):
    settings = _land(platform, tmp_path / "home", fault)
    published_before, exports_before = tree_hashes(settings.published), tree_hashes(settings.exports)
    current_before = versions.current_version(settings)

    with pytest.raises(GateFailed) as caught:
        run_raw_gate(NEXT, settings, FAST, sources=[fault.source])

    report = caught.value.report
    assert fault.gate == report.stage
    assert (fault.source, fault.rule) in report.failed_names("critical"), report.summary()
    failure = next(o for o in report.critical_failures if o.expectation == fault.rule)
    assert failure.consequence == fault.consequence
    message = str(caught.value)
    assert f"{fault.source}: expectation {fault.rule} (critical: quarantine" in message
    assert "observed" in failure.message and failure.observed
    assert failure.basis and f"basis {failure.basis}" in failure.message
    assert failure.sample and "sample rows: none" not in failure.message, failure.message
    if fault.message:  # the facts' samples are JSON inside JSON: read them with plain quotes
        assert fault.message in failure.message.replace('\\"', '"'), failure.message
    # Quarantined: every source of NEXT left the landing, the accepted ones stayed.
    target = settings.quarantine / NEXT
    assert json.loads((target / "validation.json").read_text())["passed"] is False
    for src in SOURCES:
        assert not (settings.landing / src.name / f"extraction={NEXT}").exists()
    assert (settings.landing / "er_pha_f" / f"extraction={MID}").is_dir()
    # Nothing is left for a refresh to build from, and nothing published or exported changed.
    assert [d for d in _landed(settings) if d > MID] == []
    assert tree_hashes(settings.published) == published_before
    assert tree_hashes(settings.exports) == exports_before
    assert versions.current_version(settings) == current_before
    # One line per fault for the catalogue's table (shown with -s).
    print(f"\nCATALOGUE | {fault.name} | {fault.gate} | {fault.source}: {fault.rule} | {failure.consequence} | "
          f"{failure.observed[:160]}")


def _landed(settings) -> set[str]:
    return {p.name.split("=", 1)[1] for src in SOURCES for p in (settings.landing / src.name).glob("extraction=*")}
