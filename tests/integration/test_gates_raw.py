"""The raw gate on hand-made extractions: ordinary dirt warns without stopping, CSV lands like Parquet,
results are kept as history, and bad input gets a clear error."""

from __future__ import annotations

import csv
import datetime as dt
import json

import pytest
from gates_landing import extraction_tables, write_extraction, write_table
from gates_marts import settings_for
from oncopipe.contracts.sources import SOURCES_BY_NAME
from oncopipe.quality import GateFailed, QualityConfig, run_raw_gate
from oncopipe.quality.history import results, runs

DATE = "2024-01-01"
FAST = QualityConfig(build_docs=False)


@pytest.fixture()
def settings(tmp_path):
    return settings_for(tmp_path / "home")


def test_low_rates_of_ordinary_dirt_warn_but_do_not_stop(settings):
    tables = extraction_tables(DATE, n=60)
    prs, pha = tables["er_prs_f"], tables["er_pha_f"]
    n = len(prs["DPN_QLF"])
    every = 100  # ~1%
    for i in range(0, n, every):
        prs["DPN_QLF"][i] = 71  # information-only lines (valid, staging drops them)
    for i in range(5, n, every):
        code = pha["PHA_PRS_C13"][i]
        pha["PHA_PRS_C13"][i] = code[:12] + str((int(code[12]) + 1) % 10)  # wrong check digit
    for i in range(7, n, every):
        for table in (prs, pha):
            for col in table:
                table[col].append(table[col][i])  # exact duplicated lines, in both tables
    for source, columns in tables.items():
        write_table(settings.landing, source, DATE, columns)

    report = run_raw_gate(DATE, settings, FAST, sources=["er_prs_f", "er_pha_f", "ir_ben_r"])

    assert report.passed, report.summary()
    warned = report.failed_names("warning")
    assert ("er_pha_f", "PHA_PRS_C13.cip13_format.any") in warned
    assert {("er_pha_f", "exact_duplicates"), ("er_prs_f", "exact_duplicates")} <= warned
    assert (settings.landing / "er_pha_f" / f"extraction={DATE}").is_dir()
    last = runs(settings.quality, "raw")[0]
    assert last["passed"] == 1 and last["warnings"] == len(report.warnings)
    stored = results(settings.quality, report.run_id)
    assert {(r["subject"], r["expectation"]) for r in stored if not r["success"]} == warned
    assert all(r["observed_value"] for r in stored if not r["success"])


def test_csv_extraction_is_checked_like_parquet(settings):
    tables = extraction_tables(DATE, n=30)
    for source, columns in tables.items():
        folder = settings.landing / source / f"extraction={DATE}"
        folder.mkdir(parents=True)
        names = SOURCES_BY_NAME[source].column_names
        with (folder / "part-00000.csv").open("w", encoding="utf-8", newline="") as fh:
            writer = csv.writer(fh, delimiter=";")
            writer.writerow(names)
            for row in zip(*(columns[c] for c in names), strict=True):
                writer.writerow(["" if v is None else v.isoformat() if isinstance(v, dt.date) else v for v in row])
    report = run_raw_gate(DATE, settings, FAST, sources=["ir_ben_r", "ir_pha_r"])
    assert report.passed, report.summary()
    # Clean CSV warns about nothing (the extraction=<date> folder is not a column of the file).
    assert report.failed_names("warning") == set(), report.summary()

    # A text value in an integer column of a CSV is a type fault.
    path = settings.landing / "ir_ben_r" / f"extraction={DATE}" / "part-00000.csv"
    with path.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.reader(fh, delimiter=";"))
    rows[1][rows[0].index("BEN_SEX_COD")] = "deux"
    with path.open("w", encoding="utf-8", newline="") as fh:
        csv.writer(fh, delimiter=";").writerows(rows)
    with pytest.raises(GateFailed) as caught:
        run_raw_gate(DATE, settings, FAST, sources=["ir_ben_r"])
    assert ("ir_ben_r", "column_types") in caught.value.report.failed_names()
    assert "BEN_SEX_COD" in str(caught.value)


def test_latin1_csv_fails_encoding(settings):
    write_extraction(settings.landing, DATE, n=20)
    folder = settings.landing / "ir_pha_r" / f"extraction={DATE}"
    (folder / "part-00000.parquet").unlink()
    (folder / "part-00000.csv").write_bytes("PHA_CIP_C13;PHA_ATC_C07;PHA_ATC_L07;PHA_UNT_NBR_DSES;PHA_NOM_PA\n"
                                            "3400935955838;L02BA01;TAMOXIFENE;30;TAMOXIFÈNE\n".encode("latin-1"))
    with pytest.raises(GateFailed) as caught:
        run_raw_gate(DATE, settings, FAST, sources=["ir_pha_r"])
    assert ("ir_pha_r", "encoding_utf8") in caught.value.report.failed_names()
    assert "raw.ir_pha_r.rows" in caught.value.report.skipped
    # The decoding is the finding: no cascade of "missing" columns (they were never read).
    assert caught.value.report.failed_names() == {("ir_pha_r", "encoding_utf8")}, caught.value.report.summary()


