"""The raw gate's DuckDB SQL as Spark SQL (oncopipe.quality.spark_sql.translate), without a Spark session.

What runs on Spark is checked end to end in tests/integration/test_spark_engine.py (same outcomes as DuckDB);
here, each override on its own, and every line rule of every source translating (a new rule needs no Spark copy).
"""

from __future__ import annotations

from typing import Any

import pytest
from oncopipe.contracts.sources import SOURCES
from oncopipe.quality import line_rules, suites
from oncopipe.quality.spark_sql import SparkSqlError, translate


class Views:
    """A ``register`` that records the views asked for."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, list[str], dict[str, Any]]] = []

    def __call__(self, reader: str, paths: list[str], options: dict[str, Any]) -> str:
        self.asked.append((reader, paths, options))
        return f"v{len(self.asked)}"


def spark(sql: str) -> str:
    return translate(sql, Views())[0]


def test_hash_is_64_bit_xxhash64_not_spark_murmur3():
    assert spark('select hash("A", "B") from t') == "SELECT XXHASH64(`A`, `B`) FROM t"


def test_hugeint_is_decimal_38():
    assert "CAST(XXHASH64(a) AS DECIMAL(38, 0))" in spark("select sum(hash(a)::hugeint) from t")


def test_full_match_is_an_anchored_rlike():
    assert spark("select regexp_full_match(x, '34009[0-9]{8}') from t") == \
        "SELECT x RLIKE '^(?:34009[0-9]{8})$' FROM t"


def test_try_strptime_is_try_to_timestamp_with_a_java_pattern():
    assert spark("select try_strptime(x, '%Y-%m-%d') is null from t") == \
        "SELECT TRY_TO_TIMESTAMP(x, 'yyyy-MM-dd') IS NULL FROM t"


def test_arg_min_of_n_is_the_sorted_collect_list_under_its_filter():
    out = spark("select arg_min(struct_pack(a := a), struct_pack(k := k), 5) filter (where b) from t")
    assert out == ("SELECT SLICE(TRANSFORM(ARRAY_SORT(COLLECT_LIST(NAMED_STRUCT('k', STRUCT(k AS k), 'v', "
                   "STRUCT(a AS a))) FILTER(WHERE b)), __x -> __x.v), 1, 5) FROM t")


def test_cast_of_unnest_moves_inside_the_generator():
    out = spark("select unnest(generate_series(date '2024-01-01', date '2024-03-01', interval 1 month))::date as m")
    assert out.startswith("SELECT EXPLODE(CAST(SEQUENCE(") and out.endswith("AS ARRAY<DATE>)) AS m")


def test_file_readers_become_views_over_the_same_files():
    views = Views()
    out, _ = translate("select * from (select * from read_parquet(['/l/a.parquet', '/l/b.parquet'], "
                       "union_by_name = true, hive_partitioning = false, file_row_number = true) union all by name "
                       "select * from read_csv(['/l/c.csv'], delim = ';', header = true, all_varchar = true)) as x",
                       views)
    assert views.asked == [
        ("parquet", ["/l/a.parquet", "/l/b.parquet"],
         {"union_by_name": True, "hive_partitioning": False, "file_row_number": True}),
        ("csv", ["/l/c.csv"], {"delim": ";", "header": True, "all_varchar": True}),
        ("union", ["v1", "v2"], {})]
    assert out == "SELECT * FROM (SELECT * FROM v3) AS x"


def test_a_temp_table_is_returned_as_its_query_and_name():
    assert translate("create or replace temp table _keys as select hash(k) as hk from t", Views()) == \
        ("SELECT XXHASH64(k) AS hk FROM t", "_keys")


@pytest.mark.parametrize("sql", ["create table kept as select 1", "select * from (select 1) union by name (select 2)",
                                 "select from where"])
def test_what_cannot_run_on_spark_is_refused_with_the_statement(sql):
    with pytest.raises(SparkSqlError, match="select"):
        translate(sql, Views())


@pytest.mark.parametrize("src", SOURCES, ids=lambda s: s.name)
def test_every_line_rule_translates(src):
    dates = frozenset(c.name for c in src.columns if c.type == "date")
    for rule in suites.raw_line_rules(src):
        judged, breaks = line_rules.predicates(rule, src, "2024-12-31", dates)
        out = spark(f"select count(*) filter (where case when {judged} then {breaks} end) from t")
        assert "REGEXP_FULL_MATCH" not in out and "STRPTIME" not in out and " HASH(" not in out, (rule.name, out)


class FakeCursor:
    """A PyHive cursor answering from a table {statement prefix: (description types, rows)}."""

    def __init__(self, answers: dict[str, tuple[list[tuple[str, str]], list[tuple]]], log: list[str]) -> None:
        self.answers, self.log, self.description, self.rows = answers, log, None, []

    def execute(self, statement: str) -> None:
        self.log.append(statement)
        from pyhive import exc

        for prefix, (kinds, rows) in self.answers.items():
            if statement.startswith(prefix):
                self.description = [(name, kind, None, None, None, None, True) for name, kind in kinds]
                self.rows = list(rows)
                return
        raise exc.OperationalError("no such table (the server's message)")

    def fetchone(self):
        return self.rows.pop(0) if self.rows else None

    def fetchmany(self, n: int):
        out, self.rows = self.rows[:n], self.rows[n:]
        return out

    def close(self) -> None:
        pass


class FakeServer:
    def __init__(self, answers) -> None:
        self.answers, self.log = answers, []

    def cursor(self) -> FakeCursor:
        return FakeCursor(self.answers, self.log)


def test_through_a_thrift_server_dates_are_typed_and_nested_values_fetched_as_json():
    from oncopipe.quality.spark_sql import SparkConnection

    server = FakeServer({
        "set ": ([("key", "STRING_TYPE")], []),
        "SELECT MIN": ([("m", "DATE_TYPE"), ("s", "ARRAY_TYPE"), ("n", "BIGINT_TYPE")],
                       [("2024-01-02", '[{"k":2024-01-01,"v":"a"b"}]', 3)]),
        "select `0`": ([("0", "DATE_TYPE"), ("1", "STRING_TYPE"), ("2", "BIGINT_TYPE")],
                           [("2024-01-02", '[{"k":"2024-01-01","v":"a\\"b","n":null}]', 3)])})
    con = SparkConnection(server)
    assert {"set spark.sql.ansi.enabled=false", "set spark.sql.jsonGenerator.ignoreNullFields=false"} <= set(server.log)
    row = con.execute("select min(d) as m, list(x) as s, count(*) as n from t").fetchone()
    import datetime as dt

    assert row == (dt.date(2024, 1, 2), [{"k": "2024-01-01", "v": 'a"b', "n": None}], 3)
    assert server.log[-1] == ("select `0`, to_json(`1`) as `1`, `2` from (SELECT MIN(d) AS m, COLLECT_LIST(x) AS s, "
                              "COUNT(*) AS n FROM t) as __q (`0`, `1`, `2`)")
    frame = con.execute("select min(d) as m, list(x) as s, count(*) as n from t").df()
    assert list(frame.columns) == ["m", "s", "n"] and str(frame["m"].dtype).startswith("datetime64")


def test_a_statement_the_thrift_server_refuses_is_a_spark_sql_error_with_the_statement():
    from oncopipe.quality.spark_sql import SparkConnection

    con = SparkConnection(FakeServer({"set ": ([("key", "STRING_TYPE")], [])}))
    refused = r"(?s)refused a gate statement.*no such table.*statement: SELECT \* FROM gone"
    with pytest.raises(SparkSqlError, match=refused):
        con.execute("select * from gone")


def test_parquet_files_are_read_by_folder_and_schema_as_escaped_globs(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq
    from oncopipe.quality.spark_sql import _parquet_sets

    folder = tmp_path / "x{1}" / "extraction=2024-12-31"
    folder.mkdir(parents=True)
    for name, table in (("part-0.parquet", pa.table({"a": [1]})), ("part-1.parquet", pa.table({"a": [2]})),
                        ("part-2.parquet", pa.table({"a": ["text"]}))):
        pq.write_table(table, folder / name)
    sets = _parquet_sets([str(folder / f"part-{i}.parquet") for i in range(3)])
    escaped = str(folder).replace("{", "\\{").replace("}", "\\}")
    assert sets == [f"{escaped}/{{part-0.parquet,part-1.parquet}}", f"{escaped}/part-2.parquet"]


def test_temp_tables_are_uncached_latest_first_so_the_ones_they_read_are_still_there():
    """Spark resolves a cached view again when it is uncached: ``_regularisation_lines`` reads ``_negatives``, so
    uncaching ``_negatives`` first failed (TABLE_OR_VIEW_NOT_FOUND) when the raw gate closed its connection."""
    from oncopipe.quality.spark_sql import SparkConnection

    done = ([("Result", "STRING_TYPE")], [])
    server = FakeServer({"set ": done, "cache table": done, "uncache table": done, "drop view": done})
    con = SparkConnection(server)
    con.execute("create or replace temp table _negatives as select * from t where q < 0")
    con.execute("create or replace temp table _regularisation_lines as select * from _negatives")
    con.close()
    uncached = [s.split()[-1] for s in server.log if s.startswith("uncache table")]
    assert uncached == ["_regularisation_lines", "_negatives"]
