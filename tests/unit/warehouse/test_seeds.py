"""Every code of the dbt seeds (code lists, reference tables) is well-formed for its coding system."""

from __future__ import annotations

import re

import pandas as pd
import pytest
import yaml
from oncopipe.contracts.settings import DBT_PROJECT_DIR

SEEDS = DBT_PROJECT_DIR / "seeds"
SITES = {"breast", "lung", "pancreas", "liver", "oesophagus", "stomach", "cns"}

ICD10_CATEGORY = re.compile(r"[A-Z]\d{2}")
ICD10 = re.compile(r"[A-Z]\d{2}[0-9A-Z]{0,2}")
ICDO3_TOPOGRAPHY = re.compile(r"C\d{2}\.\d")
ATC7 = re.compile(r"[A-Z]\d{2}[A-Z]{2}\d{2}")
CCAM = re.compile(r"[A-Z]{4}\d{3}")
DEPARTMENT = re.compile(r"0(0[1-9]|1\d|2[1-9AB]|[3-8]\d|9[0-5])|97[1-6]")
REGION = re.compile(r"\d{2}")


def read(name: str) -> pd.DataFrame:
    return pd.read_csv(SEEDS / f"{name}.csv", dtype=str, keep_default_na=False)


def assert_all_match(values: pd.Series, pattern: re.Pattern, what: str) -> None:
    bad = [v for v in values if not pattern.fullmatch(v)]
    assert bad == [], f"{what}: malformed codes {bad}"


def test_every_seed_has_a_source_and_a_version_in_yaml():
    seeds = {s["name"]: s for s in yaml.safe_load((SEEDS / "_seeds.yml").read_text())["seeds"]}
    csvs = {p.stem for p in SEEDS.glob("*.csv")} | {"french_life_tables"}
    assert csvs <= set(seeds), f"seeds without YAML: {csvs - set(seeds)}"
    for name, seed in seeds.items():
        meta = seed["config"]["meta"]
        assert str(meta.get("source", "")).strip(), f"{name}: no source"
        assert str(meta.get("version", "")).strip(), f"{name}: no version"
        assert seed.get("description", "").strip(), f"{name}: no description"


def test_icd10_site_groups():
    df = read("icd10_cancer_sites")
    assert_all_match(df["icd10_category"], ICD10_CATEGORY, "ICD-10 category")
    assert df["icd10_category"].is_unique
    assert set(df["site"]) == SITES
    poor = set(df.loc[df["is_poor_prognosis"] == "true", "site"])
    assert poor == SITES - {"breast"}
    assert set(df.loc[df["site"] == "breast", "icd10_category"]) == {"C50"}


def test_icdo3_topographies_map_onto_the_icd10_site_groups():
    df = read("icdo3_topographies")
    sites = read("icd10_cancer_sites").set_index("icd10_category")["site"]
    assert_all_match(df["topography_code"], ICDO3_TOPOGRAPHY, "ICD-O-3 topography")
    assert_all_match(df["icd10_code"], ICD10, "ICD-10")
    assert df["topography_code"].is_unique
    for row in df.itertuples():
        # C50.9 -> C509: same category and subdivision, and the site of that category.
        assert row.icd10_code.startswith(row.topography_code[:3]), row
        assert row.icd10_code in (row.topography_code.replace(".", ""), row.topography_code[:3]), row
        assert sites[row.icd10_code[:3]] == row.site, row


def test_atc_hormone_therapies_are_the_four_adjuvant_molecules():
    df = read("atc_hormone_therapies")
    assert_all_match(df["atc_code"], ATC7, "ATC")
    assert dict(zip(df["atc_code"], df["molecule"], strict=True)) == {
        "L02BA01": "tamoxifen", "L02BG03": "anastrozole", "L02BG04": "letrozole", "L02BG06": "exemestane"}
    assert dict(zip(df["molecule"], df["therapy_class"], strict=True)) == {
        "tamoxifen": "SERM", "anastrozole": "aromatase_inhibitor", "letrozole": "aromatase_inhibitor",
        "exemestane": "aromatase_inhibitor"}


def test_ccam_treatment_acts():
    df = read("ccam_cancer_treatments")
    assert_all_match(df["ccam_code"], CCAM, "CCAM")
    assert df["ccam_code"].is_unique
    assert set(df["treatment_kind"]) == {"surgery", "radiotherapy", "chemotherapy"}
    assert set(df.loc[df["treatment_kind"] == "surgery", "site"]) == SITES
    assert set(df.loc[df["treatment_kind"] != "surgery", "site"]) == {"all"}


def test_treatment_session_diagnoses():
    df = read("icd10_treatment_sessions")
    assert_all_match(df["icd10_code"], ICD10, "ICD-10")
    assert dict(zip(df["icd10_code"], df["treatment_kind"], strict=True)) == {
        "Z510": "radiotherapy", "Z511": "chemotherapy"}


def test_departments_cover_france_with_2016_regions():
    df = read("department_regions")
    assert_all_match(df["department_code"], DEPARTMENT, "department")
    assert_all_match(df["region_code"], REGION, "region")
    assert df["department_code"].is_unique
    assert len(df) == 101  # 96 metropolitan (2A/2B for Corsica) + 5 overseas
    assert {"02A", "02B", "971", "972", "973", "974", "976"} <= set(df["department_code"])
    assert "020" not in set(df["department_code"])
    assert df["region_code"].nunique() == 18  # 13 metropolitan + 5 overseas regions since 2016
    by_code = dict(zip(df["department_code"], df["region_code"], strict=True))
    assert (by_code["075"], by_code["02A"], by_code["069"], by_code["976"]) == ("11", "94", "84", "06")


def test_registry_coverage_points_at_known_departments_and_sites():
    df = read("registry_coverage")
    departments = set(read("department_regions")["department_code"])
    assert set(df["department_code"]) <= departments
    assert set(df["site"]) <= SITES
    assert not df.duplicated(["registry_id", "department_code", "site"]).any()
    general = df[df["registry_kind"] == "general"]
    assert (general.groupby(["registry_id", "department_code"])["site"].nunique() == len(SITES)).all()


@pytest.mark.skipif(not (SEEDS / "french_life_tables.csv").exists(), reason="life table not written yet")
def test_life_table_columns_and_ranges():
    df = pd.read_csv(SEEDS / "french_life_tables.csv")
    assert list(df.columns) == ["sex", "age", "year", "qx", "hazard"]
    assert set(df["sex"]) == {"male", "female"}
    assert df["age"].between(0, 110).all() and df["qx"].between(0, 1).all()
    assert not df.duplicated(["sex", "age", "year"]).any()
