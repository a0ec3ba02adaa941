"""Survival of poor-prognosis cancers: Kaplan-Meier, log-rank, Pohar-Perme net survival, Cox and excess-hazard
models by site. Assembles :mod:`oncopipe.methods.survival`, :mod:`oncopipe.methods.net_survival` and
:mod:`oncopipe.methods.cox`.

Parameters (all optional; types and allowed values in :class:`oncopipe.studies.parameters.SurvivalParameters`):
``conf_type`` (``log-log``), ``years`` ([1, 3, 5]), ``curve_grid_months`` (1), ``min_site_cases_model`` (50:
smaller sites get KM and net survival but no regression model), ``ph_alpha`` (0.05).

What the survival tables publish (invariant 3: no count of 1 to 9 leaves, directly or by subtraction):

- ``km_curves_site``, ``km_curves_site_stage`` (figures): the curve evaluated at the end of every
  ``curve_grid_months`` months (1: monthly, the default, since half of these patients die within months;
  3: quarterly), month = 365.25 / 12 days; ``years`` = months / 12. Columns: the groups, ``years``, ``n_risk``,
  ``surv``, ``lower``, ``upper``. No event counts and no row per event time: a cumulative event count, or an
  at-risk count next to a survival step at every death, gives the deaths between two rows by subtraction.
  ``n_risk`` stays, declared as a count, because it is the curve's ``at_risk_column``: disclosure control
  drops every row with fewer than 10 at risk (the curve stops there) and protects the dropped group in the
  site margin by complementary suppression. It then coarsens the curve (``at_risk_difference``): a row
  whose ``n_risk`` fell by 1 to 9 since the row before it (the group size ``n`` of the median table before
  the first, ``start_count``) is dropped, jointly with the yearly and net-survival rows of the same group,
  since the difference of two numbers at risk is the number who left. The grid has no month-0 row
  (survival 1, everyone at risk: the group size is ``n`` of the median table, and a second copy under another
  name would escape the cross-table check of disclosure control).
- ``km_site``, ``km_site_<factor>``: survival with CI and number at risk at each whole year 1..max(years),
  the at-risk table under the figure; ``n_risk`` is the ``at_risk_column`` (rows below 10 dropped). No
  cumulative deaths (their year-to-year differences are deaths per year). Total deaths per group are in the
  ``median_*`` tables, declared as counts.
- Time is ``years`` as a float in every survival table (curves, yearly tables, net survival), so that the same
  number at risk printed in two tables has the same coordinates and disclosure control treats it as one cell.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import Any

import numpy as np
import pandas as pd

from oncopipe.contracts.results import InputValidationError, NotEnoughData, ResultFigure, ResultTable, StudyResult
from oncopipe.delivery import figures as draw
from oncopipe.methods.cox import REFERENCES as COX_REFERENCES
from oncopipe.methods.cox import ConvergenceError, concordance, cox_zph, design_matrix, fit_cox
from oncopipe.methods.net_survival import (
    EXCESS_BREAKS_YEARS,
    ExpectedPass,
    LifeTableError,
    excess_hazard_regression,
    expected_pass,
    net_survival_table,
)
from oncopipe.methods.net_survival import REFERENCES as NET_REFERENCES
from oncopipe.methods.survival import DAYS_PER_YEAR, km_tables, logrank_table
from oncopipe.methods.survival import REFERENCES as KM_REFERENCES
from oncopipe.studies.cases import prepare_cases, require_columns
from oncopipe.studies.kinds import checked_parameters, register

FACTORS = {"stage": "stage", "sex": "sex", "age_group": "age_group", "deprivation": "deprivation",
           "region": "region"}
REFERENCES = {"stage": "I", "age_group": "50-64", "sex": "female", "deprivation": "Q1"}
BREAKS = EXCESS_BREAKS_YEARS
KM_COLUMNS = ("years", "n_risk", "surv", "lower", "upper")

METHODS = """Observed survival: Kaplan-Meier with Greenwood variance; pointwise 95% CIs on the {conf_type} scale
(R survival conventions); median survival with the Brookmeyer-Crowley interval read on the same bands.
Log-rank (Mantel-Haenszel) tests between groups within each site. Net survival: Pohar-Perme estimator against
the French general-population life table (expected hazard by sex, attained age and calendar date, day by day
of follow-up, product integral as R relsurv), CIs on the log and log-log scales from the Pohar-Perme variance.
Cox proportional hazards per site (Efron ties; stage, age group, sex, deprivation quintile, region), Wald CIs,
global likelihood-ratio, Wald and score tests, Harrell's concordance with its standard error, and R cox.zph score tests
(km time transform) with a flag at p < {ph_alpha}. Excess-hazard ratios from a relative-survival Poisson
model (piecewise-constant baseline, expected deaths from the life table) per site, the same covariates
without region. Curves are evaluated every {grid} month(s) and stop where fewer than 10 people
remain at risk; numbers at risk are given at whole years. Counts below 10 are masked by disclosure control, and
the curves, at-risk and net-survival tables are coarsened: a row is published only where no one or at least 10
people left (died or were censored) since the row before, so each row keeps its true value on coarser steps."""


def _stamp(frame: pd.DataFrame, **cols: Any) -> pd.DataFrame:
    for name, value in reversed(cols.items()):
        frame.insert(0, name, value)
    return frame


def _site_design(part: pd.DataFrame, with_region: bool) -> tuple[pd.DataFrame, dict[str, list[str]], dict[str, str]]:
    """The design matrix, its terms, and each term's reference category (``stage=II`` -> ``stage=I``)."""
    categorical: dict[str, object] = {}
    for col in ("stage", "age_group", "sex", "deprivation") + (("region",) if with_region else ()):
        levels = part[col].value_counts()
        if levels.size < 2:
            continue
        ref = REFERENCES.get(col)
        categorical[col] = ref if ref in levels.index else levels.index[0]
    design, terms = design_matrix(part, categorical=categorical)
    keep = design.columns[(design.sum() > 0).to_numpy()]
    references = {c: f"{var}={categorical[var]}" for var, cs in terms.items() for c in cs if c in keep}
    return design[keep], {t: [c for c in cs if c in keep] for t, cs in terms.items()}, references


