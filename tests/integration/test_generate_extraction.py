"""``oncopipe generate``: layout, schema, code validity, linkage, determinism, CSV and the CLI."""

from __future__ import annotations

import hashlib
import re

import pandas as pd
import pyarrow.parquet as pq
import pytest
from oncopipe.cli import app
from oncopipe.contracts.sources import DCIR_KEY, PMSI_STAY, SOURCES
from oncopipe.methods.adherence import join_dcir
from oncopipe.synth.drugs import is_valid_cip13
from oncopipe.synth.extraction import generate
from synth_readers import read_source, read_truth
from typer.testing import CliRunner

DATE = "2024-12-31"
ICD10 = re.compile(r"^[A-Z][0-9]{2}[0-9A-Z]{0,2}$")
CCAM = re.compile(r"^[A-Z]{4}[0-9]{3}$")
ATC = re.compile(r"^[A-Z][0-9]{2}[A-Z]{2}[0-9]{2}$")
DEPT = re.compile(r"^(0[0-9][0-9]|02A|02B|97[1-6])$")
ARROW = {"string": "string", "int": "int64", "float": "double", "date": "date32[day]"}


@pytest.fixture(scope="module")
def extraction(tmp_path_factory):
    out = tmp_path_factory.mktemp("landing")
    report = generate(out, 1500, 11, DATE, workers=1)
    return out, report


def test_every_source_and_column_with_its_type(extraction):
    out, report = extraction
    for src in SOURCES:
        parts = sorted((out / src.name / f"extraction={DATE}").glob("part-*.parquet"))
        assert parts, src.name
        schema = pq.read_schema(parts[0])
        assert schema.names == src.column_names, src.name
        for col in src.columns:
            assert str(schema.field(col.name).type) == ARROW[col.type], (src.name, col.name)
        assert report.rows[src.name] > 0
    assert (out / "_truth" / f"extraction={DATE}" / "truth.json").is_file()
    for src in SOURCES:  # the truth stays out of the source folders
        names = [f.name for f in (out / src.name).rglob("*") if f.is_file()]
        assert all(re.fullmatch(r"part-\d{5}\.parquet", n) for n in names), names


def test_codes_are_valid(extraction):
    out, _ = extraction
    b = read_source(out, "t_mco_b", DATE)
    bad = ~b["DGN_PAL"].str.match(ICD10)
    assert bad.mean() < 0.02 and set(b.loc[bad, "DGN_PAL"]) <= {"ZZZ9"}  # planted dirt only
    assert b["DGN_REL"].dropna().str.match(ICD10).all()
    assert (b["ETA_NUM"].str.len() == 9).all() and (b["RSA_NUM"].str.len() == 10).all()
    # Each PMSI year numbers its stays again, as a hospital's yearly files do: one hospital's RSA_NUM recurs in
    # several years (for other stays), never twice in one year, so the synthetic path meets the real key's trap.
    years = b.groupby(["ETA_NUM", "RSA_NUM"])["PMSI_ANN"].agg(["nunique", "size"])
    assert (years["nunique"] > 1).sum() > 10 and (years["nunique"] == years["size"]).all()
    assert read_source(out, "t_mco_d", DATE)["ASS_DGN"].str.match(ICD10).all()
    assert read_source(out, "t_mco_a", DATE)["CDC_ACT"].str.match(CCAM).all()
    pha = read_source(out, "ir_pha_r", DATE)
    assert pha["PHA_ATC_C07"].str.match(ATC).all()
    assert pha["PHA_CIP_C13"].map(is_valid_cip13).all()
    disp = read_source(out, "er_pha_f", DATE)
    assert disp["PHA_PRS_C13"].isin(pha["PHA_CIP_C13"]).all()
    assert disp["PHA_PRS_C13"].map(is_valid_cip13).all()
    ben = read_source(out, "ir_ben_r", DATE)
    assert ben["BEN_RES_DPT"].str.match(DEPT).all()
    assert ben["BEN_SEX_COD"].isin([1, 2]).all()
    assert (ben["BEN_NIR_PSA"].str.len() == 17).all() and ben["BEN_NIR_PSA"].is_unique
    geo = read_source(out, "ir_geo_fdep", DATE)
    homes = ben.merge(geo, left_on=["BEN_RES_DPT", "BEN_RES_COM"], right_on=["DPT_COD", "COM_COD"], how="left")
    assert homes["FDEP_QUINT"].notna().all()
    reg = read_source(out, "registry_cases", DATE)
    assert reg["TOP_ICDO3"].str.match(r"^C[0-9]{2}\.[0-9]$").all()
    assert (reg["TOP_ICDO3"].str.replace(".", "", regex=False) == reg["CIM10"]).all()
    assert reg["MOR_ICDO3"].str.match(r"^[89][0-9]{3}/3$").all()
    assert reg["STADE"].isin(["I", "II", "III", "IV", "X"]).all()


