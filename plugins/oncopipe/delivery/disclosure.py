"""Statistical disclosure control: what may leave the platform, and what must be masked first.

Every result table goes through :func:`control` before it is written anywhere a researcher can read it.
The rules (the SNDS small-cell rule, invariant 3 of DESIGN.md), worded for the default threshold of 10: a
deployment may raise it (``ONCOPIPE_DISCLOSURE_THRESHOLD``), never lower it; "1 to 9" then reads "1 to threshold - 1":

1. **Refused outright** (:class:`DisclosureViolation`, nothing is exported): a column named like a patient
   identifier (``person_id``, ``BEN_NIR_PSA``, ``NIR_ANO_17``, ``case_id``, ...); a date of birth or death
   (a date-typed column named for birth or death); a column whose values look like identifiers (more than
   90 % distinct, id-shaped); a patient-level table (every count is 1); counts that are negative or not
   whole numbers; metadata naming columns the table does not have.
2. **Primary suppression**: a count (``count_columns``) from 1 to 9 is masked (rule ``small_count``); a
   statistic (``statistic_columns``) computed on fewer than 10 people is masked (``small_denominator``).
3. **Curves**: a row whose ``at_risk_column`` is below 10 is dropped (``at_risk_below_10``). Its cells stay
   unknown to the reader, so they take part in complementary suppression like masked cells. Then the curve
   is coarsened (``at_risk_difference``, as ACRO's survival tables): the difference of two numbers at risk
   shown one after the other is the number of people who left (died or were censored) in between, so a row
   whose number at risk fell by 1 to 9 since the previous row shown is dropped, until every drop between
   rows shown is 0 or at least 10. The previous row of the first one is the group size at time 0
   (``start_count``). The rows of every table with the same group columns and at-risk column (the monthly
   curve, the yearly at-risk table, net survival) are one sequence per group, since a reader puts them side
   by side. A row shown keeps its true value at its time: the curve stays a step function, on coarser steps.
   Masking more cells later only merges intervals (two drops of 0 or >= 10 add up to 0 or >= 10).
4. **Across runs**: a count published by an earlier run of the same study (the history kept in the audit
   store) that now differs from it by 1 to 9 is masked (``cross_run_difference``), since the difference of
   the two exports would be the count of a small group (the people who entered or left that cell).
   The comparison is against *every* value published for that cell by an earlier run, not only the last.
5. **Complementary suppression** (``complementary``): the reader knows every visible cell, that a margin
   (``group_columns`` + ``total_value``) is the sum of its cells, that the total of a dimension computed
   from one table equals the matching total printed in another table, and that a count printed at the
   same coordinates elsewhere is the same count. These form a linear system over the masked cells. A
   masked cell is *recoverable* when that system determines it (its unit vector lies in the row space of
   the constraint matrix); a line (one margin equation) whose masked cells are all on the same side and
   sum to 1..9 reveals a small group even if no single cell is recoverable. The reader also knows that
   counts are never negative: a masked cell whose smallest and largest values over every non-negative
   solution meet (:func:`pinned`, linear programming; e.g. the cells under a visible margin of 0, and what
   they then give back) is recoverable too. Either way one more cell of that line is masked (the smallest
   non-zero one, cells before margins; never a cell under a visible 0, which hides nothing) and the check
   repeats until no masked cell is recoverable and no line reveals a small sum.
6. **Statistics next to masked counts** (``statistic_on_masked_row``): once counts are settled, every
   statistic in a row with a masked count is masked, since a percentage and its denominator give back the
   numerator.

How cells are matched across tables: a count cell is identified by its column name, its non-dimension
label columns (e.g. ``time``) and its coordinates over every dimension used anywhere in the result, a
dimension the table does not have counting as its total. Declare every dimension that partitions people
as a group column, or margins across tables are not seen.

Masked cells are ``NaN`` in the controlled frames handed to figure ``draw`` functions. In exported files,
CSV and Parquet alike, a masked cell is empty (a null) and a companion column ``<column>__masked`` says
``true`` (the same flag for every rule, so a reader cannot tell the small cells from their complements); an
empty cell whose flag is ``false`` is missing or not reached. A numeric CSV column therefore holds only
numbers. The HTML and Markdown reports show :data:`MASK_MARKER` (``masked``) in the cell.
"""

from __future__ import annotations

import json
import math
import re
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
from scipy.linalg import qr
from scipy.optimize import linprog

from oncopipe.contracts.results import ResultTable, StudyResult
from oncopipe.contracts.settings import SNDS_DISCLOSURE_FLOOR, get_settings

MASK_MARKER = "masked"
MASK_SUFFIX = "__masked"

SMALL_COUNT = "small_count"
SMALL_DENOMINATOR = "small_denominator"
AT_RISK_BELOW_10 = "at_risk_below_10"
AT_RISK_DIFFERENCE = "at_risk_difference"
#: Rules that drop a whole curve row rather than mask cells.
DROPPED_ROW_RULES = frozenset({AT_RISK_BELOW_10, AT_RISK_DIFFERENCE})
CROSS_RUN_DIFFERENCE = "cross_run_difference"
COMPLEMENTARY = "complementary"
STATISTIC_ON_MASKED_ROW = "statistic_on_masked_row"

#: What each rule masks; ``{below}`` is threshold - 1 and ``{threshold}`` the threshold (:func:`rule_text`).
RULE_TEXT = {
    SMALL_COUNT: "count of 1 to {below} people",
    SMALL_DENOMINATOR: "statistic computed on fewer than {threshold} people",
    AT_RISK_BELOW_10: "curve row with fewer than {threshold} people at risk (row dropped)",
    AT_RISK_DIFFERENCE: "curve row where 1 to {below} people left since the previous row shown (row dropped)",
    CROSS_RUN_DIFFERENCE: "differs by 1 to {below} from a value published by an earlier run",
    COMPLEMENTARY: "masked so that another masked cell cannot be recomputed from totals",
    STATISTIC_ON_MASKED_ROW: "statistic in a row whose counts are masked",
}



