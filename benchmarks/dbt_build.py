"""Benchmark ``dbt build`` layer by layer on a generated extraction, against a plain pandas monthly-adherence mart.

Usage::

    nice -n 10 .venv/bin/python benchmarks/dbt_build.py [--patients 1000000] [--pandas-patients 100000]

1. The extraction (``oncopipe.synth``) is cached under ``var/bench/extraction-<N>-seed<S>-<date>/landing`` and
   reused when its truth.json is there; otherwise it is generated (and timed, as stage ``generate``).
2. dbt runs from an empty warehouse (``var/bench/dbt-<N>/``), one ``dbt build --select <layer>`` per layer
   (seeds, staging, intermediate, marts: models, their data tests and unit tests), each measured for wall time,
   CPU time and peak RSS of the process (dbt and DuckDB run in process). DuckDB is bounded by the profile
   (2 threads, ``ONCOPIPE_DUCKDB_MEMORY_LIMIT``, default 8GB).
3. A pandas implementation of ``endocrine_adherence_monthly`` (read the landing files, clean, find the breast
   cases and the cohort, then the PDC with the platform's vectorised engine ``oncopipe.methods.adherence``) runs on the
   ``--pandas-patients`` extraction, and its rows are compared with the dbt mart when both used the same one:
   every (person, month) and every column, the CMA7-type ``pdc`` exactly (:func:`mart_parity`).
   :func:`pandas_daily_adherence` is the straightforward one (the same cleaning, then a walk over each woman's
   days); ``benchmarks/run.py`` measures both.

Writes ``benchmarks/results/dbt_build-<N>.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
from measure import StageMeasure, measure, write_results
from oncopipe.contracts.settings import DBT_PROJECT_DIR, PROJECT_ROOT, get_settings
from oncopipe.contracts.sources import DCIR_KEY, PMSI_STAY, SOURCES_BY_NAME
from oncopipe.methods import adherence
from oncopipe.warehouse.dbt_runner import run_dbt

RESULTS = Path(__file__).resolve().parent / "results"
BENCH = PROJECT_ROOT / "var" / "bench"
LAYER_SELECTIONS = {"seeds": "path:seeds", "staging": "path:models/staging",
                    "intermediate": "path:models/intermediate", "marts": "path:models/marts"}
LAYERS = tuple(LAYER_SELECTIONS)


def extraction(patients: int, seed: int, date: str, measures: list[StageMeasure]) -> Path:
    """The cached landing folder of a generated extraction, generated (and measured) when missing."""
    landing = BENCH / f"extraction-{patients}-seed{seed}-{date}" / "landing"
    if (landing / "_truth" / f"extraction={date}" / "truth.json").exists():
        print(f"reusing {landing}", file=sys.stderr)
        return landing
    from oncopipe.synth.extraction import generate

    if landing.exists():
        shutil.rmtree(landing)

    def progress(done: int, total: int) -> None:
        print(f"\rgenerate {patients:,}: chunk {done}/{total}", end="", file=sys.stderr, flush=True)

    with measure(f"generate_{patients}") as m:
        report = generate(landing, patients, seed, date, workers=2, on_chunk=progress)
        m.rows = sum(report.rows.values())
    print(file=sys.stderr)
    m.extra = {"rows_per_source": report.rows}
    measures.append(m)
    return landing


def dbt_layers(patients: int, landing: Path, measures: list[StageMeasure]) -> dict[str, Any]:
    home = BENCH / f"dbt-{patients}"
    if home.exists():
        shutil.rmtree(home)
    os.environ["ONCOPIPE_HOME"] = str(home)
    os.environ["ONCOPIPE_LANDING"] = str(landing)
    os.environ.pop("ONCOPIPE_WAREHOUSE", None)
    settings = get_settings()
    total = StageMeasure("dbt_build_total")
    for layer in LAYERS:
        gc.collect()
        with measure(f"dbt_{layer}") as m:
            run = run_dbt("build", select=[LAYER_SELECTIONS[layer]], quiet=True, indirect_selection="cautious")
        if not run.success:
            raise SystemExit(run.summary())
        models = [n for n in run.nodes if n.resource_type in ("model", "seed")]
        tests = [n for n in run.nodes if n.resource_type in ("test", "unit_test")]
        m.extra = {
            "nodes": len(run.nodes),
            "models_s": round(sum(n.execution_time_s for n in models), 2),
            "tests_s": round(sum(n.execution_time_s for n in tests), 2),
            "slowest": sorted(((n.name, round(n.execution_time_s, 2)) for n in run.nodes),
                              key=lambda x: -x[1])[:5],
        }
        print(f"{layer:13} wall {m.wall_s:7.1f} s  peak RSS {m.peak_rss_mb:7.0f} MB  "
              f"(models {m.extra['models_s']} s, tests {m.extra['tests_s']} s)", file=sys.stderr)
        measures.append(m)
        total.wall_s += m.wall_s
        total.cpu_s += m.cpu_s
        total.peak_rss_mb = max(total.peak_rss_mb, m.peak_rss_mb)
    with duckdb.connect(str(settings.warehouse), read_only=True) as con:
        rows = {name: con.sql(f"select count(*) from {schema}.{name}").fetchone()[0] for schema, name in (
            ("staging", "stg_snds__pharmacy_dispensings"), ("intermediate", "int_hormone_therapy_supplies_carried"),
            ("marts", "breast_cancer_endocrine_cohort"), ("marts", "endocrine_adherence_monthly"),
            ("marts", "poor_prognosis_cases"), ("marts", "care_pathway_delays"))}
    total.rows = rows["stg_snds__pharmacy_dispensings"]
    total.extra = {"rows": rows, "warehouse_bytes": settings.warehouse.stat().st_size}
    measures.append(total)
    return {"warehouse": settings.warehouse, "rows": rows}


def _read(landing: Path, source: str, columns: list[str]) -> pd.DataFrame:
    frame = pd.read_parquet(landing / source, columns=columns)
    dates = {c.name for c in SOURCES_BY_NAME[source].columns if c.type == "date"} | {"extraction"}
    for column in dates & set(frame.columns):
        frame[column] = pd.to_datetime(frame[column].astype("string"))
    return frame


def _latest(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[frame["extraction"] == frame["extraction"].max()]


def _adherence_inputs(landing: Path) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """What both pandas baselines start from, read and cleaned in plain pandas (the rules of the dbt models).

    Returns:
        ``supplies`` (cleaned hormone-therapy dispensings: person_id, dispensing_date, cip13, days_supply,
        line_id), ``stays`` (hospital stays: person_id, entry_date, exit_date) and ``cohort`` (person_id,
        index_date, end_of_data_date, death_date).
    """
    seeds = DBT_PROJECT_DIR / "seeds"
    atc = pd.read_csv(seeds / "atc_hormone_therapies.csv")
    coverage_seed = pd.read_csv(seeds / "registry_coverage.csv", dtype=str)
    # Dispensings: drop information lines, keep the latest version of each line, hormone therapies only, net.
    pha = adherence.join_dcir(
        _read(landing, "er_prs_f", [*DCIR_KEY, "BEN_NIR_PSA", "EXE_SOI_DTD", "DPN_QLF", "extraction"]),
        _read(landing, "er_pha_f", [*DCIR_KEY, "PHA_PRS_C13", "PHA_ACT_QSN", "extraction"]), DCIR_KEY)
    pha = pha[pha["DPN_QLF"] != 71]
    pha = pha.sort_values(["extraction", "FLX_DIS_DTD"]).drop_duplicates(
        ["ORG_CLE_NUM", "DCT_ORD_NUM", "PRS_ORD_NUM"], keep="last")
    drugs = _latest(_read(landing, "ir_pha_r", ["PHA_CIP_C13", "PHA_ATC_C07", "PHA_UNT_NBR_DSES", "extraction"]))
    drugs = drugs.merge(atc, left_on="PHA_ATC_C07", right_on="atc_code")
    ht = pha.merge(drugs, left_on="PHA_PRS_C13", right_on="PHA_CIP_C13")
    ht["line_id"] = ht["ORG_CLE_NUM"] + "-" + ht["DCT_ORD_NUM"].astype(str) + "-" + ht["PRS_ORD_NUM"].astype(str)
    ht = ht.groupby(["BEN_NIR_PSA", "EXE_SOI_DTD", "PHA_PRS_C13"], as_index=False).agg(
        boxes=("PHA_ACT_QSN", "sum"), units=("PHA_UNT_NBR_DSES", "first"), line_id=("line_id", "min"))
    ht = ht[ht["boxes"] > 0]
    ht["days_supply"] = ht["boxes"] * ht["units"].astype(int)
    ht = ht.rename(columns={"BEN_NIR_PSA": "person_id", "EXE_SOI_DTD": "dispensing_date", "PHA_PRS_C13": "cip13"})
    # Stays with their patient.
    stay = list(PMSI_STAY)
    stays_b = _read(landing, "t_mco_b", [*stay, "DGN_PAL", "DGN_REL", "extraction"])
    stays_c = _read(landing, "t_mco_c", [*stay, "NIR_ANO_17", "EXE_SOI_DTD", "EXE_SOI_DTF",
                                         "NIR_RET", "extraction"])
    stays_b = stays_b.sort_values("extraction").drop_duplicates(stay, keep="last")
    stays_c = stays_c.sort_values("extraction").drop_duplicates(stay, keep="last")
    stays = stays_b.drop(columns="extraction").merge(stays_c[stays_c["NIR_RET"] == "0"], on=stay)
    stays = stays[stays["EXE_SOI_DTF"] >= stays["EXE_SOI_DTD"]].rename(columns={
        "NIR_ANO_17": "person_id", "EXE_SOI_DTD": "entry_date", "EXE_SOI_DTF": "exit_date"})
    # Breast cases: registry first, then the claims algorithm where no registry covers the department.
    persons = _latest(_read(landing, "ir_ben_r", ["BEN_NIR_PSA", "BEN_RNG_GEM", "BEN_SEX_COD", "BEN_RES_DPT",
                                                   "BEN_DCD_DTE", "extraction"]))
    persons = persons.sort_values("BEN_RNG_GEM").drop_duplicates("BEN_NIR_PSA")
    deaths = _latest(_read(landing, "ki_cci_r", ["BEN_NIR_ANO", "BEN_DCD_DTE", "extraction"]))
    deaths = deaths.groupby("BEN_NIR_ANO", as_index=False)["BEN_DCD_DTE"].min()
    deaths.columns = ["BEN_NIR_PSA", "CCI_DCD_DTE"]
    persons = persons.merge(deaths, on="BEN_NIR_PSA", how="left")
    persons["death_date"] = persons["BEN_DCD_DTE"].fillna(persons["CCI_DCD_DTE"])
    registry = _latest(_read(landing, "registry_cases", ["BEN_NIR_PSA", "DAT_DIAG", "TOP_ICDO3", "extraction"]))
    registry = registry[registry["TOP_ICDO3"].str.startswith("C50")].groupby("BEN_NIR_PSA")["DAT_DIAG"].min()
    covered = set(coverage_seed.loc[coverage_seed["site"] == "breast", "department_code"])
    coded = stays[stays["DGN_PAL"].str.startswith("C50") | stays["DGN_REL"].fillna("").str.startswith("C50")]
    claims = coded.groupby("person_id")["entry_date"].min()
    claims = claims[claims >= stays["entry_date"].min() + pd.Timedelta(days=365)]
    uncovered = set(persons.loc[~persons["BEN_RES_DPT"].isin(covered), "BEN_NIR_PSA"])
    claims = claims[claims.index.isin(uncovered) & ~claims.index.isin(registry.index)]
    cases = pd.concat([registry, claims]).rename("diagnosis_date").reset_index()
    cases.columns = ["person_id", "diagnosis_date"]
    # Cohort: women, first hormone therapy within 12 months of the diagnosis, alive at the index, by the end of
    # data (the last complete pharmacy flux month of the extraction).
    end_of_data = adherence.end_of_complete_data(pha["extraction"].max())
    women = persons[persons["BEN_SEX_COD"] == 2][["BEN_NIR_PSA", "death_date"]].rename(
        columns={"BEN_NIR_PSA": "person_id"})
    first = ht.merge(cases, on="person_id").merge(women, on="person_id")
    first = first[(first["dispensing_date"] >= first["diagnosis_date"])
                  & (first["dispensing_date"] <= first["diagnosis_date"] + pd.DateOffset(months=12))]
    first = first.sort_values(["person_id", "dispensing_date", "cip13", "line_id"]).drop_duplicates("person_id")
    first = first[(first["death_date"].isna() | (first["death_date"] >= first["dispensing_date"]))
                  & (first["dispensing_date"] <= end_of_data)]
    cohort = pd.DataFrame({"person_id": first["person_id"], "index_date": first["dispensing_date"],
                           "end_of_data_date": end_of_data, "death_date": first["death_date"]})
    return ht, stays, cohort


def pandas_monthly_adherence(landing: Path) -> pd.DataFrame:
    """The endocrine_adherence_monthly mart in pandas, the PDC by the platform's vectorised engine.

    The cleaning and the cohort are plain pandas (:func:`_adherence_inputs`); the coverage and the monthly
    PDC are :func:`oncopipe.methods.adherence.coverage` and :func:`oncopipe.methods.adherence.monthly_pdc`.
    """
    ht, stays, cohort = _adherence_inputs(landing)
    cov = adherence.coverage(ht[["person_id", "dispensing_date", "days_supply", "cip13", "line_id"]],
                             stays[["person_id", "entry_date", "exit_date"]], hospital_days="covered_paused")
    return adherence.monthly_pdc(cov, adherence.follow_up_windows(cohort))


def pandas_daily_adherence(landing: Path) -> pd.DataFrame:
    """The endocrine_adherence_monthly mart as an analyst would write it in pandas: a walk over each woman's days.

    The same cleaning and cohort as :func:`pandas_monthly_adherence` (:func:`_adherence_inputs`), then no
    vectorised engine: per woman, day by day from her first dispensing to the end of her follow-up
    (min(death, end of data, index + 60 months - 1 day)), a dispensing adds its days of supply to her stock on
    its day (overlapping supplies carry over, every molecule of the class pools, dispensings before the index
    count); a day in hospital is covered and uses no stock (``hospital_days = covered_paused``); any other day
    is covered when there is stock, and uses one day of it. The days of follow-up are counted per follow-up
    month (month k = [index + k months, index + (k + 1) months - 1 day], truncated at the follow-up end), and
    the first run of 90 uncovered follow-up days dates the discontinuation. This is the "straightforward
    pandas implementation" of issue #9.

    Returns:
        ``person_id``, ``month_index``, ``month_start``, ``month_end``, ``days_in_month``, ``days_covered``,
        ``days_hospitalised``, ``pdc``, ``is_discontinued``: the columns of :func:`pandas_monthly_adherence`.
    """
    return daily_walk_adherence(*_adherence_inputs(landing))


def daily_walk_adherence(supplies: pd.DataFrame, stays: pd.DataFrame, cohort: pd.DataFrame) -> pd.DataFrame:
    """The day-by-day walk of :func:`pandas_daily_adherence` on cleaned inputs.

    Args:
        supplies: cleaned dispensings: ``person_id``, ``dispensing_date``, ``days_supply``.
        stays: hospital stays: ``person_id``, ``entry_date``, ``exit_date`` (inclusive).
        cohort: ``person_id``, ``index_date`` (one of her dispensing dates), ``end_of_data_date``, ``death_date``.

    Returns:
        The monthly adherence table (columns of :func:`pandas_monthly_adherence`).
    """
    one_day = dt.timedelta(days=1)
    women = set(cohort["person_id"])
    supplied: dict[str, dict[dt.date, int]] = {}
    mine = supplies[supplies["person_id"].isin(women)]
    for person, day, days in mine[["person_id", "dispensing_date", "days_supply"]].itertuples(index=False):
        her = supplied.setdefault(person, {})
        her[day.date()] = her.get(day.date(), 0) + int(days)
    in_hospital: dict[str, set[dt.date]] = {}
    mine = stays[stays["person_id"].isin(women)]
    for person, entry, exit_ in mine[["person_id", "entry_date", "exit_date"]].itertuples(index=False):
        day = entry.date()
        while day <= exit_.date():
            in_hospital.setdefault(person, set()).add(day)
            day += one_day
    rows = []
    for person, index, end_of_data, death in cohort[["person_id", "index_date", "end_of_data_date",
                                                      "death_date"]].itertuples(index=False):
        end = min((index + pd.DateOffset(months=adherence.FOLLOW_UP_MONTHS)).date() - one_day, end_of_data.date())
        if pd.notna(death):
            end = min(end, death.date())
        months = []  # [first day, last day, days covered, days in hospital] of each follow-up month
        for k in range(adherence.FOLLOW_UP_MONTHS):
            start = (index + pd.DateOffset(months=k)).date()
            if start > end:
                break
            months.append([start, min((index + pd.DateOffset(months=k + 1)).date() - one_day, end), 0, 0])
        her_supplies, her_stays = supplied[person], in_hospital.get(person, set())
        stock, month, uncovered_run, run_start, discontinued_on = 0, 0, 0, None, None
        day = min(her_supplies)
        while day <= end:
            stock += her_supplies.get(day, 0)
            hospitalised = day in her_stays
            covered = hospitalised or stock > 0
            if covered and not hospitalised:
                stock -= 1
            if day >= index.date():  # days before the index only build up her stock
                while day > months[month][1]:
                    month += 1
                months[month][2] += covered
                months[month][3] += hospitalised
                if covered:
                    uncovered_run = 0
                else:
                    if uncovered_run == 0:
                        run_start = day
                    uncovered_run += 1
                    if uncovered_run == adherence.DISCONTINUATION_GAP_DAYS and discontinued_on is None:
                        discontinued_on = run_start
            day += one_day
        for k, (start, stop, days_covered, days_hospitalised) in enumerate(months):
            days = (stop - start).days + 1
            rows.append((person, k, start, stop, days, days_covered, days_hospitalised, days_covered / days,
                         discontinued_on is not None and start >= discontinued_on))
    out = pd.DataFrame(rows, columns=["person_id", "month_index", "month_start", "month_end", "days_in_month",
                                      "days_covered", "days_hospitalised", "pdc", "is_discontinued"])
    out["month_start"] = pd.to_datetime(out["month_start"])
    out["month_end"] = pd.to_datetime(out["month_end"])
    return out


def warehouse_adherence_inputs(warehouse: Path) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The cleaned inputs of the adherence mart as the dbt build left them, for :func:`daily_walk_adherence`.

    ``supplies`` from int_hormone_therapy_dispensings_netted (netted hormone-therapy dispensings), ``stays``
    from int_hospital_stays_merged (the hospital runs: the same days in hospital as the stays), ``cohort`` from
    breast_cancer_endocrine_cohort: the inputs the dbt models int_hormone_therapy_supplies_carried and
    endocrine_adherence_monthly read. One read-only connection, closed at once.
    """
    with duckdb.connect(str(warehouse), read_only=True) as con:
        supplies = con.sql("select person_id, dispensing_date, supply_days as days_supply "
                           "from intermediate.int_hormone_therapy_dispensings_netted").df()
        stays = con.sql("select person_id, start_date as entry_date, end_date as exit_date "
                        "from intermediate.int_hospital_stays_merged").df()
        cohort = con.sql("select person_id, index_date, end_of_data_date, death_date "
                         "from marts.breast_cancer_endocrine_cohort").df()
    for frame, columns in ((supplies, ["dispensing_date"]), (stays, ["entry_date", "exit_date"]),
                           (cohort, ["index_date", "end_of_data_date", "death_date"])):
        for column in columns:
            frame[column] = pd.to_datetime(frame[column])
    return supplies, stays, cohort


