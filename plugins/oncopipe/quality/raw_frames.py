"""Build the raw-gate frames of one source and extraction (see :mod:`oncopipe.quality.frames`).

Why this split (scale): GX's pandas engine checks about 100k lines per second per expectation here, so
running every line-level expectation over a 100M-line dispensing flux would take hours. Instead:
- whatever needs every line (file readable, encoding, column set and types, row counts, key uniqueness,
  volumes per month, cross-source rules) is computed by DuckDB or pyarrow over all the part files,
  streaming, and handed to GX as a small *extraction frame* of facts;
- line-level rules (formats, value sets, ranges, not-null, date order) are measured on every line too, in
  one DuckDB pass per source (:mod:`oncopipe.quality.line_rules`), and handed to GX as the *rules frame*:
  per rule, the share of breaking lines, their count and a few of them. Nothing is sampled, so a single bad
  line in a zero-tolerance rule is never missed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from oncopipe.contracts.sources import DCIR_KEY, PMSI_STAY, Source, source
from oncopipe.landing.layout import extraction_dates, extraction_dir, part_files, previous_extraction, relation_sql
from oncopipe.quality import deliveries, formats, line_rules, suites
from oncopipe.quality.frames import METRIC_COLUMNS
from oncopipe.quality.spark_sql import SQL_ERRORS, GateConnection

SAMPLE_ROWS = 5
MIN_MONTH_LINES = 20
_CSV_CAST = {"int": "BIGINT", "float": "DOUBLE"}


@dataclass
class FileFacts:
    """What was learnt about one part file."""

    path: Path
    readable: bool = True
    error: str = ""
    rows: int = 0
    types: dict[str, str] = field(default_factory=dict)  # column -> observed type family
    bad_encoding: str = ""


@dataclass
class SourceFrames:
    """The extraction frame of a source plus what the rows frame needs."""

    source: str
    extraction_date: str
    files: list[FileFacts]
    extraction: pd.DataFrame
    rows_total: int
    profile: deliveries.Profile | None = None  # saved as accepted when the gate passes

    @property
    def readable_files(self) -> list[Path]:
        return [f.path for f in self.files if f.readable]


def connect(memory_limit: str = "3GB", temp_dir: Path | None = None) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection for the gate (never the warehouse file)."""
    con = duckdb.connect()
    con.execute(f"set memory_limit = '{memory_limit}'")
    con.execute("set preserve_insertion_order = false")
    if temp_dir is not None:
        temp_dir.mkdir(parents=True, exist_ok=True)
        con.execute(f"set temp_directory = '{temp_dir}'")
    return con


def _family(t: pa.DataType) -> str:
    if pa.types.is_null(t):
        return "null"
    if pa.types.is_integer(t):
        return "int"
    if pa.types.is_floating(t) or pa.types.is_decimal(t):
        return "float"
    if pa.types.is_date(t) or pa.types.is_timestamp(t):
        return "date"
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_binary(t) or pa.types.is_large_binary(t):
        return "string"
    if pa.types.is_dictionary(t):
        return _family(t.value_type)
    return str(t)


def _type_ok(declared: str, observed: str) -> bool:
    """Whether an observed type family satisfies the contract type (dates may arrive as ISO text)."""
    if observed == "null" or observed == declared:
        return True
    return (declared == "float" and observed == "int") or (declared == "date" and observed == "string")


def _check_parquet(facts: FileFacts) -> None:
    pf = pq.ParquetFile(facts.path)
    facts.rows = pf.metadata.num_rows
    schema = pf.schema_arrow
    facts.types = {f.name: _family(f.type) for f in schema}
    text = [f.name for f in schema if _family(f.type) == "string"]
    for group in range(pf.num_row_groups):
        # Reading every text column to the end also proves the file is not truncated inside its data.
        table = pf.read_row_group(group, columns=text)
        for name in text:
            column = table.column(name)
            for chunk in column.chunks:
                try:
                    if pa.types.is_binary(chunk.type) or pa.types.is_large_binary(chunk.type):
                        chunk.cast(pa.string())
                    else:
                        chunk.validate(full=True)
                except (pa.ArrowInvalid, pa.ArrowException) as exc:
                    if not facts.bad_encoding:
                        facts.bad_encoding = f"column {name}: {exc}"
    if pf.num_row_groups == 0 and facts.rows:
        raise ValueError("no row group")


