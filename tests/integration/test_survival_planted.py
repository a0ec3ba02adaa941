"""The survival methods recover what the generator planted, from the generator's raw landing tables.

The landing folder is ``$ONCOPIPE_PLANTED_LANDING`` when set (e.g. the team's large ``oncopipe generate``
run), otherwise a fresh extraction of ``PATIENTS`` people generated into a temporary folder. The dbt marts are
not used: a small case assembly below builds the case table from the raw sources (registry, PMSI stays and
acts, beneficiaries, causes of death, FDep):

- a case = (person, site) with a PMSI main diagnosis of the site (ICD-10 prefixes below) or a registry record;
  diagnosis date and stage from the registry when present, else the first stay with the diagnosis and stage X;
  diagnosing hospital = FINESS of the first stay with the diagnosis;
- first treatment = first stay on/after diagnosis with chemotherapy (Z511), radiotherapy (Z510) or a surgical
  act of the site (code lists from the extraction's truth.json, which records the code lists it used);
- death = beneficiary death date, else CepiDc date; the generator makes some deaths reach the tables up to 400
  days late, so follow-up is censored 400 days before the extraction date (no missed deaths).

Checks: Pohar-Perme 5-year net survival per site within 3 points of the planted net survival of the case mix;
planted excess-hazard ratios (stage, age band, deprivation) inside the 95% CIs of the relative-survival model
(registry cases, stage known); fast-track hospitals found by the case-mix-adjusted comparison.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from oncopipe.contracts.sources import PMSI_STAY
from oncopipe.landing.lifetables import build_life_table
from oncopipe.methods.cox import design_matrix
from oncopipe.methods.delays import hospital_comparison
from oncopipe.methods.net_survival import excess_hazard_regression, pohar_perme

pytestmark = pytest.mark.slow

PATIENTS = 60_000
STAY = list(PMSI_STAY)
EXTRACTION = "2025-06-30"
REPORTING_LAG_DAYS = 400
SITE_PREFIXES = {"C15": "oesophagus", "C16": "stomach", "C22": "liver", "C25": "pancreas", "C33": "lung",
                 "C34": "lung", "C71": "cns"}


def _read(landing: Path, source: str) -> pd.DataFrame:
    files = sorted(landing.glob(f"{source}/extraction=*/part-*.parquet"))
    assert files, f"no parquet files for {source} under {landing}"
    return pd.concat([pd.read_parquet(f) for f in files], ignore_index=True).drop_duplicates()


@pytest.fixture(scope="module")
def landing(tmp_path_factory) -> Path:
    given = os.environ.get("ONCOPIPE_PLANTED_LANDING")
    if given:
        return Path(given)
    out = tmp_path_factory.mktemp("planted_landing")
    cli = Path(sys.executable).with_name("oncopipe")
    subprocess.run([str(cli), "generate", "--patients", str(PATIENTS), "--seed", "11", "--extraction-date",
                    EXTRACTION, "--out", str(out)], check=True, capture_output=True)
    return out


@pytest.fixture(scope="module")
def truth(landing) -> dict:
    files = sorted(landing.glob("_truth/extraction=*/truth.json"))
    return json.loads(files[-1].read_text())


def _site(codes: pd.Series) -> pd.Series:
    return codes.astype(str).str.replace(".", "", regex=False).str[:3].map(SITE_PREFIXES)


@pytest.fixture(scope="module")
def assembled(landing, truth) -> pd.DataFrame:
    extraction = pd.Timestamp(truth["generator"]["extraction_date"])
    end = extraction - pd.Timedelta(days=REPORTING_LAG_DAYS)
    ben = _read(landing, "ir_ben_r").drop_duplicates("BEN_NIR_PSA")
    cci = _read(landing, "ki_cci_r").drop_duplicates("BEN_NIR_ANO")
    fdep = _read(landing, "ir_geo_fdep")
    stays = _read(landing, "t_mco_b").merge(_read(landing, "t_mco_c"), on=STAY)
    stays["date"] = pd.to_datetime(stays["EXE_SOI_DTD"])
    acts = _read(landing, "t_mco_a")
    registry = _read(landing, "registry_cases")

    stays["site"] = _site(stays["DGN_PAL"])
    dx = (stays.dropna(subset=["site"]).sort_values("date")
          .groupby(["NIR_ANO_17", "site"], as_index=False).first()[["NIR_ANO_17", "site", "date", "ETA_NUM"]])
    dx.columns = ["person", "site", "first_stay", "hospital_id"]
    registry["site"] = _site(registry["CIM10"])
    reg = (registry.dropna(subset=["site"]).sort_values("DAT_DIAG")
           .groupby(["BEN_NIR_PSA", "site"], as_index=False).first()[["BEN_NIR_PSA", "site", "DAT_DIAG", "STADE"]])
    reg.columns = ["person", "site", "registry_date", "stage"]
    cases = dx.merge(reg, on=["person", "site"], how="outer")
    cases["in_registry"] = cases["registry_date"].notna()
    cases["diagnosis_date"] = pd.to_datetime(cases["registry_date"]).fillna(cases["first_stay"])
    cases["stage"] = cases["stage"].fillna("X")

    codes = truth["code_lists"]
    surgery = {c for k, v in codes["surgery_ccam"].items() if not k.startswith("breast") for c in v}
    surg_stays = acts[acts["CDC_ACT"].isin(surgery)][STAY].drop_duplicates()
    treat = pd.concat([
        stays[stays["DGN_PAL"].isin([codes["chemotherapy"]["dgn_pal"], codes["radiotherapy"]["dgn_pal"]])],
        stays.merge(surg_stays, on=STAY),
    ])[["NIR_ANO_17", "date"]].rename(columns={"NIR_ANO_17": "person", "date": "treatment_date"})
    first_treat = (cases[["person", "site", "diagnosis_date"]].merge(treat, on="person")
                   .query("treatment_date >= diagnosis_date")
                   .groupby(["person", "site"], as_index=False)["treatment_date"].min())
    cases = cases.merge(first_treat, on=["person", "site"], how="left")

    cci = cci[["BEN_NIR_ANO", "BEN_DCD_DTE"]].set_axis(["BEN_NIR_PSA", "CCI_DCD_DTE"], axis=1)
    people = ben.merge(cci, on="BEN_NIR_PSA", how="left")
    people["death"] = pd.to_datetime(people["BEN_DCD_DTE"]).fillna(pd.to_datetime(people["CCI_DCD_DTE"]))
    people = people.merge(fdep, left_on=["BEN_RES_DPT", "BEN_RES_COM"], right_on=["DPT_COD", "COM_COD"], how="left")
    people = people.rename(columns={"BEN_NIR_PSA": "person"})
    cases = cases.merge(people[["person", "BEN_SEX_COD", "BEN_NAI_ANN", "BEN_NAI_MOI", "death", "FDEP_QUINT"]],
                        on="person", how="inner")
    cases = cases[cases["diagnosis_date"] < end].copy()
    birth = pd.to_datetime(cases["BEN_NAI_ANN"].astype(str) + "-" + cases["BEN_NAI_MOI"].astype(str) + "-15")
    cases["age_exact"] = (cases["diagnosis_date"] - birth).dt.days / 365.25
    cases["sex"] = cases["BEN_SEX_COD"].astype(int).map({1: "male", 2: "female"})
    cases["year_exact"] = cases["diagnosis_date"].dt.year + (cases["diagnosis_date"].dt.day_of_year - 0.5) / 365.25
    dead = cases["death"].notna() & (cases["death"] <= end)
    stop = cases["death"].where(dead, end)
    cases["follow_up_days"] = (stop - cases["diagnosis_date"]).dt.days.clip(lower=0)
    cases["event"] = dead.astype(int)
    cases["delay_days"] = (cases["treatment_date"] - cases["diagnosis_date"]).dt.days
    cases["deprivation_quintile"] = cases["FDEP_QUINT"]
    cases["age_at_diagnosis"] = np.floor(cases["age_exact"]).astype(int)
    return cases.reset_index(drop=True)


def test_case_assembly_is_plausible(assembled, truth):
    assert set(assembled["site"]) == {"lung", "pancreas", "liver", "oesophagus", "stomach", "cns"}
    assert assembled["sex"].notna().all() and assembled["age_exact"].between(15, 105).all()
    assert (assembled["follow_up_days"] >= 0).all()


def test_net_survival_5y_within_3_points(assembled, truth):
    life_table = build_life_table()
    planted = truth["survival"]["sites"]
    for site, part in assembled.groupby("site"):
        res = pohar_perme(part["follow_up_days"], part["event"], part["age_exact"], part["year_exact"], part["sex"],
                          life_table, times_years=[5])
        estimate = res.loc[0, "net_survival"]
        target = planted[site]["case_mix_net_survival_5y"]
        assert abs(estimate - target) <= 0.03, (site, estimate, target, res.loc[0, "n_risk"])


def test_planted_excess_hazard_ratios_inside_ci(assembled, truth):
    hr = truth["survival"]["hazard_ratios"]
    data = assembled[assembled["in_registry"] & (assembled["site"] != "cns")
                     & assembled["deprivation_quintile"].notna()].copy()
    data["age_band"] = pd.cut(data["age_exact"], [0, 50, 65, 75, 200], labels=["<50", "50-64", "65-74", "75+"],
                              right=False).astype(str)
    data["quintile"] = data["deprivation_quintile"].astype(int).astype(str)
    design, _ = design_matrix(data, categorical={"site": "lung", "stage": "III", "age_band": "50-64",
                                                 "quintile": "1"})
    res = excess_hazard_regression(data["follow_up_days"], data["event"], data["age_exact"], data["year_exact"],
                                   data["sex"], design, build_life_table()).set_index("term")
    planted = {f"stage={k}": v for k, v in hr["stage"].items() if k != "III"}
    planted |= {f"age_band={k}": v for k, v in hr["age_band"].items() if k != "50-64"}
    planted |= {f"quintile={k}": v for k, v in hr["deprivation_quintile"].items() if k != "1"}
    outside = {term: (value, res.loc[term, "ehr_lower"], res.loc[term, "ehr_upper"])
               for term, value in planted.items()
               if term in res.index and not res.loc[term, "ehr_lower"] <= value <= res.loc[term, "ehr_upper"]}
    assert not outside, outside
    assert {"stage=I", "stage=IV", "age_band=75+"} <= set(res.index)


def test_fast_track_hospitals_found(assembled, truth):
    delays = assembled[assembled["delay_days"].notna()].assign(hospital_id=lambda d: d["hospital_id"].astype(str))
    comp = hospital_comparison(delays, min_treated=20)
    found = set(comp.loc[comp["fast_track_candidate"], "hospital_id"])
    info = {h["hospital_id"]: h for h in truth["care_pathways"]["hospitals"]}
    planted = set(truth["care_pathways"]["fast_track_hospitals"]) & set(comp["hospital_id"])
    assert planted, "no planted fast-track hospital has enough treated cases"
    recall = len(found & planted) / len(planted)
    # Planted shift of each hospital = its random effect - 20 days if fast track; a flagged hospital must be
    # genuinely fast (shift below -5 days), and at least 80% of the fast-track hospitals must be found.
    shift = {h: info[h]["effect_days"] - (truth["care_pathways"]["fast_track_reduction_days"]
                                          if info[h]["fast_track"] else 0.0) for h in comp["hospital_id"]}
    assert recall >= 0.8, (sorted(found), sorted(planted))
    assert all(shift[h] < -5 for h in found), {h: shift[h] for h in found}