def disclosure_threshold(threshold: int | None = None) -> int:
    """The smallest count of people that may be shown: ``threshold``, else the deployment's setting.

    Raises:
        ValueError: ``threshold`` is below the SNDS small-cell rule's 10 (the setting refuses it too).
    """
    if threshold is None:
        return get_settings().disclosure_threshold
    if threshold < SNDS_DISCLOSURE_FLOOR:
        raise ValueError(f"disclosure threshold {threshold} is below the SNDS small-cell rule: no count of 1 to "
                         f"{SNDS_DISCLOSURE_FLOOR - 1} people may leave the platform")
    return threshold


def rule_text(rule: str, threshold: int) -> str:
    """What ``rule`` masks, worded for ``threshold`` (the rule's name for a rule of another module)."""
    return RULE_TEXT.get(rule, rule).format(below=threshold - 1, threshold=threshold)


_IDENTIFIER_NAME = re.compile(
    r"^(?:"
    r"\w*nir\w*|num_enq|ben_idt_ano|ben_rng_gem|rsa_num|nir_ano_17|"
    r"(?:person|patient|case|subject|individual|beneficiary|ben|pat|pers)_?(?:id|key|num|nir|code|ident\w*)|"
    r"id_?(?:person|patient|case|subject|individual|beneficiary|ben|pat|pers)\w*"
    r")$",
    re.IGNORECASE,
)
_BIRTH_DEATH_NAME = re.compile(
    r"(?:^|_)(?:dob|dod|birth\w*|naissance|nai|death\w*|deces|dcd|died|deceased)(?:_|$)", re.IGNORECASE
)
_DATE_NAME = re.compile(r"(?:^|_)(?:date|dte|dt|day|jour)(?:_|$)|^(?:dob|dod)$", re.IGNORECASE)
_ID_SUFFIX = re.compile(r"(?:^|_)(?:id|ident|key|num|nir)$", re.IGNORECASE)
_ID_SHAPED = re.compile(r"^(?=(?:\D*\d){4})[A-Za-z0-9_\-]{6,}$")
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}")
_PERIOD = re.compile(r"^\d{4}(?:-\d{2}){0,2}(?:T[\d:.+-]*)?$")
# Codes of places, hospitals and code lists are distinct per row in tables by hospital or by code, and are
# not about people: the identifier-value heuristic leaves these columns alone (their names are still checked).
_NOT_PEOPLE = re.compile(r"finess|eta_num|hospital|hopital|etab|establishment|provider|dep(?:artmen)?t|commune|"
                         r"region|site|atc|cip|ccam|icd|cim|code|month|year|period|time|age|quintile|group|term",
                         re.IGNORECASE)
_TOTAL = "\x00TOTAL"
_TIME_NAME = re.compile(r"^(?:times?|months?|years?|weeks?|days?|period|date|\w+_months?|\w+_years?|\w+_days?)$",
                        re.IGNORECASE)
_COUNT_NAME = re.compile(r"^(?:n|nb|count|num)(?:_|$)|(?:^|_)(?:events?|deaths?|deceased|cases|patients|persons|"
                         r"people|women|men|treated|censored|risk|at_risk|exposed|count)$", re.IGNORECASE)
_NOT_A_COUNT = re.compile(r"(?:^|_)(?:params?|parameters|groups?|iter\w*|starts|terms?|knots|df|degree|k|"
                          r"months?|days?|years?|weeks?)(?:_|$)", re.IGNORECASE)


class DisclosureViolation(ValueError):
    """A table cannot be made safe; nothing of the result may leave.

    Attributes:
        table: result table name.
        row: 0-based row position in the table as the analysis returned it (``None`` for a whole column).
        column: the offending column (``None`` for a whole table).
        rule: the rule that refused it.
    """

    def __init__(self, table: str, row: int | None, column: str | None, rule: str, detail: str) -> None:
        self.table, self.row, self.column, self.rule, self.detail = table, row, column, rule, detail
        where = f"table {table!r}"
        if row is not None:
            where += f", row {row}"
        if column is not None:
            where += f", column {column!r}"
        super().__init__(f"disclosure violation in {where}: rule {rule}: {detail}")


@dataclass(frozen=True)
class MaskedCell:
    """One masked cell (or dropped row) and why; never holds the hidden value."""

    table: str
    row: int
    labels: tuple[tuple[str, str], ...]
    column: str
    rule: str
    detail: str

    def to_record(self) -> dict[str, Any]:
        return {"table": self.table, "row": self.row, "labels": dict(self.labels), "column": self.column,
                "rule": self.rule, "detail": self.detail}


@dataclass
class DisclosureReport:
    """What disclosure control did to a result: masked cells, dropped rows, counts by rule."""

    masked: list[MaskedCell] = field(default_factory=list)

    def counts_by_rule(self) -> dict[str, int]:
        counts: dict[str, int] = defaultdict(int)
        for cell in self.masked:
            counts[cell.rule] += 1
        return dict(sorted(counts.items()))

    def dropped_rows(self) -> list[MaskedCell]:
        return [c for c in self.masked if c.rule in DROPPED_ROW_RULES]

    def to_records(self) -> list[dict[str, Any]]:
        return [c.to_record() for c in self.masked]


@dataclass
class ControlledResult:
    """A disclosure-controlled result.

    Attributes:
        result: the study result whose tables hold only what may be shown (masked cells ``NaN``, rows
            dropped); figures still refer to tables by name and must be drawn from these frames.
        masks: table name -> boolean frame (same index as the controlled frame) over the count and
            statistic columns; ``True`` marks a masked cell.
        report: every masked cell and dropped row, with the rule.
        published_cells: cell key -> value of every visible count, for the cross-run history.
        threshold: the disclosure threshold the result was controlled with.
    """

    result: StudyResult
    masks: dict[str, pd.DataFrame]
    report: DisclosureReport
    published_cells: dict[str, float]
    threshold: int = SNDS_DISCLOSURE_FLOOR

    def csv_frame(self, name: str) -> pd.DataFrame:
        """The table as written to CSV: masked cells empty with ``<column>__masked`` = ``true`` (as the
        Parquet null and flag), counts as integers; every other cell of a numeric column is a number or empty."""
        table = self.result.table(name)
        out = table.frame.copy()
        mask = self.masks[name]
        for col in mask.columns:
            values = out[col]
            if col in table.count_columns or col == table.at_risk_column:
                text = values.map(lambda v: "" if _is_missing(v) else str(int(round(float(v)))))
            else:
                text = values.map(lambda v: "" if _is_missing(v) else _norm(v))
            out[col] = text.where(~mask[col], "")
        for col in mask.columns:
            out[col + MASK_SUFFIX] = np.where(mask[col].to_numpy(dtype=bool), "true", "false")
        return out

    def parquet_frame(self, name: str) -> pd.DataFrame:
        """The table as written to Parquet: masked cells null, plus a ``<column>__masked`` boolean column."""
        table = self.result.table(name)
        out = table.frame.copy()
        mask = self.masks[name]
        for col in mask.columns:
            if col in table.count_columns or col == table.at_risk_column:
                out[col] = pd.array([pd.NA if _is_missing(v) else int(round(float(v))) for v in out[col]],
                                    dtype="Int64")
            out[col + MASK_SUFFIX] = mask[col].astype(bool).to_numpy()
        return out