def _models(cases: pd.DataFrame, life_table: pd.DataFrame, passes: Mapping[str, ExpectedPass], min_cases: int,
            ph_alpha: float, notes: list[str]) -> dict[str, pd.DataFrame]:
    hr_rows, ehr_rows, zph_rows, model_rows = [], [], [], []
    for site, part in cases.groupby("site", sort=True):
        if len(part) < min_cases:
            notes.append(f"site {site}: fewer than {min_cases} cases, no regression model")
            continue
        design, terms, references = _site_design(part, with_region=True)
        n, events = int(len(part)), int(part["event"].sum())
        try:
            fit = fit_cox(design, part["follow_up_days"], part["event"])
        except ConvergenceError as exc:
            notes.append(f"site {site}: Cox model not estimable ({exc})")
            continue
        summ = fit.summary()
        # A level without deaths drives its coefficient to -infinity (R warns "coefficient may be infinite").
        infinite = (summ["coef"].abs() > 10) | (summ["se"] > 100)
        if infinite.any():
            notes.append(f"site {site}: coefficient(s) {', '.join(summ.loc[infinite, 'term'])} not estimable "
                         "(no deaths in the level); reported as missing")
            summ.loc[infinite, ["coef", "se", "z", "p_value", "hazard_ratio", "hr_lower", "hr_upper"]] = np.nan
        hr_rows.append(_stamp(summ, site=site).assign(reference=summ["term"].map(references), n=n, events=events))
        zph = cox_zph(fit, terms, alpha=ph_alpha)
        zph_rows.append(_stamp(zph, site=site).assign(n=n))
        conc = concordance(part["follow_up_days"].to_numpy(), part["event"].to_numpy(), fit.linear_predictor)
        glob = zph.iloc[-1]
        glob_tests = fit.global_tests().set_index("test")
        model_rows.append({"site": site, "n": n, "events": events, "concordance": conc["concordance"],
                           "concordance_se": conc["std_err"],
                           "lr_chisq": fit.lr_chisq, "lr_df": len(fit.names),
                           "lr_p": float(glob_tests.loc["likelihood_ratio", "p_value"]),
                           "wald_chisq": fit.wald_chisq, "wald_p": float(glob_tests.loc["wald", "p_value"]),
                           "score_chisq": fit.score_chisq, "score_p": float(glob_tests.loc["score", "p_value"]),
                           "ph_global_p": float(glob["p_value"]), "ph_violated": bool(glob["ph_violated"]),
                           "ph_violated_terms": ", ".join(zph.loc[zph["ph_violated"] & (zph["term"] != "GLOBAL"),
                                                                  "term"])})
        if bool(glob["ph_violated"]):
            notes.append(f"site {site}: proportional-hazards assumption rejected (cox.zph global p = "
                         f"{glob['p_value']:.3g}); read the Cox HRs as averages over follow-up")
        edesign, _, references = _site_design(part, with_region=False)
        try:
            ehr = excess_hazard_regression(part["follow_up_days"], part["event"], part["age_exact"],
                                           part["year_exact"], part["sex"], edesign, life_table, breaks_years=BREAKS,
                                           expected=passes[site].expected)
        except (ConvergenceError, np.linalg.LinAlgError) as exc:
            notes.append(f"site {site}: excess-hazard model not estimable ({exc})")
            continue
        infinite = (ehr["coef"].abs() > 10) | (ehr["se"] > 100)
        ehr.loc[infinite, ["coef", "se", "excess_hazard_ratio", "ehr_lower", "ehr_upper", "p_value"]] = np.nan
        ehr_rows.append(_stamp(ehr, site=site).assign(reference=ehr["term"].map(references), n=n, events=events))
    if not hr_rows:
        raise NotEnoughData("?", "no site has enough cases for a regression model")
    excess = (pd.concat(ehr_rows, ignore_index=True) if ehr_rows else pd.DataFrame(columns=[
        "site", "term", "coef", "se", "excess_hazard_ratio", "ehr_lower", "ehr_upper", "p_value", "reference", "n",
        "events"]))
    return {"cox": pd.concat(hr_rows, ignore_index=True), "excess": excess,
            "zph": pd.concat(zph_rows, ignore_index=True), "models": pd.DataFrame(model_rows)}


