"""Line-level rules of the raw gate, checked exactly on every line by DuckDB (or Spark, translated).

A rule (:class:`LineRule`) says what every line of a source must satisfy: a mandatory field, a date that
parses and lies in range, a code format, a value set, a numeric range, a date order. The raw suite
``raw.<source>.rows`` holds one expectation per rule (``suites.py`` builds it from the rules here), and
:func:`rules_frame` measures every rule over *all* the lines of an extraction in one streaming DuckDB pass:
per rule, the lines it applies to, the lines that break it and a few of those lines (ordered by the key, so
the sample is reproducible). GX then judges that small frame, as it judges the extraction frame.

Why exact rather than sampled: a sample estimates a rate well but can miss a handful of bad lines, and
at 100 million lines one aggregate pass costs less than running GX's pandas engine on a 200,000-line
sample (measured in ``benchmarks/quality.py``; see ``expectations/README.md``).

Semantics follow GX's map expectations: null values are not judged (except by ``not_null``), and a rule
with tolerance ``mostly`` fails when the share of breaking lines among judged lines exceeds ``1 - mostly``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

import pandas as pd

from oncopipe.contracts.sources import Source
from oncopipe.quality.frames import METRIC_COLUMNS
from oncopipe.quality.spark_sql import GateConnection

Kind = Literal["not_null", "date_parse", "date_range", "regex", "in_set", "range", "cip13", "date_order", "sql"]
SAMPLE_ROWS = 5
BIRTH = "__birth__"
"""Pseudo-column of ir_ben_r: the first day of the month of birth (``BEN_NAI_ANN-BEN_NAI_MOI-01``)."""


@dataclass(frozen=True)
class LineRule:
    """One rule every line of a source must satisfy (up to a tolerance).

    Attributes:
        name: stable expectation name (``PHA_PRS_C13.cip13_format``), used in messages, history and tests.
        severity: ``critical`` stops the gate, ``warning`` is recorded and shown.
        rule: the rule in words (shown as *expected* in messages).
        kind: what is checked (see :func:`predicates`).
        columns: the checked column; for ``date_order``, the later then the earlier date.
        mostly: least share of judged lines that must satisfy the rule (1.0: zero tolerance).
        params: ``regex``, ``values``, ``low``/``high`` (``None``: unbounded) depending on ``kind``;
            ``earlier_month`` (``date_order``): compare with the first day of the earlier date's month;
            ``until_extraction`` (``date_order``): judge only lines whose earlier date is not after the extraction;
            ``breaks`` (``sql``): a SQL predicate over the landed columns, ``{extraction}`` standing for the
            extraction date (the exclusion rules, :mod:`oncopipe.quality.exclusions`).
        basis: where the rule comes from (the SNDS dictionary and its nomenclatures, the registry's coding
            rules, the extract specification), shown with every failure.
        consequence: what a failure does when it is not the severity's default (``exclude``: the breaking lines
            are left out of staging and counted in the ledger).
    """

    name: str
    severity: str
    rule: str
    kind: Kind
    columns: tuple[str, ...]
    mostly: float = 1.0
    params: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)
    basis: str = ""
    consequence: str = ""

    @property
    def max_share(self) -> float:
        """Largest tolerated share of breaking lines among judged lines."""
        return round(1.0 - self.mostly, 10)


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _lit(value: Any) -> str:
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    return repr(float(value)) if isinstance(value, float) else str(int(value))


def _text(column: str) -> str:
    """The column as text (a midnight timestamp loses its time, as an ISO date reads)."""
    return f"regexp_replace(cast({_q(column)} as varchar), ' 00:00:00$', '')"


def _date(column: str) -> str:
    if column == BIRTH:
        return """try_cast(concat("BEN_NAI_ANN", '-', "BEN_NAI_MOI", '-01') as date)"""
    return f"try_cast({_q(column)} as date)"


def _number(column: str) -> str:
    return f"try_cast({_q(column)} as double)"


def _cip13_ok(value: str) -> str:
    """SQL twin of :func:`oncopipe.quality.formats.is_valid_cip13` on a text expression."""
    digits = " + ".join(f"{3 if i % 2 else 1} * try_cast(substr({value}, {i + 1}, 1) as integer)" for i in range(12))
    return (f"(regexp_full_match({value}, '34009[0-9]{{8}}') "
            f"and (10 - ({digits}) % 10) % 10 = try_cast(substr({value}, 13, 1) as integer))")


def _regex_breaks(column: str, regex: str) -> str:
    text = f"cast({_q(column)} as varchar)"
    if regex.startswith("^") and regex.endswith("$") and not regex.endswith("\\$"):
        # Anchored both ends: a full match, about 3x faster in DuckDB than a search (measured).
        return f"not regexp_full_match({text}, {_lit(regex[1:-1])})"
    return f"not regexp_matches({text}, {_lit(regex)})"


def predicates(rule: LineRule, src: Source, extraction_date: str,
               text_dates: frozenset[str] = frozenset()) -> tuple[str, str]:
    """``(judged, breaks)``: SQL predicates over a line for the lines the rule judges and those breaking it.

    A ``date_range`` rule without ``high`` ends at ``extraction_date`` (``YYYY-MM-DD``). ``text_dates`` names
    the date columns that arrive as text in some file (CSV, or a faulty Parquet file); only those can fail
    ``date_parse``: a Parquet date (or timestamp) is a date by construction, so its check costs nothing.
    """
    types = {c.name: c.type for c in src.columns}
    col = rule.columns[0]
    p = rule.params
    if rule.kind == "not_null":
        return "true", f"{_q(col)} is null"
    if rule.kind == "date_parse":
        if col not in text_dates:
            return f"{_q(col)} is not null", "false"
        return f"{_q(col)} is not null", f"try_strptime({_text(col)}, '%Y-%m-%d') is null"
    if rule.kind == "date_range":
        d, high = _date(col), p.get("high") or extraction_date
        return f"{d} is not null", f"({d} < date {_lit(p['low'])} or {d} > date {_lit(high)})"
    if rule.kind == "date_order":
        later, earlier = (_date(c) for c in rule.columns)
        judged = f"({later} is not null and {earlier} is not null"
        if p.get("until_extraction"):
            # A date after the extraction date is judged (and excluded) by its own rule: it orders nothing.
            judged += f" and {earlier} <= date {_lit(extraction_date)}"
        if p.get("earlier_month"):
            earlier = f"date_trunc('month', {earlier})"
        return judged + ")", f"{later} < {earlier}"
    if rule.kind == "regex":
        if types.get(col) != "string":
            raise ValueError(f"{src.name}.{rule.name}: a format rule needs a string column, {col} is {types.get(col)}")
        return f"{_q(col)} is not null", _regex_breaks(col, p["regex"])
    if rule.kind == "cip13":
        return f"{_q(col)} is not null", f"not coalesce({_cip13_ok(f'cast({_q(col)} as varchar)')}, false)"
    if rule.kind == "in_set":
        if types.get(col) in ("int", "float"):
            value, values = _number(col), ", ".join(_lit(float(v)) for v in p["values"])
        else:
            value, values = f"cast({_q(col)} as varchar)", ", ".join(_lit(str(v)) for v in p["values"])
        return f"{_q(col)} is not null", f"{value} not in ({values})"
    if rule.kind == "range":
        x = _number(col)
        bounds = [f"{x} < {_lit(p['low'])}"] if p.get("low") is not None else []
        bounds += [f"{x} > {_lit(p['high'])}"] if p.get("high") is not None else []
        return f"{x} is not null", "(" + " or ".join(bounds or ["false"]) + ")"
    if rule.kind == "sql":
        breaks = p["breaks"].replace("{extraction}", f"date {_lit(extraction_date)}")
        return f"{_q(col)} is not null", f"({breaks})"
    raise ValueError(f"unknown line-rule kind {rule.kind!r}")


PER_VALUE_KINDS = frozenset({"cip13"})
"""Kinds counted once per distinct value (then weighted by its lines) rather than once per line: a CIP13
check digit costs ~2 s of CPU per 9M lines, a count by code ~0.1 s (measured; a few hundred codes)."""


def rules_frame(con: GateConnection, relation: str, src: Source, rules: list[LineRule],
                extraction_date: str, lines: int, text_dates: frozenset[str] = frozenset()) -> pd.DataFrame:
    """Measure ``rules`` on every line of ``relation`` as a metric frame for GX.

    One row per rule: ``metric`` = rule name, ``subject`` = checked column(s), ``value`` = share of the judged
    lines that break the rule (0 when none is judged), ``detail`` = JSON with ``breaking``, ``judged``,
    ``lines`` and ``sample`` (up to :data:`SAMPLE_ROWS` breaking lines: key columns and checked values, the
    smallest keys first). ``text_dates``: see :func:`predicates`.

    One DuckDB pass counts every rule (:data:`PER_VALUE_KINDS` are counted by distinct value instead); a second
    pass, only when some rule is broken, fetches the samples of the broken rules (building sample rows for every
    rule in the first pass tripled its cost, measured).
    """
    key = list(src.key)
    checks: dict[tuple[str, str], int] = {}  # a warning twin shares its critical rule's check
    columns: dict[int, list[str]] = {}
    per_value: dict[int, str] = {}
    for rule in rules:
        check = predicates(rule, src, extraction_date, text_dates)
        if check not in checks:
            i = checks[check] = len(checks)
            shown = [*key, *(c for c in rule.columns if c != BIRTH)]
            if BIRTH in rule.columns:
                shown += ["BEN_NAI_ANN", "BEN_NAI_MOI"]
            columns[i] = list(dict.fromkeys(shown))
            if rule.kind in PER_VALUE_KINDS:
                per_value[i] = rule.columns[0]

    def lined(wanted: list[int]) -> str:
        # Each line's verdict is computed once per check: null when the rule does not judge the line.
        flags = ", ".join(f"case when {j} then {b} end as __b{i}" for (j, b), i in checks.items() if i in wanted)
        return f"(select *, {flags} from {relation})"

    counts: dict[int, tuple[int, int]] = {}
    per_line = [i for i in checks.values() if i not in per_value]
    if per_line:
        row = con.execute("select " + ", ".join(f"count(__b{i}), count(*) filter (where __b{i})" for i in per_line)
                          + f" from {lined(per_line)}").fetchone()
        counts = {i: (row[2 * k], row[2 * k + 1]) for k, i in enumerate(per_line)}
    for (judged, breaks), i in checks.items():
        if i in per_value:
            col = _q(per_value[i])
            n_judged, breaking = con.execute(f"""
                select coalesce(sum(__n) filter (where {judged}), 0),
                       coalesce(sum(__n) filter (where {judged} and {breaks}), 0)
                from (select {col}, count(*) as __n from {relation} group by {col})""").fetchone()
            counts[i] = (int(n_judged), int(breaking))
    broken = [i for i in checks.values() if counts[i][1]]
    samples: dict[int, Any] = {}
    if broken:
        order = "struct_pack(" + ", ".join(f"{_q(c)} := {_q(c)}" for c in key) + ")"
        shown = {i: "struct_pack(" + ", ".join(f"{_q(c)} := {_q(c)}" for c in columns[i]) + ")" for i in broken}
        fetched = con.execute("select " + ", ".join(
            f"arg_min({shown[i]}, {order}, {SAMPLE_ROWS}) filter (where __b{i})" for i in broken)
            + f" from {lined(broken)} where " + " or ".join(f"__b{i}" for i in broken)).fetchone()
        samples = dict(zip(broken, fetched, strict=True))
    out = []
    for rule in rules:
        i = checks[predicates(rule, src, extraction_date, text_dates)]
        n_judged, breaking = counts[i]
        detail = {"breaking": breaking, "judged": n_judged, "lines": lines,
                  "sample": json.loads(json.dumps(samples.get(i) or [], default=str))}
        out.append({"metric": rule.name, "subject": ", ".join(rule.columns).replace(BIRTH, "birth month"),
                    "value": breaking / n_judged if n_judged else 0.0,
                    "detail": json.dumps(detail, ensure_ascii=False)})
    return pd.DataFrame(out, columns=list(METRIC_COLUMNS))