# --- checks that refuse a table ----------------------------------------------------------------------------


def _is_missing(value: Any) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def _refuse_unsafe_columns(table: ResultTable) -> None:
    frame = table.frame
    declared = set(table.count_columns) | set(table.statistic_columns) | set(table.statistic_columns.values())
    declared |= set(table.group_columns) | ({table.at_risk_column} if table.at_risk_column else set())
    for col in sorted(declared - set(map(str, frame.columns))):
        raise DisclosureViolation(table.name, None, col, "metadata",
                                  "the table metadata names a column the table does not have")
    if table.total_value is not None and not table.group_columns:
        raise DisclosureViolation(table.name, None, None, "metadata", "total_value is set but no group_columns")
    for col in map(str, frame.columns):
        if _IDENTIFIER_NAME.match(col):
            raise DisclosureViolation(table.name, None, col, "patient_identifier",
                                      "column is named like a patient identifier; identifiers never leave")
        series = frame[col]
        if _BIRTH_DEATH_NAME.search(col) and col not in table.count_columns and _looks_like_dates(col, series):
            raise DisclosureViolation(table.name, None, col, "date_of_birth_or_death",
                                      "dates of birth or death never leave, even aggregated to a day")
        if col in declared - set(table.group_columns):
            continue
        _refuse_identifier_values(table.name, col, series)


def _looks_like_dates(name: str, series: pd.Series) -> bool:
    if pd.api.types.is_datetime64_any_dtype(series) or _DATE_NAME.search(name):
        return True
    sample = list(series.dropna().head(50))
    if not sample:
        return False
    return all(hasattr(v, "isoformat") or (isinstance(v, str) and bool(_ISO_DATE.match(v))) for v in sample)


def _refuse_identifier_values(table: str, col: str, series: pd.Series) -> None:
    values = series.dropna()
    if len(values) < 20 or values.nunique() <= 0.9 * len(values) or _NOT_PEOPLE.search(col):
        return
    if pd.api.types.is_float_dtype(values):
        return
    if pd.api.types.is_integer_dtype(values):
        looks_like_id = bool(_ID_SUFFIX.search(col))
    else:
        text = values.astype(str)
        looks_like_id = text.map(lambda s: bool(_ID_SHAPED.match(s)) and not _PERIOD.match(s)).mean() > 0.9
    if looks_like_id:
        row = int(np.flatnonzero(series.notna().to_numpy())[0])
        raise DisclosureViolation(table, row, col, "identifier_like_values",
                                  f"{values.nunique()} distinct id-shaped values in {len(values)} rows: "
                                  "the table looks patient level")


def _count_values(table: ResultTable, col: str) -> np.ndarray:
    raw = table.frame[col]
    values = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=float, copy=True)
    present = ~raw.isna().to_numpy()
    with np.errstate(invalid="ignore"):
        bad = present & (np.isnan(values) | (values < 0) | (np.abs(values - np.round(values)) > 1e-9))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DisclosureViolation(table.name, i, col, "count_not_whole",
                                  f"a count must be a whole number >= 0, got {raw.iloc[i]!r}")
    return values


def _declare_counts(table: ResultTable, notes: list[str]) -> ResultTable:
    """Control as counts the undeclared columns that are named and shaped like counts of people."""
    declared = set(table.count_columns) | set(table.statistic_columns) | set(table.group_columns)
    declared |= {table.at_risk_column} if table.at_risk_column else set()
    found = []
    for col in map(str, table.frame.columns):
        if col in declared or not _COUNT_NAME.search(col) or _NOT_A_COUNT.search(col):
            continue
        series = table.frame[col]
        if pd.api.types.is_bool_dtype(series) or not pd.api.types.is_numeric_dtype(series):
            continue
        values = series.dropna().to_numpy(dtype=float)
        if len(values) and np.all(values >= 0) and np.all(values == np.round(values)):
            found.append(col)
    if not found:
        return table
    notes.append(f"Table {table.name}: column(s) {', '.join(found)} were not declared as counts but are named "
                 "and shaped like counts of people; they were controlled as counts.")
    return replace(table, count_columns=(*table.count_columns, *found))


def _refuse_patient_level(table: ResultTable, counts: Mapping[str, np.ndarray], threshold: int) -> None:
    if len(table.frame) < threshold or not counts:
        return
    if all(np.all(v[~np.isnan(v)] == 1) and np.sum(~np.isnan(v)) == len(v) for v in counts.values()):
        raise DisclosureViolation(table.name, 0, next(iter(counts)), "patient_level",
                                  "every row counts exactly one person: the table is patient level")


# --- the cell model ----------------------------------------------------------------------------------------


def _norm(value: Any) -> str:
    if _is_missing(value):
        return "<NA>"
    if isinstance(value, float | np.floating):
        return repr(float(value))
    if isinstance(value, np.integer):
        return str(int(value))
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


@dataclass
class _Cell:
    table: int
    row: int
    column: str
    value: float
    key: tuple


@dataclass
class _Line:
    """One margin equation: total - sum(parts) = 0 (variable ids)."""

    total: int
    parts: list[int]
    dimension: str


