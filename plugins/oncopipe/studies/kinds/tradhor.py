"""TRADHOR: adherence trajectories to adjuvant hormone therapy in women with breast cancer.

Inputs (published marts): ``breast_cancer_endocrine_cohort`` (one row per woman) and
``endocrine_adherence_monthly`` (one row per woman and follow-up month, PDC by the project's rule).
The analysis assembles the scientific modules: group-based trajectory modelling of monthly PDC
(:mod:`oncopipe.methods.trajectories`), predictors of the trajectory group (:mod:`oncopipe.methods.predictors`),
adherence per year and month, and the cumulative incidence of discontinuation with death as a competing
risk (:mod:`oncopipe.methods.competing_risks`).
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import Any

import numpy as np
import pandas as pd

from oncopipe.contracts.marts import NOT_NULL_FOR_KINDS
from oncopipe.contracts.results import InputValidationError, NotEnoughData, ResultFigure, ResultTable, StudyResult
from oncopipe.delivery import figures as draw
from oncopipe.methods.competing_risks import aalen_johansen
from oncopipe.methods.predictors import MissingCovariates, ModelNotEstimable, multinomial_odds_ratios
from oncopipe.methods.trajectories import SelectionRules, group_summary, panel_from_long, select_gbtm
from oncopipe.studies.kinds import checked_parameters, register
from oncopipe.studies.parameters import TradhorParameters

COHORT = "breast_cancer_endocrine_cohort"
MONTHLY = "endocrine_adherence_monthly"
MIN_PEOPLE = 10
DAYS_PER_MONTH = 365.25 / 12
Z95 = 1.959963984540054

COHORT_COLUMNS = ("person_id", "index_date", "first_molecule", "age_at_index", "region_code",
                  "deprivation_quintile", "follow_up_end_date", "follow_up_end_reason")
MONTHLY_COLUMNS = ("person_id", "month_index", "month_start", "days_in_month", "days_covered", "pdc",
                   "is_discontinued")
#: The defaults of every parameter (the schema's, :class:`oncopipe.studies.parameters.TradhorParameters`).
DEFAULTS: dict[str, Any] = TradhorParameters().model_dump()


def _params(params: Mapping[str, Any], study_id: str) -> dict[str, Any]:
    return checked_parameters("tradhor_adherence", params, study_id)


def monthly_measure(months: pd.DataFrame, measure: str, window_months: int = 3) -> pd.Series:
    """The adherence value of each mart month under ``measure`` (``oncopipe.studies.parameters.ADHERENCE_MEASURES``).

    ``cma7`` is the mart's ``pdc``. ``cma7_sliding_window``: covered days over days in the months
    ``k - window_months + 1 .. k`` of the same woman (CMA7 is additive over adjacent windows: the covered days
    of the whole window over its length), from her first month while fewer are followed.
    """
    if measure == "cma7":
        return months["pdc"]
    order = months.sort_values(["person_id", "month_index"], kind="stable")
    by = order.groupby("person_id", sort=False)
    covered = by["days_covered"].cumsum()
    days = by["days_in_month"].cumsum()
    covered_before = covered.groupby(order["person_id"], sort=False).shift(window_months, fill_value=0)
    days_before = days.groupby(order["person_id"], sort=False).shift(window_months, fill_value=0)
    return ((covered - covered_before) / (days - days_before)).reindex(months.index)


def _check_columns(frame: pd.DataFrame, name: str, columns: tuple[str, ...], study_id: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise InputValidationError(study_id, f"input {name} lacks column(s) {', '.join(missing)}")


def _how_many(n: int) -> str:
    return str(n) if n >= MIN_PEOPLE else "fewer than 10"


@register("tradhor_adherence")
def run(inputs: Mapping[str, pd.DataFrame], params: Mapping[str, Any], *, study_id: str) -> StudyResult:
    """Adherence trajectories, their predictors, adherence over time and discontinuation (see module doc).

    Params: :class:`oncopipe.studies.parameters.TradhorParameters` (types, defaults and allowed values), among
    them ``adherence_measure`` (one of ``ADHERENCE_MEASURES``: ``"cma7"``, the mart's monthly PDC, or
    ``"cma7_sliding_window"`` over ``sliding_window_months``) and ``min_group_share`` (the smallest trajectory
    group an adequate model may have, within its sampling error).

    Raises:
        InputValidationError: a missing input or column, unknown parameters, missing covariates.
        NotEnoughData: empty cohort, fewer than 10 women, no discontinuation, a model that cannot be fitted
            (the predictors model alone not estimable: a note, and no predictors table).
    """
    p = _params(params, study_id)
    for name in (COHORT, MONTHLY):
        if name not in inputs:
            raise InputValidationError(study_id, f"input {name} is missing (got {', '.join(inputs) or 'none'})")
    cohort, monthly = inputs[COHORT], inputs[MONTHLY]
    _check_columns(cohort, COHORT, COHORT_COLUMNS, study_id)
    _check_columns(monthly, MONTHLY, MONTHLY_COLUMNS, study_id)
    if cohort.empty:
        raise NotEnoughData(study_id, "the breast cancer endocrine cohort is empty")
    if cohort["person_id"].nunique() < MIN_PEOPLE:
        raise NotEnoughData(study_id, "the breast cancer endocrine cohort has fewer than 10 women")
    if cohort["person_id"].duplicated().any():
        raise InputValidationError(study_id, f"{COHORT}: person_id is not unique")

    covariates = list(NOT_NULL_FOR_KINDS["tradhor_adherence"][COHORT])
    missing = {c: int(cohort[c].isna().sum()) for c in covariates if cohort[c].isna().any()}
    notes: list[str] = []
    if missing and not p["drop_missing_covariates"]:
        detail = ", ".join(f"{c} missing on {n} row(s)" for c, n in missing.items())
        raise InputValidationError(study_id, f"{COHORT}: {detail}; set drop_missing_covariates to analyse "
                                             "complete cases")

    complete = int(cohort[covariates].notna().all(axis=1).sum())
    if missing and complete < MIN_PEOPLE:
        raise NotEnoughData(study_id, f"fewer than 10 women of {COHORT} have every covariate "
                                      f"({', '.join(missing)} missing) for the predictors of trajectory group")

    months = monthly[monthly["person_id"].isin(cohort["person_id"]) & (monthly["month_index"] < p["max_months"])]
    months = months.assign(pdc=monthly_measure(months, p["adherence_measure"], p["sliding_window_months"]))
    # .unique(): isin over the ~10M monthly ids themselves costs 4 s at 100,000 people (pandas' Arrow strings).
    without = int((~cohort["person_id"].isin(months["person_id"].unique())).sum())
    if without:
        raise InputValidationError(study_id, f"{_how_many(without)} woman/women of {COHORT} have no row in {MONTHLY}")
    try:
        panel = panel_from_long(months, n_months=int(p["max_months"]))
    except ValueError as exc:
        raise InputValidationError(study_id, f"{MONTHLY}: {exc}") from exc
    max_groups = min(int(p["max_groups"]), panel.n_people // MIN_PEOPLE)
    if max_groups < int(p["min_groups"]):
        raise NotEnoughData(study_id, f"too few women for {p['min_groups']} trajectory groups of 10 or more")
    degree = p["degree"]
    if isinstance(degree, Mapping):
        degree = {int(k): [int(d) for d in v] for k, v in degree.items()}
    selection = select_gbtm(panel, min_groups=int(p["min_groups"]), max_groups=max_groups, degree=degree,
                            rules=SelectionRules(min_share=float(p["min_group_share"])), seed=int(p["seed"]),
                            n_starts=int(p["n_starts"]), common_sigma=bool(p["common_sigma"]))
    fit = selection.chosen
    if not selection.chosen_adequate:
        notes.append("No candidate model met every adequacy rule (APP >= 0.7, OCC >= 5, estimated and assigned "
                     f"shares within 25%, every group >= {float(p['min_group_share']):.0%} within its sampling "
                     "error); the model with the smallest BIC is reported.")
    groups = pd.DataFrame({"person_id": fit.person_ids, "group": fit.assignment + 1})
    sizes = np.bincount(fit.assignment, minlength=fit.k)
    if (sizes == 0).any():
        raise NotEnoughData(study_id, "a trajectory group of the chosen model has no woman assigned")

    tables = [
        _groups_table(fit),
        _trajectory_means_table(months, groups, fit),
        _selection_table(selection),
        *_predictors_table(cohort, groups, p, study_id, notes),
        _adherence_by_year_table(months, float(p["pdc_threshold"])),
        _adherence_by_month_table(months, float(p["pdc_threshold"])),
        _cif_table(cohort, months, int(p["max_months"]), study_id),
    ]
    months, threshold = int(p["max_months"]), float(p["pdc_threshold"])
    figures = [
        ResultFigure("trajectories", f"Adherence trajectory groups over {months} months: fitted mean PDC (line) and "
                     "observed mean PDC (band, 95% CI)", ("trajectory_means", "trajectory_groups"),
                     partial(draw_trajectories, max_months=months)),
        ResultFigure("adherence_over_time", f"Mean monthly PDC (95% CI) and share of women with PDC >= "
                     f"{threshold:g}", ("adherence_by_month",),
                     partial(draw_adherence_over_time, threshold=threshold, max_months=months)),
        ResultFigure("discontinuation_cif", "Cumulative incidence of discontinuation (gap of "
                     f">= {p['discontinuation_gap_days']} days), death as a competing risk, with numbers at risk",
                     ("discontinuation_cif",), partial(draw_cif, max_months=months)),
    ]
    return StudyResult(study_id=study_id, analysis="tradhor_adherence", parameters=p, tables=tables,
                       figures=figures, methods=_methods(p, selection), notes=notes)


def _groups_table(fit) -> ResultTable:
    g = group_summary(fit)
    g["group"] = g["group"].astype(str)
    total = pd.DataFrame([{"group": "all", "n_patients": int(g["n_patients"].sum()), "share": 1.0,
                           "estimated_probability": 1.0, "app": np.nan, "occ": np.nan,
                           "mean_fitted_pdc": float((fit.pi[:, None] * fit.expected_value()).sum(0).mean())}])
    frame = pd.concat([g, total], ignore_index=True)
    stats = {c: "n_patients" for c in ("share", "estimated_probability", "app", "occ", "mean_fitted_pdc")}
    return ResultTable("trajectory_groups", frame,
                       "Trajectory groups (1 = most adherent): women assigned (maximum posterior probability), "
                       "share, estimated probability, average posterior probability (APP), odds of correct "
                       "classification (OCC), mean fitted PDC over the follow-up.",
                       count_columns=("n_patients",), statistic_columns=stats, group_columns=("group",),
                       total_value="all")


def _trajectory_means_table(months: pd.DataFrame, groups: pd.DataFrame, fit) -> ResultTable:
    data = months[["person_id", "month_index", "pdc"]].merge(groups, on="person_id")
    agg = data.groupby(["group", "month_index"])["pdc"].agg(["size", "mean", "std"]).reset_index()
    half = Z95 * agg["std"].fillna(0) / np.sqrt(agg["size"])
    fitted = fit.expected_value()
    frame = pd.DataFrame({
        "group": agg["group"].astype(str),
        "month": agg["month_index"].astype(int),
        "n_patients": agg["size"].astype(int),
        "observed_mean": agg["mean"],
        "lower": (agg["mean"] - half).clip(0, 1),
        "upper": (agg["mean"] + half).clip(0, 1),
        "fitted_mean": fitted[agg["group"].to_numpy() - 1, agg["month_index"].to_numpy()],
    })
    stats = {c: "n_patients" for c in ("observed_mean", "lower", "upper", "fitted_mean")}
    return ResultTable("trajectory_means", frame,
                       "Mean monthly PDC per trajectory group and month with its 95% CI (normal approximation) "
                       "among the women observed that month, and the fitted mean of the censored-normal model.",
                       count_columns=("n_patients",), statistic_columns=stats, group_columns=("group", "month"),
                       at_risk_column="n_patients")


def _selection_table(selection) -> ResultTable:
    frame = selection.table.copy()
    # APP and OCC are averages over a group's women: with a group under 10 they describe it, masked with it
    shares = ("min_group_share", "min_estimated_share", "min_share_upper", "max_share_gap", "min_app", "min_occ")
    return ResultTable("model_selection", frame,
                       "Candidate trajectory models and Nagin's criteria: log-likelihood, BIC (N = women), AIC, "
                       "relative entropy, smallest group (share assigned, women, estimated probability and its 95% "
                       "upper bound), largest relative gap between estimated and assigned shares, smallest APP and "
                       "OCC, each criterion (app_ok, occ_ok, shares_match, size_ok), adequacy, BIC above the best "
                       "adequate model (2 ln Bayes factor), chosen model.",
                       count_columns=("min_group_n",), statistic_columns={c: "min_group_n" for c in shares},
                       group_columns=("k",))


def _predictors_table(cohort: pd.DataFrame, groups: pd.DataFrame, p: Mapping[str, Any], study_id: str,
                      notes: list[str]) -> list[ResultTable]:
    """The predictors table, or none with a note when the multinomial model is not estimable (e.g. separation in
    a small cohort): the trajectories are the study's primary result and are still exported."""
    data = cohort.merge(groups, on="person_id")
    try:
        result = multinomial_odds_ratios(
            data, "group", 1, continuous={"age_at_index": float(p["age_scale"])},
            categorical=["deprivation_quintile", "region_code", "first_molecule"],
            reference_levels={"deprivation_quintile": "1"},
            missing="drop" if p["drop_missing_covariates"] else "error")
    except MissingCovariates as exc:
        raise InputValidationError(study_id, f"{COHORT}: {exc}") from exc
    except ModelNotEstimable as exc:
        notes.append(f"Predictors of trajectory group not estimable ({exc}): no predictors table.")
        return []
    if result.n_dropped:
        notes.append(f"Predictors: {_how_many(result.n_dropped)} women with a missing covariate were excluded "
                     "(complete-case analysis).")
    if not result.converged:
        notes.append("Predictors: the multinomial model did not converge; odds ratios are unreliable.")
    frame = result.table.copy()
    frame["group"] = frame["group"].astype(str)
    frame["reference_group"] = frame["reference_group"].astype(str)
    stats = {c: "n_group" for c in ("odds_ratio", "lower", "upper", "p_value")}
    refs = ", ".join(f"{k} = {v}" for k, v in result.reference_levels.items())
    return [ResultTable("predictors", frame,
                        "Multinomial logistic regression of the trajectory group (reference: group 1, the most "
                        f"adherent): odds ratios with 95% Wald CIs and p-values. Reference levels: {refs}.",
                        count_columns=("n_group", "n_reference"), statistic_columns=stats,
                        group_columns=("group", "term"))]


