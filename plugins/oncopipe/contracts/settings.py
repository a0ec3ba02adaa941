"""The platform's settings: one typed object, the only place an ``ONCOPIPE_*`` environment variable is read.

Every field of :class:`Settings` is the variable ``ONCOPIPE_<FIELD>`` (``airflow_home`` is ``AIRFLOW_HOME``); the
table of them all, with types, defaults and descriptions, is ``docs/settings.md``, written from the fields by
``python -m oncopipe.contracts.settings --write`` (a test fails when it is out of date).

Where a value comes from, first found wins:

1. the process environment (what docker-compose.yml, Airflow's workers and the embedded runner set);
2. the ``.env`` file: ``$ONCOPIPE_ENV_FILE`` when that is set (an empty value reads no file), else ``.env`` at the
   top of the checkout, the file docker compose reads too (its compose-only variables are ignored here);
3. the default of the field. Every path defaults to a folder under ``ONCOPIPE_HOME`` (default ``var/`` at the top
   of the checkout, which git ignores), so a clean clone runs without any configuration.

A value that does not validate raises :class:`SettingsError`, naming the variable, the value and where it was read
(the environment, or the ``.env`` file and its line).
"""

from __future__ import annotations

import argparse
import functools
import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import EmailStr, Field, HttpUrl, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parents[3]
DBT_PROJECT_DIR = PROJECT_ROOT / "dbt_project"
EXPECTATIONS_DIR = PROJECT_ROOT / "expectations"
DAGS_DIR = PROJECT_ROOT / "dags"
PLUGINS_DIR = PROJECT_ROOT / "plugins"
STUDIES_DIR = DAGS_DIR / "studies"
DOCS_TABLE = PROJECT_ROOT / "docs" / "settings.md"

PREFIX = "ONCOPIPE_"
ENV_FILE_VARIABLE = "ONCOPIPE_ENV_FILE"
DEFAULT_ENV_FILE = PROJECT_ROOT / ".env"
ENGINES = ("duckdb", "spark")
#: The SNDS small-cell rule: no count of 1 to 9 people leaves the platform. A deployment may be stricter, never laxer.
SNDS_DISCLOSURE_FLOOR = 10

_PATHS = ("home", "landing", "quarantine", "warehouse", "published", "exports", "quality", "airflow_home",
          "spark_warehouse", "duckdb_temp_directory")


class SettingsError(ValueError):
    """A setting does not validate; the message names the variable, its value and where it was read."""


