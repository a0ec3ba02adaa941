"""dbt build on the hand-made landing fixture (tests/integration/dbt_landing_fixture.py): known answers, the
incremental staging against a full refresh, csv against parquet landing files, the SQL PDC rule against the
Python one (oncopipe.methods.adherence), and the window-function carry-over against the sequential definition."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
from dbt_landing_fixture import EXTRACTIONS, write_extraction, write_landing
from oncopipe.contracts import marts
from oncopipe.contracts.settings import DBT_PROJECT_DIR, Settings, get_settings
from oncopipe.methods import adherence
from oncopipe.warehouse import lineage
from oncopipe.warehouse.dbt_runner import DbtRun, dbt_args, dbt_environment, run_dbt

D = dt.date
# The identity of a dispensing line (the staging model stores it as three columns).
LINE_ID = "fund_key || '-' || claim_number || '-' || claim_line_number as line_id"
MODELS = {
    "staging": ["stg_snds__beneficiaries", "stg_snds__drugs", "stg_snds__pharmacy_dispensings", "stg_pmsi_mco__stays",
                "stg_pmsi_mco__stay_patients", "stg_pmsi_mco__associated_diagnoses", "stg_pmsi_mco__acts",
                "stg_registry__cases", "stg_cepidc__deaths", "stg_fdep__communes"],
    "intermediate": ["int_persons_enriched", "int_stays_linked", "int_stay_diagnoses_unioned",
                     "int_cancer_cases_identified", "int_cancer_treatments_identified",
                     "int_hormone_therapy_dispensings_netted", "int_hospital_stays_merged",
                     "int_hormone_therapy_supplies_carried"],
    "marts": ["breast_cancer_endocrine_cohort", "endocrine_adherence_monthly", "poor_prognosis_cases",
              "care_pathway_delays"],
}


def settings_for(home: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("ONCOPIPE_HOME", str(home))
    for var in ("ONCOPIPE_LANDING", "ONCOPIPE_WAREHOUSE"):
        monkeypatch.delenv(var, raising=False)
    return get_settings()


def query(settings: Settings, sql: str) -> pd.DataFrame:
    with duckdb.connect(str(settings.warehouse), read_only=True) as con:
        return con.sql(sql).df()


def snapshot(settings: Settings) -> dict[str, pd.DataFrame]:
    """Every model's rows, sorted on all columns, for exact comparisons between builds."""
    out = {}
    with duckdb.connect(str(settings.warehouse), read_only=True) as con:
        for schema, names in MODELS.items():
            for name in names:
                df = con.sql(f"select * from {schema}.{name}").df()
                out[name] = df.sort_values(list(df.columns)).reset_index(drop=True)
    return out


def assert_same_tables(left: dict[str, pd.DataFrame], right: dict[str, pd.DataFrame]) -> None:
    assert left.keys() == right.keys()
    for name in left:
        pd.testing.assert_frame_equal(left[name], right[name], check_dtype=False, obj=name)


def assert_built(run: DbtRun) -> DbtRun:
    assert run.success, run.summary()
    return run


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Settings, DbtRun]]:
    with pytest.MonkeyPatch.context() as mp:
        settings = settings_for(tmp_path_factory.mktemp("dbt_fixture") / "home", mp)
        write_landing(settings.landing)
        yield settings, assert_built(run_dbt("build", quiet=True))


