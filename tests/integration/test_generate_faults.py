"""Every raw-gate fault kind is injected where the brief says and is caught by an independent check of the
expectation named for it; a clean extraction passes every check, and a fault leaves the other sources clean."""

from __future__ import annotations

import re

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from oncopipe.contracts.sources import DCIR_KEY, PMSI_STAY, SOURCES, SOURCES_BY_NAME
from oncopipe.synth.drugs import is_valid_cip13
from oncopipe.synth.extraction import generate
from oncopipe.synth.faults import FAULT_KINDS, parse_faults
from synth_readers import read_source, read_truth

DATE = "2024-12-31"
PREVIOUS = "2024-06-30"
N = 500
ARROW = {"string": "string", "int": "int64", "float": "double", "date": "date32[day]"}
ICD10 = re.compile(r"^[A-Z][0-9]{2}[0-9A-Z]{0,2}$")
CCAM = re.compile(r"^[A-Z]{4}[0-9]{3}$")
ATC = re.compile(r"^[A-Z][0-9]{2}[A-Z]{2}[0-9]{2}$")
DEPT = re.compile(r"^(0[0-9][0-9]|02A|02B|97[1-6])$")


def _parts(out, source):
    return sorted((out / source / f"extraction={DATE}").glob("part-*.parquet"))


def _read(out, source) -> pd.DataFrame:
    return read_source(out, source, DATE)


def _share(mask: pd.Series) -> float:
    return float(mask.mean()) if len(mask) else 0.0


def detect(kind: str, out, clean_rows: dict[str, int]) -> bool:
    """The raw-gate expectation of each fault, written independently of the generator."""
    if kind == "truncated_file":
        try:
            for p in _parts(out, "er_pha_f"):
                pq.read_table(p)
        except (pa.ArrowInvalid, OSError):
            return True
        return False
    if kind == "bad_encoding":
        labels = pq.read_table(_parts(out, "ir_pha_r")[0]).column("PHA_NOM_PA").cast(pa.binary()).to_pylist()
        try:
            [v.decode("utf-8") for v in labels]
        except UnicodeDecodeError:
            return True
        return False
    if kind == "missing_column":
        return pq.read_schema(_parts(out, "ir_ben_r")[0]).names != SOURCES_BY_NAME["ir_ben_r"].column_names
    if kind == "wrong_type":
        field = pq.read_schema(_parts(out, "er_pha_f")[0]).field("PHA_ACT_QSN")
        return str(field.type) != ARROW["int"]
    if kind == "unparsable_dates":
        col = _read(out, "er_prs_f")["EXE_SOI_DTD"].astype(str)
        return pd.to_datetime(col, format="%Y-%m-%d", errors="coerce").isna().any()
    if kind == "empty_file":
        return sum(pq.read_metadata(p).num_rows for p in _parts(out, "er_pha_f")) == 0
    if kind == "row_count_collapse":
        return sum(pq.read_metadata(p).num_rows for p in _parts(out, "er_pha_f")) < 0.5 * clean_rows["er_pha_f"]
    if kind in ("death_before_birth", "duplicated_keys", "invalid_department", "unknown_sex"):
        ben = _read(out, "ir_ben_r")
        if kind == "death_before_birth":
            birth = pd.to_datetime(ben["BEN_NAI_ANN"] + "-" + ben["BEN_NAI_MOI"] + "-01")
            return (pd.to_datetime(ben["BEN_DCD_DTE"]) < birth).any()
        if kind == "duplicated_keys":
            key = list(SOURCES_BY_NAME["ir_ben_r"].key)
            return ben.drop_duplicates().duplicated(key).any()
        if kind == "invalid_department":
            return _share(~ben["BEN_RES_DPT"].str.match(DEPT)) > 0.02
        return _share(~ben["BEN_SEX_COD"].isin([1, 2])) > 0.02
    if kind == "unknown_codes":
        return _share(~_read(out, "t_mco_b")["DGN_PAL"].str.match(ICD10)) > 0.02
    if kind == "invalid_ccam":
        return _share(~_read(out, "t_mco_a")["CDC_ACT"].str.match(CCAM)) > 0.02
    if kind == "invalid_atc":
        return _share(~_read(out, "ir_pha_r")["PHA_ATC_C07"].str.match(ATC)) > 0
    if kind == "orphan_stays":
        b, c = _read(out, "t_mco_b"), _read(out, "t_mco_c")
        linked = b.merge(c[list(PMSI_STAY)], on=list(PMSI_STAY), how="left", indicator=True)
        return _share(linked["_merge"] == "left_only") > 0.02
    drugs, disp = _read(out, "er_pha_f"), _read(out, "er_prs_f")
    if kind == "invalid_cip13":
        return _share(~drugs["PHA_PRS_C13"].map(is_valid_cip13)) > 0.02
    if kind == "negative_quantities":
        return _share(drugs["PHA_ACT_QSN"] < 0) > 0.02
    if kind == "orphan_drug_lines":
        key = list(DCIR_KEY)
        claimed = drugs.merge(disp[key].drop_duplicates(), on=key, how="left", indicator=True)
        return _share(claimed["_merge"] == "left_only") > 0.02
    if kind == "invalid_dpn_qlf":
        return _share(~disp["DPN_QLF"].isin([0, 71])) > 0.02
    if kind == "null_mandatory":
        return _share(disp["BEN_NIR_PSA"].isna()) > 0.01
    if kind == "future_dates":
        return _share(pd.to_datetime(disp["EXE_SOI_DTD"]) > pd.Timestamp(DATE)) > 0.01
    if kind == "care_after_death":
        ben = _read(out, "ir_ben_r")[["BEN_NIR_PSA", "BEN_DCD_DTE"]].dropna()
        m = disp.merge(ben, on="BEN_NIR_PSA")
        return (pd.to_datetime(m["EXE_SOI_DTD"]) - pd.to_datetime(m["BEN_DCD_DTE"])).dt.days.gt(90).any()
    if kind == "month_gap":
        care = pd.to_datetime(disp["EXE_SOI_DTD"]).dt.to_period("M")
        window = pd.period_range(pd.Period(PREVIOUS, "M") + 1, pd.Period(DATE, "M") - 1, freq="M")
        counts = care.value_counts().reindex(window, fill_value=0)
        return (counts == 0).any()
    raise AssertionError(f"no detector for {kind}")