class Settings(BaseSettings):
    """Locations, engine, mail and thresholds of the platform. Build it with :func:`get_settings`.

    Built directly (``Settings(home=...)``, tests and scratch contexts), the arguments win, the environment fills
    the rest and no ``.env`` file is read.
    """

    model_config = SettingsConfigDict(env_prefix=PREFIX, env_file_encoding="utf-8", extra="ignore", frozen=True,
                                      validate_by_name=True, validate_by_alias=True)

    # --- locations
    home: Path = Field(PROJECT_ROOT / "var", description="Root of everything below (default: `var/` of the checkout).")
    landing: Path | None = Field(None, description="Landed extractions, one folder a source "
                                                   "(default `$ONCOPIPE_HOME/landing`).")
    quarantine: Path | None = Field(None, description="Extractions refused by the raw gate "
                                                      "(default `$ONCOPIPE_HOME/quarantine`).")
    warehouse: Path | None = Field(None, description="The dbt-duckdb warehouse file "
                                                     "(default `$ONCOPIPE_HOME/warehouse/oncopipe.duckdb`).")
    published: Path | None = Field(None, description="Published mart versions, Parquet "
                                                     "(default `$ONCOPIPE_HOME/published`).")
    exports: Path | None = Field(None, description="Researcher exports, one folder a run "
                                                   "(default `$ONCOPIPE_HOME/exports`).")
    quality: Path | None = Field(None, description="Gate history and Data Docs (default `$ONCOPIPE_HOME/quality`).")
    airflow_home: Path | None = Field(None, validation_alias="AIRFLOW_HOME",
                                      description="Embedded Airflow metadata and logs "
                                                  "(default `$ONCOPIPE_HOME/airflow`).")
    published_retention: int = Field(10, ge=1, description="Published versions kept besides those an export pins "
                                                           "(CURRENT included).")

    # --- engine (dbt_project/profiles.yml reads these from the environment dbt is given: dbt_environment)
    engine: Literal["duckdb", "spark"] = Field("duckdb", description="The dbt engine: `duckdb` (embedded) or `spark` "
                                                                     "(dbt-spark).")
    dbt_tasks: Literal["manifest", "cosmos", "cosmos-build", "cosmos-watcher"] = Field(
        "manifest", description="How the refresh DAG runs dbt: one task a model from the manifest, or a Cosmos "
                                "rendering (`cosmos`: after_each, `cosmos-build`, `cosmos-watcher`; "
                                "`benchmarks/dbt_tasks.py` measures them).")
    dbt_threads: int = Field(2, ge=1, description="dbt threads.")
    duckdb_threads: int = Field(2, ge=1, description="DuckDB threads of the dbt connection.")
    duckdb_memory_limit: str = Field("8GB", pattern=r"^\d+(\.\d+)?\s*[KMGT]i?B$",
                                     description="DuckDB memory limit of the dbt connection (e.g. `8GB`).")
    duckdb_storage_version: str = Field("latest", description="DuckDB `storage_compatibility_version` of the file.")
    duckdb_temp_directory: Path | None = Field(None, description="Where DuckDB spills "
                                                                 "(default: beside the warehouse, `<warehouse>.tmp`).")
    spark_method: Literal["session", "thrift", "http", "odbc"] = Field(
        "session", description="dbt-spark method: `session` runs Spark in the dbt process, `thrift` reaches a "
                               "cluster's Thrift server.")
    spark_host: str = Field("localhost", description="Host of the Spark Thrift server.")
    spark_port: int = Field(10000, ge=1, le=65535, description="Port of the Spark Thrift server.")
    spark_warehouse: Path | None = Field(None, description="Session mode: Spark tables and Derby metastore "
                                                           "(default `$ONCOPIPE_HOME/warehouse/spark`).")
    spark_cores: str = Field("2", pattern=r"^([1-9]\d*|\*)$", description="Cores of the local session "
                                                                          "(`local[N]`, or `*`).")
    spark_shuffle_partitions: int = Field(4, ge=1, description="`spark.sql.shuffle.partitions` of the local session.")
    spark_driver_memory: str = Field("2g", pattern=r"(?i)^\d+[kmgt]b?$",
                                     description="`spark.driver.memory` of the local session (e.g. `2g`).")
    warehouse_writers: int = Field(8, ge=1, description="Slots of the `duckdb_writer` pool with a Spark server "
                                                        "(1 for DuckDB and a local session).")

    # --- mail
    operator_emails: Annotated[list[EmailStr], NoDecode] = Field(
        default_factory=list, description="Comma-separated addresses that get task-failure mails (empty: log only).")
    exports_url: str | None = Field(None, description="Base URL mails link exports under (`<url>/<study>/<run>/...`); "
                                                      "unset: a file URI.")
    mail_optional: bool | None = Field(None, description="Skip the notify task when no SMTP connection is defined; "
                                                         "unset: true under the embedded runner, false elsewhere.")
    admin_password: SecretStr | None = Field(None, description="Password of the Airflow UI's `admin` user "
                                                               "(deployment `prepare`).")

    # --- disclosure control and quality gates
    disclosure_threshold: int = Field(SNDS_DISCLOSURE_FLOOR, description="Smallest count of people an export may "
                                      "show; counts from 1 to threshold - 1 are masked. At least 10 (the SNDS rule).")
    gate_row_ratio_critical_max: float = Field(3.0, gt=1, description="Raw gate, critical: most rows an extraction "
                                               "may hold relative to the previous accepted one.")
    gate_row_ratio_warning_max: float = Field(1.5, gt=1, description="Raw gate, warning: growth of rows relative to "
                                              "the previous accepted extraction that is reported.")
    gate_volume_drop_warning_share: float = Field(0.75, gt=0, le=1, description="Raw gate, warning: share of a "
                                                  "source's tolerated volume drop from which the drop is reported.")
    gate_month_volume_min: float = Field(0.25, gt=0, lt=1, description="Raw gate, critical: a month of care with "
                                         "less than this share of the median month is a hole.")
    gate_psi_warning: float = Field(0.25, gt=0, description="Raw gate, warning: PSI of a coded column's distribution "
                                    "against the previous accepted extraction.")
    gate_psi_critical: float = Field(1.0, gt=0, description="Raw gate, critical: PSI of a coded column's "
                                     "distribution (a swapped or shifted column).")
    gate_event_rate_max_shift: float = Field(0.15, gt=0, lt=1, description="Marts gate, critical: largest move of "
                                             "an event rate against the published version.")

    @field_validator("engine", mode="before")
    @classmethod
    def _engine(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = value.strip().lower() or "duckdb"
            if value not in ENGINES:
                raise ValueError(f"must be one of {', '.join(ENGINES)}")
        return value

    @field_validator("operator_emails", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        return [e.strip() for e in value.split(",") if e.strip()] if isinstance(value, str) else value

    @field_validator("exports_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if not value:
            return None
        HttpUrl(value)  # refuses what is not an http(s) URL; the text is kept as written
        return value

    @field_validator("disclosure_threshold")
    @classmethod
    def _snds_floor(cls, value: int) -> int:
        if value < SNDS_DISCLOSURE_FLOOR:
            raise ValueError(f"below the SNDS small-cell rule (no count of 1 to {SNDS_DISCLOSURE_FLOOR - 1} people "
                             f"may leave the platform): the threshold may be raised, never set below "
                             f"{SNDS_DISCLOSURE_FLOOR}")
        return value

    @model_validator(mode="after")
    def _derived(self) -> Settings:
        # Relative paths are taken from the working directory once, here, so every module sees the same folder.
        for name in _PATHS:
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, Path(value).expanduser().resolve())
        home = self.home
        defaults = {"landing": home / "landing", "quarantine": home / "quarantine",
                    "warehouse": home / "warehouse" / "oncopipe.duckdb", "published": home / "published",
                    "exports": home / "exports", "quality": home / "quality", "airflow_home": home / "airflow",
                    "spark_warehouse": home / "warehouse" / "spark"}
        for name, default in defaults.items():
            if getattr(self, name) is None:
                object.__setattr__(self, name, default)
        if self.duckdb_temp_directory is None:
            object.__setattr__(self, "duckdb_temp_directory", Path(f"{self.warehouse}.tmp"))
        for warning, critical in (("gate_psi_warning", "gate_psi_critical"),
                                  ("gate_row_ratio_warning_max", "gate_row_ratio_critical_max")):
            if getattr(self, warning) > getattr(self, critical):
                raise ValueError(f"{variable(warning)}={getattr(self, warning)} is above {variable(critical)}="
                                 f"{getattr(self, critical)}: a warning must fire before the critical check")
        return self

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

    def warehouse_writer_slots(self) -> int:
        """Slots of the Airflow pool ``duckdb_writer`` that every warehouse task runs in, for the chosen engine.

        DuckDB takes a file lock (one writer at a time), and so does a local Spark session's embedded Derby
        metastore: 1. A Spark server (``ONCOPIPE_ENGINE=spark`` with ``ONCOPIPE_SPARK_METHOD=thrift``) takes
        concurrent sessions, so the pool no longer serialises warehouse tasks: ``warehouse_writers`` slots.
        The DAG files do not change: only the pool's size does.
        """
        return self.warehouse_writers if self.engine == "spark" and self.spark_method != "session" else 1


def variable(field: str) -> str:
    """The environment variable of a :class:`Settings` field."""
    alias = Settings.model_fields[field].validation_alias
    return alias if isinstance(alias, str) else PREFIX + field.upper()


def env_file() -> Path | None:
    """The ``.env`` file read after the environment: ``$ONCOPIPE_ENV_FILE`` (empty: none), else the checkout's."""
    given = os.environ.get(ENV_FILE_VARIABLE)
    if given is None:
        return DEFAULT_ENV_FILE
    return Path(given).expanduser() if given else None


def _where(name: str, dotenv: Path | None) -> str:
    if name in os.environ:
        return "the environment"
    if dotenv is not None and dotenv.is_file():
        pattern = re.compile(rf"^\s*(?:export\s+)?{re.escape(name)}\s*=")
        for lineno, line in enumerate(dotenv.read_text(encoding="utf-8").splitlines(), start=1):
            if pattern.match(line):
                return f"{dotenv}, line {lineno}"
    return "the defaults"


def _load(dotenv: Path | None) -> Settings:
    try:
        return Settings(_env_file=dotenv)
    except ValidationError as error:
        problems = []
        for item in error.errors():
            if not item["loc"]:
                problems.append(item["msg"].removeprefix("Value error, "))
                continue
            field = str(item["loc"][0])
            name = variable(field) if field in Settings.model_fields else field
            shown = "<secret>" if field == "admin_password" else repr(item["input"])
            # An item of a list (an address of several): say which one.
            item_of = f"item {item['loc'][1] + 1}, " if len(item["loc"]) > 1 and isinstance(item["loc"][1], int) else ""
            problems.append(f"{name}={shown} ({item_of}from {_where(name, dotenv)}): "
                            f"{item['msg'].removeprefix('Value error, ')}")
        raise SettingsError("invalid settings: " + "; ".join(problems)) from None


@functools.lru_cache(maxsize=16)
def _cached(key: tuple[Any, ...], dotenv: Path | None) -> Settings:
    return _load(dotenv)


def get_settings() -> Settings:
    """The settings of this process, validated once per distinct environment.

    The cache is keyed on the ``ONCOPIPE_*`` and ``AIRFLOW_HOME`` variables and the ``.env`` file's size and
    modification time, not held for the life of the process: the embedded runner sets the environment in-process
    before Airflow starts, and tests set variables with ``monkeypatch``; both must see their change at the next call.
    """
    dotenv = env_file()
    try:
        stat = dotenv.stat() if dotenv is not None else None
    except FileNotFoundError:
        stat = None
    key = (tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith(PREFIX) or k == "AIRFLOW_HOME")),
           (stat.st_mtime_ns, stat.st_size) if stat else None)
    return _cached(key, dotenv)


