"""The real Airflow UI in headless Chromium: login, every DAG listed, the operator views, a platform refresh.

The api-server is the session's native topology (tests/native_topology.py: PostgreSQL metadata, scheduler,
dag-processor, triggerer, a Celery worker on Redis). These tests run before the topology tests, so nothing is
landed yet: the refresh triggered from the UI finds no new extraction and succeeds with its tasks skipped (the
full refresh, with a crash in the middle, is tests/integration/test_topology.py, right after), and the operator
views show their empty states. Chromium is Debian's, driven by Playwright. Screenshots go to
``tests/e2e/artifacts/`` (git-ignored).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from native_topology import ADMIN, PASSWORD
from support.browser import open_view
from support.native_harness import AirflowApi

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
ARTIFACTS = Path(__file__).parent / "artifacts"
REFRESH = "platform_refresh"

pytestmark = [pytest.mark.e2e, pytest.mark.airflow_ui,
              pytest.mark.skipif(not Path(CHROMIUM).exists(),
                                 reason=f"no Chromium at {CHROMIUM} (make test installs the Debian package chromium)")]


def _expected_dag_ids() -> set[str]:
    from oncopipe.studies.registry import scan_registry

    return {REFRESH} | {entry.study.dag_id for entry in scan_registry(check_kinds=False) if entry.study}


@pytest.fixture(scope="module")
def api(airflow_api) -> AirflowApi:
    return airflow_api


@pytest.fixture(scope="module")
def page(native_airflow) -> Iterator:
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 900}, base_url=native_airflow.api_url)
        page.set_default_timeout(60_000)
        page.goto("/")
        page.get_by_label("Username").fill(ADMIN)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(native_airflow.api_url + "/", timeout=60_000)
        yield page
        browser.close()


def shot(page, name: str) -> Path:
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def _wait_parsed(api: AirflowApi, expected: set[str], timeout: float = 240.0) -> dict[str, dict]:
    """DAGs appear once the dag-processor parsed them: poll the API until all expected are there."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        dags = api.dags()
        if expected <= set(dags) or time.monotonic() > deadline:
            return dags
        time.sleep(1)


def test_every_dag_is_listed_without_import_error(page, api):
    expected = _expected_dag_ids()
    dags = _wait_parsed(api, expected)
    assert api.import_errors() == []
    assert expected <= set(dags), f"missing DAGs: {expected - set(dags)}"
    page.goto("/dags")
    for dag_id in sorted(expected):
        page.get_by_role("link", name=dag_id, exact=True).first.wait_for()
    assert page.get_by_text("Dag Import Errors").count() == 0
    shot(page, "01_dags")


@pytest.mark.parametrize("view, missing", [
    ("Quality gates", "history.sqlite"),
    ("Data Docs (GX)", "data_docs"),
    ("dbt docs", "index.html"),
    ("Exports", "exports"),
])
def test_operator_view_from_the_navigation_shows_its_empty_state(page, view, missing):
    frame = open_view(page, view)
    frame.get_by_role("heading", name=view).wait_for()
    empty = frame.locator("#empty-state")
    empty.wait_for()
    assert "Nothing to show yet" in empty.inner_text() and missing in empty.inner_text()
    shot(page, f"02_view_{view.split()[0].lower()}")


def test_trigger_platform_refresh_and_see_it_succeed(page, api):
    before = {r["dag_run_id"] for r in api.runs(REFRESH)}
    page.goto(f"/dags/{REFRESH}")
    page.get_by_role("button", name="Trigger").first.click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_text("Single Run", exact=True).wait_for()
    shot(page, "03_trigger_dialog")
    dialog.get_by_role("button", name="Trigger").click()
    run_id = _new_run(api, before)
    state = api.wait_run(REFRESH, run_id, timeout=300)
    assert state == "success", api.task_states(REFRESH, run_id)
    assert api.task_states(REFRESH, run_id)["find_extraction"] == "skipped", "nothing was landed"
    page.goto(f"/dags/{REFRESH}/runs/{run_id}")
    page.get_by_text("success").first.wait_for()
    shot(page, "04_refresh_succeeded")


def _new_run(api: AirflowApi, before: set[str], timeout: float = 60.0) -> str:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        new = [r for r in api.runs(REFRESH) if r["dag_run_id"] not in before and r["run_type"] == "manual"]
        if new:
            return new[0]["dag_run_id"]
        time.sleep(0.5)
    raise AssertionError("the Trigger button created no manual run of platform_refresh")