def _check_csv(facts: FileFacts, con: GateConnection, src: Source) -> None:
    decoder_errors = ""
    with facts.path.open("rb") as fh:
        import codecs

        decoder = codecs.getincrementaldecoder("utf-8")()
        offset = 0
        while block := fh.read(1 << 24):
            try:
                decoder.decode(block)
            except UnicodeDecodeError as exc:
                decoder_errors = f"byte {offset + exc.start}: {exc.reason}"
                break
            offset += len(block)
    facts.bad_encoding = decoder_errors
    if decoder_errors:
        return
    rel = relation_sql([facts.path])
    names = [r[0] for r in con.execute(f"describe select * from {rel}").fetchall()]
    declared = {c.name: c.type for c in src.columns}
    checks = ["count(*) as n"]
    for name in names:
        cast = _CSV_CAST.get(declared.get(name, "string"))
        if cast:
            checks.append(f'count(*) filter (where "{name}" is not null and try_cast("{name}" as {cast}) is null)')
    row = con.execute(f"select {', '.join(checks)} from {rel}").fetchone()
    facts.rows = int(row[0])
    bad = iter(row[1:])
    for name in names:
        cast = _CSV_CAST.get(declared.get(name, "string"))
        # CSV is text: a date column stays text (the line-level suite checks that it parses).
        facts.types[name] = ("string" if next(bad) else declared[name]) if cast else "string"


def inspect_file(path: Path, src: Source, con: GateConnection) -> FileFacts:
    """Readability, encoding, row count and column types of one part file (never raises)."""
    facts = FileFacts(path)
    try:
        if path.suffix == ".parquet":
            _check_parquet(facts)
        else:
            _check_csv(facts, con, src)
    except Exception as exc:  # noqa: BLE001 (any failure to read is the finding itself)
        facts.readable = False
        facts.error = f"{type(exc).__name__}: {exc}"[:300]
    return facts


def _row(metric: str, subject: str, value: float, detail: Any = "") -> dict[str, Any]:
    if not isinstance(detail, str):
        detail = json.dumps(detail, default=str)
    return {"metric": metric, "subject": subject, "value": float(value), "detail": detail}


def _records(con: GateConnection, sql: str) -> list[dict[str, Any]]:
    df = con.execute(sql).df()
    return json.loads(df.to_json(orient="records", date_format="iso"))


def _key_facts(con: GateConnection, rel: str, src: Source, columns: list[str],
               total: int) -> list[dict[str, Any]]:
    key = ", ".join(f'"{k}"' for k in src.key)
    every = ", ".join(f'"{c}"' for c in columns)
    # One pass, grouping by a 64-bit hash of the key (not the key itself) so 100M keys fit in memory; a key
    # whose lines hash differently is carried by different lines. Only repeated keys are kept (a small table
    # the counts and samples come from): keys = lines - sum(n - 1) over them. At 91M dispensing lines this
    # halved the cost of the earlier form (every key kept, and aggregated a second time for the samples).
    con.execute(f"""
        create or replace temp table _repeated_keys as
        select hk, count(*) as n, min(hr) as lo, max(hr) as hi
        from (select hash({key}) as hk, hash({every}) as hr from {rel}) group by hk having count(*) > 1""")
    extra, conflicting, exact = con.execute("""
        select coalesce(sum(n - 1), 0), count(*) filter (where lo <> hi), coalesce(sum(n - 1) filter (where lo = hi), 0)
        from _repeated_keys""").fetchone()
    n_keys = total - extra
    out = []
    for metric, subject, count, wanted in (
            ("conflicting_key_share", ", ".join(src.key), conflicting, "lo <> hi"),
            ("exact_duplicate_share", "all lines", exact, "lo = hi")):
        sample: Any = ""
        if count:
            sample = _records(con, f"""
                select * from {rel}
                where hash({key}) in (select hk from _repeated_keys where {wanted} order by hk limit {SAMPLE_ROWS})
                order by {key} limit {2 * SAMPLE_ROWS}""")
        share = count / max(n_keys if metric == "conflicting_key_share" else total, 1)
        out.append(_row(metric, subject, share, sample))
    return out


