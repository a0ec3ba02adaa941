"""Issue #16's done-means: a small extract written by hand in the delivered shape goes through ``oncopipe import``
and the whole platform to the study exports.

The extract (tests/support/delivered_extract.py, ``platform_delivery``) is written by explicit loops, not by the
generator: insurer file names (IR_BEN_R.csv, ER_PRS_F_2021.csv, ER_PHA_F.csv, T_MCO20B.csv, T_MCO21C.csv,
KI_CCI_R.csv), DD/MM/YYYY and DDMMYYYY dates, NUM_ENQ as the pseudonym, several PMSI years, a header-only T_MCOaaA,
DCIR as its two tables joined on the nine keys. Then the refresh's own steps without
Airflow (:func:`oncopipe.warehouse.refresh.run_refresh`: raw gate, dbt build, marts gate, publish) and, for each
approved study, the tasks of its DAG (:mod:`oncopipe.studies.steps`: approval check, analysis, disclosure control,
report, export), the cheapest run of the whole platform: Airflow's own start-up adds about a minute and is
covered by tests/integration/test_dag_e2e.py.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import pytest
from oncopipe.cli import app
from oncopipe.contracts.settings import get_settings
from oncopipe.delivery.disclosure import MASK_MARKER
from oncopipe.studies import steps
from oncopipe.warehouse import refresh, versions
from support.delivered_extract import (
    BREAST,
    HOSPITALS,
    LUNG,
    PLATFORM_DATE,
    lung_chemo_delay,
    lung_death,
    platform_delivery,
)
from support.masked_csv import marked
from typer.testing import CliRunner

STUDIES = ("tradhor", "poor_prognosis_survival", "care_pathway_delays")

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("delivered_platform")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ONCOPIPE_HOME", str(root / "home"))
        for var in ("ONCOPIPE_LANDING", "ONCOPIPE_QUARANTINE", "ONCOPIPE_WAREHOUSE", "ONCOPIPE_PUBLISHED",
                    "ONCOPIPE_EXPORTS", "ONCOPIPE_QUALITY"):
            mp.delenv(var, raising=False)
        settings = get_settings().ensure()
        delivery = platform_delivery(root / "delivery")
        imported = CliRunner().invoke(app, ["import", str(delivery), "--extraction-date", PLATFORM_DATE])
        publication = refresh.run_refresh(settings=settings)
        exports = {}
        for study in STUDIES:
            checked = steps.check(study)
            state = steps.analyse(checked, run_id=f"manual__{study}")
            exports[study] = steps.export(steps.report(steps.control(state)))
        yield {"settings": settings, "imported": imported, "publication": publication, "exports": exports,
               "delivery": delivery, "current": versions.current_version(settings)}


def _export(platform: dict, study: str) -> Path:
    return Path(steps.StudyRunState.load(platform["exports"][study]).export_path)


def test_the_hand_written_delivery_is_imported(platform):
    imported = platform["imported"]
    assert imported.exit_code == 0, imported.output
    names = sorted(p.name for p in platform["delivery"].iterdir())
    assert {"T_MCO20B.csv", "T_MCO21B.csv", "T_MCO21A.csv", "KI_CCI_R.csv"} <= set(names)
    for source in ("ir_ben_r", "ir_pha_r", "t_mco_b", "t_mco_c", "t_mco_d", "t_mco_a", "registry_cases",
                   "ki_cci_r", "ir_geo_fdep"):
        assert f"{source} " in imported.output, source
    assert f"rows={BREAST + LUNG}" in imported.output  # IR_BEN_R: everyone


def test_the_extract_is_published(platform):
    current = platform["current"]
    assert current is not None and str(current.extraction) == PLATFORM_DATE
    cohort = versions.read_mart("breast_cancer_endocrine_cohort", version=current.version)
    assert cohort["person_id"].nunique() == BREAST
    cases = versions.read_mart("poor_prognosis_cases", version=current.version)
    assert len(cases) == LUNG


def test_every_approved_study_exports_its_results(platform):
    for study in STUDIES:
        folder = _export(platform, study)
        manifest = json.loads((folder / "manifest.json").read_text())
        assert manifest["extraction_date"] == PLATFORM_DATE, study
        assert manifest["mart_version"] == str(platform["current"].version), study
        assert (folder / "report.html").is_file() and list((folder / "tables").glob("*.csv")), study


def test_tradhor_follows_the_40_women_and_masks_its_small_groups(platform):
    folder = _export(platform, "tradhor")
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["row_counts"]["inputs"]["breast_cancer_endocrine_cohort"] == BREAST
    groups = marked(folder / "tables" / "trajectory_groups.csv").set_index("group")
    assert groups.loc["all", "n_patients"] == str(BREAST)
    shown = groups.drop(index="all")["n_patients"]
    assert len(shown) >= 2  # the refill-to-the-end women and those who stop are not one trajectory
    # A group of 1 to 9 women never leaves: its count (and what would give it away) is masked.
    assert (shown == MASK_MARKER).any()
    assert all(int(n) >= 10 for n in shown if n != MASK_MARKER)
    assert manifest["disclosure"]["counts_by_rule"].get("small_count", 0) > 0


def test_the_survival_of_the_60_lung_cases_counts_the_deaths_written(platform):
    folder = _export(platform, "poor_prognosis_survival")
    median = marked(folder / "tables" / "median_site.csv").set_index("site")
    deaths = sum(1 for i in range(LUNG) if lung_death(i) is not None)
    assert (median.loc["lung", "n"], median.loc["lung", "events"]) == (str(LUNG), str(deaths))
    km = marked(folder / "tables" / "km_site.csv")
    lung = km[km["site"] == "lung"]
    # No case is followed 5 years (the first was diagnosed in January 2020): no 5-year row; every row shown has
    # at least 10 at risk.
    assert len(lung) and "5.0" not in set(lung["years"])
    assert all(int(n) >= 10 for n in km["n_risk"] if n not in (MASK_MARKER, ""))


def test_the_care_pathway_delays_by_hospital_are_the_written_ones(platform):
    folder = _export(platform, "care_pathway_delays")
    by_hospital = marked(folder / "tables" / "delay_by_hospital.csv").set_index("hospital_id")
    for h, hospital in enumerate(HOSPITALS):  # case i is diagnosed at hospital i % 2
        delays = [d for i in range(h, LUNG, 2) if (d := lung_chemo_delay(i)) is not None]
        row = by_hospital.loc[hospital]
        assert (row["n_cases"], row["n_treated"]) == (str(LUNG // 2), str(len(delays))), hospital
        assert float(row["median_days"]) == statistics.median(delays), hospital