ADHERENCE_KEYS = ["person_id", "month_index"]
ADHERENCE_COLUMNS = ["month_start", "month_end", "days_in_month", "days_covered", "days_hospitalised",
                     "is_discontinued"]


def adherence_differences(left: pd.DataFrame, right: pd.DataFrame, sample: int | None = None,
                          seed: int = 0) -> str | None:
    """Where two monthly adherence tables differ (None when equal), on every woman or a random sample of them.

    Args:
        left: a monthly adherence table (the columns of :func:`pandas_monthly_adherence`).
        right: another one.
        sample: compare only this many women drawn from both (None: everyone).
        seed: the random draw of the sample.

    Returns:
        None when both hold the same (person_id, month_index) rows with the same values of
        ``ADHERENCE_COLUMNS``; otherwise a message naming the rows counts and the first differing rows.
    """
    people = pd.Index(pd.unique(pd.concat([left["person_id"], right["person_id"]], ignore_index=True)))
    if sample is not None and sample < len(people):
        people = pd.Index(people.to_series().sample(sample, random_state=seed))
    columns = ADHERENCE_KEYS + ADHERENCE_COLUMNS
    a = left.loc[left["person_id"].isin(people), columns].reset_index(drop=True)
    b = right.loc[right["person_id"].isin(people), columns].reset_index(drop=True)
    merged = a.merge(b, on=ADHERENCE_KEYS, how="outer", suffixes=("_left", "_right"), indicator=True)
    differs = merged["_merge"] != "both"
    for column in ADHERENCE_COLUMNS:
        differs |= merged[f"{column}_left"].ne(merged[f"{column}_right"])
    if not differs.any():
        return None
    return (f"{int(differs.sum())} of {len(merged)} (person, month) rows differ over {len(people)} women "
            f"(rows: left {len(a)}, right {len(b)}); first:\n{merged[differs].head(10).to_string()}")


