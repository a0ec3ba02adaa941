import re
from pathlib import Path

import pytest
from oncopipe.contracts.settings import (
    DOCS_TABLE,
    PROJECT_ROOT,
    Settings,
    SettingsError,
    get_settings,
    reset_settings,
    settings_table,
    variable,
)
from oncopipe.warehouse.dbt_runner import dbt_environment


def test_defaults_live_under_home(oncopipe_home):
    s = get_settings()
    assert s.home == oncopipe_home
    for p in (s.landing, s.quarantine, s.warehouse, s.published, s.exports, s.quality, s.airflow_home):
        assert oncopipe_home in p.parents


def test_each_path_can_be_overridden(oncopipe_home, monkeypatch, tmp_path):
    monkeypatch.setenv("ONCOPIPE_LANDING", str(tmp_path / "elsewhere"))
    assert get_settings().landing == (tmp_path / "elsewhere").resolve()


def test_default_home_is_the_ignored_var_folder(monkeypatch):
    monkeypatch.delenv("ONCOPIPE_HOME", raising=False)
    assert get_settings().home == PROJECT_ROOT / "var"
    assert "var/" in Path(PROJECT_ROOT / ".gitignore").read_text().splitlines()


# --- the typed settings object (issue #21): env, .env file, precedence, errors, cache, generated docs


