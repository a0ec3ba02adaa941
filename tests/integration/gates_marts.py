"""Hand-made candidate marts (consistent with contracts/marts.py) and a tiny warehouse holding them, for gate tests."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import pyarrow as pa
from oncopipe.contracts.marts import MARTS_BY_NAME
from oncopipe.contracts.settings import Settings

_ARROW = {"varchar": pa.string(), "integer": pa.int32(), "double": pa.float64(), "date": pa.date32(),
          "boolean": pa.bool_()}
SITES = ["lung", "pancreas", "liver", "oesophagus", "stomach", "cns"]


def settings_for(home: Path) -> Settings:
    """Settings rooted at ``home`` (what get_settings gives with ONCOPIPE_HOME=home)."""
    return Settings(home=home, landing=home / "landing", quarantine=home / "quarantine",
                    warehouse=home / "warehouse" / "oncopipe.duckdb", published=home / "published",
                    exports=home / "exports", quality=home / "quality", airflow_home=home / "airflow").ensure()


def _table(mart: str, columns: dict[str, list]) -> pa.Table:
    spec = MARTS_BY_NAME[mart]
    return pa.table({c.name: pa.array(columns[c.name], type=_ARROW[c.data_type]) for c in spec.columns})


def mart_tables(n: int = 40, deaths_every: int = 4) -> dict[str, pa.Table]:
    """Every published table (4 marts + life table) for ``n`` women and ``n`` poor-prognosis cases."""
    end = dt.date(2024, 1, 1)
    persons = [f"P{i:05d}" for i in range(n)]
    diagnosis = [dt.date(2019, 1, 1) + dt.timedelta(days=17 * i) for i in range(n)]
    index = [d + dt.timedelta(days=40) for d in diagnosis]
    death = [d + dt.timedelta(days=700) if i % deaths_every == 0 else None for i, d in enumerate(index)]
    fu_end = [min(x for x in (death[i], end) if x is not None) for i in range(n)]
    cohort = {
        "person_id": persons, "diagnosis_date": diagnosis, "case_source": ["registry"] * n, "stage": ["II"] * n,
        "index_date": index, "first_molecule": ["tamoxifen"] * n, "first_class": ["SERM"] * n,
        "age_at_index": [60] * n, "birth_year": [1960] * n, "department_code": ["075"] * n,
        "region_code": ["11"] * n, "deprivation_quintile": [1 + i % 5 for i in range(n)], "death_date": death,
        "end_of_data_date": [end] * n, "follow_up_end_date": fu_end,
        "follow_up_end_reason": ["death" if death[i] else "end_of_data" for i in range(n)],
        "follow_up_days": [(fu_end[i] - index[i]).days + 1 for i in range(n)],
        "follow_up_months": [min(60, (fu_end[i] - index[i]).days // 30 + 1) for i in range(n)],
    }
    monthly: dict[str, list] = {c: [] for c in MARTS_BY_NAME["endocrine_adherence_monthly"].column_names}
    for i in range(n):
        for k in range(3):
            start = index[i] + dt.timedelta(days=30 * k)
            for col, value in (("person_id", persons[i]), ("month_index", k), ("month_start", start),
                               ("month_end", start + dt.timedelta(days=29)), ("days_in_month", 30),
                               ("days_covered", 30 - k), ("days_hospitalised", 0), ("pdc", (30 - k) / 30),
                               ("molecule", "tamoxifen"), ("is_discontinued", False)):
                monthly[col].append(value)
    case_ids = [f"K{i:05d}" for i in range(n)]
    treat = [d + dt.timedelta(days=20 + i % 30) if i % 3 else None for i, d in enumerate(diagnosis)]
    cases = {
        "case_id": case_ids, "person_id": [f"Q{i:05d}" for i in range(n)], "site": [SITES[i % 6] for i in range(n)],
        "icd10_code": ["C349"] * n, "stage": ["IV"] * n, "sex": ["male" if i % 2 else "female" for i in range(n)],
        "birth_year": [1950] * n, "age_at_diagnosis": [70] * n, "department_code": ["075"] * n,
        "region_code": ["11"] * n, "deprivation_quintile": [1 + i % 5 for i in range(n)],
        "hospital_id": ["750100042"] * n, "diagnosis_date": diagnosis, "diagnosis_year": [d.year for d in diagnosis],
        "first_treatment_date": treat, "first_treatment_kind": ["surgery" if t else None for t in treat],
        "death_date": death, "end_of_data_date": [end] * n,
        "follow_up_days": [((death[i] or end) - diagnosis[i]).days for i in range(n)],
        "event": [1 if death[i] else 0 for i in range(n)], "case_source": ["registry"] * n,
    }
    delays = {
        "case_id": case_ids, "site": cases["site"], "hospital_id": cases["hospital_id"],
        "diagnosis_date": diagnosis, "first_treatment_date": treat,
        "first_treatment_kind": cases["first_treatment_kind"],
        "delay_days": [(t - d).days if t else None for t, d in zip(treat, diagnosis, strict=True)],
        "treated": [t is not None for t in treat], "stage": cases["stage"], "sex": cases["sex"],
        "age_at_diagnosis": cases["age_at_diagnosis"], "deprivation_quintile": cases["deprivation_quintile"],
    }
    life = pa.table({"sex": ["female", "male"] * 3, "age": [60, 60, 61, 61, 62, 62], "year": [2020] * 6,
                     "qx": [0.005, 0.009, 0.0055, 0.0098, 0.006, 0.011]})
    life = life.append_column("hazard", pa.compute.negate(pa.compute.ln(pa.compute.subtract(1, life["qx"]))))
    return {
        "breast_cancer_endocrine_cohort": _table("breast_cancer_endocrine_cohort", cohort),
        "endocrine_adherence_monthly": _table("endocrine_adherence_monthly", monthly),
        "poor_prognosis_cases": _table("poor_prognosis_cases", cases),
        "care_pathway_delays": _table("care_pathway_delays", delays),
        "french_life_tables": life,
    }


def write_warehouse(path: Path, tables: dict[str, pa.Table]) -> None:
    """Create a DuckDB warehouse with the marts in schema ``marts`` and the life table in ``reference``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    con = duckdb.connect(str(path))
    try:
        con.execute("create schema marts")
        con.execute("create schema reference")
        for name, table in tables.items():
            schema = "reference" if name == "french_life_tables" else "marts"
            con.register("t", table)
            con.execute(f"create table {schema}.{name} as select * from t")
            con.unregister("t")
    finally:
        con.close()
