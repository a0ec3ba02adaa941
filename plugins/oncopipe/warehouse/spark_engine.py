"""The Spark engine of the dbt project (``ONCOPIPE_ENGINE=spark``, issue #23): the local session and the landing.

dbt-spark in ``session`` mode runs Spark in the dbt process (pyspark, ``local[ONCOPIPE_SPARK_CORES]``); its tables
are Parquet under ``<spark_warehouse>/tables`` and its metastore an embedded Derby database beside them (one
process at a time, like the DuckDB file). :func:`session` starts that session with the parameters of the ``spark``
target of ``dbt_project/profiles.yml`` (the same environment variables), so the landing registered here and the
models dbt-spark builds live in one catalog; later ``getOrCreate`` calls (dbt-spark's cursors) return it.

The landing on Spark: one external Parquet table ``landing.<source>`` per source, located at
``<landing>/<source>``, partitioned by ``extraction``. A metastore does not see the ``extraction=`` folders that
exist under a table's location until they are registered, and an unregistered table reads as empty (the trial
port's trap: every model built empty and every dbt test passed); :func:`register_landing` registers exactly the
accepted extractions up to the one processed (``ALTER TABLE ... ADD PARTITION``, the same set DuckDB's views
read), and the project's on-run-start refuses to build on a source that reads no line.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

from oncopipe.contracts.settings import Settings


class SparkLandingError(ValueError):
    """The landing cannot be registered on Spark (a CSV extraction, a table that is not external)."""


def session_conf(settings: Settings) -> dict[str, str]:
    """The Spark parameters of the ``spark`` profile target (``server_side_parameters``), from the settings."""
    warehouse = Path(settings.spark_warehouse or settings.home / "warehouse" / "spark")
    return {
        "spark.master": f"local[{settings.spark_cores}]",
        "spark.app.name": "oncopipe-dbt",
        "spark.ui.enabled": "false",
        "spark.sql.shuffle.partitions": str(settings.spark_shuffle_partitions),
        "spark.sql.warehouse.dir": str(warehouse / "tables"),
        "spark.hadoop.javax.jdo.option.ConnectionURL":
            f"jdbc:derby:;databaseName={warehouse}/metastore_db;create=true",
        "spark.sql.session.timeZone": "UTC",
        "spark.driver.memory": settings.spark_driver_memory,
        # dbt-spark forces ANSI mode off for every session it opens; the landing is registered under the same.
        "spark.sql.ansi.enabled": "false",
    }


def session(settings: Settings) -> Any:
    """The process's Spark session with the profile's parameters (started on first use, ~8 s)."""
    from pyspark.sql import SparkSession

    warehouse = Path(settings.spark_warehouse or settings.home / "warehouse" / "spark")
    warehouse.mkdir(parents=True, exist_ok=True)
    builder = SparkSession.builder.enableHiveSupport()
    for key, value in session_conf(settings).items():
        builder = builder.config(key, value)
    builder = builder.config("spark.driver.extraJavaOptions", f"-Dderby.system.home={warehouse}")
    return builder.getOrCreate()


class Sql(Protocol):
    """Statements to the Spark engine; ``query`` answers ``(column names, rows)``."""

    def execute(self, statement: str) -> None: ...

    def query(self, statement: str) -> tuple[list[str], list[tuple]]: ...


class _SessionSql:
    def __init__(self, settings: Settings) -> None:
        self.spark = session(settings)

    def execute(self, statement: str) -> None:
        self.spark.sql(statement).collect()

    def query(self, statement: str) -> tuple[list[str], list[tuple]]:
        frame = self.spark.sql(statement)
        return frame.columns, [tuple(row) for row in frame.collect()]


class _ThriftSql:
    """A HiveServer2 connection (PyHive, as dbt-spark's ``thrift`` method), to ONCOPIPE_SPARK_HOST:PORT."""

    def __init__(self, host: str, port: int) -> None:
        from pyhive import hive

        self.where = f"{host}:{port}"
        try:
            self.connection = hive.connect(host=host, port=port, username="oncopipe")
        except Exception as exc:  # thrift's TTransportException, socket errors: say which server
            raise SparkLandingError(f"cannot reach the Spark Thrift server at {self.where} "
                                    f"(ONCOPIPE_SPARK_HOST/ONCOPIPE_SPARK_PORT): {exc}") from exc
        self.cursor = self.connection.cursor()

    def execute(self, statement: str) -> None:
        self.cursor.execute(statement)

    def query(self, statement: str) -> tuple[list[str], list[tuple]]:
        self.cursor.execute(statement)
        names = [d[0].split(".")[-1] for d in self.cursor.description or ()]
        rows: list[tuple] = []
        while batch := self.cursor.fetchmany(50_000):
            rows.extend(tuple(r) for r in batch)
        return names, rows

    def close(self) -> None:
        self.connection.close()


@contextmanager
def connect(settings: Settings) -> Iterator[Sql]:
    """The engine the ``spark`` profile target reaches: the local session, or the Thrift server."""
    if settings.spark_method == "session":
        yield _SessionSql(settings)
        return
    if settings.spark_method != "thrift":
        raise SparkLandingError(f"ONCOPIPE_SPARK_METHOD={settings.spark_method}: the platform registers the landing "
                                "and reads the marts through a local session or a Thrift server only")
    server = _ThriftSql(settings.spark_host, settings.spark_port)
    try:
        yield server
    finally:
        server.close()


#: Spark SQL types of the Arrow types the landing's Parquet files hold.
_SPARK_TYPES = {"string": "string", "large_string": "string", "int64": "bigint", "int32": "int",
                "int16": "smallint", "int8": "tinyint", "double": "double", "float": "float",
                "date32[day]": "date", "bool": "boolean"}


def _landing_columns(source: str, files: Sequence[Path]) -> str:
    """The columns of every accepted part file, by name (DuckDB's union_by_name), as Spark DDL."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.unify_schemas([pq.read_schema(f) for f in files], promote_options="permissive")
    columns = []
    for field in schema:
        if field.name == "extraction":
            continue
        kind = str(field.type)
        if pa.types.is_timestamp(field.type):
            spark_type = "timestamp"
        elif pa.types.is_decimal(field.type):
            spark_type = f"decimal({field.type.precision},{field.type.scale})"
        elif kind in _SPARK_TYPES:
            spark_type = _SPARK_TYPES[kind]
        else:
            raise SparkLandingError(f"{source}.{field.name}: Parquet type {kind} has no Spark column type here "
                                    f"({files[0]})")
        columns.append(f"`{field.name}` {spark_type}")
    return ", ".join(columns)


def _table_exists(sql: Sql, table: str) -> bool:
    schema, name = table.split(".")
    return bool(sql.query(f"show databases like '{schema}'")[1]) and \
        bool(sql.query(f"show tables in {schema} like '{name}'")[1])


def _table_type(sql: Sql, table: str) -> str | None:
    """EXTERNAL or MANAGED when ``table`` exists, else None."""
    if not _table_exists(sql, table):
        return None
    _, described = sql.query(f"describe table extended {table}")
    return next((str(r[1]).strip().upper() for r in described if str(r[0]).strip() == "Type"), "UNKNOWN")


@contextmanager
def gate_engine(settings: Settings) -> Iterator[Any]:
    """What the raw gate runs its SQL on (``run_raw_gate(..., spark=...)``), for the engine of the settings.

    On the Spark engine: this process's Spark session (``ONCOPIPE_SPARK_METHOD=session``), or a connection to the
    Spark Thrift server (``thrift``), closed on exit, so the gate's scans run where the marts are built, on the
    cluster; on DuckDB, None (the gate opens its own in-memory DuckDB).
    """
    if settings.engine != "spark":
        yield None
        return
    if settings.spark_method == "session":
        yield session(settings)
        return
    with connect(settings) as sql:
        yield sql.connection  # type: ignore[attr-defined]  (connect gives a _ThriftSql for thrift)


def _quote(path: Path) -> str:
    return str(path).replace("\\", "\\\\").replace("'", "\\'")


def register_landing(settings: Settings, parts: dict[str, dict[str, list[Path]]]) -> None:
    """(Re)create ``landing.<source>`` over the accepted extractions ``parts`` ({source: {date: [part files]}}).

    Raises:
        SparkLandingError: an extraction holds CSV parts (the Spark engine reads the Parquet landing), or a
            ``landing.<source>`` that exists is not an external table (dropping it would delete data).
    """
    with connect(settings) as sql:
        sql.execute("create database if not exists landing")
        for source, extractions in parts.items():
            csv = [str(p) for paths in extractions.values() for p in paths if p.suffix != ".parquet"]
            if csv:
                raise SparkLandingError(
                    f"the Spark engine reads Parquet landing files only; {source} has CSV part(s) "
                    f"{', '.join(csv[:3])} (convert them, or build this extraction with ONCOPIPE_ENGINE=duckdb)")
            table = f"landing.{source}"
            kind = _table_type(sql, table)
            if kind is not None:
                if kind != "EXTERNAL":
                    raise SparkLandingError(f"{table} exists as a {kind} table, not the external table over "
                                            f"{settings.landing / source}; drop it by hand")
                sql.execute(f"drop table {table}")
            files = [p for paths in extractions.values() for p in paths]
            sql.execute(f"create table {table} ({_landing_columns(source, files)}, extraction date) using parquet "
                        f"partitioned by (extraction) location '{_quote(settings.landing / source)}'")
            _add_partitions(sql, table, extractions)
            sql.execute(f"refresh table {table}")
            _check_lines(sql, table, extractions)


def _add_partitions(sql: Sql, table: str, extractions: dict[str, list[Path]]) -> None:
    for date, paths in extractions.items():
        if paths:
            sql.execute(f"alter table {table} add if not exists partition (extraction = '{date}') "
                      f"location '{_quote(paths[0].parent)}'")


def _check_lines(sql: Sql, table: str, extractions: dict[str, list[Path]]) -> None:
    """Refuse a source whose table does not read the lines its accepted part files hold (Parquet footers).

    A source may be legitimately empty (no death certificate yet); what must not pass is a table that reads
    fewer lines than landed, as an unregistered partition does: the whole build would then run on nothing.
    """
    import pyarrow.parquet as pq

    landed = {d: sum(pq.ParquetFile(p).metadata.num_rows for p in paths) for d, paths in extractions.items()}
    _, rows = sql.query(f"select cast(extraction as string), count(*) from {table} group by 1")
    counts = {str(r[0]): int(r[1]) for r in rows}
    short = {d: (n, counts.get(d, 0)) for d, n in landed.items() if counts.get(d, 0) != n}
    if short:
        detail = "; ".join(f"extraction={d}: {read} read of {n} landed" for d, (n, read) in sorted(short.items()))
        raise SparkLandingError(
            f"refusing to build on Spark: {table} does not read the lines of its landed files ({detail}); "
            "are its extraction= partitions registered? (oncopipe.warehouse.spark_engine.register_landing)")


def read_table(settings: Settings, name: str) -> Any:
    """A pandas frame of the Spark table ``name`` (``marts.poor_prognosis_cases``)."""
    with connect(settings) as sql:
        if isinstance(sql, _SessionSql):
            return sql.spark.table(name).toPandas()
        import pandas as pd

        columns, rows = sql.query(f"select * from {name}")
        return pd.DataFrame.from_records(rows, columns=columns)


#: Arrow types of the contract's (DuckDB) type names: a mart read from Spark is written with the schema DuckDB's
#: reader gives, so both engines stage byte-identical Parquet for equal marts (tests/integration/test_spark_engine).
ARROW_TYPES = {"varchar": "string", "string": "string", "integer": "int32", "bigint": "int64", "double": "float64",
               "date": "date32", "boolean": "bool_"}


def read_tables(settings: Settings, tables: dict[str, tuple[tuple[str, ...], dict[str, str]]]) -> dict[str, Any]:
    """Arrow tables of the Spark tables {``schema.name``: (sort key, {column: contract type})}, sorted by key.

    Through the Thrift server the rows come back as Python values (dates as ISO text, as HiveServer2 sends
    them) and are typed here by the contract, so both ways give the same Arrow table.

    Raises:
        KeyError: a table is missing from the Spark catalog (the message names it).
    """
    import pyarrow as pa

    out = {}
    with connect(settings) as sql:
        for name, (key, columns) in tables.items():
            if not _table_exists(sql, name):
                raise KeyError(f"{name} is missing from the Spark catalog ({_catalog(settings)}): run dbt build")
            order = ", ".join(f"`{k}`" for k in key)
            statement = f"select * from {name} order by {order}"
            schema = pa.schema([pa.field(c, getattr(pa, ARROW_TYPES[t.lower()])()) for c, t in columns.items()])
            if isinstance(sql, _SessionSql):
                table = sql.spark.sql(statement).toArrow()
            else:
                names, rows = sql.query(statement)
                values = list(zip(*rows, strict=True)) if rows else [() for _ in names]
                table = pa.table({n: pa.array(v, type=pa.string() if schema.field(n).type == pa.date32() else None)
                                  if n in schema.names else pa.array(v) for n, v in zip(names, values, strict=True)})
            if table.column_names != schema.names:
                raise KeyError(f"{name} has columns {table.column_names} on Spark, the contract says {schema.names}")
            out[name] = table.cast(schema)
    return out


def _catalog(settings: Settings) -> str:
    if settings.spark_method == "thrift":
        return f"the Thrift server at {settings.spark_host}:{settings.spark_port}"
    return str(settings.spark_warehouse)
