"""Predictors of a categorical outcome (trajectory group): multinomial logistic regression.

``log P(group = g) / P(group = reference) = alpha_g + x' beta_g`` fitted by maximum likelihood
(statsmodels ``MNLogit``, Newton). Continuous covariates enter linearly, each optionally divided by a
scale (an OR "per 10 years" of age is ``scale = 10``). Categorical covariates are dummy-coded
(:func:`oncopipe.methods.coding.treatment_coded`, by formulaic) against a reference level (given and present,
or else the most frequent level; ties broken by the sorted level).
Levels are compared as strings (integer-valued floats such as 1.0 are written 1).
Odds ratios are ``exp(beta)`` with Wald 95% CIs ``exp(beta +- 1.96 se)`` and Wald p-values.

Missing covariates: by default a :class:`MissingCovariates` error names each column and its number of
missing rows; ``missing="drop"`` drops those rows instead (complete-case analysis) and reports how many.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from oncopipe.methods.coding import treatment_coded

Z95 = 1.959963984540054


def _level(value: object) -> str:
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    return str(value)


class MissingCovariates(ValueError):
    """Rows lack covariates; ``counts`` maps column -> number of missing rows."""

    def __init__(self, counts: Mapping[str, int]) -> None:
        self.counts = dict(counts)
        detail = ", ".join(f"{c}: {n} row(s)" for c, n in self.counts.items())
        super().__init__(f"missing covariates ({detail})")


class ModelNotEstimable(ValueError):
    """The multinomial model cannot be estimated (singular design, separation, too few people)."""


@dataclass
class MultinomialResult:
    """Odds ratios and what the model was fitted on."""

    table: pd.DataFrame
    n_used: int
    n_dropped: int
    reference_levels: dict[str, object]
    converged: bool


def multinomial_odds_ratios(
    frame: pd.DataFrame,
    outcome: str,
    reference: object,
    *,
    continuous: Mapping[str, float] | Sequence[str] = (),
    categorical: Sequence[str] = (),
    reference_levels: Mapping[str, object] | None = None,
    missing: Literal["error", "drop"] = "error",
) -> MultinomialResult:
    """Fit the multinomial logit of ``outcome`` on the covariates and return odds ratios.

    Args:
        frame: one row per person.
        outcome: column of the categorical outcome.
        reference: outcome level used as the reference category.
        continuous: continuous covariates, or ``{column: scale}`` (OR per ``scale`` units).
        categorical: categorical covariates (dummy-coded).
        reference_levels: reference level per categorical covariate (default, or when that level is
            absent from the data: the most frequent level).
        missing: ``"error"`` (default) or ``"drop"`` rows with a missing covariate.

    Returns:
        :class:`MultinomialResult` whose ``table`` has one row per non-reference group and term:
        ``group``, ``reference_group``, ``covariate``, ``term``, ``odds_ratio``, ``lower``, ``upper``,
        ``p_value``, ``n_group`` (people in the group), ``n_reference``.

    Raises:
        MissingCovariates: missing covariates and ``missing="error"``.
        ModelNotEstimable: fewer than two outcome levels, reference absent, singular or separated model.
    """
    import statsmodels.api as sm

    scales = dict(continuous) if isinstance(continuous, Mapping) else {c: 1.0 for c in continuous}
    columns = [*scales, *categorical]
    absent = [c for c in [outcome, *columns] if c not in frame.columns]
    if absent:
        raise ValueError(f"multinomial model: missing column(s) {', '.join(absent)}")
    counts = {c: int(frame[c].isna().sum()) for c in [outcome, *columns] if frame[c].isna().any()}
    if counts and missing == "error":
        raise MissingCovariates(counts)
    data = frame.dropna(subset=[outcome, *columns]) if counts else frame
    n_dropped = len(frame) - len(data)
    levels = sorted(pd.unique(data[outcome]), key=lambda v: (v != reference, v))
    if len(levels) < 2 or levels[0] != reference:
        raise ModelNotEstimable(f"outcome {outcome!r} needs the reference {reference!r} and another level")
    y = pd.Categorical(data[outcome], categories=levels).codes

    chosen_refs: dict[str, object] = {}
    for col in categorical:
        freq = data[col].map(_level).value_counts()
        given = (reference_levels or {}).get(col)
        chosen_refs[col] = str(given) if given is not None and str(given) in freq.index else (
            sorted(freq.index, key=lambda v: (-freq[v], v))[0])
    coded, terms = treatment_coded(data[list(scales)].assign(**{c: data[c].map(_level) for c in categorical}),
                                   list(scales), chosen_refs, intercept=True)
    term_covariate = {"intercept": "intercept"}
    for col, scale in scales.items():
        if scale != 1:
            coded[col] = coded[col] / scale
            coded = coded.rename(columns={col: f"{col} (per {scale:g})"})
            terms[col] = [f"{col} (per {scale:g})"]
    term_covariate.update({term: col for col, names in terms.items() for term in names})
    X = coded.reset_index(drop=True)
    if np.linalg.matrix_rank(X.to_numpy()) < X.shape[1]:
        raise ModelNotEstimable("covariates are collinear (a level present in no one, or a constant column)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit = sm.MNLogit(y, X).fit(method="newton", maxiter=200, disp=False)
    except (np.linalg.LinAlgError, ValueError) as exc:
        raise ModelNotEstimable(f"multinomial model not estimable: {exc}") from exc
    params, bse, pvalues = np.asarray(fit.params), np.asarray(fit.bse), np.asarray(fit.pvalues)
    if not np.all(np.isfinite(bse)):
        raise ModelNotEstimable("multinomial model not estimable: infinite standard errors (separation)")
    group_n = pd.Series(y).value_counts()
    rows = []
    for g in range(1, len(levels)):
        for i, term in enumerate(X.columns):
            if term == "intercept":
                continue
            b, se = params[i, g - 1], bse[i, g - 1]
            with np.errstate(over="ignore", under="ignore"):
                odds_ratio, lower, upper = np.exp(b), np.exp(b - Z95 * se), np.exp(b + Z95 * se)
            if not all(np.isfinite(v) and v > 0 for v in (odds_ratio, lower, upper)):
                # Quasi-complete separation (e.g. a level whose women are all in one group): the likelihood has
                # no finite maximum in that direction, Newton drifts to a huge coefficient and its interval
                # overflows to [0, inf]. Such an odds ratio is not an estimate.
                raise ModelNotEstimable(
                    f"multinomial model not estimable: the odds ratio of {term} (group {levels[g]} vs "
                    f"{reference}) is unbounded (quasi-complete separation; estimate {b:.3g} on the log scale, "
                    f"standard error {se:.3g})")
            rows.append({"group": levels[g], "reference_group": reference, "covariate": term_covariate[term],
                         "term": term, "odds_ratio": odds_ratio, "lower": lower, "upper": upper,
                         "p_value": pvalues[i, g - 1],
                         "n_group": int(group_n.get(g, 0)), "n_reference": int(group_n.get(0, 0))})
    converged = bool(fit.mle_retvals.get("converged", True))
    return MultinomialResult(pd.DataFrame(rows), len(data), n_dropped, chosen_refs, converged)