class _Model:
    """Count cells of the whole result, linked across tables, and the margin equations between them."""

    def __init__(self, tables: list[ResultTable], counts: list[dict[str, np.ndarray]],
                 unknown: set[tuple[int, int, str]] | None = None, *, threshold: int = SNDS_DISCLOSURE_FLOOR) -> None:
        self.threshold = threshold
        # unknown: verification of a published export, whose masked cells have no value. Cells are then
        # linked by key alone (the reader assumes a count printed at the same coordinates is the same count).
        self.verifying = unknown is not None
        unknown = unknown or set()
        dims: list[str] = []
        for t in tables:
            dims += [g for g in t.group_columns if g not in dims]
        self.dims = dims
        self.cells: list[_Cell] = []
        for ti, t in enumerate(tables):
            frame = t.frame
            measured = set(t.count_columns) | set(t.statistic_columns) | {t.at_risk_column} | set(t.group_columns)
            labels = [str(c) for c in frame.columns if c not in measured]
            total = _norm(t.total_value) if t.total_value is not None else None
            coord_columns = [
                [_TOTAL] * len(frame) if g not in t.group_columns
                else [_TOTAL if v == total else v for v in map(_norm, frame[g].tolist())]
                for g in dims]
            row_coords = list(zip(*coord_columns, strict=True)) if dims else [()] * len(frame)
            label_columns = [[(c, v) for v in map(_norm, frame[c].tolist())] for c in labels]
            row_labels = list(zip(*label_columns, strict=True)) if labels else [()] * len(frame)
            for col, values in counts[ti].items():
                for r in range(len(frame)):
                    if math.isnan(values[r]) and (ti, r, col) not in unknown:
                        continue
                    self.cells.append(_Cell(ti, r, col, float(values[r]), (col, row_labels[r], row_coords[r])))
        self._link()
        self._equations()

    def _link(self) -> None:
        """Variables: cells with the same key and value, or the same coordinates, labels and value in two tables
        (whatever the column name; linking two counts that are only equal by chance merely masks a little more)."""
        parent = list(range(len(self.cells)))

        def find(i: int) -> int:
            while parent[i] != i:
                parent[i] = parent[parent[i]]
                i = parent[i]
            return i

        by_key: dict[tuple, int] = {}
        by_coords: dict[tuple, list[int]] = defaultdict(list)
        for i, c in enumerate(self.cells):
            k = c.key if self.verifying else (c.key, c.value)
            if k in by_key:
                parent[find(i)] = find(by_key[k])
            else:
                by_key[k] = i
            by_coords[(c.key[1], c.key[2], c.value)].append(i)
        for members in [] if self.verifying else by_coords.values():
            for i in members[1:]:
                if self.cells[i].table != self.cells[members[0]].table:
                    parent[find(i)] = find(members[0])
        roots: dict[int, int] = {}
        self.var_of: list[int] = []
        for i in range(len(self.cells)):
            self.var_of.append(roots.setdefault(find(i), len(roots)))
        self.members: list[list[int]] = [[] for _ in roots]
        for i, v in enumerate(self.var_of):
            self.members[v].append(i)
        self.value = [self.cells[m[0]].value for m in self.members]

    def _equations(self) -> None:
        """One equation per (measure, labels, other coordinates, dimension) whose total is known somewhere."""
        by_key: dict[tuple, set[int]] = defaultdict(set)
        for i, c in enumerate(self.cells):
            by_key[c.key].add(self.var_of[i])
        unique = {k: next(iter(v)) for k, v in by_key.items() if len(v) == 1}
        slices: dict[tuple, dict[str, set[int]]] = defaultdict(lambda: {"total": set(), "parts": set()})
        for (col, lab, coords), var in unique.items():
            for d in range(len(self.dims)):
                rest = coords[:d] + coords[d + 1:]
                slot = "total" if coords[d] == _TOTAL else "parts"
                slices[(col, lab, d, rest)][slot].add(var)
        self.lines: list[_Line] = []
        seen: set[tuple] = set()
        for (_, _, d, _), s in sorted(slices.items(), key=lambda kv: kv[0]):
            if len(s["total"]) == 1 and s["parts"]:
                total = next(iter(s["total"]))
                parts = sorted(s["parts"] - {total})
                sig = (total, tuple(parts))
                if parts and sig not in seen and self._holds(total, parts):
                    seen.add(sig)
                    self.lines.append(_Line(total, parts, self.dims[d]))
        self.lines_of: list[list[int]] = [[] for _ in self.members]
        for li, line in enumerate(self.lines):
            for v in [line.total, *line.parts]:
                self.lines_of[v].append(li)

    def _holds(self, total: int, parts: list[int]) -> bool:
        """Whether ``total = sum(parts)`` is true of the data (with unknown cells: could be true).

        A dimension such as month or time does not partition people (the same woman is counted every
        month), so the sum over months of a count is not the count of a table without months. Such an
        equation is false on the data, and the reader can see that too: it is not a margin.
        """
        known = [self.value[v] for v in parts if not math.isnan(self.value[v])]
        if math.isnan(self.value[total]):
            return True
        if len(known) < len(parts):
            return self.value[total] - sum(known) >= -1e-6
        return abs(self.value[total] - sum(known)) <= 1e-6

    def cell_key(self, var: int) -> str:
        """A stable name for a count cell across runs: measure, labels and non-total coordinates."""
        col, lab, coords = self.cells[self.members[var][0]].key
        named = [[d, c] for d, c in zip(self.dims, coords, strict=True) if c != _TOTAL]
        return json.dumps([col, [list(x) for x in lab], named], ensure_ascii=False)


