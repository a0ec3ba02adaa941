"""Every fault of the catalogue (fault_catalogue.py) is stopped by its gate and rule, and nothing published moves.

One clean platform is built once for the module and shared by every case: two landed 1,500-person extractions
(BASE, MID) with their accepted delivery profiles, a published mart version, one real study export (the
care-pathway study on 300 simulated poor-prognosis cases: analysis, disclosure control, report, output check,
manifest), and the clean next extraction (NEXT) generated beside it. Each case hard-links that home (no copy),
lands its faulty NEXT (a generator fault regenerates only the faulty source; a hand-made fault edits the clean
files), runs the raw gate on the entry's source, and asserts from the actual outcome:

- ``quarantine``: the named rule failed critically; the message names the rule, the observed value, the basis
  and the breaking rows; the extraction was quarantined and nothing is left for a refresh to build from;
- ``exclude``: the extraction is accepted; the rule's warning names rule, column, observed value and sample
  rows; the ledger counts exactly the planted lines; the staging model (the SQL dbt compiles for it, run on the
  case's landing) differs from the clean staging by exactly those lines (the marts are built from staging alone);

and in both, ``published/`` and ``exports/`` (which holds a real export, or the test fails) are byte-identical.
The last test writes the table fault | gate | rule | consequence | message from the actual outcomes to
``<pytest tmp>/fault_catalogue.md`` and prints it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pytest
from fault_catalogue import BASE, CATALOGUE, MID, NEXT, Fault
from gates_marts import _ARROW, mart_tables, settings_for, write_warehouse
from oncopipe.contracts.marts import MARTS_BY_NAME
from oncopipe.contracts.sources import SOURCES
from oncopipe.landing.layout import extraction_dir, relation_sql
from oncopipe.landing.lifetables import build_life_table
from oncopipe.quality import GateFailed, QualityConfig, deliveries, history, run_raw_gate
from oncopipe.quality.raw_frames import connect
from oncopipe.quality.suites import DELTA_FLUX_MONTH
from oncopipe.synth.extraction import generate
from oncopipe.synth.faults import FAULTS_BY_KIND
from oncopipe.warehouse import versions
from support.survival_simulation import simulate_cohort

PATIENTS = 1_500
SEED = 7
FAST = QualityConfig(build_docs=False)
LINKED = ("landing", "published", "exports", "quality/deliveries")
STUDY = "care_pathway_delays"
STAGING = "stg_snds__pharmacy_dispensings"
OUTCOMES: dict[str, dict[str, str]] = {}
"""Fault name -> what actually happened (gate, rule, consequence, message), for the table."""


def tree_hashes(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _study_marts() -> dict[str, pa.Table]:
    """The hand-made marts, with poor-prognosis cases and delays simulated so the care-pathway study runs."""
    tables = mart_tables()
    cohort = simulate_cohort(300, build_life_table(), seed=SEED, n_hospitals=3, end_of_data="2023-12-31")
    for name, frame in (("poor_prognosis_cases", cohort.cases), ("care_pathway_delays", cohort.delays)):
        tables[name] = pa.table({c.name: pa.array([None if pd.isna(v) else v for v in frame[c.name].tolist()],
                                                  type=_ARROW[c.data_type]) for c in MARTS_BY_NAME[name].columns})
    return tables


def _export_a_study(home: Path) -> Path:
    """Run the study's steps as its DAG does (check, analyse, control, report, export) on the published marts."""
    from oncopipe.studies import steps

    with pytest.MonkeyPatch.context() as env:
        env.setenv("ONCOPIPE_HOME", str(home))
        for var in ("ONCOPIPE_LANDING", "ONCOPIPE_QUARANTINE", "ONCOPIPE_WAREHOUSE", "ONCOPIPE_PUBLISHED",
                    "ONCOPIPE_EXPORTS", "ONCOPIPE_QUALITY", "AIRFLOW_HOME"):
            env.delenv(var, raising=False)
        state = steps.analyse(steps.check(STUDY), run_id="catalogue-baseline")
        return steps.StudyRunState.load(steps.export(steps.report(steps.control(state)))).export_path


