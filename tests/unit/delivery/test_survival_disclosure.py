"""Survival-type studies end to end through disclosure control, export and ``oncopipe exports verify``.

The poor-prognosis study once published its Kaplan-Meier curves every 14 days with the cumulative number of
deaths (``n_event``, not declared as a count) on every row: the difference of two rows gave the deaths in a
fortnight, and a stage curve that stopped early still counted in the site curve, so its deaths came back by
subtraction. ``verify`` said, on such an export:
``km_curves_site_stage[3283].n_event: rule complementary: recoverable or small sum from the margin over 'stage'``.
These tests run each analysis on a simulated cohort, publish it into a private ONCOPIPE_HOME and ask verify.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from oncopipe.cli import app
from oncopipe.contracts.results import StudyResult
from oncopipe.delivery.export_store import publish_export, verify_export
from oncopipe.landing.lifetables import build_life_table
from oncopipe.methods.survival import DAYS_PER_YEAR
from oncopipe.studies import kinds
from support.survival_simulation import simulate_cohort
from typer.testing import CliRunner

# Columns of event counts (deaths, events, censorings), whatever their exact spelling.
EVENT_COLUMN = re.compile(r"(?:^|_)(?:events?|deaths?|dead|died|censor\w*|discontinued|discontinuations?)(?:_|$)",
                          re.IGNORECASE)
KM_CURVE_COLUMNS = ["years", "n_risk", "surv", "lower", "upper"]
# Curves (drawn as steps) and the yearly survival/at-risk tables under them.
CURVE = re.compile(r"^(?:km_curves_|km_site|discontinuation_cif$)")


@pytest.fixture(scope="module")
def life_table():
    return build_life_table()


@pytest.fixture(scope="module")
def cohort(life_table):
    # 3,000 cases over 6 sites: several stage curves fall below 10 at risk before 5 years.
    return simulate_cohort(3_000, life_table, seed=11, n_hospitals=10)


def _study(result: StudyResult) -> dict:
    return {"id": result.study_id, "title": f"{result.analysis} test", "approval": {"reference": "CESREES-T-1"}}


def _publish(result: StudyResult) -> Path:
    return publish_export(result, _study(result), {"code_version": "test"}, "run_1").path


def _check_export(folder: Path, result: StudyResult) -> tuple[dict, dict[str, pd.DataFrame]]:
    """verify finds nothing; nothing was controlled as an undeclared count; curves carry no event counts."""
    assert verify_export(folder) == []
    cli = CliRunner().invoke(app, ["exports", "verify", "--path", str(folder)])
    assert cli.exit_code == 0 and cli.output.startswith("ok"), cli.output
    manifest = json.loads((folder / "manifest.json").read_text())
    frames = {}
    for meta in manifest["tables"]:
        name = meta["name"]
        # disclosure control adds undeclared count-like columns to count_columns: the analysis declared them all
        assert meta["count_columns"] == list(result.table(name).count_columns), name
        frame = pd.read_parquet(folder / "tables" / f"{name}.parquet")
        frames[name] = frame
        at_risk = meta["at_risk_column"]
        if at_risk:
            # curves and at-risk tables: no event counts, never fewer than 10 at risk
            assert not [c for c in frame.columns if EVENT_COLUMN.search(c)], (name, list(frame.columns))
            assert (frame[at_risk].dropna() >= 10).all(), name
        if CURVE.match(name):
            assert meta["count_columns"] == [at_risk], name  # the number at risk is a curve's only count
    return manifest, frames


def _true_at_risk(cases: pd.DataFrame, by: list[str], rows: pd.DataFrame) -> np.ndarray:
    """Cases of each row's group still followed at the row's grid month (``years`` is months / 12, rounded)."""
    keys = pd.MultiIndex.from_frame(rows[by].astype(str))
    days = (rows["years"].astype(float) * 12).round() * DAYS_PER_YEAR / 12
    case_keys = pd.MultiIndex.from_frame(cases[by].astype(str))
    follow_up = cases["follow_up_days"].to_numpy()
    return np.array([((case_keys == key) & (follow_up >= t)).sum() for key, t in zip(keys, days, strict=True)])


def test_survival_export_verifies_and_its_curves_hold_no_event_counts(cohort, life_table, oncopipe_home):
    result = kinds.run("poor_prognosis_survival", {"poor_prognosis_cases": cohort.cases,
                                                      "french_life_tables": life_table}, {}, study_id="pps_disc")
    folder = _publish(result)
    manifest, frames = _check_export(folder, result)
    curves = {name: frame for name, frame in frames.items() if name.startswith("km_curves_")}
    assert set(curves) == {"km_curves_site", "km_curves_site_stage"}
    dropped = [c for c in json.loads((folder / "disclosure.json").read_text())["cells"]
               if c["rule"] == "at_risk_below_10"]
    for name, frame in curves.items():
        by = ["site"] if name == "km_curves_site" else ["site", "stage"]
        assert [c for c in frame.columns if not c.endswith("__masked")] == [*by, *KM_CURVE_COLUMNS]
        # a coarse grid (end of each month), one row per group and month: not one row per death
        months = frame["years"] * 12
        assert np.allclose(months, months.round(), atol=1e-3)
        assert not frame.assign(m=months.round()).duplicated([*by, "m"]).any()
        assert frame.groupby(by).size().max() <= 60
        # the published number at risk is the true one, and each curve stops where fewer than 10 remain
        shown = frame.dropna(subset=["n_risk"])
        truth = _true_at_risk(cohort.cases, by, shown)
        assert (shown["n_risk"].to_numpy() == truth).all() and (truth >= 10).all()
        gone = pd.DataFrame([c["labels"] for c in dropped if c["table"] == name])
        if len(gone):
            assert (_true_at_risk(cohort.cases, by, gone) < 10).all()
    # some stage curves did stop early (the case the subtraction attack needs), the site curves did not
    assert any(c["table"] == "km_curves_site_stage" for c in dropped)
    site = curves["km_curves_site"]
    assert (site.groupby("site")["years"].max() >= 4.5).all() and not site["surv"].isna().any()
    # coarsened as ACRO does: from the group size, every fall in the number at risk between rows shown is 0 or
    # at least 10 (the people who left in between), in the monthly curve and the yearly table read together
    sizes = frames["median_site"].set_index("site")["n"]
    for s, part in pd.concat([site, frames["km_site"]]).dropna(subset=["n_risk"]).groupby("site"):
        steps = -np.diff([sizes[s], *part.drop_duplicates("years").sort_values("years")["n_risk"]])
        assert ((steps == 0) | (steps >= 10)).all(), (s, steps)
    # the yearly at-risk tables and the figure drawn from them
    for name in (n for n in frames if n.startswith("km_site")):
        assert set(frames[name]["years"]) <= {1.0, 2.0, 3.0, 4.0, 5.0}, name
    assert (folder / "figures" / "km_curves.png").stat().st_size > 10_000
    assert manifest["parameters"]["curve_grid_months"] == 1


def test_quarterly_grid(cohort, life_table):
    result = kinds.run("poor_prognosis_survival", {"poor_prognosis_cases": cohort.cases,
                                                      "french_life_tables": life_table},
                          {"curve_grid_months": 3, "years": [1, 2]}, study_id="pps_q")
    curve = result.table("km_curves_site").frame
    assert sorted(curve["years"].unique()) == [0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0]


def test_care_pathway_export_verifies(cohort, oncopipe_home):
    result = kinds.run("care_pathway_delays", {"care_pathway_delays": cohort.delays,
                                                  "poor_prognosis_cases": cohort.cases}, {}, study_id="cpd_disc")
    _check_export(_publish(result), result)


def test_tradhor_export_verifies_and_its_cif_holds_no_event_counts(oncopipe_home):
    from test_tradhor_analysis import PARAMS, _marts

    inputs, _ = _marts()
    result = kinds.get("tradhor_adherence")(inputs, PARAMS, study_id="tradhor_disc")
    _, frames = _check_export(_publish(result), result)
    cif = frames["discontinuation_cif"]
    assert [c for c in cif.columns if not c.endswith("__masked")] == ["month", "n_at_risk", "cif", "lower", "upper"]
