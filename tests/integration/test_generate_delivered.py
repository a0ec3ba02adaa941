"""``oncopipe generate --delivered``: the delivered writer is the inverse of ``oncopipe import``.

A small generated extraction is written in the delivered shape, imported, and the imported landing must equal the
generated one table by table (every contract column, every line, nulls included).
"""

from __future__ import annotations

import re
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from oncopipe.cli import app
from oncopipe.contracts.sources import SOURCES
from oncopipe.landing.importer import import_extract
from oncopipe.landing.layout import extraction_dir, part_files
from oncopipe.synth.delivered import write_delivered
from oncopipe.synth.extraction import generate
from typer.testing import CliRunner

DATE = "2024-12-31"


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("generated")
    generate(out, 400, 5, DATE, workers=1)
    return out


def _table(landing: Path, source: str) -> pa.Table:
    table = pa.concat_tables(pq.read_table(p) for p in part_files(extraction_dir(landing, source, DATE)))
    return table.sort_by([(n, "ascending") for n in table.column_names])


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_generate_deliver_import_gives_back_the_generated_landing(generated, tmp_path, fmt):
    report = write_delivered(generated, DATE, tmp_path / "delivery", fmt=fmt)
    landed = tmp_path / "landing"
    imported = import_extract(tmp_path / "delivery", landed, DATE)
    assert sorted(imported.rows) == sorted(s.name for s in SOURCES)  # every source, DCIR's two tables included
    for src in SOURCES:
        assert _table(landed, src.name).equals(_table(generated, src.name)), src.name
    assert imported.rows == {s.name: _table(generated, s.name).num_rows for s in SOURCES}
    names = set(report.files)
    assert {f"{t}.{fmt}" for t in ("IR_BEN_R", "ER_PRS_F", "ER_PHA_F", "KI_CCI_R", "registry_cases")} <= names
    pmsi_years = {int(m.group(1)) for n in names if (m := re.fullmatch(rf"T_MCO(\d\d)B\.{fmt}", n))}
    assert len(pmsi_years) > 1  # one file per PMSI year, named for it


def test_the_delivered_csv_is_the_insurers_text(generated, tmp_path):
    delivery = tmp_path / "delivery"
    write_delivered(generated, DATE, delivery)
    header, first = (delivery / "IR_BEN_R.csv").read_text(encoding="utf-8").splitlines()[:2]
    assert header.split(";")[0] == "NUM_ENQ" and '"' not in header + first
    assert re.fullmatch(r"\d\d/\d\d/\d{4}", first.split(";")[header.split(";").index("BEN_DTE_INS")])
    stays = sorted(delivery.glob("T_MCO*C.csv"))[0].read_text(encoding="utf-8").splitlines()
    cols = stays[0].split(";")
    assert "PMSI_ANN" not in cols and "NIR_ANO_17" not in cols and "NUM_ENQ" in cols  # the year is in the name
    assert re.fullmatch(r"\d{8}", stays[1].split(";")[cols.index("EXE_SOI_DTD")])  # DDMMYYYY
    ben = (delivery / "IR_BEN_R.csv").read_text(encoding="utf-8").splitlines()
    death = header.split(";").index("BEN_DCD_DTE")
    assert any(line.split(";")[death] == "" for line in ben[1:])  # the living: an empty field


def test_the_generate_command_writes_the_delivery(tmp_path):
    result = CliRunner().invoke(app, ["generate", "--patients", "50", "--seed", "3", "--extraction-date", DATE,
                                      "--out", str(tmp_path / "landing"), "--delivered", str(tmp_path / "delivery"),
                                      "--delivered-format", "parquet", "--workers", "1"])
    assert result.exit_code == 0, result.output
    assert "delivered:" in result.output and (tmp_path / "delivery" / "IR_BEN_R.parquet").is_file()
    result = CliRunner().invoke(app, ["generate", "--patients", "50", "--seed", "3", "--extraction-date", DATE,
                                      "--out", str(tmp_path / "landing"), "--delivered", str(tmp_path / "d2"),
                                      "--delivered-format", "sas"])
    assert result.exit_code != 0 and "--delivered-format must be one of csv, parquet" in result.output


def test_the_demo_lands_its_extraction_through_the_delivered_csv_and_the_import(generated, tmp_path, monkeypatch):
    from oncopipe.contracts.settings import get_settings
    from oncopipe.orchestration.embedded import land_delivered

    monkeypatch.setenv("ONCOPIPE_HOME", str(tmp_path / "home"))
    for var in ("ONCOPIPE_LANDING", "ONCOPIPE_WAREHOUSE"):
        monkeypatch.delenv(var, raising=False)
    settings = get_settings()
    lines: list[str] = []
    delivery = land_delivered(settings, patients=400, seed=5, extraction_date=DATE, progress=lines.append)
    assert (delivery / "IR_BEN_R.csv").is_file() and not list(delivery.glob("*.parquet"))
    for src in SOURCES:  # the same extraction as generated directly, every source
        assert _table(settings.landing, src.name).equals(_table(generated, src.name)), src.name
    assert (settings.landing / "_truth" / f"extraction={DATE}" / "truth.json").is_file()
    assert [p.name for p in (settings.home / "deliveries").iterdir()] == [f"synthetic-{DATE}"]  # scratch removed
    assert any(line.startswith("imported ") for line in lines)
