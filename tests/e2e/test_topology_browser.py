"""The operator's view of the production topology, with real content: after tests/integration/test_topology.py.

Same session topology as tests/e2e/test_ui_browser.py (tests/native_topology.py: PostgreSQL, Redis, a Celery worker,
every Airflow process), but these tests run after the topology tests (marker ``after_refresh``, last in
tests/conftest.py's order, in the same xdist group): one extraction landed and refreshed (the scheduler SIGKILLed on
the way), every approved study exported, then a faulty extraction refused at its raw gate, whose failure mail is in
the session's mailbox. Headless Chromium opens every page of the Plugins menu (Quality gates, Data Docs, dbt docs,
Exports), the log of a task of the successful refresh and the failed gate's log by the link of its failure mail. Any
console error, HTTP answer >= 400 or request to a host other than 127.0.0.1 fails the test. Screenshots go to
``tests/e2e/artifacts/topology/`` (git-ignored).

Cost: no topology of its own; 54 s in all (browser start 6 s, six tests 43 s, stop 15 s), measured in a run of
``-m "topology or airflow_ui"`` (15 passed in 419 s) on this 2-core machine at a load of 5-6.
"""

from __future__ import annotations

import json
import re
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest
from native_topology import ADMIN, PASSWORD
from support.browser import CHROMIUM, CHROMIUM_ARGS, BrowserWatch, open_log_at, open_view, settle

ARTIFACTS = Path(__file__).parent / "artifacts" / "topology"
REFRESH = "platform_refresh"
FIRST = "2025-03-31"  # tests/integration/test_topology.py's extractions
FAULTY = "2025-09-30"

pytestmark = [pytest.mark.e2e, pytest.mark.airflow_ui, pytest.mark.after_refresh,
              pytest.mark.skipif(not Path(CHROMIUM).exists(),
                                 reason=f"no Chromium at {CHROMIUM} (make test installs the Debian package chromium)")]


@pytest.fixture(scope="module")
def data(native_airflow) -> Path:
    """The topology's ONCOPIPE_HOME; skip unless the topology tests published a version before this module."""
    home = Path(native_airflow.environment["ONCOPIPE_HOME"])
    if not (home / "published" / "CURRENT").exists():
        pytest.skip("nothing published: these tests need tests/integration/test_topology.py's refresh first")
    return home


@pytest.fixture(scope="module")
def browser_page(native_airflow, data) -> Iterator:
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 900}, base_url=native_airflow.api_url)
        page.set_default_timeout(60_000)
        watch = BrowserWatch(page)
        page.goto("/")
        page.get_by_label("Username").fill(ADMIN)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(native_airflow.api_url + "/", timeout=60_000)
        watch.take()  # before login the page asks /ui/config and gets 401, by design; from here on nothing may fail
        yield page, watch
        browser.close()


def shot(page, name: str) -> None:
    settle(page)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def test_quality_gates_show_the_accepted_and_the_refused_extraction(browser_page):
    page, watch = browser_page
    frame = open_view(page, "Quality gates")
    runs = frame.locator("#gate-runs")
    runs.wait_for()
    text = runs.inner_text()
    assert FIRST in text and FAULTY in text, text[:500]
    assert runs.locator("tr.failed").count() >= 1, "the raw gate's refusal is not shown"
    assert runs.locator("tr").count() >= 3, "the accepted extraction's gates are not shown"
    shot(page, "01_quality_gates")
    watch.assert_clean("Quality gates")


def test_data_docs_list_the_validations_offline(browser_page):
    page, watch = browser_page
    frame = open_view(page, "Data Docs (GX)")
    frame.get_by_text("Validation Results").first.wait_for()
    rows = frame.locator("table tbody tr")
    rows.first.wait_for()
    assert rows.count() >= 2, "the Data Docs list no validation"
    assert frame.locator("body").evaluate("() => typeof window.jQuery === 'function' && "
                                          "typeof window.jQuery.fn.bootstrapTable === 'function'")
    shot(page, "02_data_docs_index")
    rows.first.click()
    frame.get_by_text("Overview").first.wait_for()
    assert frame.locator("body").inner_text().strip(), "empty validation page"
    shot(page, "03_data_docs_validation")
    watch.assert_clean("Data Docs")


