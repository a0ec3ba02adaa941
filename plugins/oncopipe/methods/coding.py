"""Treatment (dummy) coding of covariates, by formulaic, with the platform's column names.

The Cox models (:func:`oncopipe.methods.cox.design_matrix`) and the multinomial predictors
(:mod:`oncopipe.methods.predictors`) code a categorical covariate as one 0/1 column per level except its
reference, levels in sorted order, named ``<covariate>=<level>`` (these names reach the exported tables). The
callers choose the levels and the reference; formulaic builds the matrix and says which level each column codes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd


def treatment_coded(
    frame: pd.DataFrame,
    numeric: Sequence[str],
    categorical: Mapping[str, str | None],
    *,
    intercept: bool,
) -> tuple[pd.DataFrame, dict[str, list[str]]]:
    """Numeric columns as they are, each categorical column as treatment-coded dummies.

    Args:
        frame: the data; categorical columns hold strings (the levels).
        numeric: numeric covariates, in the order they take in the design.
        categorical: covariate -> its reference level, in the order they follow the numeric ones; a reference
            of None or absent from the data gives every level its column.
        intercept: keep formulaic's intercept column (named ``intercept``) in front.

    Returns:
        (design, terms): the float design on ``frame``'s index, and each covariate's design columns.
    """
    from formulaic import Formula, model_matrix

    names = [*numeric, *categorical]
    # Positional variable names: a covariate named like ``ph.ecog`` or a level such as ``O'Brien`` never has to
    # be quoted into the formula; levels and references reach it through the evaluation context.
    data = pd.DataFrame({f"v{i}": frame[c] for i, c in enumerate(names)}, index=frame.index)
    levels = {c: sorted(frame[c].unique()) for c in categorical}
    references = {c: ref if ref in levels[c] else None for c, ref in categorical.items()}
    covariate_of: dict[str, str] = {}  # formula term -> covariate
    for i, c in enumerate(names):
        if c not in categorical:
            covariate_of[f"v{i}"] = c
        elif references[c] is None:
            covariate_of[f"C(v{i}, levels=levels[{c!r}], spans_intercept=False)"] = c
        else:
            covariate_of[f"C(v{i}, contr.treatment(references[{c!r}]), levels=levels[{c!r}])"] = c
    formula = Formula(" + ".join(["1", *covariate_of]), _ordering="none")
    matrix = model_matrix(formula, data, context={"levels": levels, "references": references},
                          na_action="ignore", output="pandas")
    spec = matrix.model_spec
    contrasts = {factor.expr: state for factor, state in spec.factor_contrasts.items()}
    columns: list[str] = []
    terms: dict[str, list[str]] = {}
    for term in spec.term_indices:
        if str(term) == "1":
            columns.append("intercept")
            continue
        name = covariate_of[str(term)]
        if name in categorical:
            state = contrasts[str(term)]
            coded = state.contrasts.get_coding_column_names(state.levels, reduced_rank=references[name] is not None)
            terms[name] = [f"{name}={level}" for level in coded]
        else:
            terms[name] = [name]
        columns.extend(terms[name])
    design = pd.DataFrame(matrix.to_numpy(dtype=float), columns=columns, index=frame.index)
    if not intercept:
        design = design.drop(columns="intercept")
    return design, {c: terms[c] for c in names if terms.get(c)}
