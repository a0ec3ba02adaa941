"""Hand-computed cases of the PDC rule (oncopipe.methods.adherence): every expected number is worked out by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from oncopipe.methods import adherence as adh

T = pd.Timestamp


def _disp(rows, person="p1"):
    """rows: (date, days, molecule[, cip13])."""
    return pd.DataFrame({
        "person_id": [person] * len(rows),
        "dispensing_date": [T(r[0]) for r in rows],
        "days_supply": [r[1] for r in rows],
        "molecule": [r[2] for r in rows],
        "cip13": [r[3] if len(r) > 3 else "3400900000000" for r in rows],
    })


def _stays(rows, person="p1"):
    return pd.DataFrame({"person_id": [person] * len(rows),
                         "entry_date": [T(a) for a, _ in rows], "exit_date": [T(b) for _, b in rows]})


def _fu(index, end_of_data, death=None, person="p1"):
    return adh.follow_up_windows(pd.DataFrame({
        "person_id": [person], "index_date": [T(index)], "end_of_data_date": [T(end_of_data)],
        "death_date": [T(death) if death else pd.NaT]}))


def _months(disp, fu, stays=None, hospital_days="covered_paused", gap_days=90):
    cov = adh.coverage(disp, stays, hospital_days=hospital_days)
    return adh.monthly_pdc(cov, fu, gap_days=gap_days)


def test_carry_over_of_overlapping_supplies():
    # Jan 1 (30 d) covers Jan 1..30; Jan 21 (30 d) is carried over to Jan 31..Feb 29 (2024 is leap).
    disp = _disp([("2024-01-01", 30, "tamoxifen"), ("2024-01-21", 30, "tamoxifen")])
    m = _months(disp, _fu("2024-01-01", "2024-03-31"))
    assert m["days_in_month"].tolist() == [31, 29, 31]
    assert m["days_covered"].tolist() == [31, 29, 0]
    assert m["pdc"].tolist() == [1.0, 1.0, 0.0]
    whole = adh.pdc_follow_up(adh.coverage(disp), _fu("2024-01-01", "2024-03-31"))
    assert whole["days_covered"].iloc[0] == 60 and whole["days"].iloc[0] == 91
    assert whole["pdc"].iloc[0] == pytest.approx(60 / 91)


def test_without_carry_over_overlap_counts_once():
    # Same-day double dispensing: 2 x 30 days carried over = Jan 1..Feb 29, never more than 1 per day.
    disp = _disp([("2024-01-01", 30, "letrozole"), ("2024-01-01", 30, "letrozole")])
    m = _months(disp, _fu("2024-01-01", "2024-02-29"))
    assert m["days_covered"].tolist() == [31, 29]
    assert m["pdc"].max() <= 1.0


def test_switches_carry_over_across_molecules():
    disp = _disp([("2024-01-01", 30, "tamoxifen"), ("2024-01-20", 30, "letrozole"),
                  ("2024-03-01", 30, "letrozole"), ("2024-04-01", 30, "anastrozole")])
    fu = _fu("2024-01-01", "2024-04-30")
    m = _months(disp, fu)
    # letrozole of Jan 20 starts Jan 31 (carry-over): Jan 1..Feb 29, then Mar 1..30, then Apr 1..30.
    assert m["days_covered"].tolist() == [31, 29, 30, 30]
    sw = adh.switches(disp, fu).iloc[0]
    assert sw["n_switches"] == 2
    assert sw["first_switch_date"] == T("2024-01-20")
    assert (sw["switch_from"], sw["switch_to"]) == ("tamoxifen", "letrozole")


def test_switch_ties_are_ordered_by_cip13():
    disp = _disp([("2024-01-01", 30, "tamoxifen", "3400900000002"), ("2024-01-01", 30, "letrozole", "3400900000001")])
    sw = adh.switches(disp, _fu("2024-01-01", "2024-12-31")).iloc[0]
    assert (sw["switch_from"], sw["switch_to"], sw["n_switches"]) == ("letrozole", "tamoxifen", 1)


@pytest.mark.parametrize(("next_date", "expected"), [("2024-04-29", "2024-05-29"), ("2024-04-30", "2024-01-31")])
def test_discontinuation_at_exactly_89_or_90_days(next_date, expected):
    # Jan 1 (30 d) covers Jan 1..30; uncovered from Jan 31. Next dispensing Apr 30 -> Jan 31..Apr 29 = 90 days
    # (a discontinuation dated Jan 31); Apr 29 -> 89 days, not one: the first discontinuation is then the day
    # after the last supply (Apr 29..May 28), since no dispensing follows before the follow-up end.
    disp = _disp([("2024-01-01", 30, "tamoxifen"), (next_date, 30, "tamoxifen")])
    fu = _fu("2024-01-01", "2025-12-31")
    d = adh.discontinuation(adh.coverage(disp), fu).iloc[0]
    assert d["discontinuation_date"] == T(expected)
    assert d["status"] == 1 and d["time_days"] == (T(expected) - T("2024-01-01")).days
    m = _months(disp, fu)
    flagged = m.loc[m["is_discontinued"], "month_start"]
    assert flagged.min() == m.loc[m["month_start"] >= T(expected), "month_start"].min()
    assert not m.loc[m["month_start"] < T(expected), "is_discontinued"].any()


def test_configurable_gap():
    disp = _disp([("2024-01-01", 30, "tamoxifen"), ("2024-03-01", 30, "tamoxifen")])  # gap Jan 31..Feb 29 = 30 d
    fu = _fu("2024-01-01", "2024-04-15")  # last gap Mar 31..Apr 15 = 16 days
    cov = adh.coverage(disp)
    assert adh.discontinuation(cov, fu, gap_days=30).iloc[0]["discontinuation_date"] == T("2024-01-31")
    assert not adh.discontinuation(cov, fu, gap_days=31).iloc[0]["discontinued"]


@pytest.mark.parametrize(("end_of_data", "discontinued"), [("2024-04-28", False), ("2024-04-29", True)])
def test_gap_running_into_follow_up_end(end_of_data, discontinued):
    # Uncovered from Jan 31; follow-up ending Apr 29 gives 90 uncovered days, Apr 28 only 89.
    disp = _disp([("2024-01-01", 30, "tamoxifen")])
    d = adh.discontinuation(adh.coverage(disp), _fu("2024-01-01", end_of_data)).iloc[0]
    assert bool(d["discontinued"]) is discontinued
    assert d["status"] == (1 if discontinued else 0)


def test_death_mid_supply():
    disp = _disp([("2024-01-01", 90, "anastrozole")])
    fu = _fu("2024-01-01", "2026-12-31", death="2024-02-15")
    assert fu["follow_up_end_date"].iloc[0] == T("2024-02-15")
    assert fu["follow_up_end_reason"].iloc[0] == "death"
    m = _months(disp, fu)
    assert m["days_in_month"].tolist() == [31, 15]
    assert m["pdc"].tolist() == [1.0, 1.0]
    d = adh.discontinuation(adh.coverage(disp), fu).iloc[0]
    assert (bool(d["discontinued"]), d["status"], d["time_days"]) == (False, 2, 45)


def test_death_before_the_gap_completes_is_a_competing_event():
    disp = _disp([("2024-01-01", 30, "anastrozole")])
    fu = _fu("2024-01-01", "2026-12-31", death="2024-03-15")  # uncovered Jan 31..Mar 15 = 45 days
    d = adh.discontinuation(adh.coverage(disp), fu).iloc[0]
    assert (bool(d["discontinued"]), d["status"], d["time_days"]) == (False, 2, 74)


def test_five_year_horizon():
    fu = _fu("2020-02-29", "2030-01-01")
    assert fu["follow_up_end_date"].iloc[0] == T("2025-02-27")  # 2020-02-29 + 60 months = 2025-02-28, - 1 day
    assert fu["follow_up_end_reason"].iloc[0] == "five_years"
    m = _months(_disp([("2020-02-29", 30, "tamoxifen")]), fu)
    assert len(m) == 60 and m["month_index"].tolist() == list(range(60))


def test_hospital_stay_pauses_home_supply():
    disp = _disp([("2024-01-01", 30, "tamoxifen")])
    stays = _stays([("2024-01-10", "2024-01-14")])
    fu = _fu("2024-01-01", "2024-02-29")
    # covered_paused: Jan 1..9 home, Jan 10..14 hospital, 21 days left -> Jan 15..Feb 4.
    m = _months(disp, fu, stays, "covered_paused")
    assert m["days_covered"].tolist() == [31, 4]
    assert m["days_hospitalised"].tolist() == [5, 0]
    # ignore: Jan 1..30 only.
    m = _months(disp, fu, stays, "ignore")
    assert m["days_covered"].tolist() == [30, 0]
    assert m["days_hospitalised"].tolist() == [5, 0]


def test_dispensing_during_a_stay_starts_after_exit():
    disp = _disp([("2024-01-01", 5, "tamoxifen"), ("2024-01-12", 30, "tamoxifen")])
    stays = _stays([("2024-01-10", "2024-01-14")])
    fu = _fu("2024-01-01", "2024-02-29")
    # paused: Jan 1..5, hospital Jan 10..14, supply Jan 15..Feb 13 -> Jan 5 + 22, Feb 13.
    assert _months(disp, fu, stays, "covered_paused")["days_covered"].tolist() == [27, 13]
    # ignore: Jan 1..5 and Jan 12..Feb 10 -> Jan 5 + 20, Feb 10.
    assert _months(disp, fu, stays, "ignore")["days_covered"].tolist() == [25, 10]


def test_day_case_stay_counts_its_one_day():
    disp = _disp([("2024-01-01", 30, "tamoxifen")])
    stays = _stays([("2024-01-10", "2024-01-10")])
    m = _months(disp, _fu("2024-01-01", "2024-02-29"), stays, "covered_paused")
    assert m["days_covered"].tolist() == [31, 0]
    assert m["days_hospitalised"].tolist() == [1, 0]


def test_overlapping_stays_are_merged():
    disp = _disp([("2024-01-01", 30, "tamoxifen")])
    stays = _stays([("2024-01-10", "2024-01-14"), ("2024-01-12", "2024-01-16")])  # Jan 10..16 = 7 days
    m = _months(disp, _fu("2024-01-01", "2024-02-29"), stays, "covered_paused")
    # Jan 1..9 (9 d), hospital Jan 10..16, 21 days left -> Jan 17..Feb 6.
    assert m["days_covered"].tolist() == [31, 6]
    assert m["days_hospitalised"].tolist() == [7, 0]


def test_stay_in_a_gap_is_covered_and_ends_the_gap():
    disp = _disp([("2024-01-01", 30, "tamoxifen")])
    stays = _stays([("2024-03-01", "2024-03-03")])
    fu = _fu("2024-01-01", "2024-12-31")
    m = _months(disp, fu, stays, "covered_paused")
    assert m["days_covered"].tolist()[:4] == [30, 0, 3, 0]
    d = adh.discontinuation(adh.coverage(disp, stays), fu).iloc[0]
    assert d["discontinuation_date"] == T("2024-03-04")  # Jan 31..Feb 29 is only 30 days
    d = adh.discontinuation(adh.coverage(disp, stays, hospital_days="ignore"), fu).iloc[0]
    assert d["discontinuation_date"] == T("2024-01-31")


def test_supply_dispensed_before_the_window_counts():
    disp = _disp([("2023-12-15", 30, "tamoxifen")])  # Dec 15..Jan 13
    out = adh.pdc_windows(adh.coverage(disp), pd.DataFrame({
        "person_id": ["p1"], "start": [T("2024-01-01")], "end": [T("2024-01-31")]}))
    assert out["days_covered"].iloc[0] == 13
    assert out["pdc"].iloc[0] == pytest.approx(13 / 31)


@pytest.mark.parametrize(("start", "end", "covered"), [
    # Dec 1 (30 d) covers Dec 1..30; Dec 15 (30 d) is carried over to Dec 31..Jan 29 (AdhereR CMA7: the supply
    # carried over from before the observation window counts; without carry-over it would end Jan 13).
    ("2024-01-01", "2024-01-31", 29),
    ("2024-01-29", "2024-01-29", 1),   # the last supplied day
    ("2024-01-30", "2024-02-29", 0),   # the day after it
    ("2023-12-31", "2023-12-31", 1),   # first carried-over day
    ("2023-12-01", "2024-01-29", 60),  # the whole supply, counted once
    ("2023-11-01", "2023-11-30", 0),   # before the first dispensing
])
def test_carry_over_chain_from_before_the_window(start, end, covered):
    disp = _disp([("2023-12-01", 30, "tamoxifen"), ("2023-12-15", 30, "letrozole")])
    out = adh.pdc_windows(adh.coverage(disp), pd.DataFrame({"person_id": ["p1"], "start": [T(start)],
                                                             "end": [T(end)]}))
    assert out["days_covered"].iloc[0] == covered
    assert out["pdc"].iloc[0] == pytest.approx(covered / ((T(end) - T(start)).days + 1))


@pytest.mark.parametrize(("index", "windows"), [
    ("2024-01-31", [("2024-01-31", "2024-02-28"), ("2024-02-29", "2024-03-30"), ("2024-03-31", "2024-04-29"),
                    ("2024-04-30", "2024-05-30")]),
    ("2023-01-31", [("2023-01-31", "2023-02-27"), ("2023-02-28", "2023-03-30"), ("2023-03-31", "2023-04-29"),
                    ("2023-04-30", "2023-05-30")]),
])
def test_month_boundaries_from_the_31st(index, windows):
    disp = _disp([(index, 90, "letrozole")])
    m = _months(disp, _fu(index, T(index) + pd.DateOffset(months=4) - pd.Timedelta(days=1)))
    got = list(zip(m["month_start"].dt.strftime("%Y-%m-%d"), m["month_end"].dt.strftime("%Y-%m-%d"), strict=True))
    assert got == windows
    for k, start in enumerate(m["month_start"]):
        assert start == T(index) + pd.DateOffset(months=k)
    # 90 days from the index: Jan 31 + 89 = Apr 29 (2024) / Apr 30 (2023)
    covered = m["days_covered"].tolist()
    assert sum(covered) == 90
    assert m["pdc"].iloc[0] == 1.0 and m["pdc"].iloc[3] == (0.0 if index.startswith("2024") else 1 / 31)


def test_yearly_pdc_and_share_adherent():
    disp = pd.concat([
        _disp([("2024-01-01", 366, "tamoxifen"), ("2025-01-01", 200, "tamoxifen")], "a"),
        _disp([("2024-01-01", 292, "letrozole")], "b"),  # 292 / 366 = 0.798 < 0.8
    ])
    cohort = pd.DataFrame({"person_id": ["a", "b"], "index_date": [T("2024-01-01")] * 2,
                           "end_of_data_date": [T("2025-06-30")] * 2, "death_date": [pd.NaT] * 2})
    fu = adh.follow_up_windows(cohort)
    yearly = adh.yearly_pdc(adh.coverage(disp), fu)
    a = yearly[yearly["person_id"] == "a"]
    assert a["days"].tolist() == [366, 181]  # year 1 truncated at 2025-06-30
    assert a["pdc"].tolist() == [1.0, 1.0]
    assert a["complete"].tolist() == [True, False]
    b = yearly[yearly["person_id"] == "b"]
    assert b["pdc"].tolist() == [pytest.approx(292 / 366), 0.0]
    share = adh.adherent_share_by_year(yearly, threshold=0.8)
    assert share["n_patients"].tolist() == [2, 2]
    assert share["n_adherent"].tolist() == [1, 1]
    assert adh.adherent_share_by_year(yearly, threshold=0.79)["n_adherent"].tolist() == [2, 1]
    assert adh.adherent_share_by_year(yearly, complete_years_only=True)["n_patients"].tolist() == [2]


def test_vectorised_over_people_matches_one_by_one():
    rng = np.random.default_rng(3)
    frames, stays = [], []
    for i in range(20):
        n = rng.integers(1, 15)
        dates = T("2022-01-01") + pd.to_timedelta(np.sort(rng.integers(0, 900, n)), unit="D")
        frames.append(pd.DataFrame({"person_id": f"p{i}", "dispensing_date": dates,
                                    "days_supply": rng.choice([28, 30, 84, 90], n),
                                    "molecule": rng.choice(["tamoxifen", "letrozole"], n)}))
        entry = T("2022-01-01") + pd.to_timedelta(rng.integers(0, 900, 2), unit="D")
        stays.append(pd.DataFrame({"person_id": f"p{i}", "entry_date": entry,
                                   "exit_date": entry + pd.to_timedelta(rng.integers(0, 10, 2), unit="D")}))
    disp, st = pd.concat(frames), pd.concat(stays)
    cohort = disp.groupby("person_id")["dispensing_date"].min().rename("index_date").reset_index()
    cohort["end_of_data_date"] = T("2024-12-31")
    cohort.loc[len(cohort)] = {"person_id": "nobody", "index_date": T("2022-03-01"),
                               "end_of_data_date": T("2024-12-31")}
    fu = adh.follow_up_windows(cohort)
    together = adh.monthly_pdc(adh.coverage(disp, st), fu)
    assert together.loc[together.person_id == "nobody", "days_covered"].eq(0).all()
    for pid in ["p0", "p7", "p19", "nobody"]:
        alone = adh.monthly_pdc(adh.coverage(disp[disp.person_id == pid], st[st.person_id == pid]),
                                fu[fu.person_id == pid])
        pd.testing.assert_frame_equal(together[together.person_id == pid].reset_index(drop=True), alone)
    assert _day_by_day(disp, st, fu) == together.groupby("person_id")["days_covered"].sum().to_dict()


def _day_by_day(disp, stays, fu):
    """An independent day-by-day simulation of the rule (stock of tablets, paused in hospital)."""
    out = {}
    for row in fu.itertuples():
        d = disp[disp.person_id == row.person_id].sort_values("dispensing_date")
        s = stays[stays.person_id == row.person_id]
        hosp = set()
        for st in s.itertuples():
            hosp.update(pd.date_range(st.entry_date, st.exit_date))
        supplied = d.groupby("dispensing_date")["days_supply"].sum().to_dict()
        stock, covered = 0, 0
        day = d["dispensing_date"].min()
        while day <= row.follow_up_end_date:
            stock += int(supplied.get(day, 0))
            if day in hosp:
                hit = True
            elif stock > 0:
                stock -= 1
                hit = True
            else:
                hit = False
            if hit and day >= row.index_date:
                covered += 1
            day += pd.Timedelta(days=1)
        out[row.person_id] = covered
    return out


def test_dispensings_from_claims_cleans_raw_lines():
    ref = pd.DataFrame({"PHA_CIP_C13": ["3400930000001", "3400930000002", "3400930000003"],
                        "PHA_ATC_C07": ["L02BA01", "L02BG04", "C10AA05"], "PHA_UNT_NBR_DSES": ["30", "90", "30"]})

    def line(prs, day, cip, qty, flux="2024-02-01", qlf=0, dct=1):
        return {"BEN_NIR_PSA": "p1", "ORG_CLE_NUM": "01", "DCT_ORD_NUM": dct, "PRS_ORD_NUM": prs,
                "FLX_DIS_DTD": T(flux), "EXE_SOI_DTD": T(day), "PHA_PRS_C13": cip, "PHA_ACT_QSN": qty, "DPN_QLF": qlf}

    raw = pd.DataFrame([
        line(1, "2024-01-05", "3400930000001", 1),                    # kept
        line(1, "2024-01-05", "3400930000001", 1),                    # exact duplicate
        line(51, "2024-01-05", "3400930000001", 1, qlf=71),           # information only
        line(2, "2024-01-20", "3400930000002", 1, dct=2),             # re-sent later with 2 boxes
        line(2, "2024-01-20", "3400930000002", 2, dct=2, flux="2024-03-01"),
        line(61, "2024-01-25", "3400930000001", 1, dct=3),            # spurious line ...
        line(71, "2024-01-25", "3400930000001", -1, dct=3, flux="2024-03-01"),  # ... cancelled
        line(3, "2024-01-25", "3400930000003", 1, dct=3),             # not a hormone therapy
    ])
    out = adh.dispensings_from_claims(raw, ref).sort_values("dispensing_date")
    assert out["dispensing_date"].tolist() == [T("2024-01-05"), T("2024-01-20")]
    assert out["days_supply"].tolist() == [30, 180]
    assert out["molecule"].tolist() == ["tamoxifen", "letrozole"]


def test_join_dcir_gives_each_drug_line_its_claim_line_once():
    keys = {"FLX_DIS_DTD": T("2024-02-01"), "FLX_TRT_DTD": T("2024-01-20"), "FLX_EMT_TYP": 1, "FLX_EMT_NUM": 100,
            "FLX_EMT_ORD": 1, "ORG_CLE_NUM": "01", "PRS_ORD_NUM": 1, "REM_TYP_AFF": 1}
    claims = pd.DataFrame([
        {**keys, "DCT_ORD_NUM": 1, "BEN_NIR_PSA": "p1", "DPN_QLF": 0},
        {**keys, "DCT_ORD_NUM": 1, "BEN_NIR_PSA": "p1", "DPN_QLF": 0},               # exact duplicate
        {**keys, "DCT_ORD_NUM": 1, "FLX_EMT_NUM": 200, "BEN_NIR_PSA": "p2", "DPN_QLF": 0},  # GP: no drug line
    ])
    drugs = pd.DataFrame([{**keys, "DCT_ORD_NUM": 1, "PHA_ACT_QSN": 2}, {**keys, "DCT_ORD_NUM": 9, "PHA_ACT_QSN": 1}])
    out = adh.join_dcir(claims, drugs, [*keys, "DCT_ORD_NUM"])
    assert out[["BEN_NIR_PSA", "DCT_ORD_NUM", "PHA_ACT_QSN"]].values.tolist() == [["p1", 1, 2]]


@pytest.mark.parametrize(("extraction", "end"), [
    ("2026-06-30", "2026-04-30"), ("2026-06-01", "2026-04-30"), ("2026-07-01", "2026-05-31"),
    ("2024-03-31", "2024-01-31"), ("2026-01-15", "2025-11-30"),
])
def test_end_of_data_is_the_last_complete_flux_month(extraction, end):
    assert adh.end_of_complete_data(extraction) == T(end)


def test_flux_lag_matches_the_generator():
    """Every dispensing up to the end of data is in the extraction even at the generator's longest delay; the
    last day of the next month is not (its month is incomplete)."""
    from oncopipe.synth.dates import month_start_after
    from oncopipe.synth.parameters import REIMBURSEMENT_DELAY_MAX_DAYS

    def in_flux(dispensed: pd.Timestamp, extraction: pd.Timestamp) -> bool:
        day = np.array([(dispensed - T("1970-01-01")).days + REIMBURSEMENT_DELAY_MAX_DAYS])
        return bool(month_start_after(day)[0] <= (extraction - T("1970-01-01")).days)

    for extraction in pd.date_range("2024-01-01", "2026-12-31", freq="11D"):
        end = adh.end_of_complete_data(extraction)
        assert in_flux(end, extraction)
        assert not in_flux(end + pd.offsets.MonthEnd(1), extraction)
    with pytest.raises(ValueError, match="lag_months"):
        adh.end_of_complete_data("2026-06-30", lag_months=0)


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="days_supply"):
        adh.coverage(_disp([("2024-01-01", 0, "tamoxifen")]))
    with pytest.raises(ValueError, match="hospital_days"):
        adh.coverage(_disp([("2024-01-01", 30, "tamoxifen")]), hospital_days="bogus")
    with pytest.raises(ValueError, match="missing column"):
        adh.coverage(pd.DataFrame({"person_id": ["a"]}))


def test_discontinuation_goes_on_after_a_resumption():
    """Supplies Jan 1 (30 d: Jan 1..30), Jun 1 and Jul 1 (30 d each: Jun 1..Jul 30); follow-up to Dec 31, gap 90.

    Uncovered Jan 31..May 31 = 1 + 29 + 31 + 30 + 31 = 122 days >= 90: episode 1 is Jan 1..Jan 30 (30 days),
    ended by that gap; treatment resumes on Jun 1 (episode 2, Jun 1..Jul 30, 60 days), then Jul 31..Dec 31 =
    1 + 31 + 30 + 31 + 30 + 31 = 154 days >= 90 ends it. With follow-up to Aug 31 the last gap (32 days) is too
    short: episode 2 runs to the follow-up end (Jun 1..Aug 31, 92 days).
    """
    disp = _disp([("2024-01-01", 30, "tamoxifen"), ("2024-06-01", 30, "tamoxifen"), ("2024-07-01", 30, "letrozole")])
    cov = adh.coverage(disp)
    d = adh.discontinuation(cov, _fu("2024-01-01", "2024-12-31")).iloc[0]
    assert d["discontinuation_date"] == T("2024-01-31") and d["status"] == 1
    assert (d["n_episodes"], d["n_discontinuations"], d["resumption_date"]) == (2, 2, T("2024-06-01"))
    ep = adh.episodes(cov, _fu("2024-01-01", "2024-12-31"))
    assert ep["episode"].tolist() == [1, 2]
    assert ep["episode_start"].tolist() == [T("2024-01-01"), T("2024-06-01")]
    assert ep["episode_end"].tolist() == [T("2024-01-30"), T("2024-07-30")]
    assert ep["episode_days"].tolist() == [30, 60]
    assert ep["ending_gap_days"].tolist() == [122, 154]
    assert ep["ended_by"].tolist() == ["gap", "gap"]
    short = adh.episodes(cov, _fu("2024-01-01", "2024-08-31"))
    assert short["episode_end"].tolist() == [T("2024-01-30"), T("2024-08-31")]
    assert short["ended_by"].tolist() == ["gap", "follow_up_end"] and short["ending_gap_days"].tolist() == [122, 0]
    d = adh.discontinuation(cov, _fu("2024-01-01", "2024-08-31")).iloc[0]
    assert (d["n_episodes"], d["n_discontinuations"]) == (2, 1)


def test_episodes_start_at_the_first_covered_day_and_skip_people_without_supply():
    """Follow-up Jan 1..Mar 31, first supply Jan 11 (30 d: Jan 11..Feb 9): the 10-day gap before it is short,
    episode 1 starts on Jan 11; the trailing gap Feb 10..Mar 31 (20 + 31 = 51 days) is short too, so the
    episode runs to the follow-up end. A person with no dispensing and 100 days of follow-up (Jan 1..Apr 9)
    has one 100-day gap and no episode."""
    disp = _disp([("2024-01-11", 30, "tamoxifen")])
    fu = pd.concat([_fu("2024-01-01", "2024-03-31"), _fu("2024-01-01", "2024-04-09").assign(person_id="nobody")])
    ep = adh.episodes(adh.coverage(disp), fu)
    assert ep["person_id"].tolist() == ["p1"]
    assert ep["episode_start"].tolist() == [T("2024-01-11")] and ep["episode_end"].tolist() == [T("2024-03-31")]
    assert ep["episode_days"].tolist() == [81] and ep["ended_by"].tolist() == ["follow_up_end"]
    d = adh.discontinuation(adh.coverage(disp), fu)
    assert d["n_episodes"].tolist() == [1, 0]
    assert d["resumption_date"].isna().all()


def test_episodes_vectorised_over_people_match_one_by_one():
    rng = np.random.default_rng(11)
    frames = []
    for i in range(15):
        n = int(rng.integers(1, 10))
        dates = T("2022-01-01") + pd.to_timedelta(np.sort(rng.integers(0, 900, n)), unit="D")
        frames.append(pd.DataFrame({"person_id": f"p{i}", "dispensing_date": dates,
                                    "days_supply": rng.choice([28, 30, 90], n), "molecule": "tamoxifen"}))
    disp = pd.concat(frames)
    cohort = disp.groupby("person_id")["dispensing_date"].min().rename("index_date").reset_index()
    cohort["end_of_data_date"] = T("2024-12-31")
    fu = adh.follow_up_windows(cohort)
    together = adh.episodes(adh.coverage(disp), fu, gap_days=60)
    assert together["episode"].max() > 1
    for pid in fu["person_id"]:
        alone = adh.episodes(adh.coverage(disp[disp.person_id == pid]), fu[fu.person_id == pid], gap_days=60)
        pd.testing.assert_frame_equal(together[together.person_id == pid].reset_index(drop=True), alone)
        # Episodes and gaps tile the follow-up from the first covered day.
        assert (alone["episode_days"] + alone["ending_gap_days"]).sum() <= (
            fu.loc[fu.person_id == pid, "follow_up_end_date"].iloc[0] - alone["episode_start"].iloc[0]).days + 1
