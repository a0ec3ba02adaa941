"""Names shared by the frames the gates build and the suites that check them.

Raw gate, per source and extraction:
- the *extraction frame* (suite ``raw.<source>.extraction``): one row per measured fact, columns
  ``metric``, ``subject``, ``value``, ``detail``. Facts are per file (``file_readable``,
  ``encoding_utf8``, ``file_rows``), per file and column (``column_present``, ``column_type_ok``,
  ``column_expected``) or per extraction (``row_count_ratio``, ``month_volume_ratio``, key and
  cross-source shares). DuckDB computes them over every Parquet/CSV file; GX judges the small frame.
- the *rules frame* (suite ``raw.<source>.rows``): same columns, one row per line rule
  (:mod:`oncopipe.quality.line_rules`): ``metric`` = rule name, ``value`` = share of the judged lines that
  break it, measured by DuckDB on every line; ``detail`` holds the counts and a few breaking lines.

Marts gate: one frame per mart (suite ``marts.<mart>``) and one extraction-style frame comparing the
candidate with the published version (suite ``marts.comparisons``).
"""

from __future__ import annotations

METRIC_COLUMNS = ("metric", "subject", "value", "detail")


def raw_suite_name(source: str, level: str) -> str:
    """``raw.<source>.<level>`` with level ``extraction`` or ``rows``."""
    return f"raw.{source}.{level}"


def marts_suite_name(mart: str) -> str:
    """``marts.<mart>`` (or ``marts.comparisons``)."""
    return f"marts.{mart}"
