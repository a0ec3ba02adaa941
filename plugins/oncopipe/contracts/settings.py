"""Where oncopipe reads and writes, from environment variables with project-local defaults.

Every path defaults to a folder under ``$ONCOPIPE_HOME`` (default: ``var/`` at the top of the
checkout, which git ignores), so a clean clone runs without any configuration. Production overrides
each path separately (docker-compose.yml mounts volumes and sets the variables).

| variable               | default                               | holds                                   |
|------------------------|---------------------------------------|-----------------------------------------|
| ONCOPIPE_HOME          | <checkout>/var                        | everything below                        |
| ONCOPIPE_LANDING       | $ONCOPIPE_HOME/landing                | landed extractions, one folder a source |
| ONCOPIPE_QUARANTINE    | $ONCOPIPE_HOME/quarantine             | extractions refused by the raw gate     |
| ONCOPIPE_WAREHOUSE     | $ONCOPIPE_HOME/warehouse/oncopipe.duckdb | the dbt-duckdb warehouse file        |
| ONCOPIPE_PUBLISHED     | $ONCOPIPE_HOME/published              | published mart versions (Parquet)       |
| ONCOPIPE_EXPORTS       | $ONCOPIPE_HOME/exports                | researcher exports, one folder a run    |
| ONCOPIPE_QUALITY       | $ONCOPIPE_HOME/quality                | gate history and Data Docs              |
| AIRFLOW_HOME           | $ONCOPIPE_HOME/airflow                | embedded Airflow metadata and logs      |
| ONCOPIPE_ENGINE        | duckdb                                | the dbt engine: duckdb or spark         |
| ONCOPIPE_SPARK_WAREHOUSE | $ONCOPIPE_HOME/warehouse/spark      | Spark tables (Parquet) and metastore    |

ONCOPIPE_ENGINE picks the dbt profile target (``dbt_project/profiles.yml``): ``duckdb`` (the embedded default, the
file ONCOPIPE_WAREHOUSE) or ``spark`` (dbt-spark; ``ONCOPIPE_SPARK_METHOD=session`` runs a local Spark in the
process, ``thrift`` reaches a cluster's Thrift server at ONCOPIPE_SPARK_HOST:ONCOPIPE_SPARK_PORT).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[3]
DBT_PROJECT_DIR = PROJECT_ROOT / "dbt_project"
EXPECTATIONS_DIR = PROJECT_ROOT / "expectations"
DAGS_DIR = PROJECT_ROOT / "dags"
PLUGINS_DIR = PROJECT_ROOT / "plugins"
STUDIES_DIR = DAGS_DIR / "studies"


def _path(name: str, default: Path) -> Path:
    value = os.environ.get(name)
    return Path(value).expanduser().resolve() if value else default


@dataclass(frozen=True)
class Settings:
    """Resolved locations. Build one with :func:`get_settings`; it reads the environment each time."""

    home: Path
    landing: Path
    quarantine: Path
    warehouse: Path
    published: Path
    exports: Path
    quality: Path
    airflow_home: Path
    engine: str = "duckdb"
    spark_warehouse: Path | None = None

    @property
    def dbt_target_dir(self) -> Path:
        return self.home / "dbt" / "target"

    @property
    def dbt_log_dir(self) -> Path:
        return self.home / "dbt" / "logs"

    def ensure(self) -> Settings:
        """Create every folder (not the warehouse file) and return self."""
        for folder in (self.home, self.landing, self.quarantine, self.warehouse.parent,
                       self.published, self.exports, self.quality, self.airflow_home):
            folder.mkdir(parents=True, exist_ok=True)
        return self


ENGINES = ("duckdb", "spark")


def warehouse_writer_slots() -> int:
    """Slots of the Airflow pool ``duckdb_writer`` that every warehouse task runs in, for the chosen engine.

    DuckDB takes a file lock (one writer at a time), and so does a local Spark session's embedded Derby
    metastore: 1. A Spark server (``ONCOPIPE_ENGINE=spark`` with ``ONCOPIPE_SPARK_METHOD=thrift``) takes
    concurrent sessions, so the pool no longer serialises warehouse tasks: ONCOPIPE_WAREHOUSE_WRITERS (default 8)
    slots. The DAG files do not change: only the pool's size does.
    """
    engine = os.environ.get("ONCOPIPE_ENGINE", "duckdb").strip().lower()
    method = os.environ.get("ONCOPIPE_SPARK_METHOD", "session").strip().lower()
    if engine == "spark" and method != "session":
        return max(1, int(os.environ.get("ONCOPIPE_WAREHOUSE_WRITERS", "8")))
    return 1


def get_settings() -> Settings:
    """Read the settings from the environment (see the module docstring for the variables)."""
    home = _path("ONCOPIPE_HOME", PROJECT_ROOT / "var")
    engine = os.environ.get("ONCOPIPE_ENGINE", "duckdb").strip().lower() or "duckdb"
    if engine not in ENGINES:
        raise ValueError(f"ONCOPIPE_ENGINE must be one of {', '.join(ENGINES)}, got {engine!r}")
    return Settings(
        home=home,
        landing=_path("ONCOPIPE_LANDING", home / "landing"),
        quarantine=_path("ONCOPIPE_QUARANTINE", home / "quarantine"),
        warehouse=_path("ONCOPIPE_WAREHOUSE", home / "warehouse" / "oncopipe.duckdb"),
        published=_path("ONCOPIPE_PUBLISHED", home / "published"),
        exports=_path("ONCOPIPE_EXPORTS", home / "exports"),
        quality=_path("ONCOPIPE_QUALITY", home / "quality"),
        airflow_home=_path("AIRFLOW_HOME", home / "airflow"),
        engine=engine,
        spark_warehouse=_path("ONCOPIPE_SPARK_WAREHOUSE", home / "warehouse" / "spark"),
    )