def mart_parity(warehouse: Path, mart: pd.DataFrame) -> dict[str, Any]:
    """The dbt mart against the Python PDC engine on every (person, month): rows and per-column equality.

    A month is equal when it is in both tables and every column of ``ADHERENCE_COLUMNS`` and ``pdc`` (the
    CMA7-type PDC, compared exactly as a double) is equal; ``<column>_equal`` counts each column apart.
    """
    columns = ADHERENCE_KEYS + ADHERENCE_COLUMNS + ["pdc"]
    with duckdb.connect(str(warehouse), read_only=True) as con:
        sql = con.sql(f"select {', '.join(columns)} from marts.endocrine_adherence_monthly").df()
    for column in ("month_start", "month_end"):
        sql[column] = pd.to_datetime(sql[column])
    merged = sql.merge(mart[columns], on=ADHERENCE_KEYS, how="outer", suffixes=("_dbt", "_pandas"),
                       indicator=True)
    both = merged["_merge"] == "both"
    equal = both.copy()
    per_column = {}
    for column in ADHERENCE_COLUMNS + ["pdc"]:
        same = both & merged[f"{column}_dbt"].eq(merged[f"{column}_pandas"])
        per_column[f"{column}_equal"] = int(same.sum())
        equal &= same
    return {"rows_dbt": len(sql), "rows_pandas": len(mart), "months_compared": int(len(merged)),
            "rows_in_both": int(both.sum()), "months_equal": int(equal.sum()),
            "women": int(merged["person_id"].nunique()), **per_column, "_sql": sql}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=1_000_000)
    parser.add_argument("--pandas-patients", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--extraction-date", default="2024-12-31")
    parser.add_argument("--skip-pandas", action="store_true")
    args = parser.parse_args(argv)
    measures: list[StageMeasure] = []
    landing = extraction(args.patients, args.seed, args.extraction_date, measures)
    dbt = dbt_layers(args.patients, landing, measures)
    comparison: dict[str, Any] = {}
    if not args.skip_pandas:
        pandas_landing = (landing if args.pandas_patients == args.patients
                          else extraction(args.pandas_patients, args.seed, args.extraction_date, measures))
        gc.collect()
        with measure(f"pandas_endocrine_adherence_monthly_{args.pandas_patients}") as m:
            mart = pandas_monthly_adherence(pandas_landing)
            m.rows = len(mart)
        print(f"pandas        wall {m.wall_s:7.1f} s  peak RSS {m.peak_rss_mb:7.0f} MB  ({len(mart):,} rows)",
              file=sys.stderr)
        measures.append(m)
        if pandas_landing == landing:
            comparison = mart_parity(dbt["warehouse"], mart)
            if comparison["months_equal"] != comparison["months_compared"]:
                print(adherence_differences(comparison.pop("_sql"), mart), file=sys.stderr)
            comparison.pop("_sql", None)
            print(f"dbt vs pandas: {comparison}", file=sys.stderr)
    suffix = "-dbt-only" if args.skip_pandas else ""
    path = write_results(RESULTS / f"dbt_build-{args.patients}{suffix}.json", measures, patients=args.patients,
                         pandas_patients=args.pandas_patients, seed=args.seed, extraction_date=args.extraction_date,
                         duckdb_memory_limit=os.environ.get("ONCOPIPE_DUCKDB_MEMORY_LIMIT", "8GB"),
                         duckdb_threads=os.environ.get("ONCOPIPE_DUCKDB_THREADS", "2"), comparison=comparison)
    print(f"-> {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
