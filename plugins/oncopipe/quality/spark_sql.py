"""The raw gate's SQL on Spark (``ONCOPIPE_ENGINE=spark``): the DuckDB SQL of the gate, translated, on a Spark session
or through a Spark Thrift server.

The gate's facts and line rules are written once, in DuckDB SQL (:mod:`oncopipe.quality.raw_frames`,
:mod:`oncopipe.quality.line_rules`, :mod:`oncopipe.quality.deliveries`). On Spark, :class:`SparkConnection` takes the
same statements through the same calls (``execute(sql).fetchone() / fetchall() / df()``) and runs them as Spark SQL:
sqlglot translates DuckDB to Spark, and :func:`translate` rewrites what sqlglot leaves DuckDB-only or changes the
meaning of:

- ``read_parquet([...])`` / ``read_csv([...])`` (with ``union_by_name``, and a ``union all by name`` of the two):
  a temporary view over the same files (Parquet schemas merged by name, a column typed differently across files read
  as text, as DuckDB does; CSV as text with its delimiter and header); ``file_row_number = true`` /
  ``filename = true`` read Spark's ``_metadata.row_index`` / ``_metadata.file_path``;
- ``hash`` (64-bit in DuckDB; Spark's ``hash`` is a 32-bit murmur3, which would merge distinct keys in the key
  facts) -> ``xxhash64``; ``hugeint`` -> ``decimal(38,0)``;
- ``regexp_full_match`` -> an anchored ``rlike``; ``try_strptime`` -> ``try_to_timestamp`` (the format converted);
- ``arg_min(value, key, n)`` (the n smallest) -> the first n of the ``collect_list`` sorted by key;
- ``cast(unnest(list) as t)`` -> ``explode(cast(list as array<t>))`` (Spark refuses a generator inside an expression);
- ``create or replace temp table x as ...`` -> a cached temporary view, computed at once (as DuckDB computes the
  table: a failure shows at the statement that caused it, where the gate catches it).

So a rule or fact added to the gate runs on Spark with no second copy; a construct that cannot be translated fails
with the statement and the reason (:class:`SparkSqlError`), never silently. The hash values, hence the delivery
fingerprints, differ between engines (xxhash64 is not DuckDB's hash): a fingerprint is compared only with profiles
computed by the same engine (see :mod:`oncopipe.quality.deliveries`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import sqlglot
from sqlglot import exp
from sqlglot.dialects.duckdb import DuckDB
from sqlglot.dialects.spark import Spark
from sqlglot.time import format_time


class SparkSqlError(RuntimeError):
    """A gate statement failed on Spark (or could not be translated); the message holds the statement."""


SQL_ERRORS: tuple[type[Exception], ...] = (duckdb.Error, SparkSqlError)
"""What a failed gate statement raises, on either engine (the gate catches these where a source may be unreadable)."""


Register = Callable[[str, list[str], dict[str, Any]], str]
"""``register(reader, paths, options) -> view``: a view over files (``reader``: ``parquet``, ``csv``, ``union``)."""


def _options(args: list[exp.Expression]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for arg in args:
        if isinstance(arg, exp.EQ):
            value = arg.expression
            out[arg.this.name.lower()] = value.this if isinstance(value, exp.Boolean) else value.name
    return out


def _reader(node: exp.Expression) -> tuple[str, list[str], dict[str, Any]] | None:
    """``(reader, paths, options)`` of a ``read_parquet`` / ``read_csv`` table function, else None."""
    if isinstance(node, exp.ReadParquet):
        first, *rest = node.expressions
        kind = "parquet"
    elif isinstance(node, exp.ReadCSV):
        first, rest, kind = node.this, list(node.expressions), "csv"
    else:
        return None
    paths = [e.name for e in first.expressions] if isinstance(first, exp.Array) else [first.name]
    return kind, paths, _options(rest)


def _star_from_view(select: exp.Expression) -> str | None:
    """The view name of ``select * from <view>``, else None."""
    if not isinstance(select, exp.Select) or len(select.expressions) != 1 or not isinstance(select.expressions[0],
                                                                                               exp.Star):
        return None
    source = select.args.get("from_") and select.args["from_"].this
    if not isinstance(source, exp.Table) or select.args.get("where") or select.args.get("joins"):
        return None
    return source.name


def _spark_time_format(duckdb_format: str) -> str:
    """A DuckDB (strftime) format as a Spark (Java) datetime pattern."""
    python = format_time(duckdb_format, DuckDB.TIME_MAPPING, DuckDB.TIME_TRIE) or duckdb_format
    return format_time(python, Spark.INVERSE_TIME_MAPPING, Spark.INVERSE_TIME_TRIE) or python


def _anchored(pattern: exp.Expression) -> exp.Expression:
    if isinstance(pattern, exp.Literal) and pattern.is_string:
        return exp.Literal.string(f"^(?:{pattern.this})$")
    return exp.func("concat", exp.Literal.string("^(?:"), pattern, exp.Literal.string(")$"))


def _smallest(arg_min: exp.ArgMin, where: exp.Where | None) -> exp.Expression:
    """``arg_min(value, key, n) [filter (where ...)]``: the values of the n smallest keys, as a Spark array."""
    pair = exp.func("named_struct", exp.Literal.string("k"), arg_min.expression,
                    exp.Literal.string("v"), arg_min.this)
    collected: exp.Expression = exp.func("collect_list", pair)
    if where is not None:
        collected = exp.Filter(this=collected, expression=where)
    values = sqlglot.parse_one("transform(array_sort(__c), __x -> __x.v)", read="spark")
    next(c for c in values.find_all(exp.Column) if c.name == "__c").replace(collected)
    return exp.func("slice", values, exp.Literal.number(1), arg_min.args["count"])


def _view(node: exp.Expression, register: Register) -> exp.Expression:
    """A ``read_parquet`` / ``read_csv`` table as a view over its files; other nodes unchanged."""
    if isinstance(node, exp.Table) and (read := _reader(node.this)) is not None:
        table = exp.to_table(register(*read))
        if node.alias:
            table.set("alias", node.args["alias"])
        return table
    return node


def _rewrite(node: exp.Expression, register: Register) -> exp.Expression:
    """One node of the DuckDB tree (its file readers already views) as Spark needs it; others unchanged."""
    if isinstance(node, exp.Union) and node.args.get("by_name"):
        views = [_star_from_view(node.this), _star_from_view(node.expression)]
        if None in views or node.args.get("distinct"):
            raise SparkSqlError(f"union by name is translated only as `select * from <files>` union all by name "
                                f"`select * from <files>`: {node.sql('duckdb')}")
        return exp.select("*").from_(register("union", views, {}))
    if isinstance(node, exp.Anonymous) and node.name.lower() == "hash":
        return exp.func("xxhash64", *node.expressions)
    if isinstance(node, exp.Anonymous) and node.name.lower() == "try_strptime":
        value, fmt = node.expressions
        return exp.func("try_to_timestamp", value, exp.Literal.string(_spark_time_format(fmt.name)))
    if isinstance(node, exp.RegexpFullMatch):
        return exp.RegexpLike(this=node.this, expression=_anchored(node.expression))
    if isinstance(node, exp.DataType) and node.this == exp.DataType.Type.INT128:
        return exp.DataType.build("decimal(38, 0)")
    if isinstance(node, exp.Filter) and isinstance(node.this, exp.ArgMin) and node.this.args.get("count"):
        return _smallest(node.this, node.expression)
    if isinstance(node, exp.ArgMin) and node.args.get("count"):
        return _smallest(node, None)
    if isinstance(node, exp.Cast) and isinstance(node.this, exp.Unnest | exp.Explode):
        inner = node.this.expressions[0] if isinstance(node.this, exp.Unnest) else node.this.this
        array = exp.DataType(this=exp.DataType.Type.ARRAY, expressions=[node.to], nested=True)
        return exp.Explode(this=exp.Cast(this=inner, to=array))
    return node


def translate(sql: str, register: Register) -> tuple[str, str | None]:
    """``(spark_sql, temp_table)``: one DuckDB statement as Spark SQL.

    ``temp_table`` is the name of a ``create or replace temp table <name> as <query>`` (``spark_sql`` is then the
    query, which the caller caches under that name), else None. ``register`` makes the views over files.

    Raises:
        SparkSqlError: the statement does not parse, or uses a construct with no translation here.
    """
    try:
        tree = sqlglot.parse_one(sql, read="duckdb")
    except sqlglot.errors.ParseError as exc:
        raise SparkSqlError(f"cannot parse the gate statement for Spark ({exc}): {sql.strip()[:500]}") from exc
    temp_table = None
    if isinstance(tree, exp.Create):
        props = tree.args.get("properties")
        temporary = props is not None and any(isinstance(p, exp.TemporaryProperty) for p in props.expressions)
        if tree.kind != "TABLE" or not temporary or tree.expression is None:
            raise SparkSqlError(f"only `create or replace temp table <name> as <query>` runs on Spark: {sql.strip()}")
        temp_table, tree = tree.this.name, tree.expression
    describe = isinstance(tree, exp.Describe)
    if describe:
        tree = tree.this
    # Two passes: a union by name is rewritten once both its sides read views (transform goes top-down).
    tree = tree.transform(lambda node: _view(node, register)).transform(lambda node: _rewrite(node, register))
    try:
        out = tree.sql(dialect="spark")
    except sqlglot.errors.UnsupportedError as exc:
        raise SparkSqlError(f"no Spark translation ({exc}): {sql.strip()[:500]}") from exc
    return (f"describe query {out}" if describe else out), temp_table


def _plain(value: Any) -> Any:
    """A Spark value as DuckDB's Python client gives it (a struct as a dict, a list of them as a list)."""
    from pyspark.sql import Row

    if isinstance(value, Row):
        return {k: _plain(v) for k, v in value.asDict().items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


class SparkResult:
    """The rows of one statement run on a Spark session, with DuckDB's result calls."""

    def __init__(self, frame: Any) -> None:
        self._frame = frame

    def fetchone(self) -> tuple[Any, ...] | None:
        rows = self._frame.take(1)
        return tuple(_plain(v) for v in rows[0]) if rows else None

    def fetchall(self) -> list[tuple[Any, ...]]:
        return [tuple(_plain(v) for v in row) for row in self._frame.collect()]

    def df(self) -> pd.DataFrame:
        """A pandas frame, dates as ``datetime64`` as DuckDB's ``df()`` gives them."""
        from pyspark.sql.types import DateType

        frame = self._frame.toPandas()
        for field in self._frame.schema.fields:
            if isinstance(field.dataType, DateType):
                frame[field.name] = pd.to_datetime(frame[field.name])
        return frame


#: HiveServer2 column types whose values come back as text in a form that is not JSON; they are fetched as
#: ``to_json`` (nulls kept: ``spark.sql.jsonGenerator.ignoreNullFields=false``) and parsed.
_NESTED = {"ARRAY_TYPE", "STRUCT_TYPE", "MAP_TYPE"}


class ThriftResult:
    """The rows of one statement run through a Spark Thrift server (HiveServer2), with DuckDB's result calls.

    HiveServer2 sends dates as ISO text and nested values (arrays, structs, maps) as Spark's display text; dates
    are typed back here, and a statement with nested columns is fetched again with those columns as JSON, so the
    values are those the session gives (a struct as a dict, dates inside it as ISO text, as the gate's JSON has them).
    """

    def __init__(self, run: Callable[[str], Any], statement: str) -> None:
        cursor = run(statement)
        kinds = [(d[0], d[1]) for d in cursor.description or ()]
        if any(kind in _NESTED for _, kind in kinds):
            cursor.close()
            columns = ", ".join(f"to_json(`{i}`) as `{i}`" if kind in _NESTED else f"`{i}`"
                                for i, (_, kind) in enumerate(kinds))
            renamed = ", ".join(f"`{i}`" for i in range(len(kinds)))
            cursor = run(f"select {columns} from ({statement}) as __q ({renamed})")
        self._cursor = cursor
        self.columns = [name.split(".")[-1] for name, _ in kinds]
        self._convert = [_thrift_converter(kind) for _, kind in kinds]

    def _row(self, row: tuple[Any, ...]) -> tuple[Any, ...]:
        return tuple(None if v is None else f(v) for f, v in zip(self._convert, row, strict=True))

    def fetchone(self) -> tuple[Any, ...] | None:
        row = self._cursor.fetchone()
        return None if row is None else self._row(row)

    def fetchall(self) -> list[tuple[Any, ...]]:
        rows: list[tuple[Any, ...]] = []
        while batch := self._cursor.fetchmany(50_000):
            rows.extend(self._row(r) for r in batch)
        return rows

    def df(self) -> pd.DataFrame:
        """A pandas frame, dates as ``datetime64`` as DuckDB's ``df()`` gives them."""
        frame = pd.DataFrame.from_records(self.fetchall(), columns=self.columns)
        for name, convert in zip(self.columns, self._convert, strict=True):
            if convert is _iso_date:
                frame[name] = pd.to_datetime(frame[name])
        return frame


class _NoRows:
    """The result of a ``create temp table`` statement, as DuckDB's: no row to fetch."""

    def fetchone(self) -> None:
        return None

    def fetchall(self) -> list[tuple[Any, ...]]:
        return []

    def df(self) -> pd.DataFrame:
        return pd.DataFrame()


_NO_ROWS = _NoRows()


def _iso_date(value: str) -> dt.date:
    return dt.date.fromisoformat(value)


def _thrift_converter(kind: str) -> Callable[[Any], Any]:
    if kind == "DATE_TYPE":
        return _iso_date
    if kind in _NESTED:
        return json.loads
    return _same


def _same(value: Any) -> Any:
    return value


class SparkConnection:
    """The raw gate's connection on Spark: DuckDB statements in, Spark SQL run (see the module docstring).

    ``engine`` is a Spark session (``method: session``: the process's own, shared with dbt-spark) or a DB-API
    connection to a Spark Thrift server (``method: thrift``: PyHive's, as dbt-spark's; the gate's SQL then runs on
    the server's cluster, nothing is computed here). Both run the same SQL: views over files and temporary tables
    are temporary views of the (server) session, made by SQL statements, and dropped by :meth:`close`.
    """

    def __init__(self, engine: Any) -> None:
        self._thrift = not hasattr(engine, "sql")
        self.engine = engine
        self._views: dict[str, str] = {}  # key of a file set -> view name
        self._made: list[str] = []  # every view this connection made, in order
        self._cached: list[str] = []  # temp tables (cached views), in the order made (one may read another)
        if self._thrift:
            # The session's settings of dbt-spark and the local session (spark_engine.session_conf): ANSI off
            # (a failed cast is null, as DuckDB's try_cast the gate relies on), UTC; nulls kept in to_json.
            for setting in ("spark.sql.ansi.enabled=false", "spark.sql.session.timeZone=UTC",
                            "spark.sql.jsonGenerator.ignoreNullFields=false"):
                self._run(f"set {setting}")

    # -- statements ------------------------------------------------------------------------------------------
    def _cursor(self, statement: str) -> Any:
        """Run ``statement`` through the Thrift server; its cursor (the failure as :class:`SparkSqlError`)."""
        from pyhive import exc as hive_errors

        cursor = self.engine.cursor()
        try:
            cursor.execute(statement)
        except hive_errors.Error as error:
            cursor.close()
            status = error.args[0] if error.args else None
            message = getattr(getattr(status, "status", status), "errorMessage", None) or str(error)
            raise SparkSqlError(f"the Spark Thrift server refused a gate statement: {str(message).strip()[:800]}"
                                f"\nstatement: {statement.strip()[:800]}") from error
        return cursor

    def _run(self, statement: str) -> None:
        if self._thrift:
            self._cursor(statement).close()
        else:
            self._session_sql(statement).collect()

    def _result(self, statement: str) -> SparkResult | ThriftResult:
        if self._thrift:
            return ThriftResult(self._cursor, statement)
        return SparkResult(self._session_sql(statement))

    def _session_sql(self, statement: str) -> Any:
        from pyspark.errors import PySparkException

        try:
            return self.engine.sql(statement)
        except PySparkException as exc:
            raise SparkSqlError(f"Spark refused a gate statement: {str(exc).strip()[:800]}\nstatement: "
                                f"{statement.strip()[:800]}") from exc

    def _columns(self, view: str) -> list[tuple[str, str]]:
        """``(name, Spark type)`` of each column of ``view``, in order."""
        rows = self._result(f"describe {view}").fetchall()
        out = []
        for name, kind, *_ in rows:
            if not name or str(name).startswith("#"):  # describe's partition section, if any
                break
            out.append((str(name), str(kind)))
        return out

    # -- views over files ------------------------------------------------------------------------------------
    def _view(self, prefix: str, key: str, query: str) -> str:
        name = f"__gate_{prefix}_{hashlib.sha1(key.encode()).hexdigest()[:12]}"
        self._run(f"create or replace temporary view {name} as {query}")
        self._made.append(name)
        return name

    def _register(self, reader: str, paths: list[str], options: dict[str, Any]) -> str:
        key = repr((reader, paths, sorted(options.items())))
        if key not in self._views:
            self._views[key] = self._view(reader, key, self._read(reader, paths, options, key))
        return self._views[key]

    def _read(self, reader: str, paths: list[str], options: dict[str, Any], key: str) -> str:
        """The query of the view over ``paths``: the files read by name, unioned as DuckDB's union_by_name."""
        if reader == "union":
            return self._by_name(paths)
        extra = "".join([", _metadata.row_index as file_row_number" if options.get("file_row_number") else "",
                         ", _metadata.file_path as filename" if options.get("filename") else ""])
        if reader == "csv":
            # One read per file: Spark maps every CSV file to the first one's header by position, DuckDB's
            # union_by_name by name (a file missing a column must not shift the others). Every column as text.
            header = "true" if options.get("header", True) in (True, "true") else "false"
            sep = str(options.get("delim", ",")).replace("\\", "\\\\").replace("'", "\\'")
            reads = [f"select *{extra} from csv.{_file_literal(path)} with ('sep' = '{sep}', 'header' = '{header}')"
                     for path in paths]
        else:
            reads = [f"select *{extra} from parquet.{_file_literal(files)}" for files in _parquet_sets(paths)]
        if len(reads) == 1:
            return reads[0]
        parts = [self._view("part", f"{key}:{i}", read) for i, read in enumerate(reads)]
        return self._by_name(parts)

    def _by_name(self, views: list[str]) -> str:
        """Views unioned by column name (a missing column null); a column typed differently across them as text."""
        schemas = [self._columns(v) for v in views]
        types: dict[str, set[str]] = {}
        for schema in schemas:
            for name, kind in schema:
                types.setdefault(name, set()).add(kind)
        selects = []
        for view, schema in zip(views, schemas, strict=True):
            has = dict(schema)
            columns = []
            for name, seen in types.items():
                kind = "string" if len(seen) > 1 else next(iter(seen))
                if name not in has:
                    columns.append(f"cast(null as {kind}) as `{name}`")
                elif has[name] != kind:
                    columns.append(f"cast(`{name}` as string) as `{name}`")
                else:
                    columns.append(f"`{name}`")
            selects.append(f"select {', '.join(columns)} from {view}")
        return " union all ".join(selects)

    # -- DuckDB's calls --------------------------------------------------------------------------------------
    def execute(self, sql: str) -> SparkResult | ThriftResult | _NoRows:
        """Translate and run one DuckDB statement (``create or replace temp table`` is computed and cached now)."""
        query, temp_table = translate(sql, self._register)
        if temp_table is None:
            return self._result(query)
        if temp_table in self._cached:
            self._run(f"uncache table if exists {temp_table}")
            self._run(f"drop view if exists {temp_table}")
            self._cached.remove(temp_table)
        self._run(f"cache table {temp_table} as {query}")  # eager, as DuckDB computes the table at once
        self._cached.append(temp_table)
        return _NO_ROWS

    def close(self) -> None:
        """Drop the views and cached tables of this connection (the session or server connection stays)."""
        # Latest first: Spark resolves a cached view again when it is uncached, so the views it reads must still
        # be there (``_regularisation_lines`` reads ``_negatives``).
        for name in reversed(self._cached):
            self._run(f"uncache table if exists {name}")
        for name in reversed(self._cached):
            self._run(f"drop view if exists {name}")
        for name in reversed(self._made):
            self._run(f"drop view if exists {name}")
        self._cached.clear()
        self._made.clear()
        self._views.clear()


def _file_literal(path: str) -> str:
    """A path (or Hadoop glob) as the backquoted identifier of Spark's ``format.`path``` file query."""
    return "`" + path.replace("`", "``") + "`"


def _glob_escape(text: str) -> str:
    return "".join("\\" + c if c in "\\{}[]*?," else c for c in text)


def _parquet_sets(paths: list[str]) -> list[str]:
    """Parquet files as Hadoop globs, one per folder and schema: ``<folder>/{a.parquet,b.parquet}``.

    Files of one schema in one folder are read together; files whose column types disagree are read apart and
    unioned by :meth:`SparkConnection._by_name` (a date column that one file holds as text reads as text, as in
    DuckDB). A file path, not its folder, is read, so no ``extraction=`` folder becomes a partition column.
    """
    import pyarrow.parquet as pq

    groups: dict[tuple[str, str], list[str]] = {}
    for path in paths:
        schema = pq.read_schema(path)
        groups.setdefault((str(Path(path).parent), str([(f.name, str(f.type)) for f in schema])), []).append(path)
    out = []
    for (folder, _), files in groups.items():
        names = [_glob_escape(Path(f).name) for f in files]
        out.append(f"{_glob_escape(folder)}/{names[0]}" if len(names) == 1
                   else f"{_glob_escape(folder)}/{{{','.join(names)}}}")
    return out


GateConnection = duckdb.DuckDBPyConnection | SparkConnection
"""The connection the raw gate's SQL runs on: DuckDB's in-memory connection, or Spark through this module."""


def line_hash(con: GateConnection) -> str:
    """The 64-bit hash the line fingerprints of ``con`` are made of (``duckdb``'s ``hash``, or Spark's ``xxhash64``)."""
    return "xxhash64" if isinstance(con, SparkConnection) else "duckdb"
