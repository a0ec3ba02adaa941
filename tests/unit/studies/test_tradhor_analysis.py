"""The tradhor_adherence analysis: tables, disclosure metadata, figures and bad input, on marts built by
oncopipe.methods.adherence from simulated dispensings."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
from oncopipe.contracts.results import InputValidationError, NotEnoughData
from oncopipe.methods import adherence as adh
from oncopipe.studies.kinds import get, kinds

PARAMS = {"max_groups": 4, "degree": 2, "n_starts": 2, "seed": 1}


def _marts(n=300, seed=0, stop_share=(0.0, 0.5, 1.0)):
    """Women in 3 patterns: refills on time, refills with ~40% gaps, stop after ~6 months."""
    rng = np.random.default_rng(seed)
    pattern = rng.choice(3, n, p=[0.5, 0.25, 0.25])
    index = pd.Timestamp("2019-01-01") + pd.to_timedelta(rng.integers(0, 365, n), unit="D")
    rows = []
    for i in range(n):
        day, stop = 0, (180 if pattern[i] == 2 else 1826)
        while day < stop:
            rows.append((f"w{i}", index[i] + pd.Timedelta(days=day), 30))
            day += 30 + (rng.integers(0, 4) if pattern[i] == 0 else rng.integers(15, 30) if pattern[i] == 1 else 1)
    disp = pd.DataFrame(rows, columns=["person_id", "dispensing_date", "days_supply"]).assign(molecule="tamoxifen")
    death = np.where(rng.random(n) < 0.05, index + pd.to_timedelta(rng.integers(100, 1500, n), unit="D"), pd.NaT)
    cohort = pd.DataFrame({
        "person_id": [f"w{i}" for i in range(n)], "index_date": index, "end_of_data_date": pd.Timestamp("2023-12-31"),
        "death_date": pd.to_datetime(death), "age_at_index": rng.integers(35, 85, n),
        "deprivation_quintile": rng.integers(1, 6, n), "region_code": rng.choice(["11", "84", "93"], n),
        "first_molecule": rng.choice(["tamoxifen", "letrozole"], n),
    })
    fu = adh.follow_up_windows(cohort)
    cohort = cohort.merge(fu[["person_id", "follow_up_end_date", "follow_up_end_reason"]], on="person_id")
    monthly = adh.monthly_pdc(adh.coverage(disp), fu)
    return {"breast_cancer_endocrine_cohort": cohort, "endocrine_adherence_monthly": monthly}, pattern


@pytest.fixture(scope="module")
def result():
    inputs, pattern = _marts()
    return get("tradhor_adherence")(inputs, PARAMS, study_id="TRADHOR"), pattern


def test_registered():
    assert "tradhor_adherence" in kinds()


def test_tables_and_disclosure_metadata(result):
    res, pattern = result
    names = [t.name for t in res.tables]
    assert names == ["trajectory_groups", "trajectory_means", "model_selection", "predictors", "adherence_by_year",
                     "adherence_by_month", "discontinuation_cif"]
    groups = res.table("trajectory_groups")
    assert groups.total_value == "all" and groups.count_columns == ("n_patients",)
    frame = groups.frame.set_index("group")
    assert frame.loc["all", "n_patients"] == 300 == frame.drop("all")["n_patients"].sum()
    # APP and OCC of the smallest group describe it: masked with it when it has fewer than 10 women
    assert {"min_group_share", "min_app", "min_occ"} <= set(res.table("model_selection").statistic_columns)
    assert set(res.table("model_selection").statistic_columns.values()) == {"min_group_n"}
    sel = res.table("model_selection").frame
    assert sel["chosen"].sum() == 1 and sel["k"].tolist() == [2, 3, 4]
    k = int(sel.loc[sel["chosen"], "k"].iloc[0])
    assert k == 3  # three planted refill patterns
    means = res.table("trajectory_means")
    assert means.at_risk_column == "n_patients" and means.statistic_columns["observed_mean"] == "n_patients"
    m = means.frame
    assert ((m["lower"] <= m["observed_mean"]) & (m["observed_mean"] <= m["upper"])).all()
    # The least adherent group (k) stops after about 6 months: low PDC at month 12.
    assert m[(m.group == str(k)) & (m.month == 12)]["observed_mean"].iloc[0] < 0.1
    pred = res.table("predictors")
    assert pred.frame["reference_group"].eq("1").all()
    assert set(pred.frame["covariate"]) == {"age_at_index", "deprivation_quintile", "region_code", "first_molecule"}
    assert pred.statistic_columns["odds_ratio"] == "n_group"
    year = res.table("adherence_by_year").frame
    assert year["year"].tolist() == [1, 2, 3, 4, 5]
    assert (year["n_adherent"] <= year["n_patients"]).all()
    cif = res.table("discontinuation_cif")
    assert cif.at_risk_column == "n_at_risk" and cif.count_columns == ("n_at_risk",)
    assert list(cif.frame.columns) == ["month", "n_at_risk", "cif", "lower", "upper"]  # no event counts
    c = cif.frame
    assert c["cif"].is_monotonic_increasing and c["cif"].iloc[0] == 0
    # About a quarter stop after 6 months (+90 days gap): CIF at 12 months near 0.25.
    assert 0.15 < c.loc[c["month"] == 12, "cif"].iloc[0] < 0.35
    assert "Aalen-Johansen" in res.methods


def test_figures_draw_from_tables_only(result):
    res, _ = result
    tables = {t.name: t.frame for t in res.tables}
    for fig in res.figures:
        drawn = fig.draw({name: tables[name] for name in fig.tables})
        buf = io.BytesIO()
        drawn.savefig(buf, format="png")
        assert buf.getvalue()[:4] == b"\x89PNG"
    # Drawing from a masked table (rows dropped, values NaN) still works.
    masked = tables["trajectory_means"].copy()
    masked.loc[masked.index[:5], ["observed_mean", "lower", "upper", "fitted_mean"]] = np.nan
    res.figures[0].draw({"trajectory_means": masked.iloc[10:]})


def _run(inputs, **params):
    return get("tradhor_adherence")(inputs, {**PARAMS, **params}, study_id="TRADHOR")


@pytest.fixture(scope="module")
def small_inputs():
    return _marts(n=60, seed=4)[0]


def test_empty_and_tiny_cohorts(small_inputs):
    cohort = small_inputs["breast_cancer_endocrine_cohort"]
    with pytest.raises(NotEnoughData, match="TRADHOR.*empty"):
        _run({**small_inputs, "breast_cancer_endocrine_cohort": cohort.iloc[:0]})
    with pytest.raises(NotEnoughData, match="fewer than 10") as err:
        _run({**small_inputs, "breast_cancer_endocrine_cohort": cohort.iloc[:9]})
    assert "9" not in str(err.value)


def test_missing_covariates_error_or_dropped(small_inputs):
    cohort = small_inputs["breast_cancer_endocrine_cohort"].copy()
    cohort["deprivation_quintile"] = cohort["deprivation_quintile"].astype("Int64")
    cohort.loc[cohort.index[:12], "deprivation_quintile"] = pd.NA
    inputs = {**small_inputs, "breast_cancer_endocrine_cohort": cohort}
    with pytest.raises(InputValidationError, match="TRADHOR.*deprivation_quintile missing on 12 row"):
        _run(inputs)
    res = _run(inputs, drop_missing_covariates=True, max_groups=3)
    assert any("12 women with a missing covariate" in n for n in res.notes)


def test_covariates_missing_on_almost_everyone_is_not_enough_data(small_inputs):
    cohort = small_inputs["breast_cancer_endocrine_cohort"].copy()
    cohort["age_at_index"] = cohort["age_at_index"].astype(float)
    cohort.loc[cohort.index[:-9], "age_at_index"] = np.nan  # 9 complete cases left
    with pytest.raises(NotEnoughData, match="TRADHOR.*fewer than 10 women.*every covariate.*age_at_index") as err:
        _run({**small_inputs, "breast_cancer_endocrine_cohort": cohort}, drop_missing_covariates=True)
    assert "9" not in str(err.value)


def test_a_trajectory_group_without_women_is_not_enough_data(small_inputs, monkeypatch):
    from oncopipe.studies.kinds import tradhor

    real = tradhor.select_gbtm

    def emptied(*args, **kwargs):
        selection = real(*args, **kwargs)
        post = selection.chosen.posterior
        post[:, 0] += post[:, 1]  # nobody's most probable group is group 2 any more
        post[:, 1] = 0.0
        return selection

    monkeypatch.setattr(tradhor, "select_gbtm", emptied)
    with pytest.raises(NotEnoughData, match="TRADHOR.*trajectory group.*no woman assigned"):
        _run(small_inputs, max_groups=3)


def test_no_discontinuation_is_not_enough_data(small_inputs):
    monthly = small_inputs["endocrine_adherence_monthly"].assign(is_discontinued=False)
    with pytest.raises(NotEnoughData, match="no discontinuation"):
        _run({**small_inputs, "endocrine_adherence_monthly": monthly})


def test_missing_inputs_and_columns(small_inputs):
    with pytest.raises(InputValidationError, match="endocrine_adherence_monthly is missing"):
        _run({"breast_cancer_endocrine_cohort": small_inputs["breast_cancer_endocrine_cohort"]})
    cohort = small_inputs["breast_cancer_endocrine_cohort"].drop(columns="region_code")
    with pytest.raises(InputValidationError, match="lacks column.*region_code"):
        _run({**small_inputs, "breast_cancer_endocrine_cohort": cohort})
    with pytest.raises(InputValidationError, match="unknown parameter"):
        _run(small_inputs, bogus=1)


def test_disclosure_control_accepts_the_result_and_figures_draw_from_controlled_tables(result):
    from oncopipe.delivery.disclosure import control

    res, _ = result
    controlled = control(res)
    tables = {t.name: t.frame for t in controlled.result.tables}
    for fig in res.figures:
        fig.draw({name: tables[name] for name in fig.tables})
    # No count from 1 to 9 survives in any count column.
    for t in controlled.result.tables:
        for col in t.count_columns:
            values = pd.to_numeric(t.frame[col], errors="coerce").dropna()
            assert not ((values >= 1) & (values <= 9)).any(), (t.name, col)


def test_predictors_not_estimable_leave_a_note_and_the_trajectories():
    """A predictors model that cannot be estimated (seen at 1,000 people in the DAG end-to-end test: separation; here
    collinear covariates): the study still reports its trajectories; no predictors table, the reason in the notes."""
    inputs, pattern = _marts()
    cohort = inputs["breast_cancer_endocrine_cohort"].copy()
    # Two regions, each with its own first molecule: the region and molecule terms are collinear.
    cohort["region_code"] = np.where(cohort["first_molecule"] == "tamoxifen", "11", "84")
    res = get("tradhor_adherence")({**inputs, "breast_cancer_endocrine_cohort": cohort}, PARAMS, study_id="TRADHOR")
    names = [t.name for t in res.tables]
    assert "predictors" not in names and "trajectory_groups" in names
    assert any(note.startswith("Predictors of trajectory group not estimable") for note in res.notes)


def test_adherence_measure_is_validated():
    inputs, _ = _marts(n=40)
    with pytest.raises(InputValidationError, match="parameter 'adherence_measure' = 'cma9': Input should be 'cma7' "
                                                   "or 'cma7_sliding_window'"):
        get("tradhor_adherence")(inputs, {**PARAMS, "adherence_measure": "cma9"}, study_id="TRADHOR")
    with pytest.raises(InputValidationError, match="sliding_window_months"):
        get("tradhor_adherence")(inputs, {**PARAMS, "sliding_window_months": 0}, study_id="TRADHOR")
    with pytest.raises(InputValidationError, match="min_group_share"):
        get("tradhor_adherence")(inputs, {**PARAMS, "min_group_share": 0.7}, study_id="TRADHOR")


def test_sliding_window_measure_by_hand():
    """Covered days 30, 0, 31, 15 over months of 31, 29, 31, 30 days; windows of 3 months ending with each month:
    30/31, (30 + 0)/(31 + 29), (30 + 0 + 31)/(31 + 29 + 31), (0 + 31 + 15)/(29 + 31 + 30). Rows in any order, and
    another woman's months never enter the window."""
    from oncopipe.studies.kinds.tradhor import monthly_measure

    months = pd.DataFrame({"person_id": ["a"] * 4 + ["b"], "month_index": [0, 1, 2, 3, 0],
                           "days_covered": [30, 0, 31, 15, 10], "days_in_month": [31, 29, 31, 30, 31]})
    months["pdc"] = months["days_covered"] / months["days_in_month"]
    shuffled = months.sample(frac=1, random_state=3)
    got = monthly_measure(shuffled, "cma7_sliding_window", 3).sort_index()
    assert got.tolist() == pytest.approx([30 / 31, 30 / 60, 61 / 91, 46 / 90, 10 / 31])
    assert monthly_measure(months, "cma7").equals(months["pdc"])


