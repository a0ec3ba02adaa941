"""The hand-written Aalen-Johansen estimator against scikit-survival and statsmodels (issue 21): equal to 1e-12.

A TRADHOR-shaped data set: 5,000 women followed up to 5 years in days (ties), hormone-therapy discontinuation
(status 1) competing with death (2), censored at random and at the end of follow-up.
"""

from __future__ import annotations

import numpy as np
import pytest
from oncopipe.methods.competing_risks import aalen_johansen
from sksurv.nonparametric import cumulative_incidence_competing_risks
from statsmodels.duration.survfunc import CumIncidenceRight

FOLLOW_UP_DAYS = 1800


@pytest.fixture(scope="module")
def cohort() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    n = 5000
    stop, death, lost = rng.exponential(900, n), rng.exponential(4000, n), rng.uniform(200, 1826, n)
    time = np.ceil(np.minimum.reduce([stop, death, lost]))
    status = np.select([time == np.ceil(stop), time == np.ceil(death)], [1, 2], 0)
    status[time >= FOLLOW_UP_DAYS] = 0
    return np.minimum(time, FOLLOW_UP_DAYS), status


def test_aalen_johansen_equals_scikit_survival(cohort):
    time, status = cohort
    ours = aalen_johansen(time, status, event=1, times=np.unique(time))
    # Our delta-method variance (Marubini & Valsecchi; Pintilie eq. 4.3) is Dinse & Larson's approximation;
    # scikit-survival's default ("Aalen") is another estimator (95% limits 8e-4 apart here).
    times, incidence, limits = cumulative_incidence_competing_risks(status, time, conf_type="log-log",
                                                                    var_type="Dinse_Approx")
    np.testing.assert_array_equal(ours["time"], times)
    np.testing.assert_allclose(ours["cif"], incidence[1], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(ours["survival"], 1 - incidence[0], rtol=1e-12, atol=1e-12)
    inside = (ours["cif"] > 0).to_numpy()  # the limits are missing where the incidence is still 0
    assert inside.sum() > 1300
    np.testing.assert_allclose(ours["lower"][inside], limits[1, 0, inside], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(ours["upper"][inside], limits[1, 1, inside], rtol=1e-12, atol=1e-12)


def test_aalen_johansen_equals_statsmodels_including_the_standard_error(cohort):
    time, status = cohort
    theirs = CumIncidenceRight(time, status)
    ours = aalen_johansen(time, status, event=1, times=theirs.times)
    np.testing.assert_allclose(ours["cif"], theirs.cinc[0], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(ours["se"], theirs.cinc_se[0], rtol=1e-12, atol=1e-12)


def test_a_last_time_where_everyone_at_risk_has_the_event_keeps_the_intervals(cohort):
    # Where n_j = d_j (the last woman followed has the event), scikit-survival's Dinse_Approx variance is
    # 0 * inf = NaN at every time and its intervals collapse onto the estimate (1,361 of 1,361 times when
    # tried); that time adds 0 here and the intervals stay as they were.
    time, status = cohort
    time, status = np.r_[time, FOLLOW_UP_DAYS + 10], np.r_[status, 1]
    ours = aalen_johansen(time, status, event=1, times=[365, 730, FOLLOW_UP_DAYS])
    before = aalen_johansen(time[:-1], status[:-1], event=1, times=[365, 730, FOLLOW_UP_DAYS])
    np.testing.assert_allclose(ours[["cif", "se"]].iloc[:2], before[["cif", "se"]].iloc[:2], rtol=1e-2)
    assert np.isfinite(ours["se"]).all() and (ours["upper"] - ours["lower"] > 0.01).all()
