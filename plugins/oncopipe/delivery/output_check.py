"""Output checking of a finished export folder, read the way an outsider would read it.

This module is deliberately separate from :mod:`oncopipe.delivery.disclosure`, which *masks*: it shares
only the constants of the rule (the threshold, the CSV marker, the Parquet flag suffix) and none of the
masking decisions. It trusts nothing the export step did; it reads the files of the folder (and the other
run folders of the same study beside it) and refuses the export when anything small is stated or can be
recomputed. The output types and rule names follow statistical disclosure control (SDC) output checking
as done in trusted research environments (the "safe" / "unsafe" output classes of the SDC handbooks and of
SACRO/ACRO: frequencies, magnitudes, percentiles, regressions, survival tables):

| rule                        | output type     | refused when                                              |
|-----------------------------|-----------------|-----------------------------------------------------------|
| ``frequency_threshold``     | frequency       | a count of people from 1 to 9 is stated (table cell, JSON  |
|                             |                 | field, a number next to "people"/"patients"/... in text)  |
| ``stated_bound``            | any             | text pins a hidden value (``n_risk = 9 < 10``, "difference |
|                             |                 | 3")                                                        |
| ``differencing_table``      | frequency       | a masked count is recoverable, or a group of masked counts |
|                             |                 | sums to 1..9, from the margins of its table                |
| ``differencing_export``     | frequency       | the same, using every table of the export (a cell masked in |
|                             |                 | one table and shown in another; margins across tables)      |
| ``differencing_runs``       | frequency       | a count shown by this run and by another run of the study   |
|                             |                 | differs by 1 to 9                                           |
| ``differencing_cumulative`` | frequency       | a cumulative count over time grows by 1 to 9 between two    |
|                             |                 | successive visible periods                                  |
| ``differencing_at_risk``    | survival table  | within a curve (its group columns, ordered by time; the     |
|                             |                 | tables with the same groups and at-risk column side by      |
|                             |                 | side), two numbers at risk shown one after the other differ |
|                             |                 | by 1 to 9: that many people left in between                 |
| ``magnitude_small_n``       | magnitude,      | a mean, median, percentile, minimum, maximum or rate is     |
|                             | percentile      | shown for fewer than 10 people, or next to a masked count   |
| ``survival_small_risk``     | survival table  | a Kaplan-Meier step is shown with fewer than 10 at risk     |
| ``regression_small_n``      | regression      | a model or trajectory group fitted on fewer than 10 people  |
|                             |                 | or with fewer than 10 residual degrees of freedom           |
| ``unreadable_output``       | any             | a file the checker cannot read (an unknown format, a figure |
|                             |                 | whose source tables are not in the export)                  |

Figures: matplotlib writes SVG text as paths (``svg.fonttype: path``) and PNG as pixels, so the numbers
drawn in a figure cannot be read back reliably. A figure is therefore checked through its *data sidecar*:
the manifest names the tables every figure is drawn from, and those tables are in the export and are
checked cell by cell; a PNG or SVG that no manifest figure entry covers, or whose source tables are not in
the export, is refused (``unreadable_output``). Any text a figure does carry (SVG ``<text>``/``<title>``,
PNG ``tEXt``/``iTXt`` chunks) is scanned like every other text.

Masked cells: CSV and Parquet alike, an empty cell (a null) with its ``<column>__masked`` flag column
``true``. An empty cell whose flag is ``false`` (or has no flag column) is *not reached / not estimable*
(e.g. a median survival not reached), which is a different thing from masked and needs no protection; in a
count column an empty cell is read as unknown. A numeric column of a CSV holds only numbers: any other text
there (the old marker ``masked``, a stray label) is refused as ``unreadable_output``, and so is a flag that is
neither ``true`` nor ``false``, or a masked cell that is not empty.
"""

from __future__ import annotations

import functools
import json
import math
import re
import zlib
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.optimize import linprog

# Only the constants of the rule are shared with the masking code, never its decisions.
from oncopipe.delivery.disclosure import MASK_SUFFIX, disclosure_threshold

FREQUENCY_THRESHOLD = "frequency_threshold"
STATED_BOUND = "stated_bound"
DIFFERENCING_TABLE = "differencing_table"
DIFFERENCING_EXPORT = "differencing_export"
DIFFERENCING_RUNS = "differencing_runs"
DIFFERENCING_CUMULATIVE = "differencing_cumulative"
DIFFERENCING_AT_RISK = "differencing_at_risk"
MAGNITUDE_SMALL_N = "magnitude_small_n"
SURVIVAL_SMALL_RISK = "survival_small_risk"
REGRESSION_SMALL_N = "regression_small_n"
UNREADABLE_OUTPUT = "unreadable_output"

