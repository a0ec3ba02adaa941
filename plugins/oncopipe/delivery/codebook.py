"""The codebook of an export (``codebook.csv`` and a report section), and the rounding of CSV numbers.

For every column of every table: a label a reader understands, the unit, the type, its role for disclosure
control (group, count of people, statistic, number at risk), the precision its CSV values are rounded to, and
how masked and missing cells are written. The CSV files are rounded to the precision the codebook states
(Parquet keeps full precision), so a CSV never shows 16-digit floats.

How a masked cell is written is disclosure control's business (:mod:`oncopipe.delivery.disclosure`): in CSV
and Parquet an empty cell with its ``<column>__masked`` flag column ``true``; the codebook reads the flag
suffix from there, lists each flag column, and rounds only the numbers (the flags stay as written).
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass

import pandas as pd

from oncopipe.contracts.results import ResultTable
from oncopipe.delivery.disclosure import MASK_MARKER, MASK_SUFFIX, ControlledResult

CODEBOOK = "codebook.csv"
DEFAULT_DECIMALS = 4
P_VALUE_DIGITS = 3
MISSING_CSV = "empty cell"
_MISSING_TEXT = {"", "<NA>", "nan", "NaN", "None"}
COORDINATES = ("years",)

#: Labels and units of the columns the shipped studies publish; other columns get a label from their name.
LABELS: dict[str, tuple[str, str]] = {
    "site": ("Cancer site", ""), "sex": ("Sex", ""), "stage": ("Stage at diagnosis", ""),
    "age_group": ("Age group at diagnosis", "years"), "deprivation": ("Deprivation quintile (Q1 least deprived)", ""),
    "region": ("Region of residence", ""), "hospital_id": ("Diagnosing hospital (FINESS)", ""),
    "years": ("Time since diagnosis", "years"), "month": ("Month of follow-up (0 = first)", "months"),
    "year": ("Year of follow-up", "years"), "group": ("Group", ""), "term": ("Model term (variable=level)", ""),
    "reference": ("Reference (category of the term, or reference group)", ""), "n": ("People", "people"),
    "events": ("Deaths", "people"), "n_risk": ("Number at risk", "people"),
    "n_at_risk": ("Number at risk", "people"), "n_patients": ("Women", "people"),
    "n_cases": ("Cases", "people"), "n_treated": ("Treated cases", "people"),
    "n_within_30": ("Treated within 30 days", "people"), "n_adherent": ("Women with PDC >= threshold", "people"),
    "surv": ("Survival probability", "proportion"), "net_survival": ("Net survival (Pohar-Perme)", "proportion"),
    "lower": ("Lower bound of the 95% CI", "as the estimate"),
    "upper": ("Upper bound of the 95% CI", "as the estimate"),
    "cif": ("Cumulative incidence", "proportion"), "hazard_ratio": ("Hazard ratio", "ratio"),
    "hr_lower": ("Hazard ratio, lower 95% CI", "ratio"), "hr_upper": ("Hazard ratio, upper 95% CI", "ratio"),
    "excess_hazard_ratio": ("Excess-hazard ratio", "ratio"), "ehr_lower": ("Excess-hazard ratio, lower 95% CI",
                                                                           "ratio"),
    "ehr_upper": ("Excess-hazard ratio, upper 95% CI", "ratio"), "odds_ratio": ("Odds ratio", "ratio"),
    "coef": ("Coefficient (log scale)", ""), "se": ("Standard error", ""), "z": ("Wald z statistic", ""),
    "p_value": ("p-value", ""), "chisq": ("Chi-square statistic", ""), "mean_pdc": ("Mean PDC", "proportion"),
    "observed_mean": ("Observed mean PDC", "proportion"), "fitted_mean": ("Fitted mean PDC", "proportion"),
    "share_adherent": ("Share of women with PDC >= threshold", "proportion"),
    "share_within_30": ("Share treated within 30 days", "proportion"), "median_days": ("Median delay", "days"),
    "q1_days": ("First quartile of delay", "days"), "q3_days": ("Third quartile of delay", "days"),
    "p10_days": ("10th percentile of delay", "days"), "p90_days": ("90th percentile of delay", "days"),
    "median_years": ("Median survival", "years"), "median_lower_years": ("Median survival, lower 95% CI", "years"),
    "median_upper_years": ("Median survival, upper 95% CI", "years"),
    "median_lower_days": ("Median survival, lower 95% CI", "days"),
    "median_upper_days": ("Median survival, upper 95% CI", "days"),
}
_UNIT_SUFFIX = (("_days", "days"), ("_years", "years"), ("_months", "months"), ("_share", "proportion"),
                ("_pct", "percent"), ("_ratio", "ratio"))
_RATIO = re.compile(r"(?:^|_)(?:ratio|hr|ehr|or)(?:_|$)")


@dataclass(frozen=True)
class Entry:
    """One column of the codebook."""

    table: str
    column: str
    label: str
    unit: str
    type: str
    role: str
    precision: str
    masked_as: str
    missing_as: str


def label_and_unit(column: str) -> tuple[str, str]:
    """A reader's label and the unit of a column (known columns from :data:`LABELS`, others from the name)."""
    if column in LABELS:
        return LABELS[column]
    unit = next((u for suffix, u in _UNIT_SUFFIX if column.endswith(suffix)), "")
    words = column.replace("_", " ").strip()
    return (words[:1].upper() + words[1:], "people" if column.startswith("n_") else unit)


