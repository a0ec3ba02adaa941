"""Calibration: what the generated tables show matches what truth.json says was planted.

Survival is measured with a small Kaplan-Meier written here, on cases found by a claims algorithm (first PMSI
stay with the site's ICD-10 code as principal or related diagnosis) and deaths from IR_BEN_R. Adherence is
measured with an independent implementation of the PDC rule (carry-over, hospital days ignored) on the
cleaned dispensings.
"""

from __future__ import annotations

import calendar
import datetime as dt

import numpy as np
import pandas as pd
import pytest
from oncopipe.contracts.sources import DCIR_KEY, PMSI_STAY
from oncopipe.methods.adherence import join_dcir
from oncopipe.synth import parameters as P
from oncopipe.synth.extraction import generate
from synth_readers import read_source, read_truth


def kaplan_meier_at(days: np.ndarray, event: np.ndarray, at: float) -> float:
    """Product-limit survival at ``at`` days (deaths before censorings at tied times)."""
    surv = 1.0
    for t in np.unique(days[(event == 1) & (days <= at)]):
        at_risk = np.sum(days >= t)
        deaths = np.sum((days == t) & (event == 1))
        surv *= 1.0 - deaths / at_risk
    return surv


def test_kaplan_meier_by_hand():
    days = np.array([1, 2, 2, 3, 5, 8])
    event = np.array([1, 1, 0, 1, 0, 1])
    # 1: 5/6; 2: x 4/5 (one death of 5 at risk); 3: x 2/3; 8: x 0/1.
    assert kaplan_meier_at(days, event, 4) == pytest.approx(5 / 6 * 4 / 5 * 2 / 3)
    assert kaplan_meier_at(days, event, 8) == 0.0


def _observed_five_year_survival(out, date: str, codes: dict[str, list[str]]) -> dict[str, tuple[int, float]]:
    stays = read_source(out, "t_mco_b", date).merge(read_source(out, "t_mco_c", date),
                                                       on=list(PMSI_STAY))
    deaths = read_source(out, "ir_ben_r", date).set_index("BEN_NIR_PSA")["BEN_DCD_DTE"]
    result = {}
    for site, site_codes in codes.items():
        hit = stays[stays["DGN_PAL"].isin(site_codes) | stays["DGN_REL"].isin(site_codes)]
        diagnosis = pd.to_datetime(hit.groupby("NIR_ANO_17")["EXE_SOI_DTD"].min())
        death = pd.to_datetime(deaths.reindex(diagnosis.index))
        end = death.fillna(pd.Timestamp(date))
        days = (end - diagnosis).dt.days.to_numpy().astype(float)
        result[site] = (len(days), kaplan_meier_at(days, death.notna().to_numpy().astype(int), 5 * 365.25))
    return result


def _check_survival(out, date: str, sites: list[str]) -> None:
    truth = read_truth(out, date)
    codes = {s: truth["code_lists"]["icd10"][s] for s in sites}
    observed = _observed_five_year_survival(out, date, codes)
    for site in sites:
        n, km = observed[site]
        planted = truth["survival"]["sites"][site]
        assert n == pytest.approx(planted["n_cases"], rel=0.01), site  # the claims algorithm finds every case
        assert km == pytest.approx(planted["implied_observed_survival_5y"], abs=0.03), (site, n, km)
        # The planted case mix has the published net survival.
        assert planted["case_mix_net_survival_5y"] == pytest.approx(P.NET_SURVIVAL_5Y[site], abs=0.03), site


def test_five_year_survival_large_sites(tmp_path):
    generate(tmp_path, 40_000, 17, "2026-12-31", sources=["ir_ben_r", "t_mco_b", "t_mco_c"])
    _check_survival(tmp_path, "2026-12-31", ["breast", "lung", "pancreas"])


@pytest.mark.slow
def test_five_year_survival_every_site(tmp_path):
    generate(tmp_path, 150_000, 23, "2026-12-31", sources=["ir_ben_r", "t_mco_b", "t_mco_c"])
    _check_survival(tmp_path, "2026-12-31", list(P.NET_SURVIVAL_5Y))


def _clean_dispensings(disp: pd.DataFrame) -> pd.DataFrame:
    key = ["ORG_CLE_NUM", "DCT_ORD_NUM", "PRS_ORD_NUM"]
    d = disp[disp["DPN_QLF"] != 71].drop_duplicates()
    d = d.sort_values("FLX_DIS_DTD").drop_duplicates(key, keep="last")
    match = ["BEN_NIR_PSA", "EXE_SOI_DTD", "PHA_PRS_C13", "DCT_ORD_NUM"]
    neg = d[d["PHA_ACT_QSN"] < 0].assign(qty=lambda f: -f["PHA_ACT_QSN"])[match + ["qty"]]
    pos = d[d["PHA_ACT_QSN"] > 0]
    pos = pos.merge(neg.assign(cancelled=True).drop_duplicates(match + ["qty"]), left_on=match + ["PHA_ACT_QSN"],
                    right_on=match + ["qty"], how="left")
    # A cancellation removes one matching line (the highest line number: the spurious one).
    pos["rank"] = pos.sort_values("PRS_ORD_NUM", ascending=False).groupby(match).cumcount()
    keep = pos["cancelled"].isna() | (pos["rank"] > 0)
    return pos[keep].drop(columns=["qty", "cancelled", "rank"])


