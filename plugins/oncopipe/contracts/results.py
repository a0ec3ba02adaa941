"""What a study analysis returns, before disclosure control and export.

An analysis is a pure function from DataFrames to a :class:`StudyResult`. Tables carry the metadata
that disclosure control needs (which columns are counts of people, which statistics rest on how many
people, which rows are margins). Figures are never drawn by the analysis itself: each names the tables
it is drawn from and a ``draw`` function, and the export step draws it from the tables *after* disclosure
control, so a figure can never show what a table had to hide.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd


class NotEnoughData(ValueError):
    """The input cannot support the analysis (empty cohort, fewer than 10 people, no events, ...).

    The message names the study and the reason; the DAG fails with it instead of crashing or emitting
    a small count.
    """

    def __init__(self, study_id: str, reason: str) -> None:
        self.study_id = study_id
        self.reason = reason
        super().__init__(f"study {study_id}: not enough data: {reason}")


class InputValidationError(ValueError):
    """An input table lacks a column, has the wrong type or missing covariates; names study and reason."""

    def __init__(self, study_id: str, reason: str) -> None:
        self.study_id = study_id
        self.reason = reason
        super().__init__(f"study {study_id}: invalid input: {reason}")


@dataclass
class ResultTable:
    """One output table with what disclosure control must know about it.

    Attributes:
        name: file stem of the table in the export (``km_by_site`` -> ``km_by_site.csv``).
        frame: the table itself; aggregated, never patient level.
        description: one sentence for the report.
        count_columns: columns holding numbers of people or events (primary suppression: 1..9 masked).
        statistic_columns: statistic column -> the column giving the number of people it is computed on
            (a percentage, rate, mean or survival estimate on fewer than 10 people is masked).
        group_columns: the dimensions of the table (site, sex, group...), used with ``total_value`` to find
            margins for complementary suppression.
        total_value: the label used in a group column for a margin row (row total), if the table has one.
        at_risk_column: for curves and at-risk tables, rows where this column is below 10 are dropped, and
            rows where it fell by 1 to 9 since the previous row shown of the same group (a small number of
            people who left, by subtraction) are dropped too, jointly over every table of the result with
            the same group columns and at-risk column.
        start_count: ``(table, count column)`` giving each group's size at time 0 (the curve's first
            number at risk), for the at-risk differencing above; that table has the same group columns.
    """

    name: str
    frame: pd.DataFrame
    description: str
    count_columns: tuple[str, ...] = ()
    statistic_columns: Mapping[str, str] = field(default_factory=dict)
    group_columns: tuple[str, ...] = ()
    total_value: str | None = None
    at_risk_column: str | None = None
    start_count: tuple[str, str] | None = None


@dataclass
class ResultFigure:
    """A figure drawn at export time from disclosure-controlled tables.

    Attributes:
        name: file stem (``km_curves`` -> ``km_curves.png`` and ``km_curves.svg``).
        title: caption for the report.
        tables: names of the result tables the figure is drawn from.
        draw: called with ``{table name: controlled frame}``; returns a matplotlib Figure.
    """

    name: str
    title: str
    tables: tuple[str, ...]
    draw: Callable[[Mapping[str, pd.DataFrame]], Any]


@dataclass
class StudyResult:
    """Everything one analysis run produced, ready for disclosure control."""

    study_id: str
    analysis: str
    parameters: Mapping[str, Any]
    tables: list[ResultTable]
    figures: list[ResultFigure] = field(default_factory=list)
    methods: str = ""
    notes: list[str] = field(default_factory=list)
    # estimator -> the reference implementation it is tested against (package, version, function)
    references: Mapping[str, str] = field(default_factory=dict)

    def table(self, name: str) -> ResultTable:
        for t in self.tables:
            if t.name == name:
                return t
        raise KeyError(f"study {self.study_id}: no result table {name!r}")