def reset_settings() -> None:
    """Forget every cached :class:`Settings` (a ``.env`` file rewritten within the file system's time resolution)."""
    _cached.cache_clear()


def warehouse_writer_slots() -> int:
    """:meth:`Settings.warehouse_writer_slots` of :func:`get_settings`."""
    return get_settings().warehouse_writer_slots()


def _type_name(annotation: Any) -> str:
    text = getattr(annotation, "__name__", None) if not getattr(annotation, "__args__", None) else None
    text = text or repr(annotation).replace("typing.", "").replace("pathlib.", "").replace("pydantic.types.", "")
    text = re.sub(r"Annotated\[([^,\]]+(?:\[[^\]]*\])?), .*\]$", r"\1", text)
    return text.replace("Optional[", "").replace("NoneType", "None").replace("pydantic.networks.", "")


def _default(name: str) -> str:
    info = Settings.model_fields[name]
    if info.default_factory is not None:
        return "(empty)"
    if info.default is None:
        return "(derived)" if name in _PATHS else "(unset)"
    if isinstance(info.default, Path):
        return "`<checkout>/" + info.default.relative_to(PROJECT_ROOT).as_posix() + "`"
    return f"`{info.default}`"


def settings_table() -> str:
    """The Markdown page of every setting (variable, type, default, description), from the fields."""
    lines = [
        "# Settings",
        "",
        "Generated from `plugins/oncopipe/contracts/settings.py` by `python -m oncopipe.contracts.settings --write`;",
        "`tests/unit/contracts/test_settings.py` fails when this page and the fields disagree. Do not edit by hand.",
        "",
        "Precedence: the process environment, then the `.env` file (`$ONCOPIPE_ENV_FILE`, empty for none; default",
        "`.env` at the top of the checkout), then the default. A value that does not validate stops the platform with",
        "an error naming the variable, the value and where it was read.",
        "",
        "| variable | type | default | description |",
        "|---|---|---|---|",
    ]
    for name, info in Settings.model_fields.items():
        # A derived path is never None once validated: None only means "derive it".
        kind = ("Path" if name in _PATHS else _type_name(info.annotation)).replace("|", "\\|")
        description = (info.description or "").replace("|", "\\|")
        lines.append(f"| `{variable(name)}` | `{kind}` | {_default(name)} | {description} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    """``python -m oncopipe.contracts.settings [--write]``: print or write ``docs/settings.md``."""
    parser = argparse.ArgumentParser(prog="python -m oncopipe.contracts.settings")
    parser.add_argument("--write", action="store_true", help=f"write {DOCS_TABLE.relative_to(PROJECT_ROOT)}")
    if parser.parse_args(argv).write:
        DOCS_TABLE.write_text(settings_table(), encoding="utf-8")
        print(f"wrote {DOCS_TABLE}")
    else:
        print(settings_table(), end="")


if __name__ == "__main__":
    main()