def test_build_emits_openlineage_events_from_landing_to_marts(built):
    """Each model of the build has a START and a COMPLETE event (the embedded default's file transport), reading
    the landing relations or the models it selects from and writing its own relation, in the warehouse's
    namespace; with a parent (the Airflow task), every event names it."""
    settings, run = built
    events = [json.loads(line) for line in lineage.events_file(settings).read_text().splitlines()]
    events = [e for e in events if e["run"]["facets"]["dbt_run"]["invocation_id"] == run.invocation_id]
    models = {n.name for n in run.nodes if n.resource_type == "model"}
    assert models == {name for names in MODELS.values() for name in names}
    runs = {}
    for event in events:
        if event["job"]["name"].endswith(".build.run"):
            runs.setdefault(event["job"]["name"].split(".")[-3], []).append(event)
    assert set(runs) == models
    assert all(sorted(e["eventType"] for e in runs[m]) == ["COMPLETE", "START"] for m in models)
    namespace = f"duckdb://{settings.warehouse}"
    assert {d["namespace"] for e in events for d in e["inputs"] + e["outputs"]} == {namespace}
    database = settings.warehouse.stem
    start = {m: next(e for e in runs[m] if e["eventType"] == "START") for m in models}
    assert [d["name"] for d in start["stg_snds__beneficiaries"]["inputs"]] == [f"{database}.landing.ir_ben_r"]
    for mart in MODELS["marts"]:
        assert [d["name"] for d in start[mart]["outputs"]] == [f"{database}.marts.{mart}"]
    assert {d["name"] for d in start["poor_prognosis_cases"]["inputs"]} == {
        f"{database}.intermediate.{m}" for m in ("int_cancer_cases_identified", "int_cancer_treatments_identified",
                                                 "int_persons_enriched")}

    parent = lineage.LineageParent(run_id="01890000-0000-7000-8000-000000000001", job_name="platform_refresh.x",
                                   job_namespace="oncopipe")
    with_parent = lineage.dbt_events(settings, parent=parent)
    assert with_parent and all(e.run.facets["parent"].run.runId == parent.run_id
                               and e.run.facets["parent"].job.name == parent.job_name for e in with_parent)


def test_build_reports_every_layer_with_timing_and_invocation(built):
    _, run = built
    names = {n.name for n in run.nodes}
    for layer in MODELS.values():
        assert set(layer) <= names
    assert {n.layer for n in run.nodes} >= {"staging", "intermediate", "marts", "seeds", "tests"}
    assert any(n.resource_type == "unit_test" for n in run.nodes)
    assert all(n.execution_time_s >= 0 for n in run.nodes)
    assert run.invocation_id and len(run.invocation_id) == 36
    assert run.failures == ()


def test_staging_cleans_the_dirt(built):
    settings, _ = built
    lines = query(settings, "select * from staging.stg_snds__pharmacy_dispensings where person_id like 'P2%'")
    by_claim = lines.set_index("claim_number")
    assert 205 not in by_claim.index  # DPN_QLF = 71 information-only line dropped
    assert (lines["claim_number"] == 204).sum() == 1  # exact duplicate collapsed
    assert by_claim.loc[206, "boxes"] == 2 and by_claim.loc[206, "flux_date"] == pd.Timestamp("2021-09-01")
    netted = query(settings, "select * from intermediate.int_hormone_therapy_dispensings_netted "
                             "where person_id like 'P2%' order by dispensing_date")
    assert pd.Timestamp("2020-06-22") not in set(netted["dispensing_date"])  # cancelled by the -1 line
    assert netted.set_index("dispensing_date").loc[pd.Timestamp("2021-05-10"), "supply_days"] == 168


def test_cases_registry_first_then_claims(built):
    settings, _ = built
    cases = query(settings, "select left(person_id, 2) as p, site, case_source, diagnosis_date, stage, hospital_id "
                            "from intermediate.int_cancer_cases_identified").set_index(["p", "site"])
    assert set(cases.index) == {("P1", "breast"), ("P2", "breast"), ("P3", "lung"), ("P4", "lung")}
    assert cases.loc[("P1", "breast"), "case_source"] == "claims"
    assert cases.loc[("P1", "breast"), "diagnosis_date"] == pd.Timestamp("2020-03-10")
    assert cases.loc[("P2", "breast"), ["case_source", "stage"]].tolist() == ["registry", "II"]
    assert cases.loc[("P3", "lung"), "hospital_id"] == "H20000002"
    # P5 has a lung-coded stay but lives where a general registry records lung cancers: no case.