#: Why each rule refuses; ``{below}`` is threshold - 1 and ``{threshold}`` the threshold (:meth:`CheckReport.reason`).
RULES = {
    FREQUENCY_THRESHOLD: "unsafe frequency: a count of 1 to {below} people is stated",
    STATED_BOUND: "unsafe: the text states a hidden value or a bound that pins it",
    DIFFERENCING_TABLE: "unsafe frequency by differencing: recoverable from the margins of its table",
    DIFFERENCING_EXPORT: "unsafe frequency by differencing: recoverable from the tables of this export",
    DIFFERENCING_RUNS: "unsafe frequency by differencing: differs by 1 to {below} from another run",
    DIFFERENCING_CUMULATIVE: "unsafe frequency by differencing: a cumulative count grows by 1 to {below}",
    DIFFERENCING_AT_RISK: "unsafe survival table by differencing: the number at risk falls by 1 to {below} "
                          "between two rows shown (that many people left in between)",
    MAGNITUDE_SMALL_N: "unsafe magnitude or percentile: describes fewer than {threshold} people",
    SURVIVAL_SMALL_RISK: "unsafe survival table: a step with fewer than {threshold} people at risk",
    REGRESSION_SMALL_N: "unsafe regression: fitted on fewer than {threshold} people or residual degrees of freedom",
    UNREADABLE_OUTPUT: "the checker cannot read this output, so it cannot be released",
}

_TOTAL = "\x00total"
# Columns that count people, recognised by name even when the manifest does not declare them.
_PEOPLE_COLUMN = re.compile(
    r"^(?:n|nb|count|num|number)(?:_|$)|(?:^|_)(?:n|events?|deaths?|deceased|died|cases|patients|persons|people|"
    r"women|men|subjects|individuals|treated|censored|censor|risk|at_risk|exposed|count|total|entered|lost|"
    r"survivors|alive|cohort)$", re.IGNORECASE)
_NOT_PEOPLE_COLUMN = re.compile(
    r"(?:^|_)(?:params?|parameters|groups?|iter\w*|starts|terms?|knots|df|dof|degree|k|months?|days?|years?|"
    r"weeks?|rows|columns|cells|files|tables|rules?|version|threshold)(?:_|$)", re.IGNORECASE)
_STATISTIC_COLUMN = re.compile(
    r"(?:^|_)(?:mean|avg|average|median|p\d{1,2}|q[1-3]|percentile\w*|quantile\w*|min|max|minimum|maximum|sd|"
    r"std|iqr|rate|proportion|prop|pct|percent|share|survival|surv|cif|incidence)(?:_|$)", re.IGNORECASE)
_REGRESSION_COLUMN = re.compile(r"(?:^|_)(?:coef|coefficient|hr|hazard_ratio|odds_ratio|or|beta|estimate|"
                                r"se|std_err|z|p_value|pvalue|ci_low|ci_high|lower|upper)(?:_|$)", re.IGNORECASE)
_RESIDUAL_DF = re.compile(r"^(?:df_resid|df_residual|residual_df|dof_resid)$", re.IGNORECASE)
_TIME_COLUMN = re.compile(r"^(?:times?|months?|years?|period|date|weeks?|days?|calendar_\w+|\w+_months?|"
                          r"\w+_years?|\w+_days?)$", re.IGNORECASE)
# Numbers at risk, recognised by name even when the manifest names no at-risk column.
_AT_RISK_COLUMN = re.compile(r"^(?:n_)?(?:at_)?risk$|^n_at_risk$|^number_at_risk$", re.IGNORECASE)
_CUMULATIVE = re.compile(r"(?:^|_)cum(?:ulative)?(?:_|$)", re.IGNORECASE)
# JSON subtrees whose numbers count cells, rows of aggregate tables or expectations, not people.
_NOT_PEOPLE_KEYS = {"counts_by_rule", "masked_by_rule", "tables", "threshold", "gx_validations", "evaluated",
                    "passed", "manifest_version", "rows", "files", "package_versions", "parameters"}

_WORD = r"(?:people|persons|patients|women|men|cases|deaths|events|subjects|individuals|participants)"


@functools.cache
def _text_rules(threshold: int) -> list[tuple[re.Pattern[str], str]]:
    """Patterns of free text that state a count; group 1 is the count, stated when from 1 to threshold - 1."""
    return [
        # "n_risk = 9 < 10", "n = 3", "at risk: 4"
        (re.compile(r"\b(?:n|n_\w+|\w*count|at[ _]risk|events?|deaths?|censored)\s*(?:=|:)\s*([1-9]\d*)(?![\d.,])",
                    re.IGNORECASE), STATED_BOUND),
        (re.compile(rf"(?<![\d.])([1-9]\d*)\s*(?:<|<=|≤|&lt;|&le;)\s*{threshold}\b"), STATED_BOUND),
        (re.compile(r"\bdifference\s*(?:of|=|:)?\s*([1-9]\d*)(?![\d.,])", re.IGNORECASE), STATED_BOUND),
        # "3 patients"; not the rule's own wording "1 to 9 people"
        (re.compile(rf"(?<![\d.,])(?<!to )(?<!-)(?<!–)([1-9]\d*)\s+{_WORD}\b", re.IGNORECASE), FREQUENCY_THRESHOLD),
    ]


def _stated(text: str, threshold: int) -> Iterator[tuple[re.Match[str], str]]:
    """Every statement of a count from 1 to threshold - 1 in ``text``, with its rule."""
    for pattern, rule in _text_rules(threshold):
        for match in pattern.finditer(text):
            if int(match.group(1)) <= threshold - 1:
                yield match, rule


@dataclass(frozen=True)
class Finding:
    """One reason to refuse an export: which file, where in it, which rule."""

    file: str
    place: str
    rule: str
    reason: str

    def __str__(self) -> str:
        return f"{self.file}: {self.place}: rule {self.rule}: {self.reason}"


