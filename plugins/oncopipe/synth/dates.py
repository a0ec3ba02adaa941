"""Dates as integer day numbers (days since 1970-01-01), the generator's internal representation."""

from __future__ import annotations

import datetime as dt
from functools import lru_cache

import numpy as np

EPOCH = dt.date(1970, 1, 1)
NEVER = np.int32(2**31 - 1)  # "no such event before the end of the simulated history"


def day(value: dt.date | str) -> int:
    """Day number of a date (or an ISO string)."""
    if isinstance(value, str):
        value = dt.date.fromisoformat(value)
    return (value - EPOCH).days


def to_date(days: int) -> dt.date:
    """The date of a day number."""
    return EPOCH + dt.timedelta(days=int(days))


def year_of(days: np.ndarray) -> np.ndarray:
    """Calendar year of each day number."""
    return days.astype("datetime64[D]").astype("datetime64[Y]").astype(np.int64) + 1970


@lru_cache(maxsize=1)
def _next_month_table() -> tuple[int, np.ndarray]:
    first = day("2000-01-01")
    days = np.arange(first, day("2040-01-01"), dtype=np.int64)
    months = days.astype("datetime64[D]").astype("datetime64[M]") + 1
    return first, months.astype("datetime64[D]").astype(np.int64)


def month_start_after(days: np.ndarray) -> np.ndarray:
    """First day of the month following each day number (table lookup for 2000..2039)."""
    days = np.asarray(days, dtype=np.int64)
    first, table = _next_month_table()
    inside = (days >= first) & (days < first + len(table))
    if inside.all():
        return table[days - first]
    months = days.astype("datetime64[D]").astype("datetime64[M]") + 1
    return months.astype("datetime64[D]").astype(np.int64)


def add_months(days: np.ndarray, months: np.ndarray | int) -> np.ndarray:
    """Add calendar months, clamping the day to the end of the target month (like pandas DateOffset)."""
    d = days.astype("datetime64[D]")
    m = d.astype("datetime64[M]")
    dom = (d - m.astype("datetime64[D]")).astype(np.int64)
    target = m + np.asarray(months)
    last = ((target + 1).astype("datetime64[D]") - target.astype("datetime64[D]")).astype(np.int64) - 1
    return (target.astype("datetime64[D]").astype(np.int64) + np.minimum(dom, last))
