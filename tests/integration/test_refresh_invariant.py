"""Invariant 1 in real operation: what a gate refused, or dbt never read, is never published (issue #24).

Two platforms, built from the same synthetic deliveries (1,000 people) through :func:`refresh.run_refresh`
(the refresh DAG's steps without Airflow):

- **reference**: A (Parquet) is published, then B (delivered as CSV) is published.
- **operated**: A lands together with Q, a newer extraction the raw gate refuses (sex code 7); then B is
  first delivered wrong (another population) and refused by the marts gate, then re-landed corrected under the
  same date.

What must hold: the first refresh of the operated platform publishes A alone (Q has not passed its gate), byte
for byte the reference's A; Q is quarantined and nothing of it reaches the warehouse; after the refused attempt,
the corrected B publishes byte-identical marts to the reference's B (the refused lines were rolled back); and
the CSV delivery is read (its marts differ from A's).
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from oncopipe.contracts.settings import get_settings
from oncopipe.contracts.sources import DCIR_KEY
from oncopipe.quality import GateFailed
from oncopipe.quality import marts_gate as marts_gate_module
from oncopipe.synth.extraction import generate
from oncopipe.warehouse import refresh, versions

PATIENTS = 1_000
SEED = 11
A, B, Q = "2025-03-31", "2025-06-30", "2025-09-30"

pytestmark = pytest.mark.slow


def _home(root: Path, monkeypatch: pytest.MonkeyPatch, name: str):
    monkeypatch.setenv("ONCOPIPE_HOME", str(root / name))
    for var in ("ONCOPIPE_LANDING", "ONCOPIPE_QUARANTINE", "ONCOPIPE_WAREHOUSE", "ONCOPIPE_PUBLISHED",
                "ONCOPIPE_EXPORTS", "ONCOPIPE_QUALITY"):
        monkeypatch.delenv(var, raising=False)
    return get_settings().ensure()


def _marts_digest(version: versions.PublishedVersion) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(version.path.glob("*.parquet"))}


def _staged_extractions(settings) -> list[str]:
    con = duckdb.connect(str(settings.warehouse), read_only=True)
    try:
        rows = con.execute("select distinct extraction_date from staging.stg_snds__pharmacy_dispensings "
                           "order by 1").fetchall()
    finally:
        con.close()
    return [str(r[0]) for r in rows]


def _move_unregularised_care_dates(landing: Path, date: str) -> None:
    """Move EXE_SOI_DTD (ER_PRS_F) three days earlier, within its month, on the claim lines of people who have no
    negative (regularisation) drug line: every raw rule still holds (dates within the extraction, flux month on or
    after the care month, regularisations matched, coded columns' distributions unchanged), the adherence marts
    change. The file keeps its Arrow schema exactly (the raw gate checks column types)."""
    key = list(DCIR_KEY)
    claims_folder = landing / "er_prs_f" / f"extraction={date}"
    drugs = pd.concat([pq.read_table(p, columns=[*key, "PHA_ACT_QSN"]).to_pandas()
                       for p in sorted((landing / "er_pha_f" / f"extraction={date}").glob("part-*.parquet"))])
    parts = sorted(claims_folder.glob("part-*.parquet"))
    assert parts, f"no Parquet part in {claims_folder}"
    claims = pd.concat([pq.read_table(p, columns=[*key, "BEN_NIR_PSA"]).to_pandas() for p in parts])
    regularised = set(drugs[drugs["PHA_ACT_QSN"] < 0].merge(claims, on=key)["BEN_NIR_PSA"])
    for part in parts:
        table = pq.read_table(part)
        frame = table.select(["BEN_NIR_PSA", "EXE_SOI_DTD"]).to_pandas()
        care = pd.to_datetime(frame["EXE_SOI_DTD"])
        change = ~frame["BEN_NIR_PSA"].isin(regularised) & (care.dt.day > 3)
        moved = care.where(~change, care - pd.Timedelta(days=3))
        column = table.schema.get_field_index("EXE_SOI_DTD")
        field = table.schema.field(column)
        table = table.set_column(column, field, pa.array(moved.dt.date.to_numpy(), type=field.type))
        pq.write_table(table, part)


@pytest.fixture(scope="module")
def platforms(tmp_path_factory):
    root = tmp_path_factory.mktemp("invariant1")
    monkeypatch = pytest.MonkeyPatch()
    out: dict = {}
    try:
        # The reference platform: A, then B delivered as CSV.
        settings = _home(root, monkeypatch, "reference")
        generate(settings.landing, PATIENTS, SEED, A)
        out["ref_a"] = refresh.run_refresh(settings=settings)
        out["ref_a_version"] = versions.current_version(settings)
        generate(settings.landing, PATIENTS, SEED, B, fmt="csv")
        out["ref_b"] = refresh.run_refresh(settings=settings)
        out["ref_b_version"] = versions.current_version(settings)
        out["ref_b_staged"] = _staged_extractions(settings)

        # The operated platform: A and a refused Q pending together ...
        settings = _home(root, monkeypatch, "operated")
        generate(settings.landing, PATIENTS, SEED, A)
        generate(settings.landing, PATIENTS, SEED, Q, faults="unknown_sex")
        out["pending"] = refresh.pending_extractions(settings)
        out["op_a"] = refresh.run_refresh(settings=settings)
        out["op_a_version"] = versions.current_version(settings)
        out["op_a_staged"] = _staged_extractions(settings)
        with pytest.raises(GateFailed) as refused:
            refresh.run_refresh(settings=settings)
        out["q_refusal"] = str(refused.value)
        out["q_landed"] = refresh.landed_extractions(settings)

        # ... then B delivered wrong (care dates moved on dispensing lines no regularisation refers to: every raw
        # rule still holds, so the raw gate accepts it and its lines reach the warehouse), refused by the marts
        # gate (a real GX judgement of an orphan row planted in the comparison facts), then re-landed corrected
        # under the same date.
        wrong = root / "wrong"
        generate(wrong, PATIENTS, SEED, A)
        generate(wrong, PATIENTS, SEED, B)
        _move_unregularised_care_dates(wrong, B)
        for source in wrong.iterdir():
            if (source / f"extraction={B}").is_dir():
                shutil.copytree(source / f"extraction={B}", settings.landing / source.name / f"extraction={B}")
        real = marts_gate_module.comparison_frame

        def with_orphan(candidate, published):
            frame = real(candidate, published)
            frame.loc[len(frame)] = ["orphan_rows", "planted orphan row", 3.0, ""]
            return frame

        monkeypatch.setattr(marts_gate_module, "comparison_frame", with_orphan)
        with pytest.raises(GateFailed) as refused:
            refresh.run_refresh(settings=settings)
        out["b_refusal"] = str(refused.value)
        monkeypatch.setattr(marts_gate_module, "comparison_frame", real)
        out["after_refusal_current"] = versions.current_version(settings)
        for source in settings.landing.iterdir():
            shutil.rmtree(source / f"extraction={B}", ignore_errors=True)
        generate(settings.landing, PATIENTS, SEED, B, fmt="csv")
        out["op_b"] = refresh.run_refresh(settings=settings)
        out["op_b_version"] = versions.current_version(settings)
    finally:
        monkeypatch.undo()
    return out


def test_the_newer_pending_extraction_is_not_built_before_its_raw_gate(platforms):
    assert platforms["pending"] == [A, Q]
    assert platforms["op_a"]["extraction"] == A
    assert platforms["op_a_staged"] == [A]
    # Byte for byte what a platform that never saw Q publishes for A.
    assert _marts_digest(platforms["op_a_version"]) == _marts_digest(platforms["ref_a_version"])
    assert platforms["op_a_version"].version == platforms["ref_a_version"].version


def test_the_refused_extraction_is_quarantined_by_its_own_gate(platforms):
    assert f"raw gate failed for extraction {Q}" in platforms["q_refusal"]
    assert "BEN_SEX_COD" in platforms["q_refusal"]
    assert Q not in platforms["q_landed"]


def test_a_csv_delivery_is_read(platforms):
    assert platforms["ref_b"]["new"] and platforms["ref_b"]["extraction"] == B
    assert platforms["ref_b_staged"] == [A, B]
    assert platforms["ref_b_version"].content_sha256 != platforms["ref_a_version"].content_sha256


def test_a_delivery_refused_by_the_marts_gate_leaves_no_line(platforms):
    assert "marts gate failed" in platforms["b_refusal"] and "planted orphan row" in platforms["b_refusal"]
    assert platforms["after_refusal_current"].version == platforms["op_a_version"].version
    assert platforms["op_b"]["new"] and platforms["op_b"]["extraction"] == B
    assert _marts_digest(platforms["op_b_version"]) == _marts_digest(platforms["ref_b_version"])
    assert platforms["op_b_version"].content_sha256 == platforms["ref_b_version"].content_sha256
    frame = pd.read_parquet(platforms["op_b_version"].path / "poor_prognosis_cases.parquet")
    assert len(frame) > 0
