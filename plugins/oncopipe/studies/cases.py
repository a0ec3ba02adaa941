"""The poor-prognosis case table as the survival analyses need it: checked, with derived covariates.

Checks (each failure names the study and the reason): required columns present; at least 10 cases;
no missing site, stage, sex, age, diagnosis date, follow-up or event; follow-up >= 0; event 0/1; at least
one death in every site analysed. ``deprivation_quintile`` and ``region_code`` may be null (the mart contract
says "null unknown"): they become the level ``unknown``.

Derived columns: ``age_group`` (<50, 50-64, 65-74, 75+), ``deprivation`` (``Q1``..``Q5``/``unknown``),
``region`` (code or ``unknown``), ``age_exact`` (years from 1 July of the birth year to diagnosis; age at
diagnosis + 0.5 when the birth year is missing) and ``year_exact`` (decimal calendar year of diagnosis), the
last two for the life-table lookup of net survival.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from oncopipe.contracts.marts import NOT_NULL_FOR_KINDS
from oncopipe.contracts.results import InputValidationError, NotEnoughData
from oncopipe.methods.survival import age_group

MIN_CASES = 10
#: Columns a case must have, not null (the marts gate refuses a null in them: contracts.marts.NOT_NULL_FOR_KINDS).
SURVIVAL_COLUMNS = NOT_NULL_FOR_KINDS["poor_prognosis_survival"]["poor_prognosis_cases"]
OPTIONAL_COLUMNS = ("deprivation_quintile", "region_code", "birth_year", "hospital_id")


def require_columns(frame: pd.DataFrame, columns: Sequence[str], *, table: str, study_id: str) -> None:
    """Raise InputValidationError naming the table and the missing columns."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise InputValidationError(study_id, f"table {table} lacks column(s) {', '.join(missing)}")


def prepare_cases(cases: pd.DataFrame, *, study_id: str, table: str = "poor_prognosis_cases",
                  required: Sequence[str] = SURVIVAL_COLUMNS) -> pd.DataFrame:
    """Check the case table and add the derived columns (see the module docstring)."""
    require_columns(cases, required, table=table, study_id=study_id)
    if len(cases) == 0:
        raise NotEnoughData(study_id, f"table {table} has no cases")
    if len(cases) < MIN_CASES:
        raise NotEnoughData(study_id, f"table {table} has fewer than {MIN_CASES} cases")
    for col in required:
        n_missing = int(cases[col].isna().sum())
        if n_missing:
            raise InputValidationError(study_id, f"table {table}: {n_missing} case(s) with missing {col}")
    out = cases.copy()
    fu = pd.to_numeric(out["follow_up_days"], errors="coerce")
    if fu.isna().any() or (fu < 0).any():
        raise InputValidationError(study_id, f"table {table}: follow_up_days must be a number >= 0")
    ev = pd.to_numeric(out["event"], errors="coerce")
    if not ev.isin([0, 1]).all():
        raise InputValidationError(study_id, f"table {table}: event must be 0 or 1")
    out["follow_up_days"] = fu.astype(float)
    out["event"] = ev.astype(int)
    out["site"] = out["site"].astype(str)
    out["stage"] = out["stage"].astype(str)
    out["sex"] = out["sex"].astype(str)
    out["age_at_diagnosis"] = pd.to_numeric(out["age_at_diagnosis"]).astype(float)
    out["age_group"] = age_group(out["age_at_diagnosis"])
    dep = out["deprivation_quintile"] if "deprivation_quintile" in out else pd.Series(pd.NA, index=out.index)
    dep = pd.to_numeric(dep, errors="coerce")
    out["deprivation"] = np.where(dep.isna(), "unknown", "Q" + dep.fillna(0).astype(int).astype(str))
    region = out["region_code"] if "region_code" in out else pd.Series(pd.NA, index=out.index)
    out["region"] = region.astype("string").fillna("unknown").astype(str)
    diag = pd.to_datetime(out["diagnosis_date"])
    if "birth_year" in out and out["birth_year"].notna().any():
        mid_birth = pd.to_datetime(out["birth_year"].astype("Int64").astype(str) + "-07-01", errors="coerce")
        exact = (diag - mid_birth).dt.days / 365.25
        out["age_exact"] = exact.where(exact.notna(), out["age_at_diagnosis"] + 0.5).astype(float)
    else:
        out["age_exact"] = out["age_at_diagnosis"] + 0.5
    out["year_exact"] = diag.dt.year + (diag.dt.day_of_year - 0.5) / 365.25
    no_death = [s for s, n in out.groupby("site")["event"].sum().items() if n == 0]
    if no_death:
        raise NotEnoughData(study_id, f"no death observed in site(s) {', '.join(map(str, no_death))}: "
                                      "survival cannot be compared or modelled")
    return out