def test_content_is_linked_and_plausible(extraction):
    out, _ = extraction
    truth = read_truth(out, DATE)
    ben = read_source(out, "ir_ben_r", DATE)
    nirs = set(ben["BEN_NIR_PSA"])
    claims = read_source(out, "er_prs_f", DATE)
    disp = join_dcir(claims, read_source(out, "er_pha_f", DATE), DCIR_KEY)
    # Every drug line has its pharmacy claim line; GP consultations are claim lines with no drug line.
    assert len(disp) == len(read_source(out, "er_pha_f", DATE)) and (disp["PRS_NAT_REF"] == 3317).all()
    visits = claims[claims["PRS_NAT_REF"] == 1111]
    assert 5 < len(visits) / len(ben) < 20
    stays = read_source(out, "t_mco_c", DATE)
    assert set(disp["BEN_NIR_PSA"]) <= nirs and set(stays["NIR_ANO_17"]) <= nirs
    assert 60 < len(disp) / len(ben) < 140  # ~100 dispensing lines per person over the history
    entry = pd.to_datetime(ben["BEN_DTE_INS"])
    birth = pd.to_datetime(ben["BEN_NAI_ANN"] + "-" + ben["BEN_NAI_MOI"] + "-01")
    assert entry.nunique() > 500 and (entry <= pd.Timestamp("2010-01-01")).all()
    assert (entry >= birth - pd.Timedelta(days=31)).all()
    cohorts = truth["population"]["cohorts"]
    assert abs(cohorts["breast"] / 1500 - 0.35) < 0.05 and abs(cohorts["other"] / 1500 - 0.30) < 0.05
    # Hormone therapy goes to women with a breast-cancer stay, after it.
    pha = read_source(out, "ir_pha_r", DATE)
    ht_cips = set(pha.loc[pha["PHA_ATC_C07"].str.startswith("L02B"), "PHA_CIP_C13"])
    ht = disp[disp["PHA_PRS_C13"].isin(ht_cips)]
    b = read_source(out, "t_mco_b", DATE).merge(stays, on=list(PMSI_STAY))
    breast = b[b["DGN_PAL"].str.startswith("C50")].groupby("NIR_ANO_17")["EXE_SOI_DTD"].min()
    assert len(ht) > 0 and set(ht["BEN_NIR_PSA"]) <= set(breast.index)
    first_ht = ht.groupby("BEN_NIR_PSA")["EXE_SOI_DTD"].min()
    assert (first_ht > breast.reindex(first_ht.index)).all()
    assert (ben.set_index("BEN_NIR_PSA").loc[list(breast.index), "BEN_SEX_COD"] == 2).all()
    # Registry cases are also in the claims, on the same date.
    reg = read_source(out, "registry_cases", DATE)
    first_stay = b.groupby("NIR_ANO_17")["EXE_SOI_DTD"].min()
    assert (first_stay.reindex(reg["BEN_NIR_PSA"]).to_numpy() <= reg["DAT_DIAG"].to_numpy()).all()
    # Dirt at the default rate: ~1 % information lines, negative lines only as cancellations.
    assert 0.004 < (disp["DPN_QLF"] == 71).mean() < 0.02
    assert set(disp["DPN_QLF"]) == {0, 71}
    assert (disp.loc[disp["PHA_ACT_QSN"] < 0, "PRS_ORD_NUM"] > 70).all()
    # Delta flux never after the extraction date; snapshots know the deaths.
    assert (disp["FLX_DIS_DTD"] <= pd.Timestamp(DATE).date()).all()
    deaths = read_source(out, "ki_cci_r", DATE)
    assert set(deaths["BEN_NIR_ANO"]) == set(ben.loc[ben["BEN_DCD_DTE"].notna(), "BEN_NIR_PSA"])


def _hashes(folder):
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_same_seed_same_bytes(tmp_path):
    generate(tmp_path / "a", 700, 5, DATE, workers=1)
    generate(tmp_path / "b", 700, 5, DATE, workers=2)
    generate(tmp_path / "c", 700, 6, DATE, workers=1)
    a, b, c = _hashes(tmp_path / "a"), _hashes(tmp_path / "b"), _hashes(tmp_path / "c")
    assert len(a) >= 12 and a == b
    key = "ir_ben_r/extraction=2024-12-31/part-00000.parquet"
    assert a[key] != c[key]


