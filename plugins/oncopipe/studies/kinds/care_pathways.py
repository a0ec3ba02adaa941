"""Care-pathway delays of poor-prognosis cancers: delay summaries by site and hospital, the case-mix-adjusted
hospital comparison (fast-track detection) and the landmark analysis of delay and survival.
Assembles :mod:`oncopipe.methods.delays`.

Parameters (all optional): ``landmark_days`` (90), ``min_treated_per_hospital`` (10), ``alpha`` (0.05),
``fast_track_margin_days`` (10).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from oncopipe.contracts.marts import NOT_NULL_FOR_KINDS
from oncopipe.contracts.results import InputValidationError, NotEnoughData, ResultFigure, ResultTable, StudyResult
from oncopipe.delivery import figures as draw
from oncopipe.methods.cox import ConvergenceError
from oncopipe.methods.delays import delay_summary, hospital_comparison, landmark_delay_survival
from oncopipe.studies.cases import prepare_cases, require_columns
from oncopipe.studies.kinds import register

DELAY_COLUMNS = ("case_id", "site", "hospital_id", "delay_days", "stage", "sex", "age_at_diagnosis",
                 "deprivation_quintile")

UNKNOWN_HOSPITAL = "unknown"

METHODS = """Delay = days from diagnosis to the first treatment (surgery, chemotherapy or radiotherapy), treated
cases only; quantiles are type-7 sample quantiles. Cases whose diagnosing hospital is not (yet) in the hospital
claims are shown under hospital "unknown" and left out of the hospital comparison. Hospitals are compared by
OLS of log(1 + delay) adjusted for site, stage, age group, sex and deprivation quintile (robust HC1 errors),
each against the case-weighted average hospital; Holm-adjusted p < {alpha} with a ratio below 1 flags a
significantly faster hospital, and a fast-track candidate when, in addition, its adjusted delay is more than
{margin:g} days below the median hospital's.
Delay and survival: landmark analysis at {landmark} days (cases alive at the landmark, grouped by treatment
before it), Cox model (Efron) from the landmark adjusted for the same case mix; no immortal time.
Counts below 10 are masked by disclosure control."""


@register("care_pathway_delays")
def run(inputs: Mapping[str, pd.DataFrame], params: Mapping[str, Any], *, study_id: str) -> StudyResult:
    """Delay tables and figures of the care-pathway study (see the module docstring)."""
    for name in ("care_pathway_delays", "poor_prognosis_cases"):
        if name not in inputs:
            raise InputValidationError(study_id, f"input {name} is missing")
    landmark = int(params.get("landmark_days", 90))
    min_treated = int(params.get("min_treated_per_hospital", 10))
    alpha = float(params.get("alpha", 0.05))
    margin = float(params.get("fast_track_margin_days", 10.0))
    delays = inputs["care_pathway_delays"]
    require_columns(delays, DELAY_COLUMNS, table="care_pathway_delays", study_id=study_id)
    if len(delays) == 0:
        raise NotEnoughData(study_id, "table care_pathway_delays has no cases")
    if len(delays) < 10:
        raise NotEnoughData(study_id, "table care_pathway_delays has fewer than 10 cases")
    for col in NOT_NULL_FOR_KINDS["care_pathway_delays"]["care_pathway_delays"]:
        n_missing = int(delays[col].isna().sum())
        if n_missing:
            raise InputValidationError(study_id, f"table care_pathway_delays: {n_missing} case(s) with missing {col}")
    delay = pd.to_numeric(delays["delay_days"], errors="coerce")
    if (delay < 0).any():
        raise InputValidationError(study_id, "table care_pathway_delays: negative delay_days")
    if delay.notna().sum() < 10:
        raise NotEnoughData(study_id, "fewer than 10 treated cases")
    # A case with no diagnosing stay yet (registry case diagnosed days before the extraction, its stay not yet in
    # the PMSI flux) keeps its own category: in the tables (so every margin still adds up and disclosure control
    # sees it), not in the hospital comparison.
    hospital = delays["hospital_id"].astype("string").fillna(UNKNOWN_HOSPITAL)
    delays = delays.assign(delay_days=delay.astype(float), hospital_id=hospital)
    cases = prepare_cases(inputs["poor_prognosis_cases"], study_id=study_id)
    tables: list[ResultTable] = []
    q_stats = {c: "n_treated" for c in ("median_days", "q1_days", "q3_days", "p10_days", "p90_days",
                                       "share_within_30")}
    counts = ("n_cases", "n_treated", "n_within_30")
    tables.append(ResultTable("delay_by_site", delay_summary(delays, ("site",)),
                              "Delay from diagnosis to first treatment by site.",
                              count_columns=counts, statistic_columns=q_stats, group_columns=("site",)))
    tables.append(ResultTable("delay_by_site_hospital", delay_summary(delays, ("site", "hospital_id")),
                              "Delay from diagnosis to first treatment by site and diagnosing hospital.",
                              count_columns=counts, statistic_columns=q_stats, group_columns=("site", "hospital_id")))
    tables.append(ResultTable("delay_by_hospital", delay_summary(delays, ("hospital_id",)),
                              "Delay from diagnosis to first treatment by diagnosing hospital, all sites.",
                              count_columns=counts, statistic_columns=q_stats, group_columns=("hospital_id",)))
    try:
        known = delays[delays["hospital_id"] != UNKNOWN_HOSPITAL]
        comp = hospital_comparison(known, min_treated=min_treated, alpha=alpha, fast_track_margin_days=margin)
    except ValueError as exc:
        raise NotEnoughData(study_id, str(exc)) from exc
    comp_stats = {c: "n_treated" for c in comp.columns if c not in ("hospital_id", "n_treated")}
    tables.append(ResultTable("hospital_comparison", comp,
                              "Case-mix-adjusted delay ratio and difference of each hospital against the average "
                              "hospital, Holm-adjusted; fast hospitals flagged.",
                              count_columns=("n_treated",), statistic_columns=comp_stats,
                              group_columns=("hospital_id",)))
    merged = cases.drop(columns=[c for c in ("delay_days",) if c in cases]).merge(
        delays[["case_id", "delay_days"]], on="case_id", how="left")
    try:
        lm, lm_counts = landmark_delay_survival(merged, landmark_days=landmark)
    except (ConvergenceError, ValueError) as exc:
        raise NotEnoughData(study_id, f"landmark analysis not estimable: {exc}") from exc
    tables.append(ResultTable("delay_survival_landmark", lm,
                              f"Hazard of death from a {landmark}-day landmark by treatment before the landmark "
                              "(Cox, adjusted for site, stage, age, sex, deprivation).",
                              count_columns=("n", "events"),
                              statistic_columns={"hazard_ratio": "n", "hr_lower": "n", "hr_upper": "n",
                                                 "p_value": "n"},
                              group_columns=("group",)))
    # Counts stay in the controlled tables: notes leave the platform unmasked.
    del lm_counts
    notes = [f"landmark {landmark} days: only cases alive and followed at the landmark are analysed."]
    faster = comp.loc[comp["fast_track_candidate"], "hospital_id"].tolist()
    if faster:
        notes.append("some hospitals are significantly faster after case-mix adjustment (fast-track pathways "
                     "likely): see hospital_comparison.")
    figures = [ResultFigure("delay_by_hospital", "Delay from diagnosis to first treatment by hospital",
                            ("delay_by_hospital", "hospital_comparison"), draw.delay_boxplots)]
    return StudyResult(study_id=study_id, analysis="care_pathway_delays",
                       parameters={"landmark_days": landmark, "min_treated_per_hospital": min_treated,
                                   "alpha": alpha, "fast_track_margin_days": margin},
                       tables=tables, figures=figures,
                       methods=METHODS.format(alpha=alpha, landmark=landmark, margin=margin),
                       notes=notes)
