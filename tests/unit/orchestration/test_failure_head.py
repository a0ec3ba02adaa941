"""A failed task's message heads its log in the UI (oncopipe.orchestration.alerts.write_failure_head).

Read back through Airflow's own file task handler (the api-server's log reader), on a log laid out as the Celery
worker writes it: the error lines must come first, before the try's first line, whatever the try logged before the
failure.
"""

from __future__ import annotations

import json
from types import SimpleNamespace

from oncopipe.orchestration.alerts import task_log_path, write_failure_head


def _read_as_the_ui_does(path):
    from airflow.utils.log.file_task_handler import FileTaskHandler, _interleave_logs

    handler = FileTaskHandler(base_log_folder=str(path.parents[3]))
    _, streams = handler._read_from_local(path)
    return [line.event for line in _interleave_logs(*streams)]


def test_the_error_comes_first_in_the_log_read_back(tmp_path, monkeypatch):
    monkeypatch.setenv("AIRFLOW__LOGGING__BASE_LOG_FOLDER", str(tmp_path))
    ti = SimpleNamespace(dag_id="platform_refresh", run_id="manual__2026-12-03T07:00:00+00:00", task_id="raw_gate",
                         try_number=1, map_index=-1)
    path = task_log_path(ti.dag_id, ti.run_id, ti.task_id, 1)
    assert path.is_relative_to(tmp_path)
    path.parent.mkdir(parents=True)
    worker_lines = [("2026-12-03T07:00:01.000000Z", "Task instance is in running state"),
                    ("2026-12-03T07:00:01.000000Z", "validating 12 sources"),
                    ("2026-12-03T07:00:09.500000Z", "Task failed with exception")]
    path.write_text("".join(json.dumps({"timestamp": t, "event": e, "level": "info"}) + "\n"
                            for t, e in worker_lines))
    error = ValueError("raw gate failed for extraction 2025-09-30 (run r1):\n- er_pha_f.BEN_NIR_PSA has nulls")
    head = write_failure_head({"ti": ti, "exception": error})
    assert head == path.with_name("attempt=1.log.failure")
    events = _read_as_the_ui_does(path)
    assert events == ["Task failed: raw gate failed for extraction 2025-09-30 (run r1):",
                      "Task failed: - er_pha_f.BEN_NIR_PSA has nulls",
                      *(e for _, e in worker_lines)]


def test_nothing_is_written_without_a_try_log_or_an_error(tmp_path, monkeypatch):
    monkeypatch.setenv("AIRFLOW__LOGGING__BASE_LOG_FOLDER", str(tmp_path))
    ti = SimpleNamespace(dag_id="d", run_id="r", task_id="t", try_number=1, map_index=-1)
    assert write_failure_head({"ti": ti, "exception": ValueError("x")}) is None  # oncopipe run writes its own
    assert write_failure_head({"ti": ti}) is None
    assert not list(tmp_path.rglob("*"))
