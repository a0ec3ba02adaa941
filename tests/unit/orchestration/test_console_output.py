"""What an operator reads on the console of an embedded run (issue #19): no wrapping off a terminal, one
"up to date" line instead of a waiting line per study, gate warnings counted, one study on demand, and a
readable `oncopipe exports list`."""

from __future__ import annotations

import io
from types import SimpleNamespace

import pytest
from oncopipe.cli import app
from oncopipe.commands.run import console_on, progress_line
from oncopipe.orchestration import embedded
from oncopipe.warehouse import versions
from typer.testing import CliRunner

WAIT = f"{embedded.WAITING} on ['oncopipe://marts/poor_prognosis_cases']"


def test_no_wrapping_when_not_a_terminal():
    stream = io.StringIO()
    long_path = "/work/var/exports/poor_prognosis_survival/2026-12-02T1306-poor_prognosis_survival/report.html"
    progress_line(console_on(stream), f"export poor_prognosis_survival: {long_path} ['a', 'b']")
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1 and lines[0].endswith(f"{long_path} ['a', 'b']")
    assert lines[0] == lines[0].rstrip()  # no padding to a width either


def test_one_up_to_date_line_instead_of_waiting_lines(monkeypatch):
    monkeypatch.setattr(versions, "current_version", lambda: SimpleNamespace(extraction="2025-06-30"))
    waiting = {"study_a": WAIT, "study_b": WAIT, "study_old": "refused: approval X expired on 2022-05-31"}
    assert embedded.up_to_date_line(waiting, 0) == "no new extraction since 2025-06-30: studies are up to date"
    assert embedded.up_to_date_line(waiting, 1) is None  # a new extraction came in: say who waits for what
    assert embedded.up_to_date_line({"study_old": waiting["study_old"]}, 0) is None


def _dags(*ids):
    return {f"study_{i}": SimpleNamespace(dag_id=f"study_{i}") for i in ids}


def test_one_study_on_demand(monkeypatch):
    monkeypatch.setattr(versions, "current_version", lambda: SimpleNamespace(version="v1"))
    dags = _dags("a", "b", "old")
    due = [(dags["study_b"], {"mart_version": "v2"})]
    waiting = {"study_a": WAIT, "study_old": "refused: expired"}
    chosen, why = embedded.select_study("a", dags, due, waiting)
    assert [d.dag_id for d, _ in chosen] == ["study_a"] and chosen[0][1] == {"mart_version": "v1"} and why == {}
    chosen, why = embedded.select_study("b", dags, due, waiting)
    assert chosen == due and why == {}
    chosen, why = embedded.select_study("old", dags, due, waiting)
    assert chosen == [] and why == {"study_old": "refused: expired"}
    with pytest.raises(KeyError, match="no study 'nope'; studies: a, b, old"):
        embedded.select_study("nope", dags, due, waiting)


def test_a_gate_that_passed_with_warnings_says_how_many(monkeypatch):
    monkeypatch.setattr(embedded, "return_value", lambda dag_id, run_id, task_id: {"failed_warnings": 3})
    lines = []
    reporter = embedded.StageReporter(SimpleNamespace(dag_id="platform_refresh", tasks=[]), lines.append)
    reporter({"ti": SimpleNamespace(task_id="raw_gate", state="success", run_id="r1")})
    reporter({"ti": SimpleNamespace(task_id="publish", state="success", run_id="r1")})
    assert lines[0].startswith("  raw_gate success with 3 warning(s)")
    assert lines[1].startswith("  publish success (")


def test_run_has_a_study_option():
    result = CliRunner().invoke(app, ["run", "--help"], env={"COLUMNS": "120"})
    assert result.exit_code == 0 and "--study" in result.output