def _net(cases: pd.DataFrame, life_table: pd.DataFrame, years: list[int]
         ) -> tuple[dict[str, pd.DataFrame], dict[str, ExpectedPass]]:
    """One life-table pass per site (groups = sex) serves net survival by site, by sex, and the excess model."""
    by_site, by_sex, passes = [], [], {}
    for site, part in cases.groupby("site", sort=True):
        ps = expected_pass(part["follow_up_days"], part["event"], part["age_exact"], part["year_exact"], part["sex"],
                           life_table, groups=part["sex"], horizon_years=max(years), breaks_years=BREAKS)
        passes[site] = ps
        by_site.append(_stamp(net_survival_table(ps, list(range(len(ps.labels))), years), site=site))
        for code, sex in enumerate(ps.labels):
            by_sex.append(_stamp(net_survival_table(ps, code, years), site=site, sex=sex))
    # lower/upper are the log-scale limits (relsurv's default); the log-log ones are beside them
    cols = ["std_err", "lower_log", "upper_log"]
    # float years: the same coordinates as the Kaplan-Meier tables, whose n_risk at a mark is the same count
    return ({"site": pd.concat(by_site, ignore_index=True).drop(columns=cols).astype({"years": float}),
             "sex": pd.concat(by_sex, ignore_index=True).drop(columns=cols).astype({"years": float})}, passes)