def _save_accepted_profiles(settings) -> None:
    """The delivery profiles the raw gate saved when it accepted BASE and MID (each case links them)."""
    con = connect()
    try:
        for src in SOURCES:
            deliveries.accepted_profiles(con, settings.landing, settings.quality, src, NEXT,
                                         DELTA_FLUX_MONTH.get(src.name))
    finally:
        con.close()


@pytest.fixture(scope="module")
def platform(tmp_path_factory) -> Path:
    """A home with BASE and MID landed and profiled, marts published, a study exported, the clean NEXT beside it."""
    start = time.perf_counter()
    home = tmp_path_factory.mktemp("catalogue")
    settings = settings_for(home)
    generate(settings.landing, PATIENTS, SEED, BASE)
    generate(settings.landing, PATIENTS, SEED, MID)
    _save_accepted_profiles(settings)
    write_warehouse(settings.warehouse, _study_marts())
    versions.publish_candidate(extraction_date=MID, settings=settings)
    export = _export_a_study(home)
    assert (export / "manifest.json").is_file() and list((export / "tables").glob("*.csv")), export
    clean = tmp_path_factory.mktemp("catalogue_next")
    shutil.copytree(settings.landing, clean / "landing", copy_function=os.link)
    generate(clean / "landing", PATIENTS, SEED, NEXT)
    (home / "clean_next").symlink_to(clean / "landing")
    print(f"\nfault catalogue platform built in {time.perf_counter() - start:.1f} s")
    return home


def _link(source_dir: Path, target: Path) -> None:
    """Hard-link a tree (files the cases never rewrite in place: an edit writes a new file, see _edit)."""
    shutil.copytree(source_dir, target, copy_function=os.link, dirs_exist_ok=True)


def _land(platform: Path, target: Path, fault: Fault):
    for name in LINKED:
        _link(platform / name, target / name)
    settings = settings_for(target)
    faulty = set()
    if fault.generator:
        # Only the faulty source is generated again (same seed: the other sources are the clean NEXT's).
        faulty = {FAULTS_BY_KIND[fault.generator].source, fault.source}
    for src in SOURCES:
        if src.name not in faulty:
            _link(platform / "clean_next" / src.name / f"extraction={NEXT}",
                  settings.landing / src.name / f"extraction={NEXT}")
    if fault.generator:
        generate(settings.landing, PATIENTS, SEED, NEXT, faults=fault.generator, sources=sorted(faulty), workers=1)
    else:
        fault.plant(settings.landing)
    return settings


@pytest.fixture(scope="module")
def staging_sql(platform, tmp_path_factory) -> str:
    """The SQL dbt runs for the dispensings staging model (one ``dbt compile`` for the module; the warehouse is
    new, so the incremental model compiles as its full build)."""
    from oncopipe.warehouse.dbt_runner import run_dbt

    settings = _land(platform, tmp_path_factory.mktemp("catalogue_staging"),
                     Fault("clean", "er_pha_f", "", plant=lambda landing: None))
    run_dbt("compile", select=[STAGING], vars={"extraction_date": NEXT}, settings=settings,
            quiet=True).raise_for_failure()
    compiled = next((settings.dbt_target_dir / "compiled").rglob(f"{STAGING}.sql")).read_text()
    assert "exclude_implausible_lines" not in compiled and "2090" not in compiled
    return compiled


def _staging(settings, sql: str) -> pd.DataFrame:
    """The dispensings staging model over every accepted extraction up to NEXT, by the SQL dbt compiled.

    The landing views are written as a dbt run writes them (``prepare_landing``); only dbt's start-up is saved.
    """
    from oncopipe.warehouse.dbt_runner import prepare_landing

    prepare_landing(settings, extraction_date=NEXT)
    con = duckdb.connect(str(settings.warehouse), read_only=True)
    try:
        return con.execute(sql).df()
    finally:
        con.close()


@pytest.fixture(scope="module")
def clean_staging(platform, staging_sql, tmp_path_factory) -> pd.DataFrame:
    home = tmp_path_factory.mktemp("catalogue_clean_staging")
    return _staging(_land(platform, home, Fault("clean", "er_pha_f", "", plant=lambda landing: None)), staging_sql)