@dataclass
class CheckReport:
    """What the checker read and what it refused, judged against ``threshold`` (default: the setting)."""

    findings: list[Finding] = field(default_factory=list)
    files_checked: int = 0
    cells_checked: int = 0
    masked_cells: int = 0
    threshold: int = field(default_factory=disclosure_threshold)

    @property
    def safe(self) -> bool:
        return not self.findings

    def reason(self, rule: str) -> str:
        """Why ``rule`` refuses, worded for this report's threshold."""
        return RULES[rule].format(below=self.threshold - 1, threshold=self.threshold)

    def add(self, file: str, place: str, rule: str, reason: str = "") -> None:
        self.findings.append(Finding(file, place, rule, reason or self.reason(rule)))


class OutputCheckFailed(ValueError):
    """The output checker refused an export; ``findings`` name file, place and rule."""

    def __init__(self, folder: Path, findings: Sequence[Finding]) -> None:
        self.folder, self.findings = folder, list(findings)
        shown = "; ".join(map(str, self.findings[:20]))
        more = f" (and {len(self.findings) - 20} more)" if len(self.findings) > 20 else ""
        super().__init__(f"output check refused the export {folder.name}: {len(self.findings)} finding(s): "
                         f"{shown}{more}")


# --- public entry points -----------------------------------------------------------------------------------


def check_export(folder: Path, *, other_runs: Iterable[Path] | None = None,
                 threshold: int | None = None) -> CheckReport:
    """Check every file of a finished export folder and its differences with the other runs of its study.

    Args:
        folder: the export folder (``<exports>/<study>/<run>/``, or the hidden folder being built).
        other_runs: other run folders of the same study; default: every published sibling folder of
            ``folder`` (hidden folders excluded) except one with the same name.
        threshold: the disclosure threshold (at least 10); default: the setting ``disclosure_threshold``.

    Returns:
        The findings (empty when the export may be released) and how much was read.
    """
    folder = Path(folder)
    report = CheckReport(threshold=disclosure_threshold(threshold))
    manifest = _load_json(folder / "manifest.json", report)
    tables = _read_tables(folder, manifest, report)
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        rel = path.relative_to(folder).as_posix()
        report.files_checked += 1
        suffix = path.suffix.lower()
        if suffix in (".csv", ".parquet"):
            continue  # read as tables above
        if suffix == ".json":
            data = manifest if rel == "manifest.json" else _load_json(path, report)
            if data is not None:
                _check_json(rel, data, report)
        elif suffix in (".html", ".htm", ".md", ".txt", ".eml"):
            check_text(rel, path.read_text(encoding="utf-8", errors="replace"), report)
        elif suffix == ".svg":
            _check_svg(rel, path.read_text(encoding="utf-8", errors="replace"), report)
            _check_figure_sources(rel, manifest, tables, report)
        elif suffix == ".png":
            _check_png_text(rel, path.read_bytes(), report)
            _check_figure_sources(rel, manifest, tables, report)
        else:
            report.add(rel, "file", UNREADABLE_OUTPUT, f"unknown format {suffix or 'without extension'!r}")
    for table in tables:
        _check_table_cells(table, report)
    _check_differencing(tables, report)
    _check_at_risk_steps(tables, report)
    runs = list(other_runs) if other_runs is not None else _sibling_runs(folder)
    _check_other_runs(folder, tables, runs, report)
    return report


def check_text(name: str, text: str, report: CheckReport) -> None:
    """Scan free text (a report, a mail, an index page) for stated small counts and pinning bounds.

    HTML and Markdown tables are read as tables: a column whose header counts people may not show 1 to
    threshold - 1.
    """
    plain = _strip_tags(text) if name.endswith((".html", ".htm", ".svg")) else text
    for lineno, line in enumerate(plain.splitlines(), start=1):
        for match, rule in _stated(line, report.threshold):
            report.add(name, f"line {lineno}: {match.group(0)!r}", rule)
    grids = _html_tables(text) if name.endswith((".html", ".htm")) else _markdown_tables(text)
    for k, (header, rows) in enumerate(grids, start=1):
        for r, row in enumerate(rows):
            for col, cell in zip(header, row, strict=False):
                report.cells_checked += 1
                value = _number(cell)
                if _is_people_column(col) and value is not None and 1 <= value <= report.threshold - 1:
                    report.add(name, f"table {k}, row {r}, column {col!r}", FREQUENCY_THRESHOLD)


def raise_if_unsafe(folder: Path, *, other_runs: Iterable[Path] | None = None,
                    threshold: int | None = None) -> CheckReport:
    """:func:`check_export`, raising :class:`OutputCheckFailed` when anything is found."""
    report = check_export(folder, other_runs=other_runs, threshold=threshold)
    if report.findings:
        raise OutputCheckFailed(Path(folder), report.findings)
    return report


# --- reading ----------------------------------------------------------------------------------------------


@dataclass
class _Table:
    name: str
    file: str
    frame: pd.DataFrame  # numbers as float (NaN = masked or blank), labels as str
    masked: pd.DataFrame  # bool, True = masked
    counts: list[str]
    at_risk: str | None
    statistics: dict[str, str | None]  # statistic -> column of the number of people it describes
    groups: list[str]
    total: str | None


def _load_json(path: Path, report: CheckReport) -> Any:
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        report.add(path.name, "file", UNREADABLE_OUTPUT, f"not valid JSON: {error}")
        return None