def _masked_systems(lines: Iterable[tuple[int, Iterable[int]]], masked: set[int],
                    value: Mapping[int, float] | list[float] | None = None,
                    ) -> Iterator[tuple[list[int], np.ndarray, np.ndarray]]:
    """The margin equations over the masked variables, one connected group of unknowns at a time (the systems
    stay small): the group's variables (sorted), the coefficient matrix over them and the right-hand side given
    by the known variables' ``value`` (zeros when ``value`` is None)."""
    rows: list[tuple[dict[int, float], float]] = []
    for total, parts in lines:
        coefs: dict[int, float] = defaultdict(float)
        coefs[total] += 1.0
        for p in parts:
            coefs[p] -= 1.0
        row = {v: c for v, c in coefs.items() if v in masked and c != 0}
        if row:
            rhs = 0.0 if value is None else -sum(c * float(value[v]) for v, c in coefs.items()
                                                 if v not in masked and c != 0)
            rows.append((row, rhs))
    parent = {v: v for v in masked}

    def find(v: int) -> int:
        while parent[v] != v:
            parent[v] = parent[parent[v]]
            v = parent[v]
        return v

    for row, _ in rows:
        first, *rest = row
        for v in rest:
            parent[find(v)] = find(first)
    groups: dict[int, list[tuple[dict[int, float], float]]] = defaultdict(list)
    for row in rows:
        groups[find(next(iter(row[0])))].append(row)
    for group_rows in groups.values():
        variables = sorted({v for row, _ in group_rows for v in row})
        index = {v: i for i, v in enumerate(variables)}
        matrix = np.zeros((len(group_rows), len(variables)))
        rhs = np.zeros(len(group_rows))
        for r, (row, b) in enumerate(group_rows):
            for v, c in row.items():
                matrix[r, index[v]] = c
            rhs[r] = b
        yield variables, matrix, rhs


def recoverable(lines: Iterable[tuple[int, Iterable[int]]], masked: Iterable[int]) -> set[int]:
    """Masked variables that a system of margin equations determines.

    Args:
        lines: ``(total, parts)`` pairs meaning ``total = sum(parts)``, over variable ids.
        masked: the unknown variables; every other variable is known.

    Returns:
        The masked variables whose value follows from the equations and the known variables.
    """
    found: set[int] = set()
    for variables, matrix, _ in _masked_systems(lines, set(masked)):
        # x_i is determined iff e_i lies in the row space of the matrix: project e_i on an orthonormal basis
        # of that row space (rank-revealing QR of the transpose, cheaper than a full SVD).
        q, r, _ = qr(matrix.T, mode="economic", pivoting=True)
        diagonal = np.abs(np.diag(r))
        rank = int(np.sum(diagonal > 1e-9 * max(1.0, float(diagonal[0]) if diagonal.size else 1.0)))
        weight = np.sum(q[:, :rank] ** 2, axis=1)
        found |= {v for i, v in enumerate(variables) if weight[i] > 1 - 1e-9}
    return found


def pinned(lines: Iterable[tuple[int, Iterable[int]]], masked: Iterable[int], value: Mapping[int, float] | list[float],
           *, candidates: Iterable[int] | None = None, small_below: int | None = None) -> dict[int, float]:
    """Masked variables that the margin equations **and non-negativity** pin to one value (linear programming).

    Counts are never negative, and a reader knows it: a margin of 0 gives back every cell under it, and a
    masked cell can be squeezed between bounds that meet (e.g. ``x + y = 10``, ``x + z = 20``, ``z <= 10``
    give ``x = 10``) without the equations alone determining it (:func:`recoverable`). This is the attack of
    a reader with a linear-programming solver: for each masked variable, its smallest and largest value over
    every non-negative solution consistent with the visible cells; the variable is pinned when they meet.

    Args:
        lines: ``(total, parts)`` pairs meaning ``total = sum(parts)``, over variable ids.
        masked: the unknown variables; every other variable is known, with its value in ``value``.
        value: variable id -> value (only the known ones are read).
        candidates: the masked variables to test (default: all of them).
        small_below: also report a variable squeezed between 1 and ``small_below - 1`` (its bounds not meeting):
            the reader then knows a small group of people is there, which the output check of a trusted research
            environment refuses as it refuses the count itself (``differencing_*`` of
            :mod:`oncopipe.delivery.output_check`, the same bounds).

    Returns:
        Pinned (or squeezed) variable -> the value it is pinned to (squeezed: its least value).
    """
    masked = set(masked)
    wanted = masked if candidates is None else set(candidates) & masked
    found: dict[int, float] = {}
    for variables, a_eq, b_eq in _masked_systems(lines, masked, value):
        for i, v in enumerate(variables):
            if v not in wanted:
                continue
            c = np.zeros(len(variables))
            c[i] = 1.0
            low = linprog(c, A_eq=a_eq, b_eq=b_eq, bounds=(0, None), method="highs")
            if low.status != 0:  # infeasible: the margins do not hold on the data (not a margin): nothing pinned
                break
            high = linprog(-c, A_eq=a_eq, b_eq=b_eq, bounds=(0, None), method="highs")
            if high.status == 0 and -high.fun - low.fun < 0.5:
                found[v] = float(round(low.fun))
            elif (small_below is not None and high.status == 0 and low.fun >= 1 - 1e-6
                  and -high.fun <= small_below - 1 + 1e-6):
                found[v] = float(math.ceil(low.fun - 1e-6))
    return found


# --- control -----------------------------------------------------------------------------------------------