def test_marts_known_answers(built):
    settings, _ = built
    cohort = query(settings, "select * from marts.breast_cancer_endocrine_cohort").set_index("person_id")
    p1, p2 = cohort.loc["P1".ljust(17, "0")], cohort.loc["P2".ljust(17, "0")]
    assert (p1["index_date"], p1["first_molecule"], p1["region_code"]) == (pd.Timestamp("2020-04-01"), "tamoxifen",
                                                                         "11")
    assert (p2["index_date"], p2["first_class"], p2["deprivation_quintile"]) == (
        pd.Timestamp("2020-03-02"), "aromatase_inhibitor", 3)
    # Extraction of 2021-12-31: the last complete pharmacy flux month is October (var pharmacy_flux_lag_months).
    assert p1["end_of_data_date"] == pd.Timestamp("2021-10-31")
    assert p1["follow_up_end_date"] == pd.Timestamp("2021-10-31") and p1["follow_up_end_reason"] == "end_of_data"
    monthly = query(settings, "select * from marts.endocrine_adherence_monthly where person_id like 'P1%' "
                              "order by month_index").set_index("month_index")
    assert monthly.loc[2, "days_hospitalised"] == 5 and monthly.loc[2, "pdc"] == 1.0
    assert monthly.loc[6, "molecule"] == "letrozole"  # the switch, carried over after the tamoxifen
    assert not monthly.loc[8, "is_discontinued"] and monthly.loc[9, "is_discontinued"]  # 112-day gap from Dec 2
    cases = query(settings, "select * from marts.poor_prognosis_cases").set_index("person_id")
    p3 = cases.loc["P3".ljust(17, "0")]
    assert (p3["death_date"], p3["event"], p3["follow_up_days"]) == (pd.Timestamp("2021-08-01"), 1, 208)
    assert (p3["first_treatment_kind"], p3["first_treatment_date"]) == ("chemotherapy", pd.Timestamp("2021-02-01"))
    delays = query(settings, "select * from marts.care_pathway_delays").set_index("site")
    assert delays["delay_days"].dropna().tolist() == [27]  # P3: 2021-01-05 -> 2021-02-01; P4 untreated


def test_sql_pdc_equals_the_python_rule(built):
    settings, _ = built
    dispensings = query(settings, "select person_id, dispensing_date, supply_days as days_supply, cip13, "
                                  "dispensing_id as line_id from intermediate.int_hormone_therapy_dispensings_netted")
    stays = query(settings, "select person_id, entry_date, exit_date from intermediate.int_stays_linked")
    cohort = query(settings, "select person_id, index_date, end_of_data_date, death_date "
                             "from marts.breast_cancer_endocrine_cohort")
    mart = query(settings, "select * from marts.endocrine_adherence_monthly")
    cov = adherence.coverage(dispensings, stays, hospital_days="covered_paused")
    python = adherence.monthly_pdc(cov, adherence.follow_up_windows(cohort))
    assert_same_pdc(mart, python)


def assert_same_pdc(mart: pd.DataFrame, python: pd.DataFrame) -> None:
    keys = ["person_id", "month_index"]
    columns = ["month_start", "month_end", "days_in_month", "days_covered", "days_hospitalised", "is_discontinued"]
    left = mart.sort_values(keys).reset_index(drop=True)
    right = python.sort_values(keys).reset_index(drop=True)
    assert len(left) == len(right) > 0
    pd.testing.assert_frame_equal(left[keys + columns], right[keys + columns], check_dtype=False)
    np.testing.assert_allclose(left["pdc"], right["pdc"])


@pytest.mark.slow
def test_incremental_load_equals_full_refresh(tmp_path, monkeypatch):
    settings = settings_for(tmp_path / "home", monkeypatch)
    write_extraction(settings.landing, EXTRACTIONS[0])
    assert_built(run_dbt("build", quiet=True))
    first = query(settings, f"select {LINE_ID}, boxes, extraction_date from staging.stg_snds__pharmacy_dispensings")
    write_extraction(settings.landing, EXTRACTIONS[1])
    assert_built(run_dbt("build", quiet=True))
    incremental = snapshot(settings)
    staged = incremental["stg_snds__pharmacy_dispensings"]
    lines = staged.set_index(staged["fund_key"] + "-" + staged["claim_number"].astype(str) + "-"
                             + staged["claim_line_number"].astype(str))
    # History kept: lines of the first flux were not re-read but are still there ...
    kept = first[first["line_id"] != "01C751000-206-1"]
    assert set(kept["line_id"]) <= set(lines.index)
    assert (lines.loc[kept["line_id"], "extraction_date"] == pd.Timestamp(EXTRACTIONS[0])).all()
    # ... and the line re-sent in the second flux replaced its first version.
    assert lines.loc["01C751000-206-1", "boxes"] == 2
    assert_built(run_dbt("build", full_refresh=True, quiet=True))
    assert_same_tables(incremental, snapshot(settings))