def _add_months(start: dt.date, k: int) -> dt.date:
    year, month = divmod(start.month - 1 + k, 12)
    year, month = start.year + year, month + 1
    return dt.date(year, month, min(start.day, calendar.monthrange(year, month)[1]))


def _monthly_pdc(dates: np.ndarray, supplies: np.ndarray, index: dt.date, end: dt.date) -> list[float]:
    covered = np.zeros(int(dates.max() + supplies.sum()) + 2000, dtype=bool)
    next_free = None
    for t, s in zip(dates, supplies, strict=True):
        start = t if next_free is None else max(t, next_free)
        covered[start:start + s] = True
        next_free = start + s
    cum = np.concatenate([[0], np.cumsum(covered)])
    out = []
    for k in range(60):
        a = _add_months(index, k)
        if a > end:
            break
        b = min(_add_months(index, k + 1) - dt.timedelta(days=1), end)
        lo, hi = (a - index).days, (b - index).days
        out.append((cum[hi + 1] - cum[lo]) / (hi - lo + 1))
    return out


def test_adherence_trajectories_follow_the_planted_profiles(tmp_path):
    date = "2027-12-31"
    generate(tmp_path, 8_000, 31, date, sources=["ir_ben_r", "er_prs_f", "er_pha_f", "ir_pha_r"])
    truth = read_truth(tmp_path, date)
    groups = pd.read_parquet(tmp_path / "_truth" / f"extraction={date}" / "trajectory_groups.parquet")
    pha = read_source(tmp_path, "ir_pha_r", date)
    ht = pha[pha["PHA_ATC_C07"].isin(["L02BA01", "L02BG03", "L02BG04", "L02BG06"])]
    raw = join_dcir(read_source(tmp_path, "er_prs_f", date), read_source(tmp_path, "er_pha_f", date),
                    DCIR_KEY)
    disp = _clean_dispensings(raw[raw["PHA_PRS_C13"].isin(ht["PHA_CIP_C13"])])
    disp = disp.merge(ht[["PHA_CIP_C13", "PHA_UNT_NBR_DSES"]], left_on="PHA_PRS_C13", right_on="PHA_CIP_C13")
    disp["supply"] = disp["PHA_ACT_QSN"] * disp["PHA_UNT_NBR_DSES"].astype(int)
    disp = disp.sort_values(["BEN_NIR_PSA", "EXE_SOI_DTD", "PHA_PRS_C13", "DCT_ORD_NUM", "PRS_ORD_NUM"])
    deaths = read_source(tmp_path, "ir_ben_r", date).set_index("BEN_NIR_PSA")["BEN_DCD_DTE"]
    assert set(disp["BEN_NIR_PSA"]) == set(groups["BEN_NIR_PSA"])  # every treated woman, and only them
    sums, counts = np.zeros((6, 60)), np.zeros((6, 60))
    group_of = groups.set_index("BEN_NIR_PSA")["group"]
    for nir, d in disp.groupby("BEN_NIR_PSA", sort=True):
        index = d["EXE_SOI_DTD"].iloc[0]
        days = np.array([(x - index).days for x in d["EXE_SOI_DTD"]])
        end = min(_add_months(index, 60) - dt.timedelta(days=1), dt.date.fromisoformat(date))
        if pd.notna(deaths.get(nir)):
            end = min(end, deaths[nir])
        pdc = _monthly_pdc(days, d["supply"].to_numpy(), index, end)
        g = group_of[nir] - 1
        sums[g, : len(pdc)] += pdc
        counts[g, : len(pdc)] += 1
    for g, (name, _share) in enumerate(P.TRAJECTORY_GROUPS):
        ok = counts[g] >= 15
        mean = sums[g, ok] / counts[g, ok]
        planted = P.trajectory_profile(g, np.arange(60))[ok]
        assert np.mean(np.abs(mean - planted)) < 0.06, (name, np.round(mean[:24], 2))
    # Box sizes are drawn at each dispensing: no woman keeps one box size (that splits the adherent group in GBTM).
    regular = (disp.assign(big=disp["PHA_UNT_NBR_DSES"].astype(int) >= 60)
               .groupby("BEN_NIR_PSA")["big"].agg(["mean", "size"]))
    regular = regular[regular["size"] >= 20]
    assert len(regular) > 100
    assert regular["mean"].mean() == pytest.approx(P.BIG_BOX_SHARE, abs=0.03)
    assert regular["mean"].between(0.05, 0.95).mean() > 0.95
    # Group shares reproduce the planted ones within sampling error.
    n = len(groups)
    for entry in truth["adherence"]["groups"]:
        p = entry["planted_share"]
        assert abs(entry["observed_share"] - p) < 4 * np.sqrt(p * (1 - p) / n) + 0.005, entry["name"]