def control(result: StudyResult, *, history: Iterable[Mapping[str, float]] = (),
            threshold: int | None = None) -> ControlledResult:
    """Apply disclosure control to a study result.

    Args:
        result: what the analysis returned.
        history: for each earlier published run of the same study, the visible counts it published
            (``ControlledResult.published_cells`` of that run, kept by the audit store).
        threshold: the smallest count that may be shown (at least 10); default: the setting
            ``disclosure_threshold``.

    Returns:
        The controlled result, its masks and the report of what was masked and why.

    Raises:
        DisclosureViolation: a table can never be made safe (identifier, date of birth/death, patient level,
            inconsistent metadata, non-whole counts). The message names the table, row, column and rule.
    """
    limit = disclosure_threshold(threshold)
    tables = [replace(t, frame=t.frame.reset_index(drop=True)) for t in result.tables]
    names = [t.name for t in tables]
    if len(set(names)) != len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raise DisclosureViolation(dup, None, None, "metadata", "two result tables share this name")
    notes: list[str] = []
    tables = [_declare_counts(t, notes) for t in tables]
    counts: list[dict[str, np.ndarray]] = []
    for t in tables:
        _refuse_unsafe_columns(t)
        columns = list(t.count_columns)
        if t.at_risk_column and t.at_risk_column not in columns:
            columns.append(t.at_risk_column)
        table_counts = {c: _count_values(t, c) for c in columns}
        _refuse_patient_level(t, {c: v for c, v in table_counts.items() if c in t.count_columns}, limit)
        counts.append(table_counts)

    reasons: dict[tuple[int, int, str], tuple[str, str]] = {}

    def mask(ti: int, row: int, col: str, rule: str, detail: str) -> None:
        reasons.setdefault((ti, row, col), (rule, detail))

    for ti, t in enumerate(tables):
        # Dropped rows first: their cells are reported as dropped, not as small counts.
        if t.at_risk_column:
            for r, v in enumerate(counts[ti][t.at_risk_column]):
                if not math.isnan(v) and v < limit:
                    for col in [*counts[ti], *t.statistic_columns]:
                        mask(ti, r, col, AT_RISK_BELOW_10,
                             f"{rule_text(AT_RISK_BELOW_10, limit)} ({t.at_risk_column})")
    _coarsen_at_risk(tables, counts, reasons, mask, limit)
    for ti, t in enumerate(tables):
        for col in t.count_columns:
            for r, v in enumerate(counts[ti][col]):
                if 1 <= v <= limit - 1:
                    mask(ti, r, col, SMALL_COUNT, rule_text(SMALL_COUNT, limit))

    model = _Model(tables, counts, threshold=limit)
    masked_vars: set[int] = set()

    def mask_var(var: int, rule: str, detail: str) -> None:
        masked_vars.add(var)
        for m in model.members[var]:
            c = model.cells[m]
            mask(c.table, c.row, c.column, rule, detail)

    for var, members in enumerate(model.members):
        if any((model.cells[m].table, model.cells[m].row, model.cells[m].column) in reasons for m in members):
            first = next(reasons[k] for m in members
                         if (k := (model.cells[m].table, model.cells[m].row, model.cells[m].column)) in reasons)
            mask_var(var, *first)
    prior = list(history)
    for var in range(len(model.members)):
        if var in masked_vars:
            continue
        key, value = model.cell_key(var), model.value[var]
        for p in prior:
            if key in p and 1 <= abs(value - float(p[key])) <= limit - 1:
                mask_var(var, CROSS_RUN_DIFFERENCE, rule_text(CROSS_RUN_DIFFERENCE, limit))
                break

    _complementary(model, tables, masked_vars, mask_var, reasons)

    return _assemble(result, tables, counts, reasons, model, masked_vars, notes)


def _coarsen_at_risk(tables: list[ResultTable], counts: list[dict[str, np.ndarray]],
                     reasons: Mapping[tuple[int, int, str], tuple[str, str]], mask, threshold: int) -> None:
    """Drop curve rows until every drop in the number at risk between rows shown is 0 or at least ``threshold``.

    One sequence per group over every table with the same group columns, time column and at-risk column, ordered by the
    table's other label columns (the time; a group column named like a time counts as time); the start is the
    group size of ``start_count`` when declared.
    Greedy forward, as ACRO coarsens a survival table: a row is kept when its number at risk equals the last
    one kept or is at least ``threshold`` below it.
    """
    by_name = {t.name: ti for ti, t in enumerate(tables)}
    points: dict[tuple, list[tuple[tuple, float, int, int]]] = defaultdict(list)
    starts: dict[tuple, float] = {}
    for ti, t in enumerate(tables):
        col = t.at_risk_column
        if not col:
            continue
        # a time declared as a group column (``month`` in a table by month) orders the sequence too
        groups = tuple(g for g in t.group_columns if not _TIME_NAME.match(g))
        numeric = set(counts[ti]) | set(t.statistic_columns) | set(t.statistic_columns.values())
        time_cols = [str(c) for c in t.frame.columns if c not in numeric and c not in groups]
        group_values = t.frame[list(groups)].astype(str).itertuples(index=False, name=None) if groups \
            else iter([()] * len(t.frame))
        time_values = t.frame[time_cols].itertuples(index=False, name=None)
        for r, (g, when, v) in enumerate(zip(group_values, time_values, counts[ti][col], strict=True)):
            if math.isnan(v) or (ti, r, col) in reasons:
                continue
            points[(col, tuple(time_cols), tuple(sorted(zip(groups, g, strict=True))))].append(
                (tuple(_sort_key(x) for x in when), float(v), ti, r))
        if t.start_count and t.start_count[0] in by_name:
            si = by_name[t.start_count[0]]
            source = tables[si]
            if not set(groups) <= set(map(str, source.frame.columns)):
                raise DisclosureViolation(t.name, None, None, "metadata",
                                          f"start_count table {source.name!r} lacks the group columns {groups}")
            sizes = _count_values(source, t.start_count[1])
            rows = source.frame[list(groups)].astype(str).itertuples(index=False, name=None) if groups \
                else iter([()] * len(source.frame))
            for g, n in zip(rows, sizes, strict=True):
                if not math.isnan(n):
                    starts[(col, tuple(time_cols), tuple(sorted(zip(groups, g, strict=True))))] = float(n)
    for key, seq in points.items():
        last = starts.get(key)
        seq.sort(key=lambda p: (p[0], -p[1]))
        i = 0
        while i < len(seq):
            # rows with the same time and number at risk are one count printed in two tables
            j = i
            while j < len(seq) and seq[j][:2] == seq[i][:2]:
                j += 1
            value = seq[i][1]
            drop = None if last is None else abs(last - value)
            if drop is None or drop == 0 or drop >= threshold:
                last = value
            else:
                for _, _, ti, r in seq[i:j]:
                    t = tables[ti]
                    for c in [*counts[ti], *t.statistic_columns]:
                        mask(ti, r, c, AT_RISK_DIFFERENCE,
                             f"{rule_text(AT_RISK_DIFFERENCE, threshold)} ({t.at_risk_column})")
            i = j


def _sort_key(value: Any) -> tuple:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return (1, 0.0, str(value))
    return (1, 0.0, str(value)) if math.isnan(number) else (0, number, "")


def _describe(model: _Model, tables: list[ResultTable], var: int) -> str:
    c = model.cells[model.members[var][0]]
    return f"{tables[c.table].name}[{c.row}].{c.column}"


