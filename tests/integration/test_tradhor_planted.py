"""Acceptance: GBTM on PDC computed by oncopipe.methods.adherence from a generated extraction recovers the planted
trajectory groups (ARI >= 0.8) at about 20,000 women of the breast cancer endocrine cohort.

The extraction is generated with ``oncopipe generate`` (several minutes), unless ``ONCOPIPE_TRADHOR_LANDING``
points to an existing landing folder (with its ``_truth``). ``ONCOPIPE_TRADHOR_PATIENTS`` sets the number of
simulated people (default 86,000, which gives about 20,000 treated women).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from oncopipe.contracts.sources import DCIR_KEY, PMSI_STAY
from oncopipe.methods import adherence as adh
from oncopipe.methods.trajectories import group_summary, panel_from_long, select_gbtm
from oncopipe.studies.kinds.tradhor import DEFAULTS
from sklearn.metrics import adjusted_rand_score

pytestmark = pytest.mark.slow

EXTRACTION = "2026-06-30"
PATIENTS = int(os.environ.get("ONCOPIPE_TRADHOR_PATIENTS", "86000"))


def _read(landing: Path, source: str) -> pd.DataFrame:
    folders = sorted((landing / source).glob("extraction=*"))
    return pd.concat([pd.read_parquet(f) for folder in folders for f in sorted(folder.glob("*.parquet"))],
                     ignore_index=True)


@pytest.fixture(scope="module")
def landing(tmp_path_factory) -> Path:
    given = os.environ.get("ONCOPIPE_TRADHOR_LANDING")
    if given:
        return Path(given)
    out = tmp_path_factory.mktemp("tradhor") / "landing"
    cli = Path(sys.executable).with_name("oncopipe")
    subprocess.run([str(cli), "generate", "--patients", str(PATIENTS), "--seed", "2026",
                    "--extraction-date", EXTRACTION, "--out", str(out)], check=True, capture_output=True)
    return out


def breast_cohort(landing: Path) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Cohort (follow-up windows), cleaned dispensings and stays, as the mart defines them."""
    disp = adh.dispensings_from_claims(adh.join_dcir(_read(landing, "er_prs_f"), _read(landing, "er_pha_f"), DCIR_KEY),
                                       _read(landing, "ir_pha_r"))
    registry = _read(landing, "registry_cases")
    breast = registry[registry["CIM10"].str.startswith("C50")]
    from_registry = breast[["BEN_NIR_PSA", "DAT_DIAG"]].rename(columns={"DAT_DIAG": "date"})
    # Claims-identified cases (outside registry areas): first MCO stay with a C50 principal diagnosis.
    stays_b, stays_c = _read(landing, "t_mco_b"), _read(landing, "t_mco_c")
    c50 = stays_b[stays_b["DGN_PAL"].str.startswith("C50", na=False)][list(PMSI_STAY)]
    from_claims = c50.merge(stays_c, on=list(PMSI_STAY))[["NIR_ANO_17", "EXE_SOI_DTD"]]
    from_claims.columns = ["BEN_NIR_PSA", "date"]
    cases = pd.concat([from_registry, from_claims], ignore_index=True)
    diagnosis = pd.to_datetime(cases.groupby("BEN_NIR_PSA")["date"].min()).rename("diagnosis_date")
    d = disp.merge(diagnosis, left_on="person_id", right_index=True)
    window = (d["dispensing_date"] >= d["diagnosis_date"]) & (
        d["dispensing_date"] <= d["diagnosis_date"] + pd.DateOffset(months=12))
    index = d[window].groupby("person_id")["dispensing_date"].min().rename("index_date").reset_index()
    # Follow-up ends at the end of the last complete flux month, as the cohort mart defines it.
    end_of_data = adh.end_of_complete_data(EXTRACTION)
    index = index[index["index_date"] <= end_of_data]
    deaths = pd.concat([
        _read(landing, "ir_ben_r")[["BEN_NIR_PSA", "BEN_DCD_DTE"]].set_axis(["person_id", "death"], axis=1),
        _read(landing, "ki_cci_r")[["BEN_NIR_ANO", "BEN_DCD_DTE"]].set_axis(["person_id", "death"], axis=1),
    ])
    death = pd.to_datetime(deaths.dropna().groupby("person_id")["death"].min())
    cohort = index.assign(end_of_data_date=end_of_data, death_date=index["person_id"].map(death))
    cohort = cohort[cohort["death_date"].isna() | (cohort["death_date"] >= cohort["index_date"])]
    stays = pd.DataFrame({"person_id": stays_c["NIR_ANO_17"], "entry_date": pd.to_datetime(stays_c["EXE_SOI_DTD"]),
                          "exit_date": pd.to_datetime(stays_c["EXE_SOI_DTF"])})
    stays = stays[stays["person_id"].isin(cohort["person_id"]) & (stays["exit_date"] >= stays["entry_date"])]
    return adh.follow_up_windows(cohort), disp[disp["person_id"].isin(cohort["person_id"])], stays


