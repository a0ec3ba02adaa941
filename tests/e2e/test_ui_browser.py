"""The real Airflow UI in headless Chromium: login, every DAG listed, the operator views, a platform refresh.

The api-server (with scheduler, dag-processor and triggerer; LocalExecutor on a fresh PostgreSQL database)
is started by the test through the native topology harness, on the demo-scale extraction. Screenshots go to
``tests/e2e/artifacts/`` (git-ignored).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from oncopipe.native import AirflowApi, NativeTopology, ephemeral_topology

pytestmark = [pytest.mark.e2e]

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
ARTIFACTS = Path(__file__).parent / "artifacts"
PASSWORD = "e2e-admin-password"
REFRESH = "platform_refresh"
DATABASE = "oncopipe_airflow_e2e"


def _expected_dag_ids() -> set[str]:
    from oncopipe.studies import scan_registry

    return {REFRESH} | {entry.study.dag_id for entry in scan_registry(check_kinds=False) if entry.study}


@pytest.fixture(scope="module")
def airflow(tmp_path_factory) -> Iterator[NativeTopology]:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (make test installs the Debian package chromium)")
    from oncopipe.commands.demo import DEMO_EXTRACTION_DATE, DEMO_PATIENTS, DEMO_SEED
    from oncopipe.synth.extraction import generate

    root = tmp_path_factory.mktemp("e2e")
    generate(root / "data" / "landing", DEMO_PATIENTS, DEMO_SEED, DEMO_EXTRACTION_DATE)
    with ephemeral_topology(root, DATABASE, celery=False, admin_password=PASSWORD) as harness:
        yield harness


@pytest.fixture(scope="module")
def api(airflow) -> AirflowApi:
    return AirflowApi(airflow.api_url, "admin", PASSWORD)


@pytest.fixture(scope="module")
def page(airflow):
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 900}, base_url=airflow.api_url)
        page.set_default_timeout(60_000)
        page.goto("/")
        page.get_by_label("Username").fill("admin")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(airflow.api_url + "/", timeout=60_000)
        yield page
        browser.close()


def shot(page, name: str) -> Path:
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def _wait_parsed(api: AirflowApi, expected: set[str], timeout: float = 120.0) -> dict[str, dict]:
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


def _open_view(page, name: str):
    """Open an operator view from the UI navigation (the Plugins menu); return the frame it is embedded in."""
    page.goto("/")
    page.get_by_role("button", name="Plugins").click()
    page.get_by_role("menuitem", name=name).click()
    frame = page.frame_locator("iframe").first
    frame.locator("body").wait_for()
    return frame


def test_quality_view_from_the_navigation(page):
    frame = _open_view(page, "Quality gates")
    frame.get_by_role("heading", name="Quality gates").wait_for()
    shot(page, "02_quality_before_refresh")


def test_exports_view_from_the_navigation(page):
    frame = _open_view(page, "Exports")
    frame.get_by_role("heading", name="Exports").or_(frame.locator("body")).first.wait_for()
    shot(page, "03_exports_before_refresh")


def test_trigger_platform_refresh_and_see_it_succeed(page, api):
    page.goto(f"/dags/{REFRESH}")
    page.get_by_role("button", name="Trigger").first.click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_text("Single Run").wait_for()
    dialog.get_by_role("button", name="Trigger").click()
    shot(page, "04_refresh_triggered")
    run_id = _newest_run(api)
    state = api.wait_run(REFRESH, run_id, timeout=600)
    assert state == "success", api.task_states(REFRESH, run_id)
    page.goto(f"/dags/{REFRESH}/runs/{run_id}")
    page.get_by_text("success").first.wait_for()
    shot(page, "05_refresh_succeeded")


def _newest_run(api: AirflowApi, timeout: float = 30.0) -> str:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = api.runs(REFRESH)
        if runs:
            return runs[0]["dag_run_id"]
        time.sleep(0.5)
    raise AssertionError("the trigger button created no run of platform_refresh")


def test_quality_view_shows_the_gate_history_after_the_refresh(page):
    frame = _open_view(page, "Quality gates")
    table = frame.locator("#quality-history")
    table.wait_for()
    assert table.locator("tbody tr").count() > 0
    shot(page, "06_quality_after_refresh")


def test_data_docs_view_serves_the_gx_site(page):
    frame = _open_view(page, "Data Docs (GX)")
    frame.locator("body").wait_for()
    assert frame.locator("#empty-state").count() == 0, "Data Docs missing after a refresh"
    shot(page, "07_data_docs")