def test_csv_landing_gives_the_same_marts(built, tmp_path, monkeypatch):
    parquet_settings, _ = built
    expected = snapshot(parquet_settings)
    settings = settings_for(tmp_path / "home", monkeypatch)
    write_landing(settings.landing, fmt="csv")
    # No setting: the format is read from the files that landed.
    assert_built(run_dbt("build", quiet=True))
    got = snapshot(settings)
    assert_same_tables({k: expected[k] for k in MODELS["marts"]}, {k: got[k] for k in MODELS["marts"]})


def test_a_format_setting_that_contradicts_the_landing_is_named(tmp_path, monkeypatch):
    settings = settings_for(tmp_path / "home", monkeypatch)
    write_landing(settings.landing, fmt="csv")
    run = run_dbt("build", vars={"landing_format": "parquet"}, quiet=True)
    assert not run.success
    assert "landing_format='parquet'" in run.error and "landed as csv" in run.error and "ir_ben_r" in run.error
    run = run_dbt("build", vars={"landing_format": "xml"}, quiet=True)
    assert not run.success and "landing_format must be one of auto, parquet, csv" in run.error


def test_a_missing_landing_is_named(tmp_path, monkeypatch):
    settings = settings_for(tmp_path / "home", monkeypatch)
    run = run_dbt("build", quiet=True)
    assert not run.success and "no accepted extraction" in run.error and str(settings.landing) in run.error
    run = run_dbt("build", vars={"hospital_days": "sometimes"}, quiet=True)
    assert not run.success


def test_failures_name_the_node_and_the_message(built):
    """Last in the module: it rebuilds the cohort with a follow-up of 0 months, then restores it."""
    settings, _ = built
    try:
        run = run_dbt("build", select=["breast_cancer_endocrine_cohort"], exclude=["test_type:unit"],
                      vars={"endocrine_follow_up_months": 0}, quiet=True, settings=settings)
        assert not run.success
        failing = [n for n in run.failures if "follow_up_days" in n.name]
        assert failing and failing[0].resource_type == "test" and failing[0].failures > 0, run.summary()
        assert failing[0].name in run.summary()
        run = run_dbt("build", select=["int_hormone_therapy_supplies_carried"], vars={"hospital_days": "sometimes"},
                      quiet=True, settings=settings)
        assert not run.success and "var hospital_days must be 'covered_paused' or 'ignore'" in run.error
    finally:
        assert_built(run_dbt("build", select=["breast_cancer_endocrine_cohort"], quiet=True, settings=settings))


def sequential_supplies(dispensings: pd.DataFrame, hospital_days: set[int]) -> dict[str, tuple[int, int]]:
    """The carry-over rule by its sequential definition, one day at a time (the slow reference).

    Each day, the dispensings of the day join the queue; a day in hospital consumes nothing; any other day
    consumes one day of the oldest supply still running. A supply's first and last consumed days are its span.
    """
    spans: dict[str, tuple[int, int]] = {}
    queue: list[list] = []  # [dispensing id, days left]
    todo = dispensings.sort_values(["t", "cip13", "dispensing_id"]).to_dict("records")
    day, i = todo[0]["t"], 0
    while i < len(todo) or queue:
        while i < len(todo) and todo[i]["t"] == day:
            queue.append([todo[i]["dispensing_id"], todo[i]["supply_days"]])
            i += 1
        if queue and day not in hospital_days:
            ident = queue[0][0]
            first, _ = spans.get(ident, (day, day))
            spans[ident] = (first, day)
            queue[0][1] -= 1
            if queue[0][1] == 0:
                queue.pop(0)
        day += 1
    return spans