def _adherence_by_year_table(months: pd.DataFrame, threshold: float) -> ResultTable:
    m = months.assign(year=months["month_index"] // 12 + 1)
    per = m.groupby(["person_id", "year"])[["days_covered", "days_in_month"]].sum().reset_index()
    per["pdc"] = per["days_covered"] / per["days_in_month"]
    per["adherent"] = per["pdc"] >= threshold
    agg = per.groupby("year").agg(n_patients=("pdc", "size"), n_adherent=("adherent", "sum"),
                                  mean_pdc=("pdc", "mean"), sd=("pdc", "std")).reset_index()
    agg["share_adherent"] = agg["n_adherent"] / agg["n_patients"]
    half = Z95 * agg["sd"].fillna(0) / np.sqrt(agg["n_patients"])
    agg["lower"] = (agg["mean_pdc"] - half).clip(0, 1)
    agg["upper"] = (agg["mean_pdc"] + half).clip(0, 1)
    frame = agg[["year", "n_patients", "n_adherent", "share_adherent", "mean_pdc", "lower", "upper"]]
    stats = {"share_adherent": "n_patients", "mean_pdc": "n_patients", "lower": "n_patients", "upper": "n_patients"}
    return ResultTable("adherence_by_year", frame,
                       f"PDC per follow-up year (women followed at least one day of the year, PDC over the days "
                       f"followed): women, women with PDC >= {threshold:g}, their share, mean PDC (95% CI).",
                       count_columns=("n_patients", "n_adherent"), statistic_columns=stats, group_columns=("year",),
                       at_risk_column="n_patients")


def _adherence_by_month_table(months: pd.DataFrame, threshold: float) -> ResultTable:
    agg = months.assign(adherent=months["pdc"] >= threshold).groupby("month_index").agg(
        n_patients=("pdc", "size"), mean_pdc=("pdc", "mean"), sd=("pdc", "std"),
        share_adherent=("adherent", "mean")).reset_index()
    half = Z95 * agg["sd"].fillna(0) / np.sqrt(agg["n_patients"])
    frame = pd.DataFrame({"month": agg["month_index"].astype(int), "n_patients": agg["n_patients"].astype(int),
                          "mean_pdc": agg["mean_pdc"], "lower": (agg["mean_pdc"] - half).clip(0, 1),
                          "upper": (agg["mean_pdc"] + half).clip(0, 1), "share_adherent": agg["share_adherent"]})
    stats = {c: "n_patients" for c in ("mean_pdc", "lower", "upper", "share_adherent")}
    return ResultTable("adherence_by_month", frame,
                       f"Mean monthly PDC (95% CI) and share of women with monthly PDC >= {threshold:g}, per "
                       "follow-up month, among the women followed that month.",
                       count_columns=("n_patients",), statistic_columns=stats, group_columns=("month",),
                       at_risk_column="n_patients")


def discontinuation_times(cohort: pd.DataFrame, months: pd.DataFrame) -> pd.DataFrame:
    """Time to discontinuation (days) and status from the marts: 1 discontinued, 2 died first, 0 censored.

    The mart flags every month starting on/after the discontinuation date, so the event is dated at the
    start of the first flagged month (month resolution); a discontinuation dated in the last followed month
    has no flagged month and is not seen.
    """
    first = months.loc[months["is_discontinued"].astype(bool)].groupby("person_id")["month_start"].min()
    index = pd.to_datetime(cohort["index_date"])
    end = pd.to_datetime(cohort["follow_up_end_date"])
    disc = pd.Series(pd.to_datetime(first.reindex(cohort["person_id"]).to_numpy()), index=cohort.index)
    discontinued = disc.notna().to_numpy()
    died = (cohort["follow_up_end_reason"] == "death").to_numpy()
    time = np.where(discontinued, (disc - index).dt.days, (end - index).dt.days)
    return pd.DataFrame({"person_id": cohort["person_id"].to_numpy(), "time_days": time.astype(float),
                         "status": np.where(discontinued, 1, np.where(died, 2, 0))})


def _cif_table(cohort: pd.DataFrame, months: pd.DataFrame, max_months: int, study_id: str) -> ResultTable:
    times = discontinuation_times(cohort, months)
    if not (times["status"] == 1).any():
        raise NotEnoughData(study_id, "no discontinuation observed: its cumulative incidence cannot be estimated")
    grid = np.arange(max_months + 1)
    cif = aalen_johansen(times["time_days"], times["status"], event=1, times=grid * DAYS_PER_MONTH)
    frame = pd.DataFrame({"month": grid, "n_at_risk": cif["n_at_risk"], "cif": cif["cif"],
                          "lower": cif["lower"], "upper": cif["upper"]})
    return ResultTable("discontinuation_cif", frame,
                       "Cumulative incidence of discontinuation (Aalen-Johansen, death as a competing risk) with "
                       "95% CI (delta-method variance, log-log scale), by month since the index date; the curve "
                       "stops where fewer than 10 remain at risk.",
                       count_columns=("n_at_risk",),
                       statistic_columns={c: "n_at_risk" for c in ("cif", "lower", "upper")},
                       group_columns=("month",), at_risk_column="n_at_risk")


def draw_trajectories(tables: Mapping[str, pd.DataFrame], *, max_months: int = 60):
    """Fitted mean PDC (line) and observed mean (band, 95% CI) per trajectory group, from ``trajectory_means``;
    the legend gives each group's size and share from ``trajectory_groups``."""
    data = tables["trajectory_means"]
    sizes = tables.get("trajectory_groups", pd.DataFrame(columns=["group", "n_patients", "share"]))
    sizes = sizes.set_index(sizes["group"].astype(str))
    fig = draw.new_figure(7.5, 4.8)
    ax = fig.add_subplot(1, 1, 1)
    for i, (group, g) in enumerate(data.groupby("group", sort=True)):
        # Months that disclosure control left out (fewer than 10 women, or fewer than 10 who left since the
        # month before) are gaps, not straight lines across them; a small marker shows an isolated month.
        g = g.sort_values("month").set_index("month")
        g = g.reindex(range(int(g.index.min()), int(g.index.max()) + 1)).rename_axis("month").reset_index()
        colour = draw.COLOURS[i % len(draw.COLOURS)]
        n = sizes["n_patients"].get(str(group), np.nan)
        share = sizes["share"].get(str(group), np.nan)
        pct = "" if pd.isna(share) or pd.isna(n) else f", {100 * float(share):.0f}%"
        ax.plot(g["month"], g["fitted_mean"], color=colour, gid=f"fitted:{group}", marker=".", markersize=3,
                label=f"group {group} ({draw.size_label(n)}{pct})")
        ax.fill_between(g["month"], g["lower"], g["upper"], color=colour, alpha=0.2, linewidth=0)
    ax.set(xlabel="Months since the first dispensing", ylabel="Monthly proportion of days covered (PDC)",
           ylim=(-0.02, 1.02), xlim=(0, max_months))
    ax.set_xticks(range(0, max_months + 1, 12))
    ax.grid(alpha=0.3)
    ax.legend(loc="lower left", frameon=False, title="Trajectory group (women assigned)")
    fig.tight_layout()
    return fig


def draw_adherence_over_time(tables: Mapping[str, pd.DataFrame], *, threshold: float = 0.8, max_months: int = 60):
    """Mean monthly PDC with its CI and share of adherent women, from ``adherence_by_month`` only."""
    data = tables["adherence_by_month"].sort_values("month")
    fig = draw.new_figure(7.5, 4.5)
    ax = fig.add_subplot(1, 1, 1)
    ax.plot(data["month"], data["mean_pdc"], label="mean PDC (95% CI)", gid="series:mean_pdc")
    ax.fill_between(data["month"], data["lower"], data["upper"], alpha=0.2, linewidth=0)
    ax.plot(data["month"], data["share_adherent"], linestyle="--", label=f"share of women with PDC >= {threshold:g}",
            gid="series:share_adherent")
    ax.set(xlabel="Months since the first dispensing", ylabel="Proportion", ylim=(-0.02, 1.02), xlim=(0, max_months))
    ax.set_xticks(range(0, max_months + 1, 12))
    ax.grid(alpha=0.3)
    ax.legend(loc="lower left", frameon=False)
    fig.tight_layout()
    return fig


def draw_cif(tables: Mapping[str, pd.DataFrame], *, max_months: int = 60):
    """Cumulative incidence of discontinuation from (0, 0) with its CI and the numbers at risk every 12 months,
    from ``discontinuation_cif`` only."""
    data = tables["discontinuation_cif"].sort_values("month")
    curve = data.dropna(subset=["cif"])
    if curve.empty or curve["month"].iloc[0] != 0:
        curve = pd.concat([pd.DataFrame({"month": [0], "cif": [0.0], "lower": [0.0], "upper": [0.0]}), curve],
                          ignore_index=True)
    fig = draw.new_figure(7.5, 5.0)
    grid = fig.add_gridspec(2, 1, height_ratios=[4, 0.7], hspace=0.55)
    ax = fig.add_subplot(grid[0])
    tab = fig.add_subplot(grid[1], sharex=ax)
    ax.step(curve["month"], curve["cif"], where="post", label="discontinuation (death as a competing risk)",
            gid="curve:discontinuation")
    ax.fill_between(curve["month"], curve["lower"], curve["upper"], step="post", alpha=0.2, linewidth=0)
    ax.set(xlabel="Months since the first dispensing", ylabel="Cumulative incidence (95% CI)", ylim=(0, 1),
           xlim=(-1, max_months + 1))
    marks = list(range(0, max_months + 1, 12))
    ax.set_xticks(marks)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", frameon=False)
    at_risk = data.set_index("month")["n_at_risk"]
    draw.at_risk_table(tab, [("women", "black", [draw.at_risk_text(at_risk.get(m)) for m in marks])], marks)
    tab.tick_params(bottom=False, labelbottom=False)
    tab.spines["bottom"].set_visible(False)
    return fig


def _methods(p: Mapping[str, Any], selection) -> str:
    rules = selection.rules
    if p["adherence_measure"] == "cma7":
        measure = ("Adherence is AdhereR's CMA7 (Dima and Dediu 2017, R package AdhereR 0.8.1, function CMA7: days "
                   "supplied over days observed, carry-over within and into the window) of each follow-up month, the "
                   "monthly proportion of days covered (PDC) of the endocrine_adherence_monthly mart")
    else:
        measure = (f"Adherence is AdhereR's CMA7 over sliding windows (Dima and Dediu 2017, R package AdhereR 0.8.1, "
                   f"functions CMA_sliding_window and CMA7) of the {p['sliding_window_months']} months ending with "
                   "each follow-up month (calendar months, step one month), from the endocrine_adherence_monthly mart")
    return (
        f"{measure} (supply "
        "carry-over across molecules of the class, hospital days covered with home supply paused, month k = "
        "[index + k months, index + k+1 months - 1 day], truncated at death, end of data or 5 years). "
        "Group-based trajectory models (censored normal at 0 and 1: a month at 0 or 1 counts as the latent value "
        "below 0 or above 1, polynomial in time of degree "
        f"{p['degree']}, {'one sigma' if p['common_sigma'] else 'one sigma per group'}) with {p['min_groups']} to "
        f"{selection.table['k'].max()} groups were fitted by EM from {p['n_starts']} k-means starts over the "
        "observed months (the best likelihood kept); women contribute the months they are observed (missing at "
        "random; follow-up ends at death, 5 years or the last month whose dispensings are complete).\n\n"
        "The number of groups was chosen by Nagin's criteria together (Nagin 2005, Group-Based Modeling of "
        "Development, ch. 4-5; Nagin and Odgers 2010): a model is adequate when every group has an average "
        f"posterior probability >= {rules.app_min}, odds of correct classification >= {rules.occ_min:g}, an "
        f"estimated probability within {rules.share_tolerance:.0%} of the share of women assigned to it, and at "
        f"least {rules.min_share:.0%} of women within the 95% sampling error of its estimated probability; among "
        "the adequate models the one with the fewest groups whose BIC (N = women; Jones, Nagin and Roeder 2001) "
        f"is within {rules.bic_evidence:g} of the smallest (2 ln Bayes factor > {rules.bic_evidence:g}, 'very "
        f"strong' evidence for a larger model: Kass and Raftery 1995) was chosen ({selection.chosen_k} groups). "
        "Women were assigned to the group of maximum posterior probability; "
        "predictors of the group (age, deprivation quintile, region, first molecule) were estimated by "
        "multinomial logistic regression with the most adherent group as reference. Yearly PDC is the PDC over "
        f"the followed days of each year; adherence is PDC >= {p['pdc_threshold']}. Discontinuation is a gap of "
        f">= {p['discontinuation_gap_days']} days without supply (mart flag, dated at the month resolution); its "
        "cumulative incidence was estimated by Aalen-Johansen with death as a competing risk, 95% CI by the "
        "delta method on the log(-log) scale."
    )
