"""A second extraction into the same landing folder is a consistent continuation of the first."""

from __future__ import annotations

import pandas as pd
import pytest
from oncopipe.synth.extraction import generate
from synth_readers import read_source, read_truth

D1, D2 = "2023-06-30", "2024-12-31"
DELTAS = ("er_prs_f", "er_pha_f", "t_mco_b", "t_mco_c", "t_mco_d", "t_mco_a")


@pytest.fixture(scope="module")
def landings(tmp_path_factory):
    a = tmp_path_factory.mktemp("two_extractions")
    b = tmp_path_factory.mktemp("one_extraction")
    # A higher dirt rate so that late death dates (missing at D1, filled at D2) certainly occur.
    generate(a, 1200, 21, D1, dirt_rate=0.05, workers=1)
    generate(a, 1200, 21, D2, dirt_rate=0.05, workers=1)
    generate(b, 1200, 21, D2, dirt_rate=0.05, workers=1)
    return a, b


def _sorted(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values(list(frame.columns)).reset_index(drop=True)


@pytest.mark.parametrize("source", DELTAS)
def test_union_of_deltas_equals_one_extraction(landings, source):
    a, b = landings
    first, second = read_source(a, source, D1), read_source(a, source, D2)
    single = read_source(b, source, D2)
    assert len(first) > 0 and len(second) > 0
    pd.testing.assert_frame_equal(_sorted(pd.concat([first, second])), _sorted(single))


def test_second_delta_holds_only_new_flux(landings):
    a, _ = landings
    assert read_truth(a, D2)["generator"]["previous_extraction"]["er_pha_f"] == D1
    assert read_truth(a, D1)["generator"]["previous_extraction"]["er_pha_f"] is None
    d1 = pd.Timestamp(D1).date()
    assert (read_source(a, "er_pha_f", D2)["FLX_DIS_DTD"] > d1).all()
    assert (read_source(a, "er_pha_f", D1)["FLX_DIS_DTD"] <= d1).all()
    assert (read_source(a, "t_mco_c", D2)["EXE_SOI_DTF"] > d1).all()


def test_late_resent_lines_cross_extractions(landings):
    a, _ = landings
    key = ["ORG_CLE_NUM", "DCT_ORD_NUM", "PRS_ORD_NUM"]
    both = pd.concat([read_source(a, "er_pha_f", D1), read_source(a, "er_pha_f", D2)])
    versions = both.drop_duplicates().groupby(key)["FLX_DIS_DTD"].nunique()
    assert (versions > 1).sum() > 0  # same line key, a later flux


def test_snapshots_are_updated(landings):
    a, b = landings
    ben1, ben2 = read_source(a, "ir_ben_r", D1), read_source(a, "ir_ben_r", D2)
    assert set(ben1["BEN_NIR_PSA"]) <= set(ben2["BEN_NIR_PSA"])
    pd.testing.assert_frame_equal(ben2, read_source(b, "ir_ben_r", D2))
    m = ben1.merge(ben2, on="BEN_NIR_PSA", suffixes=("_1", "_2"))
    known1 = m["BEN_DCD_DTE_1"].notna()
    assert (m.loc[known1, "BEN_DCD_DTE_1"] == m.loc[known1, "BEN_DCD_DTE_2"]).all()
    new = m["BEN_DCD_DTE_1"].isna() & m["BEN_DCD_DTE_2"].notna()
    assert new.sum() > 0
    d1 = pd.Timestamp(D1).date()
    assert (m.loc[new, "BEN_DCD_DTE_2"] <= d1).sum() > 0  # deaths before D1 that D1 did not know yet
    reg1, reg2 = read_source(a, "registry_cases", D1), read_source(a, "registry_cases", D2)
    assert set(reg1["REG_CAS_ID"]) < set(reg2["REG_CAS_ID"])  # newly diagnosed cases
    assert (reg2["DAT_DIAG"] > d1).any()


def test_a_single_pmsi_table_finds_its_own_previous_extraction(tmp_path):
    generate(tmp_path, 300, 5, D1, sources=["t_mco_c"], workers=1)
    generate(tmp_path, 300, 5, D2, sources=["t_mco_c"], workers=1)
    assert (read_source(tmp_path, "t_mco_c", D2)["EXE_SOI_DTF"] > pd.Timestamp(D1).date()).all()
