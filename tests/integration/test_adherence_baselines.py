"""The two pandas baselines of the adherence benchmark (benchmarks/dbt_build.py) compute the same thing.

The straightforward one walks each woman's days; the other uses the platform's vectorised PDC engine
(``oncopipe.methods.adherence``). On the hand-made landing fixture and on hand-made supplies built to hit each clause
of the rule (stock from before the index, carry-over across molecules, a dispensing during a stay, death day),
both give the same months, with known answers.
"""

from __future__ import annotations

import sys

import pandas as pd
import pytest
from dbt_landing_fixture import write_landing
from oncopipe.contracts.settings import PROJECT_ROOT
from oncopipe.methods import adherence

sys.path.insert(0, str(PROJECT_ROOT / "benchmarks"))

import dbt_build  # noqa: E402  (a benchmark script, not part of the package)

T = pd.Timestamp


@pytest.fixture(scope="module")
def baselines(tmp_path_factory: pytest.TempPathFactory) -> tuple[pd.DataFrame, pd.DataFrame]:
    landing = write_landing(tmp_path_factory.mktemp("adherence_baselines") / "landing")
    return dbt_build.pandas_daily_adherence(landing), dbt_build.pandas_monthly_adherence(landing)


def test_the_daily_walk_equals_the_vectorised_engine_on_the_fixture(baselines):
    daily, vectorised = baselines
    assert len(daily) > 0 and set(daily["person_id"].str[:2]) == {"P1", "P2"}
    assert dbt_build.adherence_differences(daily, vectorised) is None
    p1 = daily[daily["person_id"].str.startswith("P1")].set_index("month_index")
    # The fixture's known answers (as tests/integration/test_dbt_fixture.py asserts on the dbt mart).
    assert p1.loc[2, "days_hospitalised"] == 5 and p1.loc[2, "pdc"] == 1.0
    assert not p1.loc[8, "is_discontinued"] and p1.loc[9, "is_discontinued"]


def test_a_difference_is_named(baselines):
    daily, vectorised = baselines
    changed = daily.copy()
    changed.loc[3, "days_covered"] -= 1
    message = dbt_build.adherence_differences(changed, vectorised)
    assert message is not None and message.startswith("1 of 39 (person, month) rows differ")
    assert dbt_build.adherence_differences(daily.iloc[1:], vectorised).startswith("1 of 39")


def hand_made() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    supplies = pd.DataFrame([
        # A: 30 days before the index, reaching 10 days into the follow-up; two overlapping supplies of two
        # molecules at the index (carried over); a 20-day gap; then a dispensing on the first day of a stay.
        ("A", T("2022-12-22"), 30, "tamoxifen"),
        ("A", T("2023-01-10"), 30, "letrozole"),
        ("A", T("2023-01-10"), 28, "anastrozole"),
        ("A", T("2023-03-31"), 30, "letrozole"),
        # B: one box, dies on the 40th day of her follow-up: the death day counts, no discontinuation.
        ("B", T("2023-01-31"), 30, "tamoxifen"),
        # C: a gap of exactly 90 days (2023-02-01 .. 05-01): discontinued. D: 89 days: not.
        ("C", T("2023-01-02"), 30, "tamoxifen"),
        ("C", T("2023-05-02"), 30, "tamoxifen"),
        ("D", T("2023-01-02"), 30, "tamoxifen"),
        ("D", T("2023-05-01"), 30, "tamoxifen"),
    ], columns=["person_id", "dispensing_date", "days_supply", "molecule"])
    stays = pd.DataFrame([("A", T("2023-03-31"), T("2023-04-04")), ("B", T("2022-06-01"), T("2022-06-03"))],
                         columns=["person_id", "entry_date", "exit_date"])
    cohort = pd.DataFrame({"person_id": ["A", "B", "C", "D"],
                           "index_date": [T("2023-01-10"), T("2023-01-31"), T("2023-01-02"), T("2023-01-02")],
                           "end_of_data_date": T("2023-10-31"),
                           "death_date": [pd.NaT, T("2023-03-11"), T("2023-06-15"), T("2023-06-15")]})
    return supplies, stays, cohort


def test_the_daily_walk_on_hand_made_supplies():
    supplies, stays, cohort = hand_made()
    daily = dbt_build.daily_walk_adherence(supplies, stays, cohort)
    cov = adherence.coverage(supplies, stays, hospital_days="covered_paused")
    assert dbt_build.adherence_differences(daily, adherence.monthly_pdc(cov, adherence.follow_up_windows(cohort))) \
        is None
    a = daily[daily["person_id"] == "A"].set_index("month_index")
    # 11 days left from December + 58 supplied at the index: covered 2023-01-10 .. 2023-03-19 (69 days).
    assert a.loc[0, ["month_start", "month_end", "days_covered"]].tolist() == [T("2023-01-10"), T("2023-02-09"), 31]
    assert a.loc[1, ["days_in_month", "days_covered"]].tolist() == [28, 28]
    # Month 2 (03-10 .. 04-09): 10 supplied, 11 uncovered, 5 in hospital (the new supply waits), 5 supplied.
    assert a.loc[2, ["days_covered", "days_hospitalised"]].tolist() == [10 + 5 + 5, 5]
    # The supply after the stay runs 2023-04-05 .. 2023-05-04; uncovered from 05-05 to the end of data
    # (2023-10-31): discontinued on 05-05, so from month 4 (05-10 .. 06-09) on.
    assert a.loc[3, "days_covered"] == 25 and not a.loc[3, "is_discontinued"] and a.loc[4, "is_discontinued"]
    assert a.index.max() == 9 and a.loc[9, "month_end"] == T("2023-10-31")
    b = daily[daily["person_id"] == "B"].set_index("month_index")
    assert b["month_end"].tolist() == [T("2023-02-27"), T("2023-03-11")]
    assert b["days_covered"].tolist() == [28, 2] and not b["is_discontinued"].any()
    c = daily[daily["person_id"] == "C"].set_index("month_index")
    assert c["is_discontinued"].tolist() == [False, True, True, True, True, True]
    assert not daily.loc[daily["person_id"] == "D", "is_discontinued"].any()