def test_dbt_docs_of_the_published_version(browser_page, data):
    current = (data / "published" / "CURRENT").read_text().strip()
    manifest = json.loads((data / "published" / current / "dbt_docs" / "manifest.json").read_text())
    assert manifest["exposures"], "the published dbt docs hold no exposure (study)"
    page, watch = browser_page
    frame = open_view(page, "dbt docs")
    frame.locator(":text-is('Exposures'):visible").first.wait_for()
    frame.locator(":text-is('Sources'):visible").first.wait_for()
    shot(page, "04_dbt_docs")
    frame.locator(":text-is('Analysis'):visible").first.click()  # the exposures' folder: one per study
    frame.locator(":text('TRADHOR'):visible").first.click()
    frame.get_by_text("Depends On", exact=False).first.wait_for()
    shot(page, "05_dbt_docs_exposure")
    watch.assert_clean("dbt docs")


def test_exports_list_every_study_exported_by_the_topology(browser_page, data):
    studies = [p.name for p in (data / "exports").iterdir() if p.is_dir() and not p.name.startswith(("_", "."))]
    assert len(studies) >= 3, studies
    page, watch = browser_page
    frame = open_view(page, "Exports")
    for study in studies:
        frame.get_by_text(study, exact=False).first.wait_for()
    shot(page, "06_exports")
    frame.get_by_role("link", name="report").first.click()
    frame.get_by_role("heading").first.wait_for()
    assert len(frame.locator("body").inner_text()) > 200, "empty report"
    shot(page, "07_export_report")
    watch.assert_clean("Exports")


def test_a_task_log_of_the_refresh_is_readable_under_celery(browser_page, airflow_api):
    """Tasks ran in the Celery worker (no log server: --skip-serve-logs); the api-server reads their log files."""
    api = airflow_api
    runs = [r for r in api.runs(REFRESH) if r["state"] == "success"
            and api.task_states(REFRESH, r["dag_run_id"]).get("publish") == "success"]
    assert runs, "no refresh run that published"
    run_id = runs[0]["dag_run_id"]
    events = api.log_events(REFRESH, run_id, "publish")
    assert not [e for e in events if "Could not read" in e], events[:8]
    # A line the view shows unfolded: outside the ::group:: sections (sources, pre-execution), one line long.
    shown, depth = [], 0
    for event in events:
        if event.startswith("::group::"):
            depth += 1
        elif event.startswith("::endgroup::"):
            depth = max(0, depth - 1)
        elif depth == 0 and 12 <= len(event) <= 90 and "\n" not in event:
            shown.append(event)
    assert shown, events[:20]
    page, watch = browser_page
    try:
        open_log_at(page, f"/dags/{REFRESH}/runs/{urllib.parse.quote(run_id, safe='')}/tasks/publish", shown[-1])
        assert page.get_by_text("Could not read served logs").count() == 0
    finally:
        shot(page, "08_log_publish")
    watch.assert_clean("log of platform_refresh.publish")


def test_the_failure_mail_link_opens_the_failed_gate_log_with_its_message_first(browser_page, mailbox,
                                                                                native_airflow):
    mail = mailbox.wait_for(f"FAILED {REFRESH}.raw_gate", timeout=5)
    link = re.search(r"^Log: (\S+)", mail, re.MULTILINE).group(1)
    assert link.startswith(f"{native_airflow.api_url}/dags/{REFRESH}/runs/"), link
    page, watch = browser_page
    try:
        first = open_log_at(page, link, f"Task failed: raw gate failed for extraction {FAULTY}")
        assert first.is_visible()
        assert page.get_by_text("Could not read served logs").count() == 0
    finally:
        shot(page, "09_log_failed_raw_gate")
    watch.assert_clean("the failed raw gate's log")
