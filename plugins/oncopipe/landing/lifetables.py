"""French general-population life tables: annual probability of death by sex, age and calendar year.

The table has one row per sex (``male``/``female``), single year of age 0..110 and calendar year
1990..2035, with ``qx`` (probability of dying within the year at age ``x``) and ``hazard = -ln(1 - qx)``
(per year, constant within the year of age). Net-survival methods (Pohar-Perme, Ederer II) and the
synthetic generator both read it.

Where the figures come from. The official INSEE mortality quotients by single year of age were not
available offline when this module was written, so :func:`build_life_table` is an **approximation**: for
each sex and year a Gompertz-Makeham force of mortality ``mu(x) = A + B exp(c x)`` (ages >= 1) plus an
infant mortality ``q0``, whose level ``B`` is fitted so that the table's life expectancy at birth equals the
published INSEE figure for that sex and year (``E0_ANCHORS``, interpolated between anchor years; 2025..2035
follow the INSEE central projection trend). The shape (``A``, ``c``) follows the published age pattern
(INED: about 1 death per 10,000 at age 10, 2 (women) / 5 (men) per 10,000 at 20, +8 to 10 % a year of age
after 30). Expect errors of a few tenths of a point on ``qx`` at a given age, not on life expectancy.

To use the real table, download INSEE's mortality quotients (see :func:`load_insee_life_table`) and load
them instead: the rest of the platform only needs the columns above.
"""

from __future__ import annotations

import math
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

AGES = np.arange(0, 111)
YEARS = np.arange(1990, 2036)
SEXES = ("male", "female")
COLUMNS = ["sex", "age", "year", "qx", "hazard"]

# Life expectancy at birth, France (INSEE, bilan démographique; 2030 and 2035 from the central projection).
E0_ANCHORS: dict[str, dict[int, float]] = {
    "male": {1990: 72.7, 1995: 73.8, 2000: 75.2, 2005: 76.7, 2010: 78.0, 2015: 79.0, 2019: 79.7,
             2020: 79.1, 2021: 79.3, 2022: 79.3, 2023: 80.0, 2024: 80.0, 2030: 81.0, 2035: 81.8},
    "female": {1990: 80.9, 1995: 81.8, 2000: 82.8, 2005: 83.8, 2010: 84.6, 2015: 85.1, 2019: 85.6,
               2020: 85.1, 2021: 85.4, 2022: 85.2, 2023: 85.7, 2024: 85.6, 2030: 86.4, 2035: 87.0},
}
# Infant mortality (probability of dying before age 1), both sexes, per year (INSEE), sex ratio applied below.
Q0_ANCHORS: dict[int, float] = {1990: 0.0073, 2000: 0.0045, 2010: 0.0036, 2020: 0.0035, 2035: 0.0030}
Q0_SEX_RATIO = {"male": 1.12, "female": 0.88}
# Gompertz-Makeham shape: background (Makeham) term and slope per year of age.
MAKEHAM_A = {"male": 4.0e-4, "female": 1.5e-4}
GOMPERTZ_C = {"male": 0.088, "female": 0.104}


def _interpolate(anchors: dict[int, float], year: int) -> float:
    xs = sorted(anchors)
    return float(np.interp(year, xs, [anchors[x] for x in xs]))


def _qx_for(sex: str, b: float, q0: float) -> np.ndarray:
    a, c = MAKEHAM_A[sex], GOMPERTZ_C[sex]
    x = AGES[1:].astype(float)
    # Integrated force over [x, x+1): A + B e^{cx} (e^c - 1) / c.
    cum = a + b * np.exp(c * x) * (math.exp(c) - 1.0) / c
    qx = np.empty(len(AGES))
    qx[0] = q0
    qx[1:] = 1.0 - np.exp(-cum)
    qx[-1] = 1.0  # the table closes at 110
    return np.minimum(qx, 1.0)


def life_expectancy(qx: np.ndarray) -> float:
    """Life expectancy at birth of a single-year table (deaths at mid-year; the last age closes the table)."""
    survivors = np.concatenate([[1.0], np.cumprod(1.0 - qx)])
    return float(np.sum((survivors[:-1] + survivors[1:]) / 2.0))


def _fit_b(sex: str, e0: float, q0: float) -> float:
    lo, hi = 1e-8, 1e-2
    for _ in range(80):  # bisection on log B: e0 decreases when B increases
        mid = math.sqrt(lo * hi)
        if life_expectancy(_qx_for(sex, mid, q0)) > e0:
            lo = mid
        else:
            hi = mid
    return math.sqrt(lo * hi)


@lru_cache(maxsize=1)
def build_life_table() -> pd.DataFrame:
    """Build the approximate French life table (see the module docstring for the method).

    Returns:
        A DataFrame with columns ``sex, age, year, qx, hazard``, sorted by sex (male first), year, age.
    """
    frames = []
    for sex in SEXES:
        for year in YEARS:
            q0 = _interpolate(Q0_ANCHORS, int(year)) * Q0_SEX_RATIO[sex]
            b = _fit_b(sex, _interpolate(E0_ANCHORS[sex], int(year)), q0)
            qx = _qx_for(sex, b, q0)
            frames.append(pd.DataFrame({"sex": sex, "age": AGES, "year": int(year), "qx": qx}))
    table = pd.concat(frames, ignore_index=True)
    table["qx"] = table["qx"].round(8)
    with np.errstate(divide="ignore"):
        table["hazard"] = -np.log1p(-table["qx"].clip(upper=1.0))
    # qx = 1 at 110 gives an infinite hazard; cap it at a large finite value so sums stay finite.
    table["hazard"] = table["hazard"].clip(upper=20.0).round(8)
    table["age"] = table["age"].astype("int64")
    table["year"] = table["year"].astype("int64")
    return table[COLUMNS]