def test_missing_extraction_is_a_clear_error(settings):
    with pytest.raises(FileNotFoundError, match="extraction=2031-01-01"):
        run_raw_gate("2031-01-01", settings, FAST)


def test_validate_command_prints_a_table_and_exits_nonzero_on_failure(settings, monkeypatch):
    from oncopipe.cli import app
    from typer.testing import CliRunner

    monkeypatch.setenv("ONCOPIPE_HOME", str(settings.home))
    write_extraction(settings.landing, DATE, n=20)
    runner = CliRunner()
    ok = runner.invoke(app, ["validate", "--stage", "raw", "--extraction", DATE, "--source", "ir_pha_r"])
    assert ok.exit_code == 0, ok.output
    assert "PASSED" in ok.output and "ir_pha_r" in ok.output
    folder = settings.landing / "ir_pha_r" / f"extraction={DATE}"
    (folder / "part-00000.parquet").write_bytes((folder / "part-00000.parquet").read_bytes()[:100])
    bad = runner.invoke(app, ["validate", "--stage", "raw", "--extraction", DATE, "--source", "ir_pha_r",
                              "--no-quarantine"])
    assert bad.exit_code == 1
    assert "file_readable" in bad.output and "FAILED" in bad.output
    assert folder.is_dir()  # --no-quarantine leaves it in the landing
    assert runner.invoke(app, ["validate", "--stage", "bronze"]).exit_code != 0


def test_an_imported_hand_written_delivery_passes_the_raw_gate(settings, tmp_path):
    """`oncopipe import` of a delivery in the insurer's shape gives a landing the raw gate accepts (DCIR included)."""
    from oncopipe.landing.importer import import_extract
    from support.delivered_extract import DATE as DELIVERED_DATE
    from support.delivered_extract import deliver

    report = import_extract(deliver(tmp_path / "delivery"), settings.landing, DELIVERED_DATE)
    assert {"er_prs_f", "er_pha_f"} <= set(report.rows)
    gate = run_raw_gate(DELIVERED_DATE, settings, FAST, sources=sorted(report.rows))
    assert gate.passed, gate.summary()


def test_two_pmsi_years_may_number_their_stays_alike(settings):
    """ETA_NUM + RSA_NUM identify a stay within one PMSI year: each year's T_MCOaaB/C/D/A numbers its stays from
    the start again, so T_MCO22B and T_MCO23B may both hold RSA 0000000001 of one hospital for two stays. The key
    of a PMSI line holds its year (PMSI_ANN): such lines are not one key carried by different lines, and a stay of
    one year without linkage is an orphan even when the other year has a linkage line under its number."""
    tables = extraction_tables(DATE, n=60)  # 120 stays: one orphan is a warning (at most 1% is tolerated)
    pmsi = ("t_mco_b", "t_mco_c", "t_mco_d", "t_mco_a")
    for name in pmsi:
        table = tables[name] = {col: list(values) for col, values in tables[name].items()}  # lists are shared
        n = len(table["PMSI_ANN"])
        for col, values in table.items():
            if col == "PMSI_ANN":
                values += [y + 1 for y in values[:n]]
            elif col == "SOR_ANN":
                values += [str(int(y) + 1) for y in values[:n]]
            elif col in ("EXE_SOI_DTD", "EXE_SOI_DTF", "ENT_DAT", "SOR_DAT"):
                values += [d.replace(year=d.year + 1) for d in values[:n]]
            else:
                values += values[:n]
    linkage = tables["t_mco_c"]
    orphan = len(linkage["PMSI_ANN"]) - 1  # the second year's last stay loses its linkage line
    for values in linkage.values():
        del values[orphan]
    for source, columns in tables.items():
        write_table(settings.landing, source, DATE, columns)

    report = run_raw_gate(DATE, settings, FAST, sources=list(pmsi))

    failed = report.failed_names("critical") | report.failed_names("warning")
    assert not {f for f in failed if f[1] == "key_unique"}, report.summary()
    assert report.passed, report.summary()
    linked = next(o for o in report.outcomes if o.subject == "t_mco_c" and o.expectation == "stay_has_linkage.any")
    assert not linked.success, linked
    orphans = json.loads(linked.sample[0]["detail"])
    stays = tables["t_mco_b"]
    assert [(o["PMSI_ANN"], o["RSA_NUM"]) for o in orphans] == [(stays["PMSI_ANN"][-1], stays["RSA_NUM"][-1])]