def test_methods_name_the_measure_and_the_selection_rule(result):
    """The report's methods section (delivery.report.methods_paragraphs) carries the analysis's paragraphs: the
    measure with its reference (AdhereR, version, function) and the selection rule with Nagin's."""
    from oncopipe.delivery.disclosure import control
    from oncopipe.delivery.metadata import StudyInfo
    from oncopipe.delivery.report import methods_paragraphs

    res, _ = result
    paragraphs = methods_paragraphs(control(res), StudyInfo("TRADHOR", "TRADHOR", "CESREES-2024-0412"), {})
    measure = next(p for p in paragraphs if p.startswith("Adherence is AdhereR's CMA7"))
    assert "R package AdhereR 0.8.1, function CMA7" in measure
    rule = next(p for p in paragraphs if p.startswith("The number of groups was chosen by Nagin's criteria"))
    assert "Nagin 2005" in rule and "odds of correct classification >= 5" in rule
    assert "at least 5% of women" in rule and "Kass and Raftery 1995" in rule
    table = res.table("model_selection")
    for column in ("app_ok", "occ_ok", "shares_match", "size_ok", "min_estimated_share", "bic_evidence"):
        assert column in table.frame.columns
    assert table.statistic_columns["min_estimated_share"] == "min_group_n"


def test_sliding_window_measure_runs_the_study():
    inputs, _ = _marts(n=200, seed=4)
    res = get("tradhor_adherence")(inputs, {**PARAMS, "adherence_measure": "cma7_sliding_window"},
                                   study_id="TRADHOR")
    assert "CMA_sliding_window" in res.methods and "3 months ending with each follow-up month" in res.methods
    by_month = res.table("adherence_by_month").frame.set_index("month")
    monthly = inputs["endocrine_adherence_monthly"]
    # Month 0 has a one-month window (= the mart PDC); later months average over three.
    assert by_month.loc[0, "mean_pdc"] == pytest.approx(monthly.loc[monthly.month_index == 0, "pdc"].mean())
    assert by_month.loc[5, "mean_pdc"] != pytest.approx(monthly.loc[monthly.month_index == 5, "pdc"].mean())
