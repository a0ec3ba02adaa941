"""The approximate French life table and the INSEE loader."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from oncopipe.contracts.settings import DBT_PROJECT_DIR
from oncopipe.landing.lifetables import (
    AGES,
    E0_ANCHORS,
    YEARS,
    build_life_table,
    hazard_array,
    life_expectancy,
    load_insee_life_table,
    write_life_table,
)


def test_shape_and_columns():
    table = build_life_table()
    assert list(table.columns) == ["sex", "age", "year", "qx", "hazard"]
    assert len(table) == 2 * len(AGES) * len(YEARS)
    assert set(table["sex"]) == {"male", "female"}
    assert table["age"].min() == 0 and table["age"].max() == 110
    assert table["year"].min() == 1990 and table["year"].max() == 2035
    assert not table.duplicated(["sex", "age", "year"]).any()


def test_qx_in_range_and_hazard_consistent():
    table = build_life_table()
    assert ((table["qx"] >= 0) & (table["qx"] <= 1)).all()
    below = table["qx"] < 0.99
    np.testing.assert_allclose(table.loc[below, "hazard"], -np.log1p(-table.loc[below, "qx"]), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("sex", ["male", "female"])
@pytest.mark.parametrize("year", [1990, 2010, 2019, 2023])
def test_life_expectancy_matches_insee_anchor(sex, year):
    table = build_life_table()
    qx = table[(table["sex"] == sex) & (table["year"] == year)].sort_values("age")["qx"].to_numpy()
    assert life_expectancy(qx) == pytest.approx(E0_ANCHORS[sex][year], abs=0.05)


def test_mortality_rises_with_age_after_30_and_women_live_longer():
    h = hazard_array()
    assert (np.diff(h[:, 30:110, :], axis=1) > 0).all()
    assert (h[1, 40:100, :] < h[0, 40:100, :]).all()
    # Published order of magnitude (INSEE 2019): q65 men ~1.3 %, women ~0.7 %.
    table = build_life_table().set_index(["sex", "age", "year"])["qx"]
    assert 0.010 < table[("male", 65, 2019)] < 0.017
    assert 0.005 < table[("female", 65, 2019)] < 0.009


def test_committed_seed_equals_the_table(tmp_path):
    seed = DBT_PROJECT_DIR / "seeds" / "french_life_tables.csv"
    fresh = write_life_table(tmp_path / "lt.csv")
    assert seed.read_bytes() == fresh.read_bytes()


def test_load_insee_file_per_100000(tmp_path):
    path = tmp_path / "insee.csv"
    rows = ["annee;sexe;age;quotient"]
    for year in (2019, 2020):
        for sex in ("1", "2"):
            for age in range(0, 3):
                rows.append(f"{year};{sex};{age};{'1 234,5' if age == 2 else 350}")
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    table = load_insee_life_table(path)
    assert list(table.columns) == ["sex", "age", "year", "qx", "hazard"]
    assert len(table) == 12
    row = table[(table["sex"] == "female") & (table["age"] == 2) & (table["year"] == 2020)].iloc[0]
    assert row["qx"] == pytest.approx(0.012345)
    assert row["hazard"] == pytest.approx(-np.log(1 - 0.012345))


def test_load_insee_errors_name_file_and_row(tmp_path):
    path = tmp_path / "bad.csv"
    pd.DataFrame({"annee": [2019, 2019], "sexe": ["1", "Z"], "age": [0, 1], "quotient": [0.1, 0.2]}).to_csv(
        path, sep=";", index=False)
    with pytest.raises(ValueError, match=r"bad\.csv: row 3: unknown sex 'Z'"):
        load_insee_life_table(path)
    path.write_text("year;sex;age\n2019;1;0\n")
    with pytest.raises(ValueError, match="no column for 'qx'"):
        load_insee_life_table(path)