def _lines_per_unit(con: GateConnection, files: list[Path], src: Source) -> float | None:
    rel = relation_sql(files)
    flux = suites.DELTA_FLUX_MONTH.get(src.name)
    if src.delivery == "snapshot":
        return float(con.execute(f"select count(*) from {rel}").fetchone()[0])
    if flux is None:
        return None
    n, months = con.execute(f"""select count(*), count(distinct date_trunc('month', try_cast("{flux}" as date)))
                                from {rel}""").fetchone()
    return n / months if months else None


def _row_count_facts(con: GateConnection, landing: Path, src: Source, extraction_date: str,
                     files: list[Path]) -> list[dict[str, Any]]:
    previous = previous_extraction(landing, src.name, extraction_date)
    if previous is None or (src.delivery == "delta" and src.name not in suites.DELTA_FLUX_MONTH):
        return []
    previous_files = part_files(extraction_dir(landing, src.name, previous))
    try:
        before = _lines_per_unit(con, previous_files, src)
    except (*SQL_ERRORS, ValueError):
        return []
    now = _lines_per_unit(con, files, src) if files else 0.0
    if not before:
        return []
    unit = "rows" if src.delivery == "snapshot" else "rows per flux month"
    return [_row("row_count_ratio", f"vs extraction={previous}", (now or 0.0) / before,
                 {"unit": unit, "current": now, "previous": before, "previous_extraction": previous})]


def _month_facts(con: GateConnection, rel: str, src: Source, landing: Path,
                 extraction_date: str, reference: float = 0.0) -> list[dict[str, Any]]:
    """Lines per month of care over the months this extraction must hold in full, relative to their median.

    Those months run from the month of the previous accepted extraction (a delta holds every flux after it)
    to the month before this extraction; for a first extraction, the 12 months before it. A dropped month
    shows as a ratio near 0; months are judged only when the median month has ``MIN_MONTH_LINES`` lines, or
    else against ``reference`` (the median lines per care month of the previous accepted extraction).
    """
    col = suites.CARE_MONTH[src.name]
    previous = previous_extraction(landing, src.name, extraction_date)
    end = f"date_trunc('month', date '{extraction_date}')"
    begin = f"date_trunc('month', date '{previous}')" if previous else f"{end} - interval 12 month"
    counts = con.execute(f"""
        with span as (select unnest(generate_series({begin}, {end} - interval 1 month, interval 1 month))::date
                             as month),
             m as (select date_trunc('month', try_cast("{col}" as date))::date as month, count(*) as n
                   from {rel} group by 1)
        select span.month, coalesce(m.n, 0) from span left join m using (month) order by 1""").fetchall()
    if not counts:
        return []
    median = float(np.median([n for _, n in counts]))
    if median < MIN_MONTH_LINES and reference:
        # Too few lines in the months this extraction must hold (none at all when an earlier delivery is landed
        # again): judge them against the months of the previous accepted extraction instead.
        median = reference
    if median < MIN_MONTH_LINES:
        return []
    return [_row("month_volume_ratio", str(month)[:7], n / median,
                 {"month": str(month)[:7], "lines": n, "median_lines_per_month": median,
                  "months_checked": f"{str(counts[0][0])[:7]}..{str(counts[-1][0])[:7]}"})
            for month, n in counts]


