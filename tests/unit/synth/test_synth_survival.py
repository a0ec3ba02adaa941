"""The survival model: calibration of the excess hazard and the death-time sampling."""

from __future__ import annotations

import numpy as np
import pytest
from oncopipe.synth import parameters as P
from oncopipe.synth.dates import day
from oncopipe.synth.deaths import (
    excess_scale,
    excess_survival,
    hazard_ratio,
    population_survival,
    reference_case_mix,
    sample_excess_death,
    sample_population_death,
)


@pytest.mark.parametrize("site", list(P.NET_SURVIVAL_5Y))
def test_calibrated_net_survival_equals_published_figure(site):
    mix = reference_case_mix(site)
    hr = hazard_ratio(mix["stage"], mix["age"], mix["quintile"])
    assert excess_scale(site) > 0
    assert excess_survival(site, hr).mean() == pytest.approx(P.NET_SURVIVAL_5Y[site], abs=1e-6)


def test_hazard_ratios_multiply():
    hr = hazard_ratio(np.array([0, 3]), np.array([45.0, 80.0]), np.array([1, 5]))
    assert hr[0] == pytest.approx(P.HR_STAGE["I"] * P.HR_AGE["<50"] * P.HR_DEPRIVATION[1])
    assert hr[1] == pytest.approx(P.HR_STAGE["IV"] * P.HR_AGE["75+"] * P.HR_DEPRIVATION[5])


def test_sampled_excess_deaths_follow_the_model():
    rng = np.random.default_rng(0)
    hr = np.full(200_000, 1.3)
    t = sample_excess_death(rng, "lung", hr)
    assert (t > 5 * 365.25).mean() == pytest.approx(excess_survival("lung", hr[:1])[0], abs=0.005)


def test_sampled_population_deaths_follow_the_life_table():
    rng = np.random.default_rng(1)
    n = 200_000
    sex = np.full(n, 1)
    birth = np.full(n, day("1950-06-15"))
    start = np.full(n, day("2015-06-15"))
    t = sample_population_death(rng, sex, birth, start, 12)
    expected = population_survival(sex[:1], birth[:1], start[:1], 5)[0]
    assert (t > 5 * 365.25).mean() == pytest.approx(expected, abs=0.004)
    assert 0.85 < expected < 0.95  # a 65-year-old man in 2015