def _read_tables(folder: Path, manifest: Any, report: CheckReport) -> list[_Table]:
    metas = {m["name"]: m for m in (manifest or {}).get("tables", []) if isinstance(m, dict) and "name" in m}
    out = []
    for path in sorted((folder / "tables").glob("*")) if (folder / "tables").is_dir() else []:
        if path.suffix not in (".csv", ".parquet"):
            continue
        meta = metas.get(path.stem, {})
        try:
            if path.suffix == ".parquet":
                raw = pd.read_parquet(path)
                flags = {c[: -len(MASK_SUFFIX)]: raw[c].fillna(False).astype(bool) for c in raw.columns
                         if str(c).endswith(MASK_SUFFIX)}
                raw = raw.drop(columns=[c + MASK_SUFFIX for c in flags])
                text = raw.astype(object).where(raw.notna(), "")
                masked = pd.DataFrame({c: flags.get(c, pd.Series(False, index=raw.index)) for c in raw.columns})
            else:
                raw = pd.read_csv(path, dtype=str, keep_default_na=False)
                flags = {}
                for c in [c for c in raw.columns if str(c).endswith(MASK_SUFFIX)]:
                    word = raw[c].str.strip().str.lower()
                    for r in np.flatnonzero(~word.isin(["true", "false"]).to_numpy()):
                        report.add(f"tables/{path.name}", f"row {r}, column {c!r}", UNREADABLE_OUTPUT,
                                   f"a mask flag must read true or false, not {raw[c].iloc[r]!r}")
                    flags[c[: -len(MASK_SUFFIX)]] = word == "true"
                text = raw.drop(columns=[c + MASK_SUFFIX for c in flags])
                masked = pd.DataFrame({c: flags.get(c, pd.Series(False, index=text.index)) for c in text.columns})
                for c, flag in flags.items():
                    for r in np.flatnonzero((flag & (text[c].str.strip() != "")).to_numpy()) if c in text else []:
                        report.add(f"tables/{path.name}", f"row {r}, column {c!r}", UNREADABLE_OUTPUT,
                                   "a masked cell must be empty")
        except Exception as error:  # a corrupt file must refuse the export, whatever the reader raised
            report.add(f"tables/{path.name}", "file", UNREADABLE_OUTPUT, f"cannot be read: {error}")
            continue
        table = _table_of(path.stem, f"tables/{path.name}", text, masked, meta)
        if path.suffix == ".csv":
            _check_numbers(table, text, masked, report)
        out.append(table)
    return out


def _check_numbers(t: _Table, text: pd.DataFrame, masked: pd.DataFrame, report: CheckReport) -> None:
    """A numeric CSV column holds numbers or empty cells only (masked or missing), nothing a program misreads."""
    for c in [*t.counts, *t.statistics]:
        cells = text[c].astype(str).str.strip()
        # a yes/no statistic (significantly_slower) is written True / False
        bad = (cells != "") & t.frame[c].isna() & ~masked[c].astype(bool) & ~cells.str.lower().isin(["true", "false"])
        for r in np.flatnonzero(bad.to_numpy()):
            report.add(t.file, f"row {r}, column {c!r}", UNREADABLE_OUTPUT,
                       f"{cells.iloc[r]!r} in a numeric column: a CSV number column holds numbers or empty cells "
                       f"(masked: empty with {c}{MASK_SUFFIX} = true)")


def _table_of(name: str, file: str, text: pd.DataFrame, masked: pd.DataFrame, meta: Mapping[str, Any]) -> _Table:
    columns = [str(c) for c in text.columns]
    text.columns, masked.columns = columns, columns
    at_risk = meta.get("at_risk_column")
    counts = [c for c in columns if c in meta.get("count_columns", []) or _is_people_column(c) or c == at_risk]
    statistics: dict[str, str | None] = {c: n for c, n in (meta.get("statistic_columns") or {}).items()
                                         if c in columns}
    default_n = at_risk or next((c for c in counts if re.match(r"^n(?:_|$)", c)), counts[0] if counts else None)
    for c in columns:
        if c not in counts and c not in statistics and _STATISTIC_COLUMN.search(c):
            statistics[c] = default_n
    numeric = counts + list(statistics)
    frame = pd.DataFrame(index=text.index)
    for c in columns:
        if c in numeric:
            frame[c] = pd.to_numeric(text[c].where(~masked[c]).replace("", np.nan), errors="coerce").astype(float)
        else:
            frame[c] = text[c].map(_label)
    groups = [g for g in meta.get("group_columns", []) if g in columns]
    return _Table(name, file, frame, masked.astype(bool), counts, at_risk, statistics, groups,
                  None if meta.get("total_value") is None else str(meta.get("total_value")))