def _care_after_death_facts(con: GateConnection, landing: Path, extraction_date: str,
                            rel: str) -> list[dict[str, Any]]:
    ben_files = part_files(extraction_dir(landing, "ir_ben_r", extraction_date))
    if not ben_files:
        return []
    lag = suites.CARE_AFTER_DEATH_LAG_DAYS
    try:
        con.execute(f"""
            create or replace temp table _after_death as
            with dead as (select "BEN_NIR_PSA", min(try_cast("BEN_DCD_DTE" as date)) as death_date
                          from {relation_sql(ben_files)} where try_cast("BEN_DCD_DTE" as date) is not null group by 1),
                 care as (select "BEN_NIR_PSA", max(try_cast("EXE_SOI_DTD" as date)) as last_care_date
                          from {rel} group by 1)
            select dead.*, care.last_care_date,
                   coalesce(care.last_care_date > dead.death_date + {lag}, false) as care_after_death
            from dead left join care using ("BEN_NIR_PSA")""")
    except SQL_ERRORS:
        return []  # ir_ben_r unreadable: its own suite reports it
    n_dead, n_bad = con.execute("select count(*), count(*) filter (where care_after_death) from _after_death"
                                ).fetchone()
    sample = _records(con, f"""select "BEN_NIR_PSA", death_date, last_care_date,
                                      datediff('day', death_date, last_care_date) as days_after_death
                               from _after_death where care_after_death order by "BEN_NIR_PSA"
                               limit {SAMPLE_ROWS}""") if n_bad else ""
    return [_row("care_after_death_share", f"{n_dead} dead in ir_ben_r", n_bad / n_dead if n_dead else 0.0, sample)]


def _orphan_stay_facts(con: GateConnection, landing: Path, extraction_date: str,
                       rel: str) -> list[dict[str, Any]]:
    stay_files = part_files(extraction_dir(landing, "t_mco_b", extraction_date))
    if not stay_files:
        return []
    stay = ", ".join(f'"{k}"' for k in PMSI_STAY)
    try:
        con.execute(f"""
            create or replace temp table _orphans as
            select {", ".join(f'b."{k}"' for k in PMSI_STAY)}, b."DGN_PAL"
            from {relation_sql(stay_files)} as b anti join {rel} as c using ({stay})""")
        n_stays = con.execute(f"select count(*) from {relation_sql(stay_files)}").fetchone()[0]
    except SQL_ERRORS:
        return []
    n_orphans = con.execute("select count(*) from _orphans").fetchone()[0]
    sample = (_records(con, f'select * from _orphans order by {stay} limit {SAMPLE_ROWS}')
              if n_orphans else "")
    return [_row("orphan_stay_share", f"{n_stays} stays in t_mco_b", n_orphans / n_stays if n_stays else 0.0,
                 sample)]


def _birth_facts(con: GateConnection, landing: Path, extraction_date: str, rel: str,
                 src: Source) -> list[dict[str, Any]]:
    """Share of lines dated before the birth month of their person (ir_ben_r of the same extraction)."""
    person, when = suites.BIRTH_BOUND[src.name]
    ben_files = part_files(extraction_dir(landing, "ir_ben_r", extraction_date))
    if not ben_files:
        return []
    key = ", ".join(f'"{k}"' for k in src.key)
    try:
        con.execute(f"""
            create or replace temp table _before_birth as
            with born as (select "BEN_NIR_PSA" as __person,
                                 min(try_cast(concat("BEN_NAI_ANN", '-', "BEN_NAI_MOI", '-01') as date)) as birth_month
                          from {relation_sql(ben_files)} group by 1)
            select {key}, "{person}", try_cast("{when}" as date) as "{when}", born.birth_month
            from {rel} as line join born on line."{person}" = born.__person
            where try_cast(line."{when}" as date) < born.birth_month""")
        n = con.execute(f'select count(*) from {rel} where "{person}" is not null').fetchone()[0]
    except SQL_ERRORS:
        return []  # ir_ben_r unreadable: its own suite reports it
    bad = con.execute("select count(*) from _before_birth").fetchone()[0]
    sample = _records(con, f"select * from _before_birth order by {key} limit {SAMPLE_ROWS}") if bad else ""
    return [_row("care_before_birth_share", f"{bad} of {n} lines", bad / n if n else 0.0, sample)]