def test_window_carry_over_equals_the_sequential_rule(built):
    """The compiled models (running sum + running max, ASOF joins) against the day-by-day definition, on random
    histories with overlapping refills, same-day refills, switches and overlapping or adjacent hospital stays."""
    settings, _ = built
    compiled = settings.dbt_target_dir / "compiled" / "oncopipe" / "models" / "intermediate"
    merged_sql = (compiled / "int_hospital_stays_merged.sql").read_text()
    carried_sql = (compiled / "int_hormone_therapy_supplies_carried.sql").read_text()
    assert "covered_paused" in carried_sql  # compiled with the default hospital option
    rng = np.random.default_rng(20240101)
    epoch = pd.Timestamp("1970-01-01")
    base = (pd.Timestamp("2020-01-01") - epoch).days
    rows, stays = [], []
    for p in range(150):
        t = base + int(rng.integers(0, 30))
        for k in range(int(rng.integers(1, 25))):
            t += int(rng.choice([0, 0, 10, 25, 28, 30, 60, 95, 200]))
            rows.append({"dispensing_id": f"{p}-{k}", "person_id": f"P{p}", "t": t,
                         "cip13": str(rng.choice(["3400900000001", "3400900000002"])),
                         "supply_days": int(rng.choice([28, 30, 56, 84, 90]))})
        for _ in range(int(rng.integers(0, 5))):
            entry = base + int(rng.integers(0, 900))
            stays.append({"person_id": f"P{p}", "entry": entry, "exit": entry + int(rng.choice([0, 0, 2, 5, 20]))})
    dispensings = pd.DataFrame(rows)
    dispensings["dispensing_date"] = epoch + pd.to_timedelta(dispensings["t"], unit="D")
    linked = pd.DataFrame(stays)
    linked["entry_date"] = epoch + pd.to_timedelta(linked["entry"], unit="D")
    linked["exit_date"] = epoch + pd.to_timedelta(linked["exit"], unit="D")
    with duckdb.connect() as con:
        con.execute("attach ':memory:' as oncopipe")
        con.execute("create schema oncopipe.intermediate")
        con.register("d", dispensings)
        con.register("s", linked)
        con.execute("create table oncopipe.intermediate.int_hormone_therapy_dispensings_netted as select "
                    "dispensing_id, person_id, cast(dispensing_date as date) as dispensing_date, cip13, "
                    "'L02BA01' as atc_code, 'tamoxifen' as molecule, 'SERM' as therapy_class, supply_days from d")
        con.execute("create table oncopipe.intermediate.int_stays_linked as select person_id, "
                    "cast(entry_date as date) as entry_date, cast(exit_date as date) as exit_date from s")
        con.execute(f"create table oncopipe.intermediate.int_hospital_stays_merged as {merged_sql}")
        got = con.sql(carried_sql).df().set_index("dispensing_id")
    hospital = {p: {d for r in g.itertuples() for d in range(r.entry, r.exit + 1)}
                for p, g in linked.groupby("person_id")}
    mismatches = []
    for person, group in dispensings.groupby("person_id"):
        for ident, (first, last) in sequential_supplies(group, hospital.get(person, set())).items():
            start = (got.loc[ident, "supply_start_date"] - epoch).days
            end = (got.loc[ident, "supply_end_date"] - epoch).days
            if (start, end) != (first, last):
                mismatches.append((ident, (first, last), (start, end)))
    assert len(got) == len(dispensings)
    assert mismatches == []


def test_the_committed_mart_contracts_are_those_of_the_manifest(built):
    """contracts/marts.json is what dbt declares (the manifest of this build): `oncopipe dbt contracts` if not."""
    settings, _ = built
    manifest = json.loads((settings.dbt_target_dir / "manifest.json").read_text(encoding="utf-8"))
    assert marts.contract_differences(marts.MARTS, marts.contracts_from_manifest(manifest)) == []