def _complementary(model: _Model, tables: list[ResultTable], masked_vars: set[int], mask_var, reasons) -> None:
    """Mask more cells until no masked cell is recoverable and no margin line reveals a small sum."""

    def under_visible_zero(v: int) -> bool:
        # A part of a visible margin of 0 is 0 for any reader (counts are not negative): masking it hides nothing.
        return any(model.lines[li].total not in masked_vars and model.value[model.lines[li].total] == 0
                   and v in model.lines[li].parts for li in model.lines_of[v])

    def candidates(line: _Line) -> list[int]:
        free = [v for v in line.parts if v not in masked_vars]
        ordered = sorted((v for v in free if model.value[v] > 0), key=lambda v: (model.value[v], v))
        ordered += sorted(v for v in free if model.value[v] == 0 and not under_visible_zero(v))
        if line.total not in masked_vars:
            ordered.append(line.total)
        return ordered

    def protect(var: int, why: str) -> None:
        # Nearest margins first; when every cell of those is masked already, widen the search through the
        # masked cells they share with other margins (a cell can be determined by margins it is not in).
        frontier, seen_vars, seen_lines = [var], {var}, set()
        while frontier:
            following = []
            for v in frontier:
                for li in sorted(model.lines_of[v], key=lambda li: (_unknowns(model.lines[li]), li)):
                    if li in seen_lines:
                        continue
                    seen_lines.add(li)
                    options = candidates(model.lines[li])
                    if options:
                        mask_var(options[0], COMPLEMENTARY, f"{RULE_TEXT[COMPLEMENTARY]}: protects {why} "
                                                            f"(margin over {model.lines[li].dimension!r})")
                        return
                    line = model.lines[li]
                    following += [u for u in [line.total, *line.parts] if u in masked_vars and u not in seen_vars]
                    seen_vars.update(following)
            frontier = following
        c = model.cells[model.members[var][0]]
        raise DisclosureViolation(tables[c.table].name, c.row, c.column, "unprotectable",
                                  f"{why} stays recoverable even with every cell of its margins masked")

    def _unknowns(line: _Line) -> int:
        return sum(v in masked_vars for v in [line.total, *line.parts])

    equations = [(ln.total, ln.parts) for ln in model.lines]
    while True:
        leaks = _line_leaks(model, masked_vars, first_only=True)
        if leaks:
            var, line = leaks[0]
            options = candidates(line)
            what = _describe(model, tables, var)
            if not options:
                protect(var, what)
            else:
                mask_var(options[0], COMPLEMENTARY,
                         f"{RULE_TEXT[COMPLEMENTARY]}: protects {what} (margin over {line.dimension!r})")
            continue
        # A masked zero that the margins give back reveals no one: 0 is not a small count.
        exposed = sorted(v for v in recoverable(equations, masked_vars) if model.value[v] != 0)
        if not exposed:
            # Non-negativity too: a reader with a linear-programming solver squeezes cells between bounds.
            exposed = sorted(pinned(equations, masked_vars, model.value,
                                    candidates=[v for v in masked_vars if model.value[v] != 0],
                                    small_below=model.threshold))
        if not exposed:
            return
        # Protect every exposed cell whose margins this pass has not touched yet, then check again: one
        # linear-algebra pass per batch rather than per cell.
        touched: set[int] = set()
        for var in exposed:
            if touched.isdisjoint(model.lines_of[var]):
                before = set(masked_vars)
                protect(var, _describe(model, tables, var))
                for new in masked_vars - before:
                    touched.update(model.lines_of[new])
                touched.update(model.lines_of[var])


def _line_leaks(model: _Model, masked_vars: set[int], *, first_only: bool = False) -> list[tuple[int, _Line]]:
    """Margin lines that give a masked cell away (one unknown) or reveal a small sum of masked cells."""
    leaks = []
    for line in model.lines:
        unknown = [v for v in [line.total, *line.parts] if v in masked_vars]
        leaking = len(unknown) == 1 and model.value[unknown[0]] != 0
        if not leaking and unknown and line.total not in masked_vars:
            hidden = model.value[line.total] - sum(model.value[v] for v in line.parts if v not in masked_vars)
            leaking = 1 <= hidden <= model.threshold - 1
        if leaking:
            leaks.append((unknown[0], line))
            if first_only:
                break
    return leaks


def _assemble(result: StudyResult, tables: list[ResultTable], counts, reasons, model: _Model,
              masked_vars: set[int], notes: list[str]) -> ControlledResult:
    report = DisclosureReport()
    out_tables: list[ResultTable] = []
    masks: dict[str, pd.DataFrame] = {}
    by_table: dict[int, list[tuple[int, str]]] = defaultdict(list)
    for ti, r, col in reasons:
        by_table[ti].append((r, col))
    for ti, t in enumerate(tables):
        frame = t.frame.copy()
        n_rows = len(frame)
        count_cols = list(counts[ti])
        mask_cols = count_cols + [c for c in t.statistic_columns if c not in counts[ti]]
        flags = {col: np.zeros(n_rows, dtype=bool) for col in mask_cols}
        for r, col in by_table[ti]:
            if col in flags:
                flags[col][r] = True
        any_count = np.zeros(n_rows, dtype=bool)
        for col in count_cols:
            any_count |= flags[col]
        for stat, denominator in t.statistic_columns.items():
            # In a curve the statistic is cumulative over many event times, not a ratio of the row's counts:
            # only a masked denominator (people at risk) hides it there.
            hides = flags[denominator] if t.at_risk_column and denominator in flags else any_count
            for r in map(int, np.flatnonzero(hides & ~flags[stat])):
                reasons[(ti, r, stat)] = (STATISTIC_ON_MASKED_ROW,
                                          rule_text(STATISTIC_ON_MASKED_ROW, model.threshold))
            flags[stat] |= hides
            n = pd.to_numeric(frame[denominator], errors="coerce").to_numpy(dtype=float)
            for r in map(int, np.flatnonzero((n < model.threshold) & ~flags[stat])):
                reasons[(ti, r, stat)] = (SMALL_DENOMINATOR,
                                          f"{rule_text(SMALL_DENOMINATOR, model.threshold)} ({denominator})")
                flags[stat][r] = True
        dropped = np.zeros(n_rows, dtype=bool)
        label_cols = [str(c) for c in frame.columns if c not in mask_cols]
        label_values = {c: frame[c].tolist() for c in label_cols}
        mine = sorted((r, col, rule, detail) for (tj, r, col), (rule, detail) in reasons.items() if tj == ti)
        for r, col, rule, detail in mine:
            if rule in DROPPED_ROW_RULES:
                dropped[r] = True
                if col != t.at_risk_column:
                    continue
            labels = tuple((c, _norm(label_values[c][r])) for c in label_cols)
            report.masked.append(MaskedCell(t.name, r, labels, col, rule, detail))
        for col in mask_cols:
            if flags[col].any():
                frame[col] = pd.to_numeric(frame[col], errors="coerce").astype(float).mask(flags[col])
        keep = ~dropped
        frame = frame[keep].reset_index(drop=True)
        out_tables.append(replace(t, frame=frame))
        masks[t.name] = pd.DataFrame({col: flags[col][keep] for col in mask_cols}, index=frame.index)
    published = {model.cell_key(v): model.value[v] for v in range(len(model.members)) if v not in masked_vars}
    controlled = StudyResult(result.study_id, result.analysis, dict(result.parameters), out_tables,
                             list(result.figures), result.methods, [*result.notes, *notes],
                             dict(result.references))
    return ControlledResult(controlled, masks, report, dict(sorted(published.items())), model.threshold)


