"""The operator's view under ``oncopipe ui``, clicked through in headless Chromium after a demo run.

The platform is the session's embedded scenario (tests/support/embedded_scenario.py, shared with
tests/integration/test_dag_e2e.py): three extractions landed and operated through Airflow, the last one refused at
its raw gate for a critical fault, every approved study exported. On a copy of its home, ``oncopipe ui`` starts once
(airflow standalone on 127.0.0.1, a free port); the same start is checked as the command a user runs (health, the
printed login, every DAG listed without import errors, no log server, and after SIGINT no process of its session
left: this was tests/dags/test_ui_live.py, which paid a standalone start of its own).
The browser logs in and opens every page of the Plugins menu (Quality gates, Data Docs, dbt docs, Exports), a
task log of each DAG and the Assets graph. Any console error, any HTTP answer >= 400, any request to a host
other than 127.0.0.1 or an empty page fails the test. Screenshots go under the test's tmp folder
(``<tmp>/screens/``; the path is printed).

While the UI runs, the scheduler must run the DAGs on their own: ``oncopipe ui`` un-pauses them, and the hourly
``platform_refresh`` gets a scheduled run, whose tasks the LocalExecutor runs through the api-server's execution
API (on the UI's port, not Airflow's default 8080).

Cost, measured before the platform was shared, at a load average of 10-11 on this 2-core machine: 620 s in all
(the ``oncopipe run`` of its own 408 s, standalone's start to every DAG un-paused 78 s; the tests 80 s; the stop
30 s). Marked ``slow`` and ``e2e``: it runs in ``make test`` with the other slow tests.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from oncopipe.commands.ui import all_healthy, port_in_use
from oncopipe.orchestration.native import TopologyError, free_port
from oncopipe.orchestration.processes import live_processes
from oncopipe.studies.registry import scan_registry
from support.browser import CHROMIUM, CHROMIUM_ARGS, BrowserWatch, open_log_at, open_view, settle
from support.embedded_scenario import FAULTY, FIRST
from support.native_harness import AirflowApi

START_TIMEOUT_S = 420.0
#: What `oncopipe ui` allows itself after SIGINT (INTERRUPT_GRACE_S + 2 x TERMINATE_GRACE_S) plus its own exit.
STOP_TIMEOUT_S = 100.0

pytestmark = [pytest.mark.e2e, pytest.mark.slow,
              pytest.mark.skipif(not Path(CHROMIUM).exists(),
                                 reason=f"no Chromium at {CHROMIUM} (make test installs the Debian package chromium)")]


@dataclass
class EmbeddedUi:
    base_url: str
    password: str
    home: Path
    screens: Path
    api: AirflowApi
    log: Path
    pid: int
    timings: dict[str, float] = field(default_factory=dict)


def _session_processes(sid: int) -> list[str]:
    """``<pid> <name>`` of the live processes of a session (zombies excluded: they wait for their parent)."""
    return [f"{pid} {name}" for pid, name in live_processes(session=sid).items()]


@pytest.fixture(scope="module")
def embedded_ui(tmp_path_factory, embedded_scenario) -> Iterator[EmbeddedUi]:
    root = tmp_path_factory.mktemp("operator_browser")
    home = root / "home"
    # A copy: the UI's scheduler runs DAGs on their schedules, and the scenario's own assertions read its home.
    shutil.copytree(embedded_scenario[0], home, symlinks=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ONCOPIPE_", "AIRFLOW"))}
    env["ONCOPIPE_HOME"] = str(home)
    timings = {}
    port = free_port()
    log = root / "ui.log"
    started = time.monotonic()
    with log.open("w") as sink:
        proc = subprocess.Popen([str(Path(sys.executable).with_name("oncopipe")), "ui", "--port", str(port)],
                                env=env, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        while "un-paused, running on their schedules" not in log.read_text():
            assert proc.poll() is None, f"oncopipe ui exited with {proc.returncode}:\n{log.read_text()[-3000:]}"
            assert time.monotonic() - started < START_TIMEOUT_S, f"not ready in time:\n{log.read_text()[-3000:]}"
            time.sleep(1)
        timings["ui start"] = time.monotonic() - started
        text = log.read_text()
        password = re.search(r"login: admin / (\S+)", text).group(1)
        assert "ready:" in text and "un-paused, running on their schedules: platform_refresh" in text, text[-3000:]
        base = f"http://127.0.0.1:{port}"
        screens = root / "screens"
        screens.mkdir()
        print(f"\nscreenshots: {screens}")
        yield EmbeddedUi(base, password, home, screens, AirflowApi(base, "admin", password), log, proc.pid, timings)
    finally:
        stop_started = time.monotonic()
        proc.send_signal(signal.SIGINT)
        try:
            code = proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            code = None
        timings["stop"] = time.monotonic() - stop_started
        drain = time.monotonic() + 10  # helpers of the command itself (multiprocessing's resource tracker) end
        while (left := _session_processes(proc.pid)) and time.monotonic() < drain:  # when it has exited
            time.sleep(0.2)
        for pid in (int(p.split()[0]) for p in left):  # never leave them running, even when the test fails
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        print(f"timings: {json.dumps({k: round(v, 1) for k, v in timings.items()})}")
    # Ctrl-C stops every process the command started (reported as an error of the module's last test if not).
    assert code == 0, log.read_text()[-3000:]
    assert left == [], left
    assert "airflow standalone stopped (SIGINT)" in log.read_text(), log.read_text()[-3000:]
    assert not port_in_use(port)


def test_ui_serves_with_the_printed_login_and_lists_every_dag(embedded_ui):
    base = embedded_ui.base_url
    api = AirflowApi(base, "admin", embedded_ui.password)  # logs in with the password the command printed
    assert all_healthy(api.health())
    with pytest.raises(TopologyError, match=r"auth/token: HTTP 40[13]"):
        AirflowApi(base, "admin", "wrong")
    expected = {"platform_refresh"} | {e.study.dag_id for e in scan_registry(check_kinds=False) if e.study}
    deadline = time.monotonic() + 120
    while True:  # the dag-processor writes the DAGs shortly after it reports healthy
        dags = set(api.dags())
        if dags >= expected or time.monotonic() > deadline:
            break
        time.sleep(2)
    assert dags == expected
    assert api.import_errors() == []
    # No log server was started (the scheduler and triggerer run with --skip-serve-logs).
    assert not [p for p in _session_processes(embedded_ui.pid) if "serve-l" in p]


@pytest.fixture(scope="module")
def browser_page(embedded_ui):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 900}, base_url=embedded_ui.base_url)
        page.set_default_timeout(60_000)
        watch = BrowserWatch(page)
        page.goto("/")
        page.get_by_label("Username").fill("admin")
        page.get_by_label("Password").fill(embedded_ui.password)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(embedded_ui.base_url + "/", timeout=60_000)
        # Before login the page asks /ui/config and gets 401 (Airflow's login page does so by design); from here
        # on, nothing may fail.
        watch.take()
        yield page, watch
        browser.close()


def _shot(ui: EmbeddedUi, page, name: str) -> None:
    page.screenshot(path=str(ui.screens / f"{name}.png"), full_page=True)


def test_quality_gates_page_shows_the_refused_extraction(embedded_ui, browser_page):
    page, watch = browser_page
    frame = open_view(page, "Quality gates")
    runs = frame.locator("#gate-runs")
    runs.wait_for()
    assert runs.locator("tr.failed").count() >= 1, "the raw gate's refusal is not shown"
    assert FAULTY in runs.inner_text() and FIRST in runs.inner_text()
    assert frame.locator("#quality-history tr.failed").count() >= 1
    settle(page)
    _shot(embedded_ui, page, "01_quality_gates")
    watch.assert_clean("Quality gates")


def test_data_docs_load_offline_and_list_the_validations(embedded_ui, browser_page):
    page, watch = browser_page
    frame = open_view(page, "Data Docs (GX)")
    frame.get_by_text("Validation Results").first.wait_for()
    rows = frame.locator("table tbody tr")
    rows.first.wait_for()
    assert rows.count() >= 2, "the Data Docs list no validation"
    assert frame.locator("body").evaluate("() => typeof window.jQuery === 'function' && "
                                          "typeof window.jQuery.fn.bootstrapTable === 'function'")
    settle(page)
    _shot(embedded_ui, page, "02_data_docs_index")
    frame.locator("a[href*='expectations/']").first.click()  # one suite page (the index links each suite)
    frame.get_by_text("Expectation Suite Name").first.wait_for()
    settle(page)
    _shot(embedded_ui, page, "03_data_docs_suite")
    frame = open_view(page, "Data Docs (GX)")
    frame.locator("table tbody tr").first.click()  # one validation result page (a row opens it)
    frame.get_by_text("Overview").first.wait_for()
    settle(page)
    _shot(embedded_ui, page, "03_data_docs_validation")
    assert frame.locator("body").inner_text().strip(), "empty validation page"
    watch.assert_clean("Data Docs")


def test_dbt_docs_of_the_published_version_show_the_lineage_to_the_exposures(embedded_ui, browser_page):
    current = (embedded_ui.home / "published" / "CURRENT").read_text().strip()
    docs = embedded_ui.home / "published" / current / "dbt_docs"
    manifest = json.loads((docs / "manifest.json").read_text())
    assert json.loads((docs / "catalog.json").read_text())["nodes"], "empty catalog"
    # Lineage: every exposure reads marts, and walking up from them reaches the SNDS sources.
    parents = manifest["parent_map"]
    for exposure in (k for k in manifest["exposures"]):
        seen, todo = set(), list(parents[exposure])
        while todo:
            node = todo.pop()
            if node not in seen:
                seen.add(node)
                todo.extend(parents.get(node, []))
        assert any(n.startswith("source.") for n in seen), exposure
    page, watch = browser_page
    frame = open_view(page, "dbt docs")
    frame.locator(":text-is('Exposures'):visible").first.wait_for()
    frame.locator(":text-is('Sources'):visible").first.wait_for()
    settle(page)
    _shot(embedded_ui, page, "04_dbt_docs")
    frame.locator(":text-is('Analysis'):visible").first.click()  # the exposures' folder: one per study
    frame.locator(":text('TRADHOR'):visible").first.click()
    frame.get_by_text("Depends On", exact=False).first.wait_for()
    settle(page)
    _shot(embedded_ui, page, "05_dbt_docs_exposure")
    frame.locator(".launcher-btn").first.click()  # the lineage graph of the exposure
    frame.locator("canvas").first.wait_for()
    page.wait_for_timeout(1500)  # the graph lays itself out (an animation, no event to await)
    _shot(embedded_ui, page, "05b_dbt_docs_lineage")
    watch.assert_clean("dbt docs")


def test_exports_page_lists_the_study_exports(embedded_ui, browser_page):
    page, watch = browser_page
    frame = open_view(page, "Exports")
    body = frame.locator("body")
    body.wait_for()
    studies = [p.name for p in (embedded_ui.home / "exports").iterdir()
               if p.is_dir() and not p.name.startswith(("_", "."))]
    assert len(studies) >= 3, studies
    for study in studies:
        frame.get_by_text(study, exact=False).first.wait_for()
    settle(page)
    _shot(embedded_ui, page, "06_exports")
    frame.get_by_role("link", name="report").first.click()
    frame.get_by_role("heading").first.wait_for()
    assert len(frame.locator("body").inner_text()) > 200, "empty report"
    settle(page)
    _shot(embedded_ui, page, "06b_export_report")
    watch.assert_clean("Exports")


def _last_run(api: AirflowApi, dag_id: str, state: str | None = None) -> dict:
    runs = [r for r in api.runs(dag_id) if r["run_type"] == "manual" and (state is None or r["state"] == state)]
    assert runs, f"no {state or ''} run of {dag_id}"
    return runs[0]


def _log_lines(api: AirflowApi, dag_id: str, run_id: str, task_id: str, try_number: int = 1) -> list[str]:
    return [event for event in api.log_events(dag_id, run_id, task_id, try_number) if not event.startswith("::")]


def test_a_task_log_of_every_dag_is_readable_and_a_failed_gate_says_why_first(embedded_ui, browser_page):
    api = embedded_ui.api
    failed = _last_run(api, "platform_refresh", "failed")
    assert api.task_states("platform_refresh", failed["dag_run_id"])["raw_gate"] == "failed"
    lines = _log_lines(api, "platform_refresh", failed["dag_run_id"], "raw_gate")
    body = [line for line in lines if "Could not read" not in line and not line.startswith("/")]
    assert body and body[0].startswith("Task failed: "), lines[:8]
    assert FAULTY in body[0] or "critical" in " ".join(body[:5]).lower(), body[:5]
    page, watch = browser_page
    checks = [("platform_refresh", failed["dag_run_id"], "raw_gate", "Task failed")]
    for dag_id in sorted(d for d in api.dags() if d.startswith("study_")):
        runs = [r for r in api.runs(dag_id) if r["run_type"] == "manual"]
        if runs:
            checks.append((dag_id, runs[0]["dag_run_id"], "check_approval", "oncopipe embedded run"))
    assert len(checks) >= 3, checks
    for dag_id, run_id, task_id, expected in checks:
        assert any(expected in line for line in _log_lines(api, dag_id, run_id, task_id)), (dag_id, task_id)
        open_log_at(page, f"/dags/{dag_id}/runs/{urllib.parse.quote(run_id, safe='')}/tasks/{task_id}", expected)
        assert page.get_by_text("Could not read served logs").count() == 0
        settle(page)
        _shot(embedded_ui, page, f"07_log_{dag_id}_{task_id}")
        watch.assert_clean(f"log of {dag_id}.{task_id}")


def test_assets_graph_shows_the_published_marts(embedded_ui, browser_page):
    page, watch = browser_page
    page.goto("/assets")
    page.get_by_role("link", name="poor_prognosis_cases").first.click()
    page.locator(".react-flow__node").first.wait_for()
    assert page.locator(".react-flow__node").count() >= 2, "the asset graph shows no producer or consumer"
    settle(page)
    _shot(embedded_ui, page, "08_assets_graph")
    watch.assert_clean("Assets graph")


def test_the_schedule_fires_while_the_ui_runs(embedded_ui):
    api = embedded_ui.api
    deadline = time.monotonic() + 240
    scheduled = []
    while time.monotonic() < deadline and not scheduled:
        scheduled = [r for r in api.runs("platform_refresh") if r["run_type"] == "scheduled"]
        time.sleep(2)
    assert scheduled, "the scheduler created no scheduled run of platform_refresh"
    assert not api.dags()["platform_refresh"]["is_paused"]
    state = api.wait_run("platform_refresh", scheduled[0]["dag_run_id"], timeout=300)
    states = api.task_states("platform_refresh", scheduled[0]["dag_run_id"])
    # Nothing new has landed (the faulty extraction is quarantined): the run is skipped at its first task.
    assert state == "success" and states["find_extraction"] == "skipped", states
    lines = _log_lines(api, "platform_refresh", scheduled[0]["dag_run_id"], "find_extraction")
    assert any("Skipping task" in line for line in lines), lines[-10:]