@pytest.fixture()
def env_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private ``.env`` file the settings read (nothing in the environment shadows the variables written to it)."""
    path = tmp_path / ".env"
    monkeypatch.setenv("ONCOPIPE_ENV_FILE", str(path))
    for name in ("ONCOPIPE_SPARK_PORT", "ONCOPIPE_ENGINE", "ONCOPIPE_DISCLOSURE_THRESHOLD", "ONCOPIPE_DBT_THREADS"):
        monkeypatch.delenv(name, raising=False)
    return path


def test_a_variable_from_the_environment(oncopipe_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ONCOPIPE_DISCLOSURE_THRESHOLD", "12")
    monkeypatch.setenv("ONCOPIPE_OPERATOR_EMAILS", " ops@example.org, ,oncall@example.org")
    s = get_settings()
    assert s.disclosure_threshold == 12
    assert s.operator_emails == ["ops@example.org", "oncall@example.org"]


def test_variables_from_the_env_file(oncopipe_home: Path, env_file: Path) -> None:
    env_file.write_text("# deployment\nONCOPIPE_ENGINE=spark\nexport ONCOPIPE_SPARK_PORT=10001\n", encoding="utf-8")
    s = get_settings()
    assert (s.engine, s.spark_port) == ("spark", 10001)


def test_the_environment_beats_the_env_file_which_beats_the_default(oncopipe_home: Path, env_file: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    assert get_settings().spark_port == 10000  # no file yet: the default
    env_file.write_text("ONCOPIPE_SPARK_PORT=10001\nONCOPIPE_DBT_THREADS=3\n", encoding="utf-8")
    monkeypatch.setenv("ONCOPIPE_SPARK_PORT", "10002")
    s = get_settings()
    assert (s.spark_port, s.dbt_threads) == (10002, 3)


def test_an_empty_env_file_variable_reads_no_file(oncopipe_home: Path, env_file: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    env_file.write_text("ONCOPIPE_SPARK_PORT=10001\n", encoding="utf-8")
    monkeypatch.setenv("ONCOPIPE_ENV_FILE", "")
    assert get_settings().spark_port == 10000


def test_a_bad_value_in_the_env_file_names_variable_value_file_and_line(oncopipe_home: Path, env_file: Path) -> None:
    env_file.write_text("ONCOPIPE_ENGINE=duckdb\n\nONCOPIPE_SPARK_PORT=ten thousand\n", encoding="utf-8")
    with pytest.raises(SettingsError, match=re.escape(f"ONCOPIPE_SPARK_PORT='ten thousand' (from {env_file}, line 3)")):
        get_settings()


@pytest.mark.parametrize(("name", "value", "named", "says"), [
    ("ONCOPIPE_DBT_THREADS", "0", "='0' (from the environment)", "greater than or equal to 1"),
    ("ONCOPIPE_OPERATOR_EMAILS", "ops@example.org,not-an-address", "='not-an-address' (item 2, from the environment)",
     "not a valid email address"),
    ("ONCOPIPE_EXPORTS_URL", "exports.example.org", "='exports.example.org' (from the environment)", "URL"),
    ("ONCOPIPE_SPARK_DRIVER_MEMORY", "lots", "='lots' (from the environment)", "should match pattern"),
])
def test_a_bad_value_in_the_environment_names_the_variable(oncopipe_home: Path, monkeypatch: pytest.MonkeyPatch,
                                                           name: str, value: str, named: str, says: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError, match=re.escape(name + named)) as error:
        get_settings()
    assert says in str(error.value)


@pytest.mark.parametrize("value", ["9", "1", "0"])
def test_a_disclosure_threshold_below_the_snds_floor_is_refused(oncopipe_home: Path, monkeypatch: pytest.MonkeyPatch,
                                                                value: str) -> None:
    monkeypatch.setenv("ONCOPIPE_DISCLOSURE_THRESHOLD", value)
    with pytest.raises(SettingsError, match=rf"ONCOPIPE_DISCLOSURE_THRESHOLD='{value}' .*SNDS small-cell rule.*"
                                            r"never set below 10"):
        get_settings()


def test_a_warning_threshold_above_its_critical_one_is_refused(oncopipe_home: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ONCOPIPE_GATE_PSI_WARNING", "1.5")
    with pytest.raises(SettingsError, match="ONCOPIPE_GATE_PSI_WARNING=1.5 is above ONCOPIPE_GATE_PSI_CRITICAL=1.0"):
        get_settings()


def test_settings_are_cached_per_environment(oncopipe_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = get_settings()
    assert get_settings() is first
    monkeypatch.setenv("ONCOPIPE_DBT_THREADS", "5")
    assert get_settings().dbt_threads == 5
    monkeypatch.delenv("ONCOPIPE_DBT_THREADS")
    reset_settings()
    assert get_settings() == first and get_settings() is not first


def test_the_committed_settings_page_is_the_generated_one() -> None:
    assert DOCS_TABLE.read_text(encoding="utf-8") == settings_table(), \
        "docs/settings.md is out of date: python -m oncopipe.contracts.settings --write"
    for name in Settings.model_fields:
        assert f"`{variable(name)}`" in settings_table()


def test_dbt_is_given_every_variable_its_project_reads(oncopipe_home: Path) -> None:
    read = set()
    for path in (PROJECT_ROOT / "dbt_project").rglob("*"):
        if path.suffix in (".yml", ".sql") and "target" not in path.parts and "dbt_packages" not in path.parts:
            read |= set(re.findall(r"env_var\(\s*['\"](ONCOPIPE_\w+)['\"]", path.read_text(encoding="utf-8")))
    assert read, "the dbt project reads no ONCOPIPE_ variable: the scan is broken"
    assert read <= set(dbt_environment(get_settings()))


def test_the_modules_that_read_variables_before_now_take_them_from_the_settings(oncopipe_home: Path, env_file: Path,
                                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from oncopipe.orchestration.alerts import operator_emails
    from oncopipe.orchestration.embedded import airflow_environment
    from oncopipe.warehouse.spark_engine import session_conf

    # From the .env file, which these modules never read when they read os.environ themselves.
    env_file.write_text("ONCOPIPE_SPARK_CORES=3\nONCOPIPE_OPERATOR_EMAILS=ops@example.org\n"
                        "ONCOPIPE_MAIL_OPTIONAL=false\n", encoding="utf-8")
    s = get_settings()
    assert session_conf(s)["spark.master"] == "local[3]"
    assert operator_emails() == ["ops@example.org"]
    assert airflow_environment(s)["ONCOPIPE_MAIL_OPTIONAL"] == "0"
    assert dbt_environment(s)["ONCOPIPE_SPARK_CORES"] == "3"
    env_file.write_text("", encoding="utf-8")  # the cache sees the file change (its size)
    assert airflow_environment(get_settings())["ONCOPIPE_MAIL_OPTIONAL"] == "1"  # unset: optional when embedded