def _cip13_referential_facts(con: GateConnection, landing: Path, extraction_date: str,
                             rel: str) -> list[dict[str, Any]]:
    """Share of dispensing lines whose CIP13 is not in IR_PHA_R (same extraction, else the latest accepted)."""
    date = extraction_date if part_files(extraction_dir(landing, "ir_pha_r", extraction_date)) else \
        previous_extraction(landing, "ir_pha_r", extraction_date)
    ref_files = part_files(extraction_dir(landing, "ir_pha_r", date)) if date else []
    if not ref_files:
        return []
    try:
        rows = con.execute(f"""
            select cast(line."PHA_PRS_C13" as varchar) as cip13, count(*) as lines,
                   bool_or(ref.cip is not null) as known
            from {rel} as line
            left join (select distinct cast("PHA_CIP_C13" as varchar) as cip from {relation_sql(ref_files)}) as ref
                   on cast(line."PHA_PRS_C13" as varchar) = ref.cip
            where line."PHA_PRS_C13" is not null group by 1 order by 2 desc, 1""").fetchall()
    except SQL_ERRORS:
        return []
    n = sum(r[1] for r in rows)
    unknown = [{"PHA_PRS_C13": c, "lines": k} for c, k, known in rows if not known]
    bad = sum(u["lines"] for u in unknown)
    return [_row("cip13_not_in_referential_share", f"IR_PHA_R of extraction={date}", bad / n if n else 0.0,
                 unknown[:SAMPLE_ROWS] or "")]


REGULARISATION_MATCH = ("BEN_NIR_PSA", "ORG_CLE_NUM", "DCT_ORD_NUM", "EXE_SOI_DTD", "PHA_PRS_C13")
"""What a regularisation line shares with the line it cancels (plus the opposite quantity): the person and the care
date come from the drug line's claim line (ER_PRS_F)."""

CANCELLED_LINE_SHARES = ("ORG_CLE_NUM", "DCT_ORD_NUM", "PHA_PRS_C13")
"""What a regularisation shares with the line it cancels that the drug line itself holds (no claim line needed)."""


def _claim_files(landing: Path, extraction_date: str) -> list[Path]:
    return part_files(extraction_dir(landing, "er_prs_f", extraction_date))


def _column_types(con: GateConnection, relation: str) -> dict[str, str]:
    """{column: type} of a relation, as the engine reads it (``describe``)."""
    return {str(r[0]): str(r[1]).upper() for r in con.execute(f"describe select * from {relation}").fetchall()}


def _key_join(con: GateConnection, left: tuple[str, str], right: tuple[str, str], columns: tuple[str, ...]) -> str:
    """The ``on`` condition matching ``columns`` of two ``(relation, alias)``: a column compared as it is read
    when both sides read it with one type, as text otherwise (a CSV landing beside a Parquet one).

    Comparing every key as text (the first version) made the ER_PHA_F x ER_PRS_F join build nine text keys per
    line: at 1,000,000 people (91 M drug lines, 104 M claim lines) it spilled ~25 GB past the gate's memory limit.
    """
    types = [_column_types(con, relation) for relation, _ in (left, right)]
    (_, a), (_, b) = left, right
    return " and ".join(f'{a}."{c}" = {b}."{c}"' if types[0].get(c) == types[1].get(c)
                        else f'cast({a}."{c}" as varchar) = cast({b}."{c}" as varchar)' for c in columns)


def _claims_of(con: GateConnection, drugs: str, claim_files: list[Path]) -> str:
    """The drug lines of ``drugs`` with the person, care date and nature of their claim line (null: no claim line)."""
    claims = f"""(select {", ".join(f'"{c}"' for c in (*DCIR_KEY, "BEN_NIR_PSA", "EXE_SOI_DTD", "PRS_NAT_REF"))}
                  from {relation_sql(claim_files)})"""
    on = _key_join(con, (drugs, "pha"), (claims, "prs"), DCIR_KEY)
    return f"""(select pha.*, prs."BEN_NIR_PSA", prs."EXE_SOI_DTD", prs."PRS_NAT_REF", prs."DCT_ORD_NUM" is not null
                      as has_claim_line
               from {drugs} as pha left join {claims} as prs on {on})"""