def _published_km(frame: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """Survival with CI and n at risk only (no event counts), float years, no mark at 0 or after follow-up."""
    out = frame.loc[(frame["years"] > 0) & (frame["n_risk"] > 0), [*by, *KM_COLUMNS]]
    return out.astype({"years": float}).reset_index(drop=True)


@register("poor_prognosis_survival")
def run(inputs: Mapping[str, pd.DataFrame], params: Mapping[str, Any], *, study_id: str) -> StudyResult:
    """Survival tables and figures of the poor-prognosis study (see the module docstring)."""
    p = checked_parameters("poor_prognosis_survival", params, study_id)
    for name in ("poor_prognosis_cases", "french_life_tables"):
        if name not in inputs:
            raise InputValidationError(study_id, f"input {name} is missing")
    conf_type, years, grid_months = p["conf_type"], list(p["years"]), p["curve_grid_months"]
    min_cases, ph_alpha = p["min_site_cases_model"], p["ph_alpha"]
    cases = prepare_cases(inputs["poor_prognosis_cases"], study_id=study_id)
    life_table = inputs["french_life_tables"]
    require_columns(life_table, ("sex", "age", "year"), table="french_life_tables", study_id=study_id)
    unknown_sex = set(cases["sex"]) - set(life_table["sex"].astype(str))
    if unknown_sex:
        raise InputValidationError(study_id, f"sex value(s) {sorted(unknown_sex)} absent from french_life_tables")
    notes: list[str] = []
    marks = list(range(1, max(years) + 1))
    tables: list[ResultTable] = []
    km_stats = {"surv": "n_risk", "lower": "n_risk", "upper": "n_risk"}
    med_stats = {c: "n" for c in ("median_days", "median_lower_days", "median_upper_days", "median_years",
                                  "median_lower_years", "median_upper_years")}
    for label, factor in [("site", None), *FACTORS.items()]:
        by = ["site"] if factor is None else ["site", factor]
        res = km_tables(cases, by, years=marks, curve_step_days=grid_months * DAYS_PER_YEAR / 12,
                        max_years=max(years), conf_type=conf_type)
        suffix = "site" if factor is None else f"site_{label}"
        tables.append(ResultTable(
            f"km_{suffix}", _published_km(res["estimates"], by),
            f"Kaplan-Meier survival with 95% CI and number at risk at each whole year, by {' and '.join(by)}; "
            "rows with fewer than 10 at risk, or where 1 to 9 people left since the row before, are not published.",
            count_columns=("n_risk",), statistic_columns=km_stats, group_columns=tuple(by), at_risk_column="n_risk",
            start_count=(f"median_{suffix}", "n")))
        tables.append(ResultTable(
            f"median_{suffix}", res["medians"], f"Median survival with 95% CI, by {' and '.join(by)}.",
            count_columns=("n", "events"), statistic_columns=med_stats, group_columns=tuple(by)))
        if factor in (None, "stage"):
            tables.append(ResultTable(
                f"km_curves_{suffix}", _published_km(res["curves"], by),
                f"Kaplan-Meier survival with 95% CI at the end of every {grid_months} month(s) (month = 365.25/12 "
                f"days), by {' and '.join(by)}; the curve stops where fewer than 10 remain at risk, and a row is not "
                "published where 1 to 9 people left since the row before (coarser steps).",
                count_columns=("n_risk",), statistic_columns=km_stats, group_columns=tuple(by),
                at_risk_column="n_risk", start_count=(f"median_{suffix}", "n")))
    lr = logrank_table(cases, "site", list(FACTORS))
    tables.append(ResultTable("logrank", lr, "Log-rank tests within each site (k-group chi-square).",
                              count_columns=("n",), statistic_columns={"chisq": "n", "p_value": "n"},
                              group_columns=("site",)))
    try:
        net, passes = _net(cases, life_table, years)
    except LifeTableError as exc:
        raise InputValidationError(study_id, f"french_life_tables: {exc}") from exc
    ns_stats = {c: "n_risk" for c in ("net_survival", "lower", "upper", "lower_loglog", "upper_loglog")}
    tables.append(ResultTable("net_survival_site", net["site"],
                              "Pohar-Perme net survival with 95% CI (log scale: lower, upper; log-log scale: "
                              "lower_loglog, upper_loglog), by site.",
                              count_columns=("n_risk",), statistic_columns=ns_stats, group_columns=("site",),
                              at_risk_column="n_risk", start_count=("median_site", "n")))
    tables.append(ResultTable("net_survival_site_sex", net["sex"],
                              "Pohar-Perme net survival with 95% CI (log and log-log scales), by site and sex.",
                              count_columns=("n_risk",), statistic_columns=ns_stats, group_columns=("site", "sex"),
                              at_risk_column="n_risk", start_count=("median_site_sex", "n")))
    try:
        models = _models(cases, life_table, passes, min_cases, ph_alpha, notes)
    except NotEnoughData as exc:
        raise NotEnoughData(study_id, exc.reason) from exc
    hr_stats = {c: "n" for c in ("coef", "se", "z", "p_value", "hazard_ratio", "hr_lower", "hr_upper")}
    tables.append(ResultTable("cox_hazard_ratios", models["cox"],
                              "Cox hazard ratios (Efron ties) with 95% CI and Wald p-values, per site; "
                              "reference: the term's reference category.",
                              count_columns=("n", "events"), statistic_columns=hr_stats, group_columns=("site",)))
    ehr_stats = {c: "n" for c in ("coef", "se", "excess_hazard_ratio", "ehr_lower", "ehr_upper", "p_value")}
    tables.append(ResultTable("excess_hazard_ratios", models["excess"],
                              "Excess-hazard ratios (relative-survival Poisson model) with 95% CI, per site.",
                              count_columns=("n", "events"), statistic_columns=ehr_stats, group_columns=("site",)))
    tables.append(ResultTable("ph_test", models["zph"],
                              "Proportional-hazards score tests (R cox.zph, km transform) per term and global.",
                              count_columns=("n",), statistic_columns={"chisq": "n", "p_value": "n"},
                              group_columns=("site",)))
    tables.append(ResultTable("cox_models", models["models"],
                              "Cox model per site: concordance with its standard error, global likelihood-ratio, "
                              "Wald and score (log-rank) tests, PH global test.",
                              count_columns=("n", "events"),
                              statistic_columns={c: "n" for c in (
                                  "concordance", "concordance_se", "lr_chisq", "lr_p", "wald_chisq", "wald_p",
                                  "score_chisq", "score_p", "ph_global_p")},
                              group_columns=("site",)))
    figures = [
        ResultFigure("km_curves", f"Overall survival by site (Kaplan-Meier, 95% CI) over {max(years)} years, with "
                     "numbers at risk at each whole year",
                     ("km_curves_site", "km_site", "median_site"), partial(draw.km_curves, years=years)),
        ResultFigure("net_survival", draw.net_survival_caption(years), ("net_survival_site_sex",),
                     partial(draw.net_survival_plot, years=years)),
        ResultFigure("cox_forest", "Hazard ratios by site (Cox, Efron ties; 95% CI; adjusted for stage, age group, "
                     "sex, deprivation and region)", ("cox_hazard_ratios",),
                     partial(draw.forest_plot, table="cox_hazard_ratios")),
    ]
    return StudyResult(
        study_id=study_id, analysis="poor_prognosis_survival",
        parameters=p,
        tables=tables, figures=figures,
        methods=METHODS.format(conf_type=conf_type, ph_alpha=ph_alpha, grid=grid_months),
        notes=notes,
        references={**KM_REFERENCES, **NET_REFERENCES, **COX_REFERENCES},
    )