def _changed_lines(platform: Path, settings, source: str) -> set[tuple]:
    """Keys of the NEXT lines of ``source`` the plant changed (against the clean NEXT, whole lines compared)."""
    key = ", ".join(f'"{k}"' for k in ("ORG_CLE_NUM", "DCT_ORD_NUM", "PRS_ORD_NUM"))

    def rel(landing: Path) -> str:
        return relation_sql(sorted(extraction_dir(landing, source, NEXT).glob("*.parquet")))

    con = duckdb.connect()
    try:
        rows = con.execute(f"select {key} from (select * from {rel(settings.landing)} "
                           f"except all select * from {rel(platform / 'clean_next')})").fetchall()
    finally:
        con.close()
    return {(str(f), int(c), int(n)) for f, c, n in rows}


def _keys(frame: pd.DataFrame) -> pd.Series:
    return pd.Series(list(zip(frame["fund_key"].astype(str), frame["claim_number"].astype(int),
                              frame["claim_line_number"].astype(int), strict=True)), index=frame.index)


def test_clean_next_extraction_passes_the_delivery_rules(platform, tmp_path):
    """The clean NEXT delivery passes every rule the catalogue relies on (no false alarm to hide behind)."""
    settings = _land(platform, tmp_path / "home", Fault("clean", "er_pha_f", "", plant=lambda landing: None))
    report = run_raw_gate(NEXT, settings, FAST, sources=["er_prs_f", "er_pha_f", "ir_ben_r"])
    assert report.passed, report.summary()
    names = {o.expectation for o in report.outcomes}
    assert {"delivery_fingerprint", "distribution_drift", "flux_after_previous", "regularisation_matched",
            "drug_line_has_claim_line", "drug_line_claim_is_pharmacy",
            "cip13_in_referential", "care_after_birth", "row_count_vs_previous",
            "EXE_SOI_DTD.not_after_extraction.excluded", "PHA_ACT_QSN.plausible_boxes.excluded"} <= names
    assert not [o for o in report.warnings if o.consequence == "exclude"], "the clean delivery excludes no line"
    assert history.exclusions(settings.quality, NEXT) == []
    # The profiles of the accepted extractions were reused, not recomputed (a recomputed one would be rewritten).
    stamps = {p.name: p.stat().st_ino for p in (settings.quality / "deliveries").rglob(f"extraction={BASE}.json")}
    assert stamps and stamps == {p.name: p.stat().st_ino
                                 for p in (platform / "quality" / "deliveries").rglob(f"extraction={BASE}.json")}


@pytest.mark.parametrize("fault", CATALOGUE, ids=[f.name for f in CATALOGUE])
def test_fault_is_stopped_by_its_rule(fault: Fault, platform, tmp_path, request):
    settings = _land(platform, tmp_path / "home", fault)
    published_before, exports_before = tree_hashes(settings.published), tree_hashes(settings.exports)
    assert any(name.endswith("/manifest.json") for name in exports_before), "no study export to compare"
    current_before = versions.current_version(settings)

    if fault.consequence == "exclude":
        report = run_raw_gate(NEXT, settings, FAST, sources=[fault.source])
        outcome = _assert_excluded(fault, report, platform, settings, request)
    else:
        outcome = _assert_quarantined(fault, settings)
    # Nothing published or exported changed.
    assert tree_hashes(settings.published) == published_before
    assert tree_hashes(settings.exports) == exports_before
    assert versions.current_version(settings) == current_before
    OUTCOMES[fault.name] = outcome


def _assert_quarantined(fault: Fault, settings) -> dict[str, str]:
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
    # Nothing is left for a refresh to build from.
    assert [d for d in _landed(settings) if d > MID] == []
    others = sorted(f"{o.subject}: {o.expectation}" for o in report.critical_failures if o is not failure)
    return {"gate": report.stage, "rule": f"{failure.subject}: {failure.expectation}"
            + (f" (also: {', '.join(others)})" if others else ""),
            "consequence": f"{failure.consequence} (extraction quarantined)", "message": failure.message}