def _claim_line_facts(con: GateConnection, landing: Path, extraction_date: str, rel: str) -> list[dict[str, Any]]:
    """Drug lines with no ER_PRS_F claim line of the same nine keys in the extraction, or a non-pharmacy one.

    One pass counts them over the join, reading only the keys and the nature; the sample lines are fetched by a
    second join only when some line breaks the rule (a clean delivery pays for one join, no table is kept). A drug
    line on a claim line delivered twice, identical, counts once as an orphan (it is not one) and twice as on a
    non-pharmacy claim when that claim is one (the duplicate itself is the key facts' finding on er_prs_f).
    """
    claims = _claim_files(landing, extraction_date)
    if not claims:
        return []
    natures = ", ".join(str(n) for n in formats.PHARMACY_NATURES)
    key = ", ".join(f'"{k}"' for k in DCIR_KEY)
    not_pharmacy = f'has_claim_line and try_cast("PRS_NAT_REF" as bigint) not in ({natures})'
    try:
        keys = f"(select {key} from {rel})"
        joined = _claims_of(con, keys, claims)
        # The drug lines are counted on their own: a claim line present twice (an exact duplicate, which the key
        # facts of er_prs_f report) gives its drug lines two rows in the join.
        n = con.execute(f"select count(*) from {rel}").fetchone()[0]
        orphans, other = con.execute(f"""
            select count(*) filter (where not has_claim_line), count(*) filter (where {not_pharmacy})
            from {joined}""").fetchone()
    except SQL_ERRORS:
        return []  # er_prs_f unreadable: its own suite reports it
    drug_columns = ", ".join(f'"{c}"' for c in source("er_pha_f").column_names)
    full = _claims_of(con, rel, claims) if orphans or other else ""
    orphan_sample = _records(con, f"select {drug_columns} from {full} where not has_claim_line order by {key} "
                                  f"limit {SAMPLE_ROWS}") if orphans else ""
    other_sample = _records(con, f"""select {key}, "PRS_NAT_REF" from {full} where {not_pharmacy}
                                     order by {key} limit {SAMPLE_ROWS}""") if other else ""
    return [_row("orphan_drug_line_share", f"{orphans} of {n} drug lines without a claim line in er_prs_f",
                 orphans / n if n else 0.0, orphan_sample),
            _row("non_pharmacy_claim_share", f"{other} of {n} drug lines on a non-pharmacy claim line",
                 other / n if n else 0.0, other_sample)]


def _regularisation_facts(con: GateConnection, landing: Path, extraction_date: str,
                          rel: str) -> list[dict[str, Any]]:
    """Negative PHA_ACT_QSN lines with no positive line they cancel, in this or an earlier accepted extraction.

    Only the negative lines (a small share) and the positive lines sharing a negative one's organisation, document
    and CIP13 (what a cancelled line must share with its regularisation, read from the drug line itself) are joined
    to their claim lines, once per extraction, not every drug line of every extraction.
    """
    claims = _claim_files(landing, extraction_date)
    if not claims:
        return []
    shared = ", ".join(f'"{c}"' for c in CANCELLED_LINE_SHARES)
    cols = ", ".join(f'"{c}"' for c in (*REGULARISATION_MATCH, "PHA_ACT_QSN"))
    try:
        con.execute(f'create or replace temp table _negatives as select * from {rel} '
                    f'where try_cast("PHA_ACT_QSN" as double) < 0')
        negative = con.execute("select count(*) from _negatives").fetchone()[0]
        if not negative:
            return [_row("unmatched_regularisations", "0 of 0 negative lines", 0, "")]
        wanted = f"(select distinct {shared} from _negatives)"

        def candidates(drugs: str) -> str:
            on = _key_join(con, (drugs, "p"), (wanted, "n"), CANCELLED_LINE_SHARES)
            return (f'(select p.* from {drugs} as p semi join {wanted} as n on {on} '
                    f'where try_cast(p."PHA_ACT_QSN" as double) > 0)')

        # This extraction's negative lines and candidates share one join to its claim lines.
        lines = f"(select *, true as __negative from _negatives union all select *, false from {candidates(rel)})"
        con.execute(f"create or replace temp table _regularisation_lines as select * from "
                    f"{_claims_of(con, lines, claims)}")
        history = [f"select {cols} from _regularisation_lines where not __negative"]
        for d in extraction_dates(landing, "er_pha_f"):
            drugs, earlier_claims = part_files(extraction_dir(landing, "er_pha_f", d)), _claim_files(landing, d)
            if d < extraction_date and drugs and earlier_claims:
                history.append(f"select {cols} from {_claims_of(con, candidates(relation_sql(drugs)), earlier_claims)}")
        pos = "(" + " union all ".join(history) + ")"
        neg = "(select * exclude (__negative) from _regularisation_lines where __negative)"
        on = _key_join(con, (neg, "neg"), (pos, "pos"), REGULARISATION_MATCH)
        key = ", ".join(f'neg."{k}"' for k in source("er_pha_f").key)
        con.execute(f"""
            create or replace temp table _unmatched as
            select neg.* exclude (has_claim_line)
            from {neg} as neg
            anti join {pos} as pos
                 on {on} and try_cast(pos."PHA_ACT_QSN" as double) = -try_cast(neg."PHA_ACT_QSN" as double)
            order by {key}""")
    except SQL_ERRORS:
        return []
    bad = con.execute("select count(*) from _unmatched").fetchone()[0]
    ordered = ", ".join(f'"{k}"' for k in source("er_pha_f").key)
    sample = _records(con, f"select * from _unmatched order by {ordered} limit {SAMPLE_ROWS}") if bad else ""
    return [_row("unmatched_regularisations", f"{bad} of {negative} negative lines", bad, sample)]


