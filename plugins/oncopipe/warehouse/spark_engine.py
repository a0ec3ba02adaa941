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

import os
from pathlib import Path
from typing import Any

from oncopipe.contracts.settings import Settings


class SparkLandingError(ValueError):
    """The landing cannot be registered on Spark (a CSV extraction, a table that is not external)."""


def session_conf(settings: Settings) -> dict[str, str]:
    """The Spark parameters of the ``spark`` profile target (``server_side_parameters``), from the environment."""
    warehouse = Path(settings.spark_warehouse or settings.home / "warehouse" / "spark")
    return {
        "spark.master": f"local[{os.environ.get('ONCOPIPE_SPARK_CORES', '2')}]",
        "spark.app.name": "oncopipe-dbt",
        "spark.ui.enabled": "false",
        "spark.sql.shuffle.partitions": os.environ.get("ONCOPIPE_SPARK_SHUFFLE_PARTITIONS", "4"),
        "spark.sql.warehouse.dir": str(warehouse / "tables"),
        "spark.hadoop.javax.jdo.option.ConnectionURL":
            f"jdbc:derby:;databaseName={warehouse}/metastore_db;create=true",
        "spark.sql.session.timeZone": "UTC",
        "spark.driver.memory": os.environ.get("ONCOPIPE_SPARK_DRIVER_MEMORY", "2g"),
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


def gate_session(settings: Settings) -> Any:
    """The session the raw gate runs its SQL on: this process's Spark session on the Spark engine, else None."""
    return session(settings) if settings.engine == "spark" else None


def _quote(path: Path) -> str:
    return str(path).replace("\\", "\\\\").replace("'", "\\'")


def register_landing(settings: Settings, parts: dict[str, dict[str, list[Path]]]) -> None:
    """(Re)create ``landing.<source>`` over the accepted extractions ``parts`` ({source: {date: [part files]}}).

    Raises:
        SparkLandingError: an extraction holds CSV parts (the Spark engine reads the Parquet landing), or a
            ``landing.<source>`` that exists is not an external table (dropping it would delete data).
    """
    spark = session(settings)
    spark.sql("create database if not exists landing")
    for source, extractions in parts.items():
        csv = [str(p) for paths in extractions.values() for p in paths if p.suffix != ".parquet"]
        if csv:
            raise SparkLandingError(
                f"the Spark engine reads Parquet landing files only; {source} has CSV part(s) {', '.join(csv[:3])}"
                " (convert them, or build this extraction with ONCOPIPE_ENGINE=duckdb)")
        table = f"landing.{source}"
        if spark.catalog.tableExists(table):
            kind = spark.catalog.getTable(table).tableType
            if kind.upper() != "EXTERNAL":
                raise SparkLandingError(f"{table} exists as a {kind} table, not the external table over "
                                        f"{settings.landing / source}; drop it by hand")
            spark.sql(f"drop table {table}")
        files = [str(p) for paths in extractions.values() for p in paths]
        # The columns of every accepted part file, by name (DuckDB's union_by_name); the partition column last.
        schema = spark.read.option("mergeSchema", "true").parquet(*files).schema
        columns = ", ".join(f"`{f.name}` {f.dataType.simpleString()}" for f in schema.fields
                            if f.name != "extraction")
        spark.sql(f"create table {table} ({columns}, extraction date) using parquet partitioned by (extraction) "
                  f"location '{_quote(settings.landing / source)}'")
        _add_partitions(spark, table, extractions)
        spark.catalog.refreshTable(table)
        _check_lines(spark, table, extractions)


def _add_partitions(spark: Any, table: str, extractions: dict[str, list[Path]]) -> None:
    for date, paths in extractions.items():
        if paths:
            spark.sql(f"alter table {table} add if not exists partition (extraction = '{date}') "
                      f"location '{_quote(paths[0].parent)}'")


def _check_lines(spark: Any, table: str, extractions: dict[str, list[Path]]) -> None:
    """Refuse a source whose table does not read the lines its accepted part files hold (Parquet footers).

    A source may be legitimately empty (no death certificate yet); what must not pass is a table that reads
    fewer lines than landed, as an unregistered partition does: the whole build would then run on nothing.
    """
    import pyarrow.parquet as pq

    landed = {d: sum(pq.ParquetFile(p).metadata.num_rows for p in paths) for d, paths in extractions.items()}
    counts = {str(r[0]): int(r[1]) for r in
              spark.sql(f"select cast(extraction as string), count(*) from {table} group by 1").collect()}
    short = {d: (n, counts.get(d, 0)) for d, n in landed.items() if counts.get(d, 0) != n}
    if short:
        detail = "; ".join(f"extraction={d}: {read} read of {n} landed" for d, (n, read) in sorted(short.items()))
        raise SparkLandingError(
            f"refusing to build on Spark: {table} does not read the lines of its landed files ({detail}); "
            "are its extraction= partitions registered? (oncopipe.warehouse.spark_engine.register_landing)")


def read_table(settings: Settings, name: str) -> Any:
    """A pandas frame of the Spark table ``name`` (``marts.poor_prognosis_cases``)."""
    return session(settings).table(name).toPandas()


#: Arrow types of the contract's (DuckDB) type names: a mart read from Spark is written with the schema DuckDB's
#: reader gives, so both engines stage byte-identical Parquet for equal marts (tests/integration/test_spark_engine).
ARROW_TYPES = {"varchar": "string", "string": "string", "integer": "int32", "bigint": "int64", "double": "float64",
               "date": "date32", "boolean": "bool_"}


def read_tables(settings: Settings, tables: dict[str, tuple[tuple[str, ...], dict[str, str]]]) -> dict[str, Any]:
    """Arrow tables of the Spark tables {``schema.name``: (sort key, {column: contract type})}, sorted by key.

    Raises:
        KeyError: a table is missing from the Spark catalog (the message names it).
    """
    import pyarrow as pa

    spark = session(settings)
    out = {}
    for name, (key, columns) in tables.items():
        if not spark.catalog.tableExists(name):
            raise KeyError(f"{name} is missing from the Spark catalog ({settings.spark_warehouse}): run dbt build")
        order = ", ".join(f"`{k}`" for k in key)
        frame = spark.sql(f"select * from {name} order by {order}")
        table = frame.toArrow()
        schema = pa.schema([pa.field(c, getattr(pa, ARROW_TYPES[t.lower()])()) for c, t in columns.items()])
        if table.column_names != schema.names:
            raise KeyError(f"{name} has columns {table.column_names} on Spark, the contract says {schema.names}")
        out[name] = table.cast(schema)
    return out