def _assert_excluded(fault: Fault, report, platform: Path, settings, request) -> dict[str, str]:
    assert report.passed and fault.gate == report.stage, report.summary()
    warning = next((o for o in report.warnings if o.expectation == fault.rule), None)
    assert warning is not None, report.summary()
    critical = fault.rule.removesuffix(".excluded")
    assert next(o for o in report.outcomes if o.expectation == critical).success, "under the ceiling"
    # The warning reads like a failure: rule, column, observed value, basis, sample rows.
    column = critical.split(".")[0]
    assert warning.consequence == "exclude" and warning.severity == "warning"
    assert f"{fault.source}: expectation {fault.rule} (warning: exclude" in warning.message
    assert column in warning.message and "observed" in warning.message and warning.basis
    assert warning.sample and "sample rows: none" not in warning.message
    assert fault.message in warning.message.replace('\\"', '"'), warning.message
    # Accepted: NEXT stays in the landing, nothing was quarantined.
    assert (settings.landing / fault.source / f"extraction={NEXT}").is_dir()
    assert not (settings.quarantine / NEXT).exists()
    # The ledger counts exactly the planted lines, with a few sample keys, and stays out of the exports.
    changed = _changed_lines(platform, settings, fault.source)
    assert len(changed) == fault.excluded
    ledger = history.exclusions(settings.quality, NEXT)
    assert [(r["source"], r["rule"], r["column_name"], r["lines"], r["consequence"]) for r in ledger] == [
        (fault.source, critical, column, fault.excluded, "excluded")]
    sample = json.loads(ledger[0]["sample_keys"])
    assert sample and {(s["ORG_CLE_NUM"], int(s["DCT_ORD_NUM"]), int(s["PRS_ORD_NUM"])) for s in sample} <= changed
    assert not [p for p in settings.exports.rglob("*") if "excluded" in p.name]
    # Staging (what every mart is built from) differs from the clean staging by exactly the excluded lines.
    clean = request.getfixturevalue("clean_staging")
    built = _staging(settings, request.getfixturevalue("staging_sql"))
    clean_keys, built_keys = _keys(clean), _keys(built)
    assert set(clean_keys) - set(built_keys) == changed & set(clean_keys) and changed & set(clean_keys)
    assert not changed & set(built_keys), "an excluded line reached staging"
    kept = clean[~clean_keys.isin(changed)].sort_values(["fund_key", "claim_number", "claim_line_number"])
    pd.testing.assert_frame_equal(kept.reset_index(drop=True), built.sort_values(
        ["fund_key", "claim_number", "claim_line_number"]).reset_index(drop=True))
    share = ledger[0]["lines"] / ledger[0]["judged"]
    return {"gate": report.stage, "rule": f"{warning.subject}: {warning.expectation}",
            "consequence": f"{warning.consequence}: {ledger[0]['lines']} lines left out of staging, counted in the "
                           f"ledger ({share:.3%} of lines, ceiling {ledger[0]['ceiling']:.1%}); extraction accepted",
            "message": warning.message}


def _landed(settings) -> set[str]:
    return {p.name.split("=", 1)[1] for src in SOURCES for p in (settings.landing / src.name).glob("extraction=*")}


def _cell(text: str, width: int = 300) -> str:
    text = text.replace("|", "\\|").replace("\n", " ")
    return text if len(text) <= width else text[:width] + "…"


def test_the_table_of_actual_outcomes(tmp_path_factory, capsys):
    """fault | gate | rule | consequence | message, from what the gate did (not from the expected values)."""
    ran = [f for f in CATALOGUE if f.name in OUTCOMES]
    assert ran, "no catalogue case ran before the table"
    lines = ["| fault | gate | rule | consequence | message |", "|---|---|---|---|---|"]
    lines += [f"| {_cell(f.name)} | {OUTCOMES[f.name]['gate']} | {_cell(OUTCOMES[f.name]['rule'])} | "
              f"{_cell(OUTCOMES[f.name]['consequence'])} | {_cell(OUTCOMES[f.name]['message'])} |" for f in ran]
    path = tmp_path_factory.getbasetemp() / "fault_catalogue.md"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with capsys.disabled():
        print(f"\nfault catalogue ({len(ran)} of {len(CATALOGUE)} faults ran), written to {path}:\n"
              + "\n".join(lines))
    assert len(lines) == 2 + len(ran)