def _sources_for(kind: str) -> list[str]:
    fk = next(f for f in FAULT_KINDS if f.kind == kind)
    extra = {"care_after_death": ["ir_ben_r"], "orphan_stays": ["t_mco_b"]}.get(kind, [])
    dcir = ["er_prs_f", "er_pha_f"] if fk.source in ("er_prs_f", "er_pha_f") else []  # the detectors read both
    return sorted({fk.source, *extra, *dcir})


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    out = tmp_path_factory.mktemp("clean")
    generate(out, N, 4, PREVIOUS, workers=1)
    report = generate(out, N, 4, DATE, workers=1)
    return out, report.rows


def test_a_clean_extraction_passes_every_check(clean):
    out, rows = clean
    failing = [f.kind for f in FAULT_KINDS if detect(f.kind, out, rows)]
    assert failing == []


@pytest.mark.parametrize("kind", [f.kind for f in FAULT_KINDS])
def test_fault_is_caught_by_its_expectation(tmp_path, clean, kind):
    _, clean_rows = clean
    sources = _sources_for(kind)
    generate(tmp_path, N, 4, PREVIOUS, sources=sources, workers=1)
    report = generate(tmp_path, N, 4, DATE, sources=sources, faults=[kind], workers=1)
    assert detect(kind, tmp_path, clean_rows), kind
    recorded = read_truth(tmp_path, DATE)["faults"]
    assert [f["kind"] for f in recorded] == [kind] and recorded[0]["rows_affected"] > 0
    assert recorded[0]["source"] == next(f.source for f in FAULT_KINDS if f.kind == kind)
    assert report.faults == [{k: v for k, v in recorded[0].items() if k != "caught_by"}]


def test_fault_on_another_source_leaves_the_rest_clean(tmp_path, clean):
    _, clean_rows = clean
    generate(tmp_path, N, 4, DATE, faults="null_mandatory@t_mco_c,missing_column@registry_cases", workers=1)
    c = _read(tmp_path, "t_mco_c")
    assert c["ETA_NUM"].isna().mean() > 0.01
    assert pq.read_schema(_parts(tmp_path, "registry_cases")[0]).names == \
        SOURCES_BY_NAME["registry_cases"].column_names[:-1]
    for kind in ("null_mandatory", "missing_column", "unknown_codes", "invalid_cip13"):
        assert not detect(kind, tmp_path, clean_rows), kind  # the DCIR tables and ir_ben_r stay clean
    assert {s.name for s in SOURCES} <= {p.name for p in tmp_path.iterdir()}


def test_bad_encoding_in_csv(tmp_path):
    generate(tmp_path, 50, 1, DATE, fmt="csv", sources=["ir_pha_r"], faults="bad_encoding", workers=1)
    data = next((tmp_path / "ir_pha_r" / f"extraction={DATE}").glob("*.csv")).read_bytes()
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")
    assert "TAMOXIFÈNE".encode("latin-1") in data


def test_conflicting_faults_are_refused():
    with pytest.raises(ValueError, match="both target er_pha_f.PHA_ACT_QSN"):
        parse_faults("wrong_type,negative_quantities")