def _label(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _number(text: Any) -> float | None:
    try:
        value = float(str(text).replace(",", "").replace("\u202f", "").strip())
    except ValueError:
        return None
    return None if math.isnan(value) else value


def _is_people_column(name: str) -> bool:
    return bool(_PEOPLE_COLUMN.search(name)) and not _NOT_PEOPLE_COLUMN.search(name) \
        and not _STATISTIC_COLUMN.search(name)


def _sibling_runs(folder: Path) -> list[Path]:
    parent = folder.parent
    if not parent.is_dir():
        return []
    run_name = folder.name
    if run_name.startswith(".tmp-"):  # the hidden build folder of run <run>: .tmp-<run>-<random>
        run_name = run_name[len(".tmp-"):].rsplit("-", 1)[0]
    return sorted(p for p in parent.iterdir() if p.is_dir() and not p.name.startswith(".")
                  and p.name != run_name and p.resolve() != folder.resolve() and (p / "manifest.json").is_file())


# --- literal values ---------------------------------------------------------------------------------------


def _check_json(file: str, data: Any, report: CheckReport) -> None:
    def walk(value: Any, path: list[str], people: bool) -> None:
        if isinstance(value, Mapping):
            for key, child in value.items():
                walk(child, [*path, str(key)], people and str(key) not in _NOT_PEOPLE_KEYS)
        elif isinstance(value, list):
            for i, child in enumerate(value):
                walk(child, [*path, str(i)], people)
        elif isinstance(value, str):
            for match, rule in _stated(value, report.threshold):
                report.add(file, f"key {'.'.join(path)}: {match.group(0)!r}", rule)
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            report.cells_checked += 1
            key = next((p for p in reversed(path) if not p.isdigit()), "")
            counts_people = _is_people_column(key) or (len(path) >= 2 and path[-2] == "inputs")
            if people and counts_people and 1 <= value <= report.threshold - 1:
                report.add(file, f"key {'.'.join(path)}", FREQUENCY_THRESHOLD)

    walk(data, [], True)


def _check_table_cells(t: _Table, report: CheckReport) -> None:
    frame, masked = t.frame, t.masked
    report.cells_checked += frame.size
    report.masked_cells += int(masked.to_numpy().sum())
    for c in t.counts:
        values = frame[c].to_numpy()
        for r in np.flatnonzero((values >= 1) & (values <= report.threshold - 1)):
            rule = SURVIVAL_SMALL_RISK if c == t.at_risk else FREQUENCY_THRESHOLD
            report.add(t.file, f"row {r}, column {c!r}", rule)
        if c == t.at_risk:
            for r in np.flatnonzero(values == 0):
                report.add(t.file, f"row {r}, column {c!r}", SURVIVAL_SMALL_RISK)
    df_cols = [c for c in frame.columns if _RESIDUAL_DF.match(c)]
    is_regression = any(_REGRESSION_COLUMN.search(c) for c in frame.columns)
    for stat, n_col in t.statistics.items():
        for r in np.flatnonzero(frame[stat].notna().to_numpy()):
            if n_col is None or n_col not in frame.columns:
                continue
            if bool(masked[n_col].iloc[r]):
                report.add(t.file, f"row {r}, column {stat!r}", MAGNITUDE_SMALL_N,
                           f"{report.reason(MAGNITUDE_SMALL_N)}: shown next to the masked count {n_col!r}")
            elif not math.isnan(frame[n_col].iloc[r]) and frame[n_col].iloc[r] < report.threshold:
                rule = SURVIVAL_SMALL_RISK if n_col == t.at_risk else MAGNITUDE_SMALL_N
                report.add(t.file, f"row {r}, column {stat!r}", rule)
    if t.at_risk is None and t.counts:
        # Outside a curve a statistic is a ratio of its row's counts: with the denominator shown it gives
        # back a masked numerator (a percentage and its n give the count).
        any_masked = masked[t.counts].any(axis=1).to_numpy()
        for stat, n_col in t.statistics.items():
            shown = frame[stat].notna().to_numpy() & any_masked
            if n_col in masked.columns:
                shown &= ~masked[n_col].to_numpy()
            for r in np.flatnonzero(shown):
                report.add(t.file, f"row {r}, column {stat!r}", MAGNITUDE_SMALL_N,
                           f"{report.reason(MAGNITUDE_SMALL_N)}: shown in a row whose counts are masked")
    if is_regression:
        for c in df_cols:
            values = pd.to_numeric(frame[c], errors="coerce").to_numpy(dtype=float)
            for r in np.flatnonzero(values < report.threshold):
                report.add(t.file, f"row {r}, column {c!r}", REGRESSION_SMALL_N)


# --- text in figures and pages ------------------------------------------------------------------------------


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self._skip += 1
        elif tag in ("br", "p", "tr", "li", "div", "h1", "h2", "h3", "h4", "td", "th", "table", "text", "title"):
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style") and self._skip:
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def _strip_tags(html: str) -> str:
    parser = _Text()
    parser.feed(html)
    return "".join(parser.parts)


class _Grids(HTMLParser):
    """Every ``<table>`` of a page as (header, rows) of cell texts."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.grids: list[tuple[list[str], list[list[str]]]] = []
        self._cell: list[str] | None = None
        self._row: list[str] = []
        self._header: list[str] = []
        self._rows: list[list[str]] = []
        self._in_head = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table":
            self._header, self._rows = [], []
        elif tag == "tr":
            self._row, self._in_head = [], False
        elif tag in ("td", "th"):
            self._cell = []
            self._in_head = self._in_head or tag == "th"

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None:
            self._row.append("".join(self._cell).strip())
            self._cell = None
        elif tag == "tr":
            if self._in_head and not self._rows and not self._header:
                self._header = self._row
            else:
                self._rows.append(self._row)
        elif tag == "table":
            self.grids.append((self._header, self._rows))

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def _html_tables(html: str) -> list[tuple[list[str], list[list[str]]]]:
    parser = _Grids()
    parser.feed(html)
    return [(h, rows) for h, rows in parser.grids if h]


def _markdown_tables(text: str) -> list[tuple[list[str], list[list[str]]]]:
    grids, block = [], []
    for line in [*text.splitlines(), ""]:
        if line.strip().startswith("|"):
            block.append([c.strip() for c in line.strip().strip("|").split("|")])
        else:
            if len(block) >= 2 and all(set(c) <= set("-: ") for c in block[1]):
                grids.append((block[0], block[2:]))
            block = []
    return grids


def _check_svg(file: str, svg: str, report: CheckReport) -> None:
    texts = re.findall(r"<(text|title|desc|tspan)\b[^>]*>(.*?)</\1>", svg, flags=re.DOTALL)
    check_text(file + ".txt", "\n".join(t for _, t in texts), report)
    for _, t in texts:
        if _number(_strip_tags(t)) is not None:
            report.cells_checked += 1


def _png_chunks(data: bytes) -> Iterator[tuple[bytes, bytes]]:
    pos = 8
    while pos + 8 <= len(data):
        length = int.from_bytes(data[pos:pos + 4], "big")
        kind = data[pos + 4:pos + 8]
        yield kind, data[pos + 8:pos + 8 + length]
        pos += 12 + length


def _check_png_text(file: str, data: bytes, report: CheckReport) -> None:
    if not data.startswith(b"\x89PNG\r\n\x1a\n"):
        report.add(file, "file", UNREADABLE_OUTPUT, "not a PNG file")
        return
    texts = []
    for kind, body in _png_chunks(data):
        if kind == b"tEXt":
            texts.append(body.replace(b"\x00", b": ").decode("latin-1"))
        elif kind == b"zTXt":
            key, _, rest = body.partition(b"\x00")
            texts.append(key.decode("latin-1") + ": " + zlib.decompress(rest[1:]).decode("latin-1"))
        elif kind == b"iTXt":
            key, _, rest = body.partition(b"\x00")
            flag, rest = rest[0], rest[2:]
            _, _, rest = rest.partition(b"\x00")
            _, _, rest = rest.partition(b"\x00")
            texts.append(key.decode("latin-1") + ": " + (zlib.decompress(rest) if flag else rest).decode("utf-8"))
    check_text(file + ".txt", "\n".join(texts), report)


def _check_figure_sources(file: str, manifest: Any, tables: Sequence[_Table], report: CheckReport) -> None:
    stem = Path(file).stem
    figures = {f.get("name"): f for f in (manifest or {}).get("figures", []) if isinstance(f, dict)}
    if stem not in figures:
        report.add(file, "figure", UNREADABLE_OUTPUT, "no manifest entry names the tables this figure is drawn "
                                                     "from, so what it shows cannot be checked")
        return
    present = {t.name for t in tables}
    missing = [t for t in figures[stem].get("tables", []) if t not in present]
    if missing or not figures[stem].get("tables"):
        report.add(file, "figure", UNREADABLE_OUTPUT,
                   f"the figure's source tables {missing or '(none listed)'} are not in the export, so what it "
                   "shows cannot be checked")


# --- differencing -----------------------------------------------------------------------------------------


def _labels(t: _Table) -> list[str]:
    numeric = set(t.counts) | set(t.statistics)
    return [c for c in t.frame.columns if c not in numeric and c not in t.groups]


def _cell_key(t: _Table, r: int, col: str, dims: Sequence[str], drop: str | None = None) -> tuple:
    frame = t.frame
    labels = tuple((c, frame[c].iloc[r]) for c in _labels(t))
    coords = []
    for d in dims:
        if d == drop or d not in t.groups:
            coords.append(_TOTAL)
        else:
            value = frame[d].iloc[r]
            coords.append(_TOTAL if t.total is not None and value == t.total else value)
    return (col, labels, tuple(coords))


def _check_differencing(tables: Sequence[_Table], report: CheckReport) -> None:
    """Margins of a table and across the tables of the export: can a masked count be recomputed?

    A reader knows every visible count, that a margin row is the sum of its cells, that the total of a
    dimension summed in one table equals the matching total printed in another, and that the same cell
    (column, labels, coordinates; a dimension a table lacks counting as its total) printed twice is one
    number. Counts are never negative.
    """
    # A curve is a sequence over time, not a partition of people: it takes no part in margins.
    tables = [t for t in tables if t.at_risk is None and t.counts]
    dims = sorted({d for t in tables for d in t.groups})
    # One variable per cell key; a CSV and a Parquet file of the same table give the same cells.
    value: dict[tuple, float] = {}
    unknown: set[tuple] = set()
    place: dict[tuple, tuple[str, str]] = {}
    for t in tables:
        for c in t.counts:
            for r in range(len(t.frame)):
                key = _cell_key(t, r, c, dims)
                place.setdefault(key, (t.file, f"row {r}, column {c!r}"))
                v = t.frame[c].iloc[r]
                if bool(t.masked[c].iloc[r]) or math.isnan(v):
                    unknown.add(key)
                else:
                    value[key] = float(v)
    unknown -= set(value)  # shown elsewhere: the reader knows it
    equations: dict[tuple, tuple[tuple, frozenset, bool]] = {}
    for t in tables:
        own = {_cell_key(t, r, c, dims) for r in range(len(t.frame)) for c in t.counts}
        for g in t.groups:
            lines: dict[tuple, list[tuple]] = defaultdict(list)
            for r in range(len(t.frame)):
                if t.total is not None and t.frame[g].iloc[r] == t.total:
                    continue
                for c in t.counts:
                    lines[_cell_key(t, r, c, dims, drop=g)].append(_cell_key(t, r, c, dims))
            for total, parts in lines.items():
                if total not in value and total not in unknown:
                    continue
                equations.setdefault((total, frozenset(parts)), (total, frozenset(parts), total in own))
    rows = list(equations.values())
    # A line whose hidden cells are all parts and sum to 1..9 reveals a small group of people.
    for total, parts, same in rows:
        hidden = [p for p in parts if p in unknown]
        if total in value and hidden:
            rest = value[total] - sum(value[p] for p in parts if p in value)
            if 1 <= round(rest) <= report.threshold - 1:
                file, where = place[hidden[0]]
                rule = DIFFERENCING_TABLE if same else DIFFERENCING_EXPORT
                report.add(file, where, rule, f"{report.reason(rule)}: the masked cells of this margin line sum to 1 "
                                             f"to {report.threshold - 1}")
    _solve(rows, value, unknown, place, report)


def _solve(rows, value, unknown, place, report: CheckReport) -> None:
    """Linear algebra and non-negativity over the masked cells, one connected component at a time."""
    involved = [(total, parts, same) for total, parts, same in rows
                if total in unknown or any(p in unknown for p in parts)]
    if not involved:
        return
    parent: dict[tuple, tuple] = {}

    def find(x: tuple) -> tuple:
        while parent.setdefault(x, x) != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for total, parts, _ in involved:
        cells = [c for c in [total, *parts] if c in unknown]
        for c in cells[1:]:
            parent[find(c)] = find(cells[0])
    components: dict[tuple, list[int]] = defaultdict(list)
    for i, (total, parts, _) in enumerate(involved):
        first = next(c for c in [total, *parts] if c in unknown)
        components[find(first)].append(i)
    for eqs in components.values():
        cells = sorted({c for i in eqs for c in [involved[i][0], *involved[i][1]] if c in unknown}, key=repr)
        index = {c: j for j, c in enumerate(cells)}
        a = np.zeros((len(eqs), len(cells)))
        b = np.zeros(len(eqs))
        for k, i in enumerate(eqs):
            total, parts, _ = involved[i]
            # total - sum(parts) = 0, known terms moved to the right-hand side
            for c, sign in [(total, 1.0), *((p, -1.0) for p in parts)]:
                if c in index:
                    a[k, index[c]] += sign
                else:
                    b[k] -= sign * value[c]
        rule = DIFFERENCING_TABLE if all(involved[i][2] for i in eqs) else DIFFERENCING_EXPORT
        solution, *_ = np.linalg.lstsq(a, b, rcond=None)
        _, s, vt = np.linalg.svd(a)
        rank = int((s > 1e-9 * max(1.0, s.max(initial=0.0))).sum())
        null = vt[rank:]
        determined = np.all(np.abs(null) < 1e-9, axis=0) if len(null) else np.ones(len(cells), dtype=bool)
        for j in np.flatnonzero(determined):
            v = round(float(solution[j]))
            if 1 <= v <= report.threshold - 1:
                file, where = place[cells[j]]
                report.add(file, where, rule, f"{report.reason(rule)}: the margins determine it")
        free = np.flatnonzero(~determined)
        if 0 < len(free) <= 400:
            for j in free:
                bounds = []
                for sense in (1.0, -1.0):
                    cost = np.zeros(len(cells))
                    cost[j] = sense
                    res = linprog(cost, A_eq=a, b_eq=b, bounds=(0, None), method="highs")
                    bounds.append(sense * res.fun if res.status == 0 else None)
                low, high = bounds
                if low is not None and high is not None and low >= 1 - 1e-6 and high <= report.threshold - 1 + 1e-6:
                    file, where = place[cells[j]]
                    report.add(file, where, rule, f"{report.reason(rule)}: the margins and non-negativity bound it "
                                                 f"between 1 and {report.threshold - 1}")


def _check_at_risk_steps(tables: Sequence[_Table], report: CheckReport) -> None:
    """Within each curve, consecutive numbers at risk shown must differ by 0 or by at least 10.

    A curve is the rows of one group (every label column but the time) of the tables with the same label
    columns, time column and at-risk column: the monthly curve, the yearly at-risk table and net survival are read side
    by side, as a reader would. A number at risk shown at the same time in two tables is one point.
    """
    curves: dict[tuple, list[tuple[float, float, str, int]]] = defaultdict(list)
    for t in tables:
        labels = [*_labels(t), *t.groups]
        time = next((c for c in labels if _TIME_COLUMN.match(c)), None)
        at_risk = [c for c in t.counts if c == t.at_risk or _AT_RISK_COLUMN.match(c)]
        if time is None or not at_risk:
            continue
        others = sorted(c for c in labels if c != time)
        when = pd.to_numeric(t.frame[time], errors="coerce").to_numpy(dtype=float)
        for c in at_risk:
            values = t.frame[c].to_numpy(dtype=float)
            group_values = t.frame[others].itertuples(index=False, name=None) if others else iter([()] * len(t.frame))
            for r, (g, at, v) in enumerate(zip(group_values, when, values, strict=True)):
                if not (math.isnan(v) or math.isnan(at)):
                    curves[(c, time, tuple(others), g)].append((float(at), float(v), t.file, r))
    for (column, _, _, _), points in curves.items():
        # one point per (time, number at risk), with every place it is printed (CSV and Parquet, two tables)
        places: dict[tuple[float, float], list[tuple[str, int]]] = defaultdict(list)
        for at, v, file, r in sorted(set(points), key=lambda p: (p[0], -p[1], p[2], p[3])):
            places[(at, v)].append((file, r))
        previous = None
        for (at, v), where in places.items():
            if previous is not None and 1 <= abs(previous[0][1] - v) <= report.threshold - 1:
                (before_file, before_row), (file, r) = previous[1][0], where[0]
                what = (f"rows {before_row} and {r}" if before_file == file
                        else f"row {r} (after {before_file} row {before_row})")
                report.add(file, f"{what}, column {column!r}", DIFFERENCING_AT_RISK)
            previous = ((at, v), where)


def _check_cumulative(t: _Table, report: CheckReport) -> None:
    time = next((c for c in _labels(t) if _TIME_COLUMN.match(c)), None)
    if time is None:
        return
    others = [c for c in [*_labels(t), *t.groups] if c != time]
    for c in t.counts:
        if c == t.at_risk or not _CUMULATIVE.search(c):
            continue
        for _, group in t.frame.groupby(others, sort=False) if others else [(None, t.frame)]:
            ordered = group.assign(_t=pd.to_numeric(group[time], errors="coerce")).sort_values(["_t", time])
            visible = ordered[c].dropna()
            steps = visible.diff().to_numpy()[1:]
            for r, step in zip(visible.index[1:], steps, strict=True):
                if 1 <= step <= report.threshold - 1:
                    report.add(t.file, f"row {r}, column {c!r}", DIFFERENCING_CUMULATIVE)


# --- across runs ------------------------------------------------------------------------------------------


def _visible_cells(tables: Sequence[_Table]) -> dict[tuple, tuple[float, str, str]]:
    cells = {}
    for t in tables:
        labels = [c for c in t.frame.columns if c not in set(t.counts) | set(t.statistics)]
        for c in t.counts:
            for r in range(len(t.frame)):
                v = t.frame[c].iloc[r]
                if not math.isnan(v):
                    key = (t.name, c, tuple((lc, t.frame[lc].iloc[r]) for lc in labels))
                    cells.setdefault(key, (float(v), t.file, f"row {r}, column {c!r}"))
    return cells


def _check_other_runs(folder: Path, tables: Sequence[_Table], runs: Sequence[Path], report: CheckReport) -> None:
    for t in tables:
        _check_cumulative(t, report)
    if not runs:
        return
    mine = _visible_cells(tables)
    for run in runs:
        scratch = CheckReport()
        theirs = _visible_cells(_read_tables(run, _load_json(run / "manifest.json", scratch), scratch))
        for key, (v, file, where) in mine.items():
            if key in theirs and 1 <= abs(v - theirs[key][0]) <= report.threshold - 1:
                report.add(file, where, DIFFERENCING_RUNS,
                           f"{report.reason(DIFFERENCING_RUNS)} ({run.name}, {theirs[key][1]} {theirs[key][2]})")


# --- what sits beside the exports: index, audit log, mail -------------------------------------------------


def check_exports_root(root: Path, *, threshold: int | None = None) -> CheckReport:
    """Check what a researcher can read beside the run folders: ``index.html`` and the audit log.

    The audit log (``_audit/audit.sqlite3``) is read as a reader of the exports folder would: every event's
    JSON detail is checked like a JSON file, and every count it keeps for cross-run comparison must be safe.
    ``threshold`` as in :func:`check_export`.
    """
    import sqlite3  # only here: the rest of the checker reads files

    report = CheckReport(threshold=disclosure_threshold(threshold))
    index = root / "index.html"
    if index.is_file():
        report.files_checked += 1
        check_text("index.html", index.read_text(encoding="utf-8", errors="replace"), report)
    audit = root / "_audit" / "audit.sqlite3"
    if audit.is_file():
        report.files_checked += 1
        with sqlite3.connect(f"file:{audit}?mode=ro", uri=True) as con:
            for event_id, detail in con.execute("select id, detail from events"):
                try:
                    data = json.loads(detail) if detail else None
                except json.JSONDecodeError:
                    data = detail
                if data is not None:
                    _check_json(f"_audit/audit.sqlite3#event {event_id}", data, report)
            for study, run, cell, value in con.execute("select study_id, run_id, cell, value from published_cells"):
                report.cells_checked += 1
                if 1 <= value <= report.threshold - 1:
                    report.add("_audit/audit.sqlite3", f"published_cells {study}/{run} {cell}", FREQUENCY_THRESHOLD)
    return report


def check_mail(folder: Path, subject: str, text: str, html: str | None = None) -> None:
    """Refuse a notification mail that states a small count (:class:`OutputCheckFailed`)."""
    report = CheckReport()
    check_text("mail.txt", f"{subject}\n{text}", report)
    if html:
        check_text("mail.html", html, report)
    if report.findings:
        raise OutputCheckFailed(Path(folder), report.findings)