def audit_published(tables: list[ResultTable], masks: Mapping[str, pd.DataFrame], *,
                    history: Iterable[Mapping[str, float]] = (), threshold: int | None = None) -> list[str]:
    """Re-check tables as published (masked cells ``NaN`` and flagged in ``masks``) against every rule.

    Used by ``oncopipe exports verify``: it trusts nothing the export step did and reads only what the
    researcher received.

    Args:
        tables: the published tables with their disclosure metadata.
        masks: table name -> boolean frame of masked cells (missing columns: nothing masked there).
        history: visible counts of earlier runs of the study, as in :func:`control`.
        threshold: as in :func:`control`.

    Returns:
        One message per problem (table, row, column, rule); empty when the export is safe.
    """
    limit = disclosure_threshold(threshold)
    problems: list[str] = []
    counts: list[dict[str, np.ndarray]] = []
    unknown: set[tuple[int, int, str]] = set()
    for ti, t in enumerate(tables):
        frame = t.frame.reset_index(drop=True)
        mask = masks.get(t.name, pd.DataFrame(index=frame.index))

        def masked(r: int, col: str, mask: pd.DataFrame = mask) -> bool:
            return col in mask.columns and bool(mask[col].iloc[r])

        try:
            _refuse_unsafe_columns(t)
        except DisclosureViolation as error:
            problems.append(str(error))
            counts.append({})
            continue
        columns = list(dict.fromkeys([*t.count_columns, *([t.at_risk_column] if t.at_risk_column else [])]))
        table_counts: dict[str, np.ndarray] = {}
        for col in columns:
            values = pd.to_numeric(frame[col], errors="coerce").to_numpy(dtype=float, copy=True)
            for r, v in enumerate(values):
                if masked(r, col):
                    unknown.add((ti, r, col))
                    values[r] = math.nan
                elif col in t.count_columns and 1 <= v <= limit - 1:
                    problems.append(f"table {t.name!r}, row {r}, column {col!r}: rule {SMALL_COUNT}: "
                                    f"visible count {int(v)}")
                elif col == t.at_risk_column and v < limit:
                    problems.append(f"table {t.name!r}, row {r}, column {col!r}: rule {AT_RISK_BELOW_10}: "
                                    f"row with {int(v)} at risk was not dropped")
            table_counts[col] = values
        counts.append(table_counts)
        for stat, denominator in t.statistic_columns.items():
            n = pd.to_numeric(frame[denominator], errors="coerce")
            for r in range(len(frame)):
                if masked(r, stat) or _is_missing(frame[stat].iloc[r]):
                    continue
                hidden = [denominator] if t.at_risk_column and denominator in columns else columns
                if any(masked(r, c) for c in hidden):
                    problems.append(f"table {t.name!r}, row {r}, column {stat!r}: rule {STATISTIC_ON_MASKED_ROW}: "
                                    "visible statistic next to a masked count")
                elif not masked(r, denominator) and n.iloc[r] < limit:
                    problems.append(f"table {t.name!r}, row {r}, column {stat!r}: rule {SMALL_DENOMINATOR}: "
                                    f"statistic on {denominator} = {int(n.iloc[r])}")
    model = _Model([replace(t, frame=t.frame.reset_index(drop=True)) for t in tables], counts, unknown,
                   threshold=limit)
    masked_vars = set()
    for var, members in enumerate(model.members):
        hidden = [m for m in members if (model.cells[m].table, model.cells[m].row, model.cells[m].column) in unknown]
        if hidden:
            masked_vars.add(var)
            if len(hidden) < len(members):
                shown = next(m for m in members if m not in hidden)
                problems.append(f"{_describe(model, tables, var)}: rule {COMPLEMENTARY}: masked here but shown in "
                                f"{tables[model.cells[shown].table].name}[{model.cells[shown].row}]")
    for var, line in _line_leaks(model, masked_vars):
        problems.append(f"{_describe(model, tables, var)}: rule {COMPLEMENTARY}: recoverable or small sum from "
                        f"the margin over {line.dimension!r}")
    equations = [(ln.total, ln.parts) for ln in model.lines]
    for var in sorted(recoverable(equations, masked_vars)):
        problems.append(f"{_describe(model, tables, var)}: rule {COMPLEMENTARY}: determined by the margins")
    for var, at in sorted(pinned(equations, masked_vars, model.value, small_below=limit).items()):
        if at != 0:
            problems.append(f"{_describe(model, tables, var)}: rule {COMPLEMENTARY}: pinned to {at:g}, or squeezed "
                            f"between 1 and {limit - 1}, by the margins and non-negativity")
    prior = list(history)
    for var in range(len(model.members)):
        if var in masked_vars:
            continue
        key = model.cell_key(var)
        for p in prior:
            if key in p and 1 <= abs(model.value[var] - float(p[key])) <= limit - 1:
                problems.append(f"{_describe(model, tables, var)}: rule {CROSS_RUN_DIFFERENCE}: differs by "
                                f"{int(abs(model.value[var] - float(p[key])))} from an earlier run")
                break
    return list(dict.fromkeys(problems))
