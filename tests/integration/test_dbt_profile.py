"""The committed dbt profile keeps working after DuckDB has spilled to disk.

dbt-duckdb opens one cursor per model or test and re-applies the profile's ``settings:`` on each with ``SET``;
DuckDB refuses ``SET temp_directory`` once a query has spilled ("Cannot switch temporary directory after the current
one has been used"), which failed the 1,000,000-patient build in staging. The profile renders through dbt itself
and the cursors are opened by dbt-duckdb's own environment, so the test fails if a setting that cannot be re-applied
after a spill comes back into ``settings:``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from dbt.adapters.duckdb.credentials import DuckDBCredentials
from dbt.adapters.duckdb.environments.local import LocalEnvironment
from dbt.config.profile import read_profile
from dbt.config.renderer import ProfileRenderer
from dbt_common.context import set_invocation_context
from oncopipe.contracts.settings import DBT_PROJECT_DIR


@pytest.fixture
def credentials(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("ONCOPIPE_HOME", str(tmp_path))
    for var in ("ONCOPIPE_WAREHOUSE", "ONCOPIPE_LANDING", "ONCOPIPE_DUCKDB_TEMP_DIRECTORY"):
        monkeypatch.delenv(var, raising=False)
    (tmp_path / "warehouse").mkdir()
    set_invocation_context(os.environ)  # what dbt's runner does before it renders env_var()
    output = read_profile(str(DBT_PROJECT_DIR))["oncopipe"]["outputs"]["local"]
    rendered = ProfileRenderer({}).render_data(output)
    return DuckDBCredentials.from_dict({k: v for k, v in rendered.items() if k not in ("type", "threads")})


def test_new_cursors_after_a_spill(credentials, tmp_path: Path) -> None:
    env = LocalEnvironment(credentials)
    first = env.handle()
    try:
        cursor = first.cursor()
        # A sort far larger than a 100 MB budget spills to the temporary directory.
        cursor.execute("set memory_limit = '100MB'")
        cursor.execute("create table spilled as select md5(i::varchar) as h from range(2500000) r(i) order by h")
        temp = Path(cursor.execute("select current_setting('temp_directory')").fetchone()[0])
        assert temp == tmp_path / "warehouse" / "oncopipe.duckdb.tmp"
        assert temp.is_dir(), "the sort did not spill: the test would not exercise the temporary directory"
        for _ in range(2):  # what dbt does for the next model / test
            handle = env.handle()
            cur = handle.cursor()
            assert cur.execute("select count(*) from spilled").fetchone()[0] == 2_500_000
            assert cur.execute("select current_setting('threads')").fetchone()[0] == 2
            handle.close()
    finally:
        first.close()
        env.close()