def _flux_facts(con: GateConnection, rel: str, src: Source, previous: str) -> list[dict[str, Any]]:
    """Lines of a delta whose flux date is not after the previous accepted extraction, and its new flux months."""
    flux = suites.DELTA_FLUX_MONTH[src.name]
    when = f'try_cast("{flux}" as date)'
    n, old, new_months = con.execute(f"""
        select count(*), count(*) filter (where {when} <= date '{previous}'),
               count(distinct date_trunc('month', {when})) filter (where {when} > date '{previous}')
        from {rel}""").fetchone()
    sample = _records(con, f"""select strftime(date_trunc('month', {when}), '%Y-%m') as flux_month, count(*) as lines
                               from {rel} where {when} <= date '{previous}' group by 1 order by 1 desc
                               limit {SAMPLE_ROWS}""") if old else ""
    return [_row("flux_not_after_previous_share", f"{flux} <= extraction={previous}", old / n if n else 0.0, sample),
            _row("new_flux_months", f"{flux} months after extraction={previous}", new_months,
                 {"previous_extraction": previous, "lines": n, "lines_not_after_previous": old})]


def _delivery_facts(profile: deliveries.Profile, accepted: dict[str, deliveries.Profile],
                    extraction_date: str) -> list[dict[str, Any]]:
    """Fingerprint and coded-column drift of this delivery against the accepted extractions."""
    rows = []
    if not profile.empty:
        repeats = sorted(d for d, p in accepted.items() if p.fingerprint == profile.fingerprint)
        rows.append(_row("fingerprint_repeats", f"fingerprint {profile.fingerprint}", len(repeats),
                         [{"repeats_extraction": d, "lines": profile.lines, "fingerprint": profile.fingerprint}
                          for d in repeats] or ""))
    earlier = [d for d in accepted if d < extraction_date]
    previous = accepted[max(earlier)] if earlier else None
    if previous is None:
        return rows
    if profile.lines >= suites.DRIFT_MIN_LINES and previous.lines >= suites.DRIFT_MIN_LINES:
        for col, now in profile.values.items():
            if col in previous.values:
                value, moved = deliveries.psi(now, previous.values[col])
                rows.append(_row("column_psi", col, round(value, 6),
                                 [{"column": col, "previous_extraction": previous.extraction, **m} for m in moved]))
    return rows


