"""The raw gate's SQL on Spark (``ONCOPIPE_ENGINE=spark``): the DuckDB SQL of the gate, translated, on a Spark session.

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

import hashlib
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
    """The rows of one statement, with DuckDB's result calls."""

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


class SparkConnection:
    """The raw gate's connection on Spark: DuckDB statements in, Spark SQL run (see the module docstring).

    Views over files and temporary tables are the session's temporary views, dropped by :meth:`close` (the
    session itself is the process's, shared with dbt-spark, and stays up).
    """

    def __init__(self, spark: Any) -> None:
        self.spark = spark
        self._views: dict[str, str] = {}  # key of a file set -> view name
        self._cached: dict[str, Any] = {}  # temp table -> its cached frame

    def _register(self, reader: str, paths: list[str], options: dict[str, Any]) -> str:
        key = repr((reader, paths, sorted(options.items())))
        if key not in self._views:
            name = f"__gate_{reader}_{hashlib.sha1(key.encode()).hexdigest()[:12]}"
            self._read(reader, paths, options).createOrReplaceTempView(name)
            self._views[key] = name
        return self._views[key]

    def _read(self, reader: str, paths: list[str], options: dict[str, Any]) -> Any:
        if reader == "union":
            first, second = (self.spark.table(v) for v in paths)
            return _by_name([first, second])
        if reader == "csv":
            # One read per file: Spark maps every CSV file to the first one's header by position, DuckDB's
            # union_by_name by name (a file missing a column must not shift the others).
            csv = self.spark.read.option("sep", options.get("delim", ",")).option("header", options.get("header", True))
            frame = _by_name([csv.csv(path) for path in paths])
        else:
            frame = _read_parquet(self.spark, paths)
        extra = []
        if options.get("file_row_number"):
            extra.append("_metadata.row_index as file_row_number")
        if options.get("filename"):
            extra.append("_metadata.file_path as filename")
        return frame.selectExpr("*", *extra) if extra else frame

    def execute(self, sql: str) -> SparkResult:
        """Translate and run one DuckDB statement (``create or replace temp table`` is computed and cached now)."""
        from pyspark.errors import PySparkException

        try:
            query, temp_table = translate(sql, self._register)
            frame = self.spark.sql(query)
            if temp_table is not None:
                if temp_table in self._cached:
                    self._cached.pop(temp_table).unpersist()
                frame = frame.cache()
                frame.count()
                frame.createOrReplaceTempView(temp_table)
                self._cached[temp_table] = frame
        except PySparkException as exc:
            raise SparkSqlError(f"Spark refused a gate statement: {str(exc).strip()[:800]}\nstatement: "
                                f"{sql.strip()[:800]}") from exc
        return SparkResult(frame)

    def close(self) -> None:
        """Drop the views and cached tables of this connection."""
        for name, frame in self._cached.items():
            frame.unpersist()
            self.spark.catalog.dropTempView(name)
        for name in self._views.values():
            self.spark.catalog.dropTempView(name)
        self._cached.clear()
        self._views.clear()


def _by_name(frames: list[Any]) -> Any:
    """Frames unioned by column name (missing columns null); a column typed differently across them as text."""
    from pyspark.sql import functions as F  # noqa: N812 (pyspark's own convention)

    types: dict[str, set[str]] = {}
    for frame in frames:
        for field in frame.schema.fields:
            types.setdefault(field.name, set()).add(field.dataType.simpleString())
    mixed = {name for name, seen in types.items() if len(seen) > 1}
    out = None
    for frame in frames:
        if mixed:
            frame = frame.select(*[F.col(f"`{c}`").cast("string").alias(c) if c in mixed else F.col(f"`{c}`")
                                   for c in frame.columns])
        out = frame if out is None else out.unionByName(frame, allowMissingColumns=True)
    return out


def _read_parquet(spark: Any, paths: list[str]) -> Any:
    """Parquet files as one frame, by column name (DuckDB's ``union_by_name``), no partition column from the path.

    Files of one schema are read together; files whose column types disagree are read per schema and unioned as
    :func:`_by_name` does (a date column that one file holds as text reads as text, as in DuckDB).
    """
    import pyarrow.parquet as pq

    groups: dict[str, list[str]] = {}
    for path in paths:
        schema = pq.read_schema(path)
        groups.setdefault(str([(f.name, str(f.type)) for f in schema]), []).append(path)
    frames = []
    for files in groups.values():
        # One base path per folder so Spark takes no ``extraction=`` folder for a partition column.
        folders: dict[str, list[str]] = {}
        for f in files:
            folders.setdefault(str(Path(f).parent), []).append(f)
        for folder, members in folders.items():
            frames.append(spark.read.option("basePath", folder).parquet(*members))
    return frames[0] if len(frames) == 1 else _by_name(frames)


GateConnection = duckdb.DuckDBPyConnection | SparkConnection
"""The connection the raw gate's SQL runs on: DuckDB's in-memory connection, or Spark through this module."""


def line_hash(con: GateConnection) -> str:
    """The 64-bit hash the line fingerprints of ``con`` are made of (``duckdb``'s ``hash``, or Spark's ``xxhash64``)."""
    return "xxhash64" if isinstance(con, SparkConnection) else "duckdb"
