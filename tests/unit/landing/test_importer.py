"""``oncopipe import`` on a small extract written by hand in the delivered shape (support/delivered_extract.py)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from oncopipe.contracts.sources import SOURCES, SOURCES_BY_NAME
from oncopipe.landing.importer import ExtractImportError, delivered_name, import_extract, table_of
from support.delivered_extract import DATE, DELIVERED, P1, P2, deliver
from typer.testing import CliRunner


def _landed(landing: Path, source: str) -> list[dict]:
    folder = landing / source / f"extraction={DATE}"
    return [r for p in sorted(folder.glob("part-*.parquet")) for r in pq.read_table(p).to_pylist()]


def test_a_hand_written_delivery_lands_in_the_contract_shape(tmp_path):
    report = import_extract(deliver(tmp_path / "delivery"), tmp_path / "landing", DATE)
    landing = tmp_path / "landing"
    assert report.rows == {"ir_ben_r": 2, "ir_pha_r": 1, "er_prs_f": 3, "er_pha_f": 2, "t_mco_b": 2, "t_mco_c": 2,
                           "t_mco_d": 1, "t_mco_a": 1, "ki_cci_r": 1}
    assert report.files["er_prs_f"] == ["ER_PRS_F_2023.csv", "ER_PRS_F_2024.csv"]
    assert report.files["t_mco_b"] == ["T_MCO22B.csv", "T_MCO23B.csv"]  # two years, one landing source
    assert report.skipped == ["LISEZMOI.txt"]
    for source in report.rows:
        schema = pq.read_schema(next((landing / source / f"extraction={DATE}").glob("*.parquet")))
        assert schema.names == SOURCES_BY_NAME[source].column_names  # unused columns dropped, contract order
    ben = _landed(landing, "ir_ben_r")
    assert [r["BEN_NIR_PSA"] for r in ben] == [P1, P2]  # NUM_ENQ is the person key
    assert ben[0]["BEN_DCD_DTE"] is None and ben[1]["BEN_DCD_DTE"] == dt.date(2023, 8, 2)
    assert ben[0]["BEN_DTE_MAJ"] == dt.date(2024, 6, 15) and ben[0]["BEN_SEX_COD"] == 2
    stays = _landed(landing, "t_mco_c")
    assert [(r["NIR_ANO_17"], r["EXE_SOI_DTD"]) for r in stays] == [(P1, dt.date(2022, 5, 2)),
                                                                     (P2, dt.date(2023, 7, 10))]
    assert _landed(landing, "t_mco_b")[0]["DGN_REL"] is None  # empty field is null
    assert _landed(landing, "ki_cci_r")[0]["BEN_NIR_ANO"] == P2
    claims = _landed(landing, "er_prs_f")
    assert [(r["BEN_NIR_PSA"], r["EXE_SOI_DTD"], r["PRS_NAT_REF"]) for r in claims] == [
        (P2, dt.date(2023, 3, 14), 3317), (P1, dt.date(2024, 1, 15), 3317), (P1, dt.date(2024, 1, 18), 1111)]
    drugs = _landed(landing, "er_pha_f")
    assert [(r["FLX_DIS_DTD"], r["DCT_ORD_NUM"], r["PHA_PRS_C13"], r["PHA_ACT_QSN"]) for r in drugs] == [
        (dt.date(2024, 2, 1), 10001, "3400935955838", 1), (dt.date(2023, 4, 1), 20001, "3400935955838", 2)]
    assert _landed(landing, "ir_pha_r")[0]["PHA_NOM_PA"] == "TAMOXIFÈNE 20 mg, boîte de 30"
    assert not [p for p in landing.iterdir() if p.name.startswith(".")]  # no staging folder left


@pytest.mark.parametrize(("name", "table", "year"), [
    ("ER_PHA_F_2023.csv", "er_pha_f", 2023), ("er_prs_f.csv", "er_prs_f", None),
    ("ER_PRS_F_23.parquet", "er_prs_f", 2023),
    ("T_MCO23B.csv", "t_mco_b", 2023), ("t_mco19a.parquet", "t_mco_a", 2019),
    ("ki_cci_r_2023.sas7bdat", "ki_cci_r", 2023), ("IR_BEN_R.csv", "ir_ben_r", None),
    ("registry_cases.csv", "registry_cases", None), ("T_MCO23E.csv", None, None)])
def test_the_table_is_read_from_the_file_name(name, table, year):
    if table is None:
        with pytest.raises(ExtractImportError, match=name):
            table_of(Path(name))
    else:
        src, got = table_of(Path(name))
        assert (src.name, got) == (table, year)


def _broken(tmp_path: Path, name: str, old: str, new: str) -> Path:
    files = dict(DELIVERED)
    assert old in files[name]
    files[name] = files[name].replace(old, new, 1)
    return deliver(tmp_path / "delivery", files)


@pytest.mark.parametrize(("name", "old", "new", "message"), [
    ("IR_BEN_R.csv", "15/06/2024", "2024-06-15",
     "IR_BEN_R.csv, line 2, column BEN_DTE_MAJ: '2024-06-15' is not a date DD/MM/YYYY"),
    ("T_MCO23C.csv", "10072023;12072023;0", "10/07/2023;12072023;0",
     "T_MCO23C.csv, line 2, column EXE_SOI_DTD: '10/07/2023' is not a date DDMMYYYY"),
    ("IR_BEN_R.csv", f"{P2};1;1;", f"{P2};1;M;", "IR_BEN_R.csv, line 3, column BEN_SEX_COD: 'M' is not an integer"),
    ("IR_BEN_R.csv", "01/01/2010;20/09/2023", "1/1/2010;20/09/2023",
     "IR_BEN_R.csv, line 3, column BEN_DTE_INS: '1/1/2010' is not a date DD/MM/YYYY"),
    ("T_MCO22B.csv", "DGN_PAL;", "DP;", "T_MCO22B.csv: column(s) DGN_PAL of T_MCOaaB missing"),
    ("ki_cci_r_2023.csv", "BEN_IDT_ANO;NUM_ENQ", "BEN_NIR_PSA;NUM_ENQ", "several pseudonym columns"),
    ("ER_PHA_F.csv", "3595583\n01/04/2023", "3595583\n1/4/2023",
     "ER_PHA_F.csv, line 3, column FLX_DIS_DTD: '1/4/2023' is not a date DD/MM/YYYY"),
    ("ER_PRS_F_2024.csv", "REM_TYP_AFF;", "REM_TYP;", "ER_PRS_F_2024.csv: column(s) REM_TYP_AFF of ER_PRS_F missing"),
])
def test_bad_input_names_file_line_column_value_and_lands_nothing(tmp_path, name, old, new, message):
    landing = tmp_path / "landing"
    with pytest.raises(ExtractImportError) as caught:
        import_extract(_broken(tmp_path, name, old, new), landing, DATE)
    assert message in str(caught.value)
    assert not landing.exists() or list(landing.iterdir()) == []


def test_a_quoted_header_keeps_codes_and_dates_as_written(tmp_path):
    delivery = tmp_path / "delivery"
    delivery.mkdir()
    (delivery / "T_MCO23A.csv").write_text('"ETA_NUM";"RSA_NUM";"CDC_ACT";"ENT_DAT_DEL";"ACV_ACT"\n'
                                           "010000024;0000000007;QEFA003;0;1\n", encoding="utf-8")
    import_extract(delivery, tmp_path / "landing", DATE)
    assert _landed(tmp_path / "landing", "t_mco_a") == [
        {"ETA_NUM": "010000024", "RSA_NUM": "0000000007", "CDC_ACT": "QEFA003", "ENT_DAT_DEL": 0, "ACV_ACT": "1",
         "PMSI_ANN": 2023}]


def test_map_names_a_delivered_column_and_a_landed_extraction_never_changes(tmp_path):
    delivery = _broken(tmp_path, "T_MCO22B.csv", "DGN_PAL;", "DP;")
    landing = tmp_path / "landing"
    import_extract(delivery, landing, DATE, mapping={"DP": "DGN_PAL"})
    before = {p: p.read_bytes() for p in landing.rglob("*.parquet")}
    with pytest.raises(ExtractImportError, match="already landed"):
        import_extract(delivery, landing, DATE, mapping={"DP": "DGN_PAL"})
    assert {p: p.read_bytes() for p in landing.rglob("*.parquet")} == before


def test_a_late_failure_leaves_no_source_landed(tmp_path):
    # The last file (alphabetically) is bad: the good ones converted before it must not appear in the landing.
    landing = tmp_path / "landing"
    with pytest.raises(ExtractImportError, match="ki_cci_r_2023.csv, line 2"):
        import_extract(_broken(tmp_path, "ki_cci_r_2023.csv", "02/08/2023", "31/02/2023"), landing, DATE)
    assert list(landing.iterdir()) == []


def test_parquet_delivery_and_the_command(tmp_path):
    import pyarrow as pa
    from oncopipe.cli import app

    delivery = tmp_path / "delivery"
    delivery.mkdir()
    pq.write_table(pa.table({"PHA_CIP_C13": [3400935955838], "PHA_ATC_C07": ["L02BA01"], "PHA_ATC_L07": ["T"],
                             "PHA_UNT_NBR_DSES": ["30"], "PHA_NOM_PA": ["T 20 mg"]}), delivery / "IR_PHA_R.parquet")
    result = CliRunner().invoke(app, ["import", str(delivery), "--extraction-date", DATE, "--format", "parquet",
                                      "--landing", str(tmp_path / "landing")])
    assert result.exit_code == 0, result.output
    assert "ir_pha_r" in result.output and "rows=1" in result.output
    assert _landed(tmp_path / "landing", "ir_pha_r")[0]["PHA_CIP_C13"] == "3400935955838"  # integer code as text
    result = CliRunner().invoke(app, ["import", str(delivery), "--extraction-date", DATE,
                                      "--landing", str(tmp_path / "landing")])
    assert result.exit_code == 1 and "already landed" in result.output


def test_the_pmsi_year_of_the_file_name_lands_as_pmsi_ann(tmp_path):
    import_extract(deliver(tmp_path / "delivery"), tmp_path / "landing", DATE)
    assert [(r["RSA_NUM"], r["PMSI_ANN"]) for r in _landed(tmp_path / "landing", "t_mco_b")] == [
        ("0000000001", 2022), ("0000000002", 2023)]
    stays = _landed(tmp_path / "landing", "t_mco_c")
    assert [(r["PMSI_ANN"], r["ENT_DAT"], r["SOR_DAT"]) for r in stays] == [
        (2022, dt.date(2022, 5, 2), dt.date(2022, 5, 5)), (2023, dt.date(2023, 7, 10), dt.date(2023, 7, 12))]
    assert {r["PMSI_ANN"] for r in _landed(tmp_path / "landing", "t_mco_d")} == {2023}


@pytest.mark.parametrize(("name", "old", "new", "message"), [
    ("T_MCO23B.csv", ";2023;07;74", ";2022;07;74",
     "T_MCO23B.csv, line 2, column SOR_ANN: '2022' is not 2023, the year of the file's name"),
    ("T_MCO22C.csv", "NIR_RET;ENT_DAT;SOR_DAT\n", "NIR_RET;ENT_DAT;SOR_DAT;SOR_ANN\n", None),
])
def test_a_pmsi_file_whose_exit_year_is_not_its_name_year_is_refused(tmp_path, name, old, new, message):
    if message is None:  # T_MCOaaC carries SOR_ANN too in the dictionary: checked when delivered
        files = dict(DELIVERED)
        files[name] = files[name].replace(old, new).replace("05052022\n", "05052022;2021\n")
        delivery = deliver(tmp_path / "delivery", files)
        message = "T_MCO22C.csv, line 2, column SOR_ANN: '2021' is not 2022"
    else:
        delivery = _broken(tmp_path, name, old, new)
    with pytest.raises(ExtractImportError) as caught:
        import_extract(delivery, tmp_path / "landing", DATE)
    assert message in str(caught.value)
    assert list((tmp_path / "landing").iterdir()) == []


def test_a_pmsi_file_named_without_its_year_must_carry_pmsi_ann(tmp_path):
    delivery = tmp_path / "delivery"
    delivery.mkdir()
    (delivery / "t_mco_a.csv").write_text("ETA_NUM;RSA_NUM;CDC_ACT;ENT_DAT_DEL;ACV_ACT\n010000024;7;QEFA003;0;1\n")
    with pytest.raises(ExtractImportError, match="PMSI_ANN of T_MCOaaA missing .*name the file for its year"):
        import_extract(delivery, tmp_path / "landing", DATE)
    (delivery / "t_mco_a.csv").write_text("ETA_NUM;RSA_NUM;CDC_ACT;ENT_DAT_DEL;ACV_ACT;PMSI_ANN\n"
                                          "010000024;7;QEFA003;0;1;2021\n")
    import_extract(delivery, tmp_path / "landing", DATE)
    assert _landed(tmp_path / "landing", "t_mco_a")[0]["PMSI_ANN"] == 2021


def test_a_header_only_file_lands_as_an_empty_table(tmp_path):
    files = dict(DELIVERED)
    files["ki_cci_r_2023.csv"] = files["ki_cci_r_2023.csv"].splitlines(keepends=True)[0]
    report = import_extract(deliver(tmp_path / "delivery", files), tmp_path / "landing", DATE)
    assert report.rows["ki_cci_r"] == 0
    part = next((tmp_path / "landing" / "ki_cci_r" / f"extraction={DATE}").glob("*.parquet"))
    table = pq.read_table(part)
    assert table.num_rows == 0 and table.schema.names == SOURCES_BY_NAME["ki_cci_r"].column_names


def test_a_file_named_sas7bdat_that_is_not_sas_is_refused_by_name(tmp_path):
    delivery = deliver(tmp_path / "delivery")
    (delivery / "ir_pha_r_2023.sas7bdat").write_text(DELIVERED["IR_PHA_R.csv"], encoding="utf-8")
    with pytest.raises(ExtractImportError, match=r"ir_pha_r_2023\.sas7bdat: not a SAS table"):
        import_extract(delivery, tmp_path / "landing", DATE)
    assert list((tmp_path / "landing").iterdir()) == []


@pytest.mark.parametrize("src", SOURCES, ids=lambda s: s.name)
def test_the_delivered_name_is_what_table_of_reads(src):
    year = 2023 if src.year_column else None
    assert table_of(Path(delivered_name(src, year) + ".csv")) == (src, year)


LATIN1 = ("PHA_CIP_C13;PHA_ATC_C07;PHA_ATC_L07;PHA_UNT_NBR_DSES;PHA_NOM_PA\n"
          "3400935955838;L02BA01;TAMOXIFENE;30;TAMOXIFENE 20 mg\n"
          "3400930000014;L02BG04;LETROZOLE;30;LÉTROZOLE 2,5 mg, boîte de 30\n")


def test_a_delivery_in_another_encoding_is_named_by_line_and_lands_with_encoding(tmp_path):
    """Files a SAS-based environment exports are often Windows-1252 (Latin-1), not UTF-8: read as UTF-8 the first
    byte that is not UTF-8 stops the import with its file and line, and the option to give; with ``--encoding
    cp1252`` the file lands with its accents."""
    from oncopipe.cli import app

    delivery = tmp_path / "delivery"
    delivery.mkdir()
    (delivery / "IR_PHA_R.csv").write_bytes(LATIN1.encode("cp1252"))
    with pytest.raises(ExtractImportError, match=r"IR_PHA_R\.csv, line 3: byte 0xC9 is not utf-8 text.*"
                                                 r"--encoding cp1252"):
        import_extract(delivery, tmp_path / "landing", DATE)
    assert not (tmp_path / "landing" / "ir_pha_r").exists()
    result = CliRunner().invoke(app, ["import", str(delivery), "--extraction-date", DATE, "--encoding", "cp1252",
                                      "--landing", str(tmp_path / "landing")])
    assert result.exit_code == 0, result.output
    assert [r["PHA_NOM_PA"] for r in _landed(tmp_path / "landing", "ir_pha_r")] == [
        "TAMOXIFENE 20 mg", "LÉTROZOLE 2,5 mg, boîte de 30"]
    with pytest.raises(ExtractImportError, match="unknown encoding 'klingon'"):
        import_extract(delivery, tmp_path / "landing2", DATE, encoding="klingon")