def test_same_bytes_whatever_the_number_of_workers(tmp_path, monkeypatch):
    from oncopipe.synth import parameters

    monkeypatch.setattr(parameters, "CHUNK_SIZE", 300)  # several chunks, hence several part files
    generate(tmp_path / "one", 700, 8, DATE, workers=1)
    generate(tmp_path / "two", 700, 8, DATE, workers=2)
    one, two = _hashes(tmp_path / "one"), _hashes(tmp_path / "two")
    assert "er_pha_f/extraction=2024-12-31/part-00002.parquet" in one
    assert one == two


def test_people_do_not_depend_on_the_number_of_patients(tmp_path):
    small = generate(tmp_path / "s", 400, 9, DATE, sources=["ir_ben_r"], workers=1).out
    large = generate(tmp_path / "l", 900, 9, DATE, sources=["ir_ben_r"], workers=1).out
    s, lg = read_source(small, "ir_ben_r", DATE), read_source(large, "ir_ben_r", DATE)
    assert s["BEN_NIR_PSA"].isin(lg["BEN_NIR_PSA"]).all()


def test_csv_format(tmp_path):
    generate(tmp_path, 300, 2, DATE, fmt="csv", sources=["ir_ben_r", "er_prs_f", "er_pha_f"], workers=1)
    frames = {name: pd.read_csv(tmp_path / name / f"extraction={DATE}" / "part-00000.csv", sep=";", dtype=str,
                                keep_default_na=False, encoding="utf-8") for name in ("er_prs_f", "er_pha_f")}
    for name, frame in frames.items():
        assert list(frame.columns) == next(s.column_names for s in SOURCES if s.name == name)
    assert frames["er_prs_f"]["EXE_SOI_DTD"].str.match(r"^\d{4}-\d{2}-\d{2}$").all()
    assert frames["er_pha_f"]["PHA_PRS_C13"].str.match(r"^34009\d{8}$").all()
    ben = pd.read_csv(tmp_path / "ir_ben_r" / f"extraction={DATE}" / "part-00000.csv", sep=";", dtype=str,
                      keep_default_na=False)
    assert ben["BEN_RES_DPT"].str.len().eq(3).all()
    assert (ben["BEN_DCD_DTE"] == "").any()  # null written as an empty field


def test_bad_arguments_are_refused(tmp_path):
    with pytest.raises(ValueError, match="outside the simulated history"):
        generate(tmp_path, 10, 1, "2030-01-01")
    with pytest.raises(ValueError, match="not an ISO date"):
        generate(tmp_path, 10, 1, "31/12/2024")
    with pytest.raises(ValueError, match="unknown fault kind 'nope'"):
        generate(tmp_path, 10, 1, DATE, faults="nope")
    with pytest.raises(ValueError, match="only applies to ir_pha_r"):
        generate(tmp_path, 10, 1, DATE, faults="invalid_atc@er_pha_f")


def test_cli_generate_and_lifetable(tmp_path):
    runner = CliRunner()
    result = runner.invoke(app, ["generate", "--patients", "200", "--seed", "3", "--extraction-date", DATE,
                                 "--out", str(tmp_path / "land"), "--faults", "unknown_sex", "--workers", "1"])
    assert result.exit_code == 0, result.output
    assert "ir_ben_r" in result.output and "fault unknown_sex on ir_ben_r" in result.output
    truth = read_truth(tmp_path / "land", DATE)
    assert truth["faults"][0]["kind"] == "unknown_sex" and truth["faults"][0]["rows_affected"] > 0
    help_text = runner.invoke(app, ["generate", "--help"]).output
    assert "orphan_stays" in help_text and "month_gap" in help_text
    result = runner.invoke(app, ["lifetable", "--out", str(tmp_path / "lt.csv")])
    assert result.exit_code == 0, result.output
    lt = pd.read_csv(tmp_path / "lt.csv")
    assert list(lt.columns) == ["sex", "age", "year", "qx", "hazard"] and len(lt) == 2 * 111 * 46
    bad = runner.invoke(app, ["generate", "--patients", "10", "--seed", "1", "--extraction-date", "2099-01-01",
                              "--out", str(tmp_path / "x")])
    assert bad.exit_code != 0 and "outside the simulated history" in bad.output