def test_a_type_changed_in_the_marts_yaml_makes_the_committed_contracts_stale(tmp_path, monkeypatch):
    """Python and dbt cannot disagree unseen: a data_type edited in the YAML (a copy of the project), parsed by
    dbt, differs from the committed contracts, naming the mart and the column."""
    from dbt.cli.main import dbtRunner

    project = tmp_path / "dbt_project"
    shutil.copytree(DBT_PROJECT_DIR, project, ignore=shutil.ignore_patterns("target", "logs"))
    models = project / "models" / "marts" / "_marts__models.yml"
    text = models.read_text(encoding="utf-8")
    declared = "      - name: pdc\n        data_type: double\n"
    assert text.count(declared) == 1
    models.write_text(text.replace(declared, "      - name: pdc\n        data_type: float\n"), encoding="utf-8")
    settings = settings_for(tmp_path / "home", monkeypatch)
    for name, value in dbt_environment(settings).items():
        monkeypatch.setenv(name, value)
    result = dbtRunner().invoke(dbt_args("parse", settings, quiet=True, project_dir=project))
    assert result.success, result.exception
    manifest = json.loads((settings.dbt_target_dir / "manifest.json").read_text(encoding="utf-8"))
    assert marts.contract_differences(marts.MARTS, marts.contracts_from_manifest(manifest)) == [
        "endocrine_adherence_monthly.pdc: data_type double committed, float in dbt"]


def test_source_freshness_at_the_processed_extraction_errors_warns_and_is_shown(built):
    """dbt source freshness on the fixture's landing, at 2022-03-01 (two months after its newest extraction): the
    delta sources warn after 45 days and error after 120, the snapshots warn after 400 (sources YAML). The PMSI
    sources' newest lines are of 2021-06-30 (the second extraction brought no stay): error, the refresh stops; the
    dispensings' two DCIR tables (newest 2021-12-31, 60 days) warn; the rest pass. The quality view shows each of
    them."""
    from oncopipe.orchestration.operator_views import quality_page
    from oncopipe.quality.freshness import FreshnessFailed
    from oncopipe.quality.history import history_path
    from oncopipe.warehouse import refresh

    settings, _ = built
    with pytest.raises(FreshnessFailed) as raised:
        refresh.source_freshness("2022-03-01", settings)
    lines = str(raised.value).splitlines()
    assert lines[0].endswith("FAILED (11 sources, 4 errors, 2 warnings)"), lines[0]
    assert ("  pmsi_mco.t_mco_b [error]: newest extraction 2021-06-30, 244 days old at 2022-03-01 "
            "(warn after 45 days, error after 120 days)") in lines
    for dcir in ("er_prs_f", "er_pha_f"):
        assert (f"  snds.{dcir} [warn]: newest extraction 2021-12-31, 60 days old at 2022-03-01 "
                "(warn after 45 days, error after 120 days)") in lines
    page = quality_page(history_path(settings.quality), failed_only=False, stage=None)
    table = page[page.index("<table id='source-freshness'>"):]
    table = table[:table.index("</table>")]
    assert (table.count("<tr class='failed'>"), table.count("<tr class='warned'>"),
            table.count("<tr class='passed'>")) == (4, 2, 5)


def test_stays_keyed_before_the_pmsi_year_stop_an_incremental_run(tmp_path, monkeypatch):
    """A warehouse whose stays were keyed ETA_NUM-RSA_NUM (before the PMSI year was part of stay_id) is not
    appended to: a re-sent stay would be kept twice, under each key. The run names the table and the full refresh
    that re-keys it; the full refresh then succeeds."""
    settings = settings_for(tmp_path / "home", monkeypatch)
    write_landing(settings.landing)
    assert_built(run_dbt("run", select=["stg_pmsi_mco__stays"], quiet=True))
    with duckdb.connect(str(settings.warehouse)) as con:
        con.execute("update staging.stg_pmsi_mco__stays set stay_id = substr(stay_id, 6)")  # the old key
    stale = run_dbt("run", select=["stg_pmsi_mco__stays"], quiet=True)
    assert not stale.success
    assert "holds stays keyed without their PMSI year" in stale.summary() and "full refresh" in stale.summary()
    assert_built(run_dbt("run", select=["stg_pmsi_mco__stays"], full_refresh=True, quiet=True))
    keys = query(settings, "select stay_id, pmsi_year from staging.stg_pmsi_mco__stays")
    assert len(keys) and (keys["stay_id"].str[:4].astype(int) == keys["pmsi_year"]).all()
