"""dbt build on a small generated extraction reproduces the generator's planted truth within stated tolerances.

One extraction of 4,000 people (``oncopipe.synth``), built once for the module in a private ONCOPIPE_HOME; the
marts are compared with ``_truth/extraction=<date>/`` (truth.json, cases.parquet, trajectory_groups.parquet).
Tolerances, and why:
- cases: every planted case diagnosed by the extraction date is found, with its site and diagnosis date, for
  >= 98 % of them (claims-only cases in the first year of PMSI history fall in the washout); no extra case beyond
  2 % of the planted count.
- registry cases: exactly the planted registry records.
- endocrine cohort: the planted women whose index dispensing is by the end of data (the last complete pharmacy
  flux month, oncopipe.methods.adherence.end_of_complete_data: later dispensings are still arriving in the flux) are in
  the cohort with the same index date, >= 98 %; nobody's follow-up goes past the end of data.
- last month of follow-up: continuously adherent women followed to the end of data keep their PDC in their last
  month (within 0.05 of their earlier months): no artificial non-adherence from dispensings not yet in the flux.
- PDC profile: per planted trajectory group (>= 30 women) and band of months, the mart's mean monthly PDC is within
  0.05 of the generator's realised mean (the generator ignores hospital days and does not cut at the extraction).
- delays: fast-track hospitals have a median delay at least 10 days shorter (20 planted); first treatment kind as
  planted for >= 97 % of the cases treated before the extraction, and its date within 1 day (surgery is dated at
  the act, one day after admission, where the generator dates the admission).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
from oncopipe.contracts.settings import Settings, get_settings
from oncopipe.methods import adherence
from oncopipe.warehouse.dbt_runner import DbtRun, run_dbt

pytestmark = pytest.mark.slow

EXTRACTION = "2024-12-31"
END_OF_DATA = adherence.end_of_complete_data(EXTRACTION).date()
PATIENTS = 4_000


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Settings, Path, DbtRun]]:
    generate = pytest.importorskip("oncopipe.synth.extraction").generate
    home = tmp_path_factory.mktemp("dbt_truth") / "home"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ONCOPIPE_HOME", str(home))
        for var in ("ONCOPIPE_LANDING", "ONCOPIPE_WAREHOUSE"):
            mp.delenv(var, raising=False)
        settings = get_settings()
        generate(settings.landing, PATIENTS, 7, EXTRACTION, workers=1)
        run = run_dbt("build", quiet=True)
        assert run.success, run.summary()
        yield settings, settings.landing / "_truth" / f"extraction={EXTRACTION}", run


@pytest.fixture(scope="module")
def con(built) -> Iterator[duckdb.DuckDBPyConnection]:
    settings, truth, _ = built
    with duckdb.connect(str(settings.warehouse), read_only=True) as connection:
        connection.execute(f"create temp view truth_cases as select * from read_parquet('{truth}/cases.parquet') "
                           f"where diagnosis_date <= date '{EXTRACTION}'")
        connection.execute(f"create temp view truth_groups as select * from "
                           f"read_parquet('{truth}/trajectory_groups.parquet')")
        yield connection


@pytest.fixture(scope="module")
def truth(built) -> dict:
    return json.loads((built[1] / "truth.json").read_text())


def test_incident_cases_by_site(con):
    counts = con.sql("""
        select t.site, count(*) as planted, count(c.person_id) as found,
            count(*) filter (where c.diagnosis_date = cast(t.diagnosis_date as date)) as same_date,
            count(*) filter (where c.case_source = 'registry') as registry_found,
            count(*) filter (where t.registry_id is not null) as registry_planted
        from truth_cases as t
        left join intermediate.int_cancer_cases_identified as c on c.person_id = t.BEN_NIR_PSA and c.site = t.site
        group by t.site order by t.site
    """).df().set_index("site")
    assert set(counts.index) == {"breast", "lung", "pancreas", "liver", "oesophagus", "stomach", "cns"}
    assert (counts["same_date"] >= 0.98 * counts["planted"]).all(), counts
    assert (counts["registry_found"] == counts["registry_planted"]).all(), counts
    extra = con.sql("""
        select c.site, count(*) as n from intermediate.int_cancer_cases_identified as c
        anti join truth_cases as t on c.person_id = t.BEN_NIR_PSA and c.site = t.site group by c.site
    """).df().set_index("site")["n"]
    assert (extra.reindex(counts.index, fill_value=0) <= 0.02 * counts["planted"]).all(), extra
    marts = con.sql("select site, count(*) as n from marts.poor_prognosis_cases group by site").df().set_index("site")
    poor = counts.drop(index="breast")
    assert (abs(marts["n"] - poor["planted"]) <= 0.02 * poor["planted"]).all(), (marts, poor)


def test_registry_coverage_seed_matches_the_planted_registries(con, truth):
    seed = con.sql("select registry_id, department_code, site from reference.registry_coverage").df()
    planted = {(r["reg_id"], d, s) for r in truth["registries"] for d in r["departments"] for s in r["sites"]}
    assert set(seed.itertuples(index=False, name=None)) == planted


def test_endocrine_cohort_size_and_index_dates(con):
    row = con.sql(f"""
        select count(*) as planted, count(c.person_id) as found,
            count(*) filter (where c.index_date = cast(g.index_date as date)) as same_index
        from truth_groups as g
        left join marts.breast_cancer_endocrine_cohort as c on c.person_id = g.BEN_NIR_PSA
        where g.index_date <= date '{END_OF_DATA}'
    """).fetchone()
    planted, found, same_index = row
    assert planted > 300
    assert same_index >= 0.98 * planted, row
    cohort, end_of_data, last_index, last_end = con.sql(
        "select count(*), list(distinct end_of_data_date), max(index_date), max(follow_up_end_date) "
        "from marts.breast_cancer_endocrine_cohort").fetchone()
    assert abs(cohort - planted) <= 0.03 * planted, (cohort, planted)
    assert end_of_data == [END_OF_DATA]
    assert last_index <= END_OF_DATA and last_end == END_OF_DATA


def test_no_artificial_non_adherence_at_the_end_of_data(con):
    months = con.sql("""
        select m.person_id, m.month_end = c.follow_up_end_date as is_last, m.pdc
        from marts.endocrine_adherence_monthly as m
        inner join marts.breast_cancer_endocrine_cohort as c using (person_id)
        inner join truth_groups as g on g.BEN_NIR_PSA = m.person_id
        where g.group_name = 'continuously_adherent' and c.follow_up_end_reason = 'end_of_data'
    """).df()
    last = months.loc[months["is_last"], "pdc"]
    earlier = months.loc[~months["is_last"], "pdc"]
    assert len(last) >= 30, len(last)
    assert last.mean() >= earlier.mean() - 0.05, (last.mean(), earlier.mean())


def test_pdc_profile_per_planted_group(con, truth):
    bands = {"months_0_11": (0, 11), "months_12_23": (12, 23), "months_36_59": (36, 59)}
    mart = con.sql("""
        select g.group_name, m.month_index, avg(m.pdc) as pdc, count(*) as n
        from marts.endocrine_adherence_monthly as m
        inner join truth_groups as g on g.BEN_NIR_PSA = m.person_id
        group by all
    """).df()
    problems = []
    for group in truth["adherence"]["groups"]:
        if group["n"] < 30:
            continue
        realised = np.array(group["realised_mean_pdc"])
        mine = mart[mart["group_name"] == group["name"]].set_index("month_index")
        for band, (lo, hi) in bands.items():
            months = mine.loc[lo:hi]
            if months["n"].sum() < 200:  # too few woman-months observed by the extraction date
                continue
            got = np.average(months["pdc"], weights=months["n"])
            want = np.average(realised[months.index], weights=months["n"])
            if abs(got - want) > 0.05:
                problems.append((group["name"], band, round(got, 3), round(want, 3)))
    assert problems == []
    adherent = mart[mart["group_name"] == "continuously_adherent"]
    stopped = mart[(mart["group_name"] == "immediate_discontinuation") & (mart["month_index"] >= 6)]
    assert np.average(adherent["pdc"], weights=adherent["n"]) > 0.9
    assert np.average(stopped["pdc"], weights=stopped["n"]) < 0.05


def test_fast_track_hospitals_have_shorter_delays(con, truth):
    fast = set(truth["care_pathways"]["fast_track_hospitals"])
    delays = con.sql("select hospital_id, delay_days from marts.care_pathway_delays where treated").df()
    is_fast = delays["hospital_id"].isin(fast)
    assert is_fast.sum() >= 30 and (~is_fast).sum() >= 30
    gap = delays.loc[~is_fast, "delay_days"].median() - delays.loc[is_fast, "delay_days"].median()
    assert gap >= 10, gap


def test_first_treatments_and_deaths_as_planted(con):
    row = con.sql(f"""
        select
            count(*) as planted,
            count(*) filter (where p.first_treatment_kind = t.first_treatment_kind) as same_kind,
            count(*) filter (where abs(p.first_treatment_date - cast(t.first_treatment_date as date)) <= 1)
                as date_within_1_day
        from truth_cases as t
        inner join marts.poor_prognosis_cases as p on p.person_id = t.BEN_NIR_PSA and p.site = t.site
        where t.first_treatment_date <= date '{EXTRACTION}'
    """).fetchone()
    planted, same_kind, within = row
    assert same_kind >= 0.97 * planted and within >= 0.97 * planted, row
    deaths = con.sql(f"""
        select count(*) filter (where p.death_date is not distinct from
                   case when t.death_date <= date '{EXTRACTION}' then cast(t.death_date as date) end) as same,
               count(*) as n
        from truth_cases as t inner join marts.poor_prognosis_cases as p
            on p.person_id = t.BEN_NIR_PSA and p.site = t.site
    """).fetchone()
    assert deaths[0] >= 0.99 * deaths[1], deaths


def test_sql_pdc_equals_the_python_rule(con):
    dispensings = con.sql("select person_id, dispensing_date, supply_days as days_supply, cip13, "
                          "dispensing_id as line_id from intermediate.int_hormone_therapy_dispensings_netted").df()
    stays = con.sql("select person_id, entry_date, exit_date from intermediate.int_stays_linked").df()
    cohort = con.sql("select person_id, index_date, end_of_data_date, death_date "
                     "from marts.breast_cancer_endocrine_cohort").df()
    mart = con.sql("select * from marts.endocrine_adherence_monthly").df()
    cov = adherence.coverage(dispensings, stays, hospital_days="covered_paused")
    python = adherence.monthly_pdc(cov, adherence.follow_up_windows(cohort))
    keys = ["person_id", "month_index"]
    columns = ["month_start", "month_end", "days_in_month", "days_covered", "days_hospitalised", "is_discontinued"]
    left = mart.sort_values(keys).reset_index(drop=True)
    right = python.sort_values(keys).reset_index(drop=True)
    assert len(left) == len(right) > 1000
    pd.testing.assert_frame_equal(left[keys + columns], right[keys + columns], check_dtype=False)