def _role(table: ResultTable, column: str) -> str:
    if column in table.group_columns:
        return "group"
    if column == table.at_risk_column:
        return "number at risk (rows below 10, or 1 to 9 below the number before, omitted)"
    if column in table.count_columns:
        return "count of people"
    if column in table.statistic_columns:
        return f"statistic on {table.statistic_columns[column]} people"
    return "other"


def decimals(table: ResultTable, column: str, series: pd.Series) -> int | None:
    """Decimal places of ``column`` in the CSV; None for integers, text, p-values (significant digits) and the
    coordinates disclosure control identifies cells by (group columns, the time ``years``), kept exact so a
    CSV-only export reads back the same cells."""
    if column in table.count_columns or column == table.at_risk_column or column in COORDINATES:
        return None
    if column in table.group_columns:
        return None
    if not pd.api.types.is_float_dtype(series) or column == "p_value" or column.endswith("_p"):
        return None
    if column.endswith("_days"):
        return 1
    if _RATIO.search(column):
        return 3
    return DEFAULT_DECIMALS


def _is_p_value(column: str) -> bool:
    return column == "p_value" or column.endswith("_p")


def _type(table: ResultTable, column: str, series: pd.Series) -> str:
    if column in table.count_columns or column == table.at_risk_column or pd.api.types.is_integer_dtype(series):
        return "integer"
    if pd.api.types.is_bool_dtype(series):
        return "boolean"
    if pd.api.types.is_float_dtype(series):
        return "decimal"
    return "text"


def _maskable(controlled: ControlledResult, name: str, column: str) -> bool:
    return column in controlled.masks[name].columns


def entries(controlled: ControlledResult) -> list[Entry]:
    """The codebook of a controlled result, table by table, column by column."""
    out = []
    for table in controlled.result.tables:
        for column in map(str, table.frame.columns):
            series = table.frame[column]
            label, unit = label_and_unit(column)
            places = decimals(table, column, series)
            kind = _type(table, column, series)
            precision = (f"{P_VALUE_DIGITS} significant digits" if _is_p_value(column) and kind == "decimal"
                         else f"{places} decimals" if places is not None else "whole number" if kind == "integer"
                         else "exact (a coordinate)" if kind == "decimal" else "as written")
            maskable = _maskable(controlled, table.name, column)
            masked = (f"CSV: empty cell with {column}{MASK_SUFFIX} = true; Parquet: null with "
                      f"{column}{MASK_SUFFIX} = true; report: '{MASK_MARKER}'" if maskable else "never masked")
            missing = (f"CSV: {MISSING_CSV} with {column}{MASK_SUFFIX} = false; Parquet: null with "
                       f"{column}{MASK_SUFFIX} = false" if maskable else f"CSV: {MISSING_CSV}; Parquet: null")
            out.append(Entry(table.name, column, label, unit, _type(table, column, series), _role(table, column),
                             precision, masked, missing))
        for column in controlled.masks[table.name].columns:
            out.append(Entry(table.name, f"{column}{MASK_SUFFIX}", f"{label_and_unit(str(column))[0]}: masked",
                             "", "boolean (true / false)", "mask flag", "as written", "never masked",
                             "never missing"))
    return out


def frame(controlled: ControlledResult) -> pd.DataFrame:
    """The codebook as a table (what ``codebook.csv`` holds)."""
    return pd.DataFrame([asdict(e) for e in entries(controlled)], columns=list(Entry.__dataclass_fields__))


def _round_cell(value: object, places: int | None, p_value: bool) -> object:
    if not isinstance(value, str | float | int) or isinstance(value, bool):
        return value
    text = str(value)
    if text in _MISSING_TEXT:
        return ""
    if places is None and not p_value:
        return value
    try:
        number = float(text)
    except ValueError:
        return value  # the mask marker, a label: as disclosure control wrote it
    if math.isnan(number):
        return ""
    if p_value:
        return f"{number:.{P_VALUE_DIGITS}g}"
    return f"{round(number, places):.{places}f}"


def csv_frame(controlled: ControlledResult, name: str) -> pd.DataFrame:
    """The table as written to CSV: disclosure control's CSV frame, numbers rounded as the codebook states,
    missing values as empty cells."""
    table = controlled.result.table(name)
    out = controlled.csv_frame(name)
    for column in map(str, out.columns):
        if column not in table.frame.columns:
            continue
        series = table.frame[column]
        places = decimals(table, column, series)
        p_value = _is_p_value(column) and pd.api.types.is_float_dtype(series)
        out[column] = [_round_cell(v, places, p_value) for v in out[column]]
    return out