def hazard_array(table: pd.DataFrame | None = None) -> np.ndarray:
    """The hazard as an array indexed ``[sex (0 male, 1 female), age 0..110, year - 1990]``."""
    table = build_life_table() if table is None else table
    out = np.zeros((2, len(AGES), len(YEARS)))
    for s, sex in enumerate(SEXES):
        sub = table[table["sex"] == sex]
        out[s, sub["age"].to_numpy(), sub["year"].to_numpy() - YEARS[0]] = sub["hazard"].to_numpy()
    return out


_INSEE_HEADERS = {
    "sex": ("sex", "sexe"),
    "age": ("age", "âge", "age_revolu", "age révolu"),
    "year": ("year", "annee", "année", "periode", "période"),
    "qx": ("qx", "quotient", "quotient de mortalité", "quotient_mortalite", "q"),
}


def load_insee_life_table(path: str | Path, per: float | None = None) -> pd.DataFrame:
    """Load an official INSEE mortality-quotient table into the platform's life-table format.

    INSEE publishes the quotients ("quotients de mortalité par sexe et âge", tables T68 and the annual
    "tables de mortalité") as CSV/XLSX. Save it as a long CSV (``;`` or ``,`` separated, UTF-8) with one row
    per sex, age and year and the headers ``sexe`` (``1``/``H``/``homme``/``male`` and ``2``/``F``/
    ``femme``/``female``), ``age`` (``100+``-style labels are read as their number), ``annee`` and
    ``quotient`` (English headers ``sex, age, year, qx`` work too). Quotients given per 100,000 or per
    1,000 (as INSEE prints them) are rescaled: pass ``per`` to force the scale, otherwise a column whose
    maximum exceeds 1 is divided by 100,000 when above 1,000 and by 1,000 otherwise.

    Args:
        path: the CSV file.
        per: the scale of the quotient column (1, 1000 or 100000); guessed when None.

    Returns:
        A DataFrame ``sex, age, year, qx, hazard`` sorted like :func:`build_life_table`.

    Raises:
        ValueError: naming the file and the problem (missing column, unknown sex, qx outside [0, 1]).
    """
    path = Path(path)
    raw = pd.read_csv(path, sep=None, engine="python", dtype=str, encoding="utf-8")
    lower = {c.strip().lower(): c for c in raw.columns}
    picked = {}
    for target, names in _INSEE_HEADERS.items():
        found = next((lower[n] for n in names if n in lower), None)
        if found is None:
            raise ValueError(f"{path}: no column for {target!r} (expected one of {names}); got {list(raw.columns)}")
        picked[target] = found
    out = pd.DataFrame({k: raw[v].str.strip() for k, v in picked.items()})
    sex_map = {"1": "male", "h": "male", "homme": "male", "hommes": "male", "m": "male", "male": "male",
               "2": "female", "f": "female", "femme": "female", "femmes": "female", "female": "female"}
    sex = out["sex"].str.lower().map(sex_map)
    bad = sex.isna()
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise ValueError(f"{path}: row {row + 2}: unknown sex {out['sex'].iloc[row]!r}")
    out["sex"] = sex
    out["age"] = pd.to_numeric(out["age"].str.extract(r"(\d+)")[0], errors="raise").astype("int64")
    out["year"] = pd.to_numeric(out["year"].str.extract(r"(\d{4})")[0], errors="raise").astype("int64")
    qx = pd.to_numeric(out["qx"].str.replace(",", ".", regex=False).str.replace(" ", "", regex=False),
                       errors="coerce")
    if qx.isna().any():
        row = int(np.flatnonzero(qx.isna().to_numpy())[0])
        raise ValueError(f"{path}: row {row + 2}: quotient {out['qx'].iloc[row]!r} is not a number")
    scale = per if per is not None else (1.0 if qx.max() <= 1 else (100_000.0 if qx.max() > 1000 else 1000.0))
    out["qx"] = qx / scale
    if ((out["qx"] < 0) | (out["qx"] > 1)).any():
        raise ValueError(f"{path}: quotients outside [0, 1] after scaling by {scale:g}")
    with np.errstate(divide="ignore"):
        out["hazard"] = (-np.log1p(-out["qx"])).clip(upper=20.0)
    out["sex_order"] = out["sex"].map({"male": 0, "female": 1})
    out = out.sort_values(["sex_order", "year", "age"]).drop(columns="sex_order").reset_index(drop=True)
    return out[COLUMNS]


def write_life_table(path: str | Path, table: pd.DataFrame | None = None) -> Path:
    """Write the life table as CSV (``,`` separated, the dbt seed format) and return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    (build_life_table() if table is None else table).to_csv(path, index=False, float_format="%.8g")
    return path
