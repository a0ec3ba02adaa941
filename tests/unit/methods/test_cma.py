"""AdhereR's CMA1-CMA9, sliding windows, treatment episodes and CMA per episode (oncopipe.methods.cma).

Every expected value is derived by hand from AdhereR's definitions (its documentation and the sources of
compute.event.int.gaps, CMA1..CMA9, compute.treatment.episodes); days are integers, an event on day t with
duration d supplies [t, t + d), a window [s, s + days) ends the day before s + days.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from oncopipe.methods import adherence as adh
from oncopipe.methods import cma as cm


def _events(rows, person="p"):
    cols = ["date", "duration", "medication", "dose"][: len(rows[0])]
    frame = pd.DataFrame(rows, columns=cols)
    frame.insert(0, "person_id", person)
    return frame


def _window(ow_start, ow_days, fu_start=0, fu_days=365, person="p"):
    return pd.DataFrame({"person_id": [person], "followup_start": [fu_start], "followup_days": [fu_days],
                         "observation_start": [ow_start], "observation_days": [ow_days]})


def _all(events, window, **options):
    return {m: cm.cma(events, window, m, **options)["cma"].iloc[0] for m in cm.MEASURES}


def test_overlapping_supplies():
    """Events (day, duration) (0, 30), (20, 30), (40, 10); FUW [0, 365), OW [0, 100).

    CMA1 = durations without the last / (t_last - t_first) = 60 / 40 = 1.5 (not capped); CMA3 = 1.
    CMA2 = all durations / (OW end - t_first) = 70 / 100; CMA4 = 0.7.
    Carry-over within the OW: intervals 20, 20, 60 (the last to the OW end); gaps: 20 - 30 < 0 -> 0, carry 10;
    20 - 30 - 10 < 0 -> 0, carry 20; 60 - 10 - 20 = 30. CMA5 = 1 - 0 / 40 = 1; CMA6 = 1 - 30 / 100 = 0.7.
    CMA7 = 1 - (0 + 0 + 30 + 0 before the first event) / 100 = 0.7; CMA8: nothing before the OW, = CMA7.
    CMA9: intervals over the FUW 20, 20, 325 (to day 365), gaps 0, 0, 325 - 10 - 20 = 295, ratios 1, 1,
    30/325; days in the OW 20, 20, 60: (20 + 20 + 60 * 30 / 325) / 100.
    """
    got = _all(_events([(0, 30), (20, 30), (40, 10)]), _window(0, 100))
    want = {"CMA1": 1.5, "CMA2": 0.7, "CMA3": 1.0, "CMA4": 0.7, "CMA5": 1.0, "CMA6": 0.7, "CMA7": 0.7,
            "CMA8": 0.7, "CMA9": (40 + 60 * 30 / 325) / 100}
    assert got == pytest.approx(want)


@pytest.mark.parametrize(("ow_start", "cma7", "cma9"), [(0, 1.0, 0.5), (30, 0.0, 0.5)])
def test_partial_windows_cma7_against_cma9(ow_start, cma7, cma9):
    """Events (0, 30), (60, 30); FUW [0, 120); OWs [0, 30) and [30, 60).

    CMA7 counts the supplied days: [0, 30) is covered (1.0); [30, 60) has none: the event on day 60 is in the
    OW (AdhereR's date <= OW end) with an interval of 0, the gap before it is min(gap of day 0 = 60 - 30,
    60 - 30) = 30 -> 1 - 30/30 = 0. CMA9 spreads each interval's availability (1 - 30/60 = 0.5 for both
    60-day intervals of the FUW) over its days: 0.5 in both windows.
    """
    ev, w = _events([(0, 30), (60, 30)]), _window(ow_start, 30, fu_days=120)
    assert cm.cma(ev, w, "CMA7")["cma"].iloc[0] == pytest.approx(cma7)
    assert cm.cma(ev, w, "CMA9")["cma"].iloc[0] == pytest.approx(cma9)


def test_carry_over_into_the_window():
    """Events (0, 60), (50, 30); FUW [0, 365); OW [40, 100).

    CMA7 (carry-over into the OW): intervals 50, 50; gaps 0 (carry 10), 50 - 30 - 10 = 10; before the first
    OW event min(0, 50 - 40) = 0: 1 - 10/60 (supplied days 40..89: 50 of 60). CMA6 ignores the supply from
    before: one event, gap 50 - 30 = 20 over 100 - 50 days: 0.6; CMA2 = 30 / 50 = 0.6.
    CMA8: the day-0 supply ends on 0 + 60 + 0 = 60 > 40: OW [60, 100), no event in it, the last earlier
    event's gap (interval 100 - 50, carry 10) = 10 <= 40: 1 - 10/40 = 0.75 (days 60..89).
    CMA9: over the FUW intervals 50 (gap 0) and 315 (gap 315 - 30 - 10 = 275); days in the OW 10 and 50:
    (10 + 50 * 40/315) / 60.
    """
    got = _all(_events([(0, 60), (50, 30)]), _window(40, 60))
    assert got["CMA7"] == pytest.approx(50 / 60)
    assert got["CMA6"] == pytest.approx(0.6) and got["CMA2"] == pytest.approx(0.6)
    assert got["CMA8"] == pytest.approx(0.75)
    assert got["CMA9"] == pytest.approx((10 + 50 * 40 / 315) / 60)
    assert np.isnan(got["CMA1"]) and np.isnan(got["CMA5"])  # one event in the OW


def test_carry_over_across_medication_and_dose():
    """Events (0, 30, A, dose 1), (20, 30, B, dose 2); FUW [0, 365); OW [0, 60).

    Default: carry 10 from day 0, last gap 40 - 30 - 10 = 0: CMA7 = 1. Only for the same medication: the
    change A -> B drops the carry: gap 10, CMA7 = 1 - 10/60. Dosage change: the carry is scaled by
    1/2 = 5 days: gap 5, CMA7 = 1 - 5/60.
    """
    ev, w = _events([(0, 30, "A", 1.0), (20, 30, "B", 2.0)]), _window(0, 60)
    assert cm.cma(ev, w, "CMA7")["cma"].iloc[0] == pytest.approx(1.0)
    same = cm.cma(ev, w, "CMA7", medication="medication", carry_only_for_same_medication=True)
    assert same["cma"].iloc[0] == pytest.approx(50 / 60)
    dose = cm.cma(ev, w, "CMA7", daily_dose="dose", consider_dosage_change=True)
    assert dose["cma"].iloc[0] == pytest.approx(55 / 60)
    with pytest.raises(ValueError, match="medication column"):
        cm.cma(ev, w, "CMA7", carry_only_for_same_medication=True)


@pytest.mark.parametrize(("ow_start", "want"), [(30, 20 / 60), (60, 0.0)])
def test_cma7_without_event_in_the_window(ow_start, want):
    """Event (0, 50); FUW [0, 365). OW [30, 90): gap of the earlier event (90 - 0) - 50 = 40 <= 60:
    1 - 40/60 (days 30..49 supplied). OW [60, 90): gap 40 > 30: 0. CMA1/CMA2 need an event in the OW: NaN."""
    ev, w = _events([(0, 50)]), _window(ow_start, 60 if ow_start == 30 else 30)
    assert cm.cma(ev, w, "CMA7")["cma"].iloc[0] == pytest.approx(want)
    assert np.isnan(cm.cma(ev, w, "CMA2")["cma"].iloc[0])


def test_follow_up_window_bounds():
    """Events outside the FUW are ignored (AdhereR removes them): a day -10 supply of 30 days does not carry
    into FUW [0, 365) (CMA7 on OW [0, 30) is NaN: no event), while the project's PDC would count days 0..19.
    An event dated on the OW end is in the OW: (0, 10), (30, 10) on OW [0, 30) -> CMA1 = 10/30.
    An OW outside its FUW is refused."""
    ev = _events([(-10, 30)])
    assert np.isnan(cm.cma(ev, _window(0, 30), "CMA7")["cma"].iloc[0])
    assert cm.cma(ev, _window(0, 30, fu_start=-10, fu_days=400), "CMA7")["cma"].iloc[0] == pytest.approx(20 / 30)
    assert cm.cma(_events([(0, 10), (30, 10)]), _window(0, 30), "CMA1")["cma"].iloc[0] == pytest.approx(10 / 30)
    with pytest.raises(ValueError, match="observation window .* first person 'p'"):
        cm.cma(ev, _window(300, 100), "CMA7")
    with pytest.raises(ValueError, match="measure must be one of CMA1"):
        cm.cma(ev, _window(0, 30), "CMA10")
    with pytest.raises(ValueError, match="non-positive duration"):
        cm.cma(_events([(0, 0)]), _window(0, 30), "CMA7")


def test_sliding_windows():
    """OW [0, 100), windows of 30 days every 20: floor((100 - 30) / 20) + 1 = 4 windows at 0, 20, 40, 60.
    Events (0, 30), (60, 30): CMA7 = 1 on [0, 30); 10/30 on [20, 50) (days 20..29); 10/30 on [40, 70)
    (the gap before day 60 is min(30, 60 - 40) = 20); 1 on [60, 90)."""
    out = cm.cma_sliding_window(_events([(0, 30), (60, 30)]), _window(0, 100), "CMA7", window_days=30, step_days=20)
    assert out["window_id"].tolist() == [1, 2, 3, 4]
    assert out["observation_start"].tolist() == list(pd.to_datetime([0, 20, 40, 60], unit="D"))
    assert out["cma"].tolist() == pytest.approx([1.0, 1 / 3, 1 / 3, 1.0])
    assert cm.sliding_windows(_window(0, 20), window_days=30).empty


EPISODE_EVENTS = [(0, 30, "A"), (40, 30, "A"), (200, 30, "B"), (230, 30, "B")]


def test_treatment_episodes_after_a_resumption():
    """Events (0, 30), (40, 30), (200, 30), (230, 30); FUW [0, 365); maximum permissible gap 90 days.

    Gaps over the FUW (carry-over within it): intervals 40, 160, 30, 135 (to day 365); gaps 10, 130, 0, 105.
    Gaps > 90 after the 2nd and 4th events: episode 1 starts on day 0 and lasts 200 - 0 - 130 = 70 days (ends
    on day 70, the gap of 130 ended it); episode 2 (the resumption) starts on day 200, lasts (365 - 200) - 105
    = 60 days (its final gap of 105 >= 90 is cut). Appending the maximum permissible gap: 200 - (130 - 90) =
    160 and 165 - (105 - 90) = 150 days. As a percent of the supply (500% of 30 = 150 days) no gap is
    too long: one episode of 365 days (final gap 105 < 150 is kept).
    """
    ev, fu = _events([e[:2] for e in EPISODE_EVENTS]), pd.DataFrame(
        {"person_id": ["p"], "followup_start": [0], "followup_days": [365]})
    ep = cm.treatment_episodes(ev, fu, max_gap=90)
    assert ep["episode_id"].tolist() == [1, 2]
    assert ep["episode_start"].tolist() == list(pd.to_datetime([0, 200], unit="D"))
    assert ep["end_episode_gap_days"].tolist() == [130, 105]
    assert ep["episode_duration"].tolist() == [70, 60]
    assert ep["episode_end"].tolist() == list(pd.to_datetime([70, 260], unit="D"))
    assert cm.treatment_episodes(ev, fu, max_gap=90, append_max_gap=True)["episode_duration"].tolist() == [160, 150]
    one = cm.treatment_episodes(ev, fu, max_gap=500, max_gap_unit="percent")
    assert one["episode_duration"].tolist() == [365] and one["end_episode_gap_days"].tolist() == [105]


def test_medication_change_starts_an_episode():
    """Same events, classes A, A, B, B, maximum permissible gap 200 days (no gap is too long): the change
    after the 2nd event ends episode 1 (70 days: 200 - 130); episode 2 runs to the FUW end (final gap
    105 < 200 is kept): 165 days. Without the rule: one episode of 365 days."""
    ev = _events(EPISODE_EVENTS)
    fu = pd.DataFrame({"person_id": ["p"], "followup_start": [0], "followup_days": [365]})
    ep = cm.treatment_episodes(ev, fu, max_gap=200, medication="medication")
    assert ep["episode_duration"].tolist() == [70, 165]
    alone = cm.treatment_episodes(ev, fu, max_gap=200, medication="medication",
                                  medication_change_means_new_episode=False)
    assert alone["episode_duration"].tolist() == [365]
    with pytest.raises(ValueError, match="max_gap_unit"):
        cm.treatment_episodes(ev, fu, max_gap_unit="fortnights")


def test_cma_per_episode():
    """Episodes of the case above: [0, 70) and [200, 260). CMA7 in episode 1 (its own FUW and OW): events on
    days 0 and 40, intervals 40 and 30 (to day 70), gaps 10 and 0: 1 - 10/70. Episode 2: gaps 0, 0: 1.
    With an OW [0, 220) the second episode is cut to [200, 220)."""
    ev = _events([e[:2] for e in EPISODE_EVENTS])
    out = cm.cma_per_episode(ev, _window(0, 365), "CMA7", episode_options={"max_gap": 90})
    assert out["cma"].tolist() == pytest.approx([60 / 70, 1.0])
    cut = cm.cma_per_episode(ev, _window(0, 220), "CMA7", episode_options={"max_gap": 90})
    assert cut["episode_end"].tolist() == list(pd.to_datetime([70, 220], unit="D"))


def test_cma7_is_the_project_pdc_without_hospital_stays():
    """With carry-over within and into the window, CMA7 = supplied days / window days: the project's PDC
    (oncopipe.methods.adherence, hospital days ignored) on random people and windows inside their FUW."""
    rng = np.random.default_rng(7)
    events, windows = [], []
    for i in range(40):
        n = int(rng.integers(1, 12))
        t = np.sort(rng.integers(0, 700, n))
        t -= t[0]
        events.append(pd.DataFrame({"person_id": f"p{i}", "date": t, "duration": rng.choice([28, 30, 84, 90], n)}))
        for _ in range(3):
            start = int(rng.integers(0, 700))
            windows.append((f"p{i}", 0, 800, start, int(rng.integers(1, 100))))
    ev = pd.concat(events, ignore_index=True)
    w = pd.DataFrame(windows, columns=list(cm.WINDOW_COLUMNS))
    got = cm.cma(ev, w, "CMA7")["cma"].to_numpy()
    cov = adh.coverage(pd.DataFrame({"person_id": ev["person_id"], "days_supply": ev["duration"],
                                     "dispensing_date": pd.to_datetime(ev["date"], unit="D")}), hospital_days="ignore")
    start = pd.to_datetime(w["observation_start"], unit="D")
    pdc = adh.pdc_windows(cov, pd.DataFrame({"person_id": w["person_id"], "start": start,
                                             "end": start + pd.to_timedelta(w["observation_days"] - 1, unit="D")}))
    # NaN: no event up to the window's end (AdhereR has nothing to measure); the PDC says 0 there.
    known = ~np.isnan(got)
    assert known.sum() > 100
    assert got[known] == pytest.approx(pdc["pdc"].to_numpy()[known], abs=1e-12)