def extraction_frame(con: GateConnection, landing: Path, source_name: str,
                     extraction_date: str, quality: Path | None = None) -> SourceFrames:
    """Inspect every part file of the extraction and compute the extraction-level facts.

    ``quality``: the folder of the delivery profiles (:mod:`oncopipe.quality.deliveries`); without it, the
    delivery-level facts (fingerprint, distribution drift) are not computed.
    """
    src = source(source_name)
    folder = extraction_dir(landing, source_name, extraction_date)
    files = [inspect_file(p, src, con) for p in part_files(folder)]
    rows: list[dict[str, Any]] = []
    declared = {c.name: c.type for c in src.columns}
    for f in files:
        name = f.path.name
        rows.append(_row("file_readable", name, f.readable, f.error))
        if not f.readable:
            continue
        rows.append(_row("encoding_utf8", name, not f.bad_encoding, f.bad_encoding))
        if f.bad_encoding:
            continue  # its columns were never read: the decoding failure is the finding, not "missing" columns
        rows.append(_row("file_rows", name, f.rows))
        for col in src.columns:
            present = col.name in f.types
            rows.append(_row("column_present", f"{name}:{col.name}", present, "" if present else "missing"))
            if present:
                ok = _type_ok(col.type, f.types[col.name])
                rows.append(_row("column_type_ok", f"{name}:{col.name}", ok,
                                 "" if ok else {"declared": col.type, "observed": f.types[col.name]}))
        for extra in sorted(set(f.types) - set(declared)):
            rows.append(_row("column_expected", f"{name}:{extra}", 0, "not in the contract"))
    readable = [f for f in files if f.readable and not f.bad_encoding]
    total = sum(f.rows for f in readable)
    if readable or not files:  # when no file could be read or decoded, each one's failure is the finding
        rows.append(_row("rows_total", str(folder), total, {"files": len(files), "readable": len(readable)}))
    schema_ok = all(all(c in f.types and _type_ok(declared[c], f.types[c]) for c in declared) for f in readable)
    paths = [f.path for f in readable]
    profile = None
    if paths and schema_ok and total:
        rel = relation_sql(paths)
        rows += _key_facts(con, rel, src, src.column_names, total)
        previous = previous_extraction(landing, src.name, extraction_date)
        reference = 0.0
        if quality is not None:
            flux = suites.DELTA_FLUX_MONTH.get(src.name)
            profile = deliveries.compute_profile(con, paths, src, extraction_date, flux)
            accepted = deliveries.accepted_profiles(con, landing, quality, src, extraction_date, flux)
            rows += _delivery_facts(profile, accepted, extraction_date)
            if previous in accepted and accepted[previous].flux_months:
                reference = float(np.median(list(accepted[previous].flux_months.values())))
        if src.name in suites.DELTA_FLUX_MONTH and previous:
            rows += _flux_facts(con, rel, src, previous)
        if src.name in suites.CARE_MONTH:
            rows += _month_facts(con, rel, src, landing, extraction_date, reference)
        if src.name in suites.BIRTH_BOUND:
            rows += _birth_facts(con, landing, extraction_date, rel, src)
        if src.name == "er_prs_f":
            rows += _care_after_death_facts(con, landing, extraction_date, rel)
        if src.name == "er_pha_f":
            rows += _cip13_referential_facts(con, landing, extraction_date, rel)
            rows += _claim_line_facts(con, landing, extraction_date, rel)
            rows += _regularisation_facts(con, landing, extraction_date, rel)
        if src.name == "t_mco_c":
            rows += _orphan_stay_facts(con, landing, extraction_date, rel)
    if schema_ok:
        rows += _row_count_facts(con, landing, src, extraction_date, paths)
    frame = pd.DataFrame(rows, columns=list(METRIC_COLUMNS))
    return SourceFrames(source_name, extraction_date, files, frame, total, profile)


def rules_frame(con: GateConnection, frames: SourceFrames) -> pd.DataFrame:
    """Every line rule of the source measured on every readable line (see :mod:`oncopipe.quality.line_rules`)."""
    src = source(frames.source)
    dates = {c.name for c in src.columns if c.type == "date"}
    text_dates = frozenset(c for f in frames.files if f.readable for c, t in f.types.items()
                           if c in dates and t == "string")
    return line_rules.rules_frame(con, relation_sql(frames.readable_files), src, suites.raw_line_rules(src),
                                  frames.extraction_date, frames.rows_total, text_dates)