@pytest.fixture(scope="module")
def fitted(landing):
    follow_up, disp, stays = breast_cohort(landing)
    truth_dir = next((landing / "_truth").glob("extraction=*"))
    truth = pd.read_parquet(truth_dir / "trajectory_groups.parquet").set_index("BEN_NIR_PSA")["group"]
    monthly = adh.monthly_pdc(adh.coverage(disp, stays), follow_up)
    panel = panel_from_long(monthly, n_months=60)
    # The study's own fitting options (one sigma per group, its number of starts).
    selection = select_gbtm(panel, min_groups=2, max_groups=7, degree=3, seed=0, n_starts=DEFAULTS["n_starts"],
                            common_sigma=DEFAULTS["common_sigma"])
    return follow_up, truth, panel, selection


def test_cohort_matches_the_planted_women(fitted):
    follow_up, truth, panel, _ = fitted
    assert len(follow_up) >= 0.9 * min(len(truth), 20000)
    assert follow_up["person_id"].isin(truth.index).mean() > 0.98
    assert panel.n_people == len(follow_up)


def _report(truth, panel, selection, fit) -> tuple[float, dict]:
    planted = truth.reindex(fit.person_ids)
    known = planted.notna().to_numpy()
    ari = adjusted_rand_score(planted[known].astype(int), fit.assignment[known])
    long = known & (panel.observed >= IDENTIFIABLE_MONTHS)
    report = {"women": panel.n_people, "planted_groups": int(truth.nunique()), "chosen_k": selection.chosen_k,
              "fit_k": fit.k, "ari_all": round(float(ari), 4),
              f"ari_women_followed_{IDENTIFIABLE_MONTHS}_months": round(float(adjusted_rand_score(
                  planted[long].astype(int), fit.assignment[long])), 4),
              "share_followed_long_enough": round(float(long.mean()), 4),
              "table": selection.table.round(4).to_dict(orient="records"),
              "groups": group_summary(fit).round(4).to_dict(orient="records")}
    print(json.dumps(report, indent=1, default=str))
    return ari, report


# Women followed this long show their planted group whatever it is (late_decline reaches 0 at month 36, 37.5 with
# the personal time shift; every declining group leaves the adherent one within the first year).
IDENTIFIABLE_MONTHS = 46


# Measured 2026-11-22 (86,000 people, extraction 2026-06-30, follow-up ending at the last complete flux month, one
# sigma per group, EM starts by k-means over the observed months plus the split groups of the (k-1)-group fit):
# BIC among adequate models chooses the 6 planted groups, ARI 0.942 at seed 2026 (20,314 women) and 0.936 at
# seed 7 (20,362 women); 0.997 on the women followed at least 46 months.
# History, so a regression is recognised: (1) with a person-level PDC offset in the generator (sd 0.01, then 0.025)
# BIC chose 7 groups at both seeds (ARI 0.70 / 0.68): carry-over turned the offset into runs of fully covered
# months and the adherent group split in two (16% with 77% of months fully covered, 84% with 60%; the share split
# off rose from 3% to 44% across the offset's deciles). A continuous within-group offset has no true number of
# groups for a finite mixture (Bauer & Curran 2003), so the planted groups are now homogeneous (synth/endocrine.py).
# (2) The generator's late re-sent pharmacy lines used to "correct" a true quantity into a wrong one that the
# cleaning keeps, giving 7% of the women a box of stock they never refilled for (synth/chunk.py, fixed).
# (3) Follow-up ending at the extraction date counted the last, incomplete flux months as non-adherence.
def test_selected_model_recovers_planted_groups(fitted):
    """The acceptance criterion as specified: BIC + adequacy over 2..7 groups, ARI >= 0.8 on every woman."""
    _, truth, panel, selection = fitted
    ari, report = _report(truth, panel, selection, selection.chosen)
    assert ari >= 0.8, report


def test_selected_model_recovers_the_planted_number_of_groups(fitted):
    """The other half of the criterion: the number of groups chosen is the number planted."""
    _, truth, _, selection = fitted
    assert selection.chosen_k == int(truth.nunique())


def test_planted_number_of_groups_assigns_every_woman(fitted):
    """The fit with the planted number of groups recovers them on every woman, whatever her follow-up."""
    _, truth, panel, selection = fitted
    ari, report = _report(truth, panel, selection, selection.fits[int(truth.nunique())])
    assert ari >= 0.8, report


def test_planted_number_of_groups_recovers_identifiable_women(fitted):
    """With the planted number of groups, women followed long enough for their group to show are recovered."""
    _, truth, panel, selection = fitted
    k = int(truth.nunique())
    fit = selection.fits[k]
    _, report = _report(truth, panel, selection, fit)
    assert report[f"ari_women_followed_{IDENTIFIABLE_MONTHS}_months"] >= 0.8, report
    assert report["share_followed_long_enough"] > 0.5, report
