"""The generator's own PDC computation (used for the realised profiles in truth.json) and date helpers."""

from __future__ import annotations

import numpy as np
import pytest
from oncopipe.synth.dates import add_months, day, month_start_after
from oncopipe.synth.truth import monthly_pdc


def test_add_months_clamps_to_month_end():
    days = np.array([day("2020-01-31"), day("2021-01-31"), day("2020-03-15")])
    assert list(add_months(days, 1)) == [day("2020-02-29"), day("2021-02-28"), day("2020-04-15")]
    assert list(add_months(days, 12)) == [day("2021-01-31"), day("2022-01-31"), day("2021-03-15")]


def test_month_start_after():
    days = np.array([day("2020-01-01"), day("2020-01-31"), day("2020-12-15"), day("1995-06-01")])
    assert list(month_start_after(days)) == [day("2020-02-01"), day("2020-02-01"), day("2021-01-01"),
                                             day("1995-07-01")]


def test_monthly_pdc_carry_over_by_hand():
    i0 = day("2020-01-01")
    person = np.array([0, 0, 0])
    dispensed = np.array([i0, i0 + 20, i0 + 100])
    supply = np.array([30, 30, 30])
    end = add_months(np.array([i0]), 60) - 1
    pdc, observed = monthly_pdc(person, dispensed, supply, np.array([i0]), end)
    # Jan: days 0-30 covered (second box carried over to days 30-59); Feb: days 31-59 covered; Mar: none;
    # Apr (days 91-120): third box from day 100 -> 21/30; May (121-151): days 121-129 -> 9/31.
    assert pdc[0, :5] == pytest.approx([1.0, 1.0, 0.0, 21 / 30, 9 / 31])
    assert observed[0].all()
    assert (pdc[0, 5:] == 0).all()


def test_monthly_pdc_truncated_at_follow_up_end_and_two_women():
    i0 = day("2021-03-01")
    person = np.array([0, 1, 1])
    dispensed = np.array([i0, i0 + 5, i0 + 40])
    supply = np.array([90, 28, 28])
    pdc, observed = monthly_pdc(person, dispensed, supply, np.array([i0, i0 + 5]), np.array([i0 + 45, i0 + 400]))
    assert observed[0, :2].all() and not observed[0, 2:].any()
    assert pdc[0, 0] == pytest.approx(1.0) and pdc[0, 1] == pytest.approx(1.0)  # Apr 1..15 all covered
    # Woman 2 indexed on Mar 6: month 0 = Mar 6..Apr 5 (31 days): days 0-27 covered -> 28/31.
    assert pdc[1, 0] == pytest.approx(28 / 31)
