"""What Airflow calls when something goes wrong: task failures and the refresh deadline.

Both hand over to :mod:`oncopipe.delivery.notify` (the exports area's notification functions) when it is installed,
and always log, so a failure is never silent even where no mail server is configured.

A task failure also puts its message at the top of the try's log in the UI (:func:`write_failure_head`): Airflow's
log reader orders the lines of a try by time and reads every file named after the try's log (the triggerer's
``attempt=N.log.trigger.*`` files work so), so a ``attempt=N.log.failure`` file whose lines are dated just before the
log's first line comes first. An operator who opens a failed gate's log reads the gate's message, not the end of a
traceback after hundreds of lines of Great Expectations output.
"""

from __future__ import annotations

import datetime as dt
import importlib
import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def _notify_module() -> Any | None:
    try:
        return importlib.import_module("oncopipe.delivery.notify")
    except ModuleNotFoundError as exc:
        if exc.name != "oncopipe.delivery.notify":
            raise
        return None


def _describe(context: Mapping[str, Any]) -> dict[str, Any]:
    ti = context.get("ti") or context.get("task_instance")
    dag_run = context.get("dag_run")
    exception = context.get("exception")
    return {
        "dag_id": getattr(ti, "dag_id", None) or getattr(dag_run, "dag_id", None),
        "task_id": getattr(ti, "task_id", None),
        "run_id": getattr(ti, "run_id", None) or getattr(dag_run, "run_id", None),
        "try_number": getattr(ti, "try_number", None),
        "error": str(exception) if exception is not None else None,
    }


def operator_emails() -> list[str]:
    """Who hears about failures: ``ONCOPIPE_OPERATOR_EMAILS`` (comma-separated), empty for none."""
    from oncopipe.contracts.settings import get_settings

    return list(get_settings().operator_emails)


def task_log_path(dag_id: str, run_id: str, task_id: str, try_number: int, map_index: int = -1) -> Path:
    """Where Airflow's file task handler reads the log of one task try (``[logging] base_log_folder``, and the
    layout of Airflow's default ``log_filename_template``)."""
    from airflow.configuration import conf

    mapped = f"map_index={map_index}/" if map_index is not None and map_index >= 0 else ""
    return (Path(conf.get("logging", "base_log_folder")) / f"dag_id={dag_id}" / f"run_id={run_id}"
            / f"task_id={task_id}" / f"{mapped}attempt={try_number}.log")


FAILURE_SUFFIX = ".failure"


def _first_timestamp(path: Path) -> dt.datetime | None:
    with path.open(encoding="utf-8", errors="replace") as lines:
        for line in lines:
            try:
                stamp = json.loads(line).get("timestamp")
            except (ValueError, AttributeError):
                continue
            if stamp:
                return dt.datetime.fromisoformat(str(stamp).replace("Z", "+00:00"))
    return None


def write_failure_head(context: Mapping[str, Any]) -> Path | None:
    """Write the failure's message where the log view shows it first: ``<try log>.failure``, dated 1 ms before
    the try log's first line (the reader sorts by time). Returns the file, or None when there is no try log on
    this machine yet (``oncopipe run`` writes its own head) or no exception."""
    ti = context.get("ti") or context.get("task_instance")
    error = context.get("exception")
    if ti is None or error is None or not getattr(ti, "try_number", None):
        return None
    map_index = getattr(ti, "map_index", None)
    path = task_log_path(ti.dag_id, ti.run_id, ti.task_id, int(ti.try_number),
                         -1 if map_index is None else int(map_index))
    if not path.is_file():
        return None
    first = _first_timestamp(path) or dt.datetime.now(dt.UTC)
    stamp = (first - dt.timedelta(milliseconds=1)).isoformat()
    head = path.with_name(path.name + FAILURE_SUFFIX)
    lines = str(error).splitlines() or [type(error).__name__]
    with head.open("w", encoding="utf-8") as out:
        for line in lines:
            out.write(json.dumps({"timestamp": stamp, "event": f"Task failed: {line}", "level": "error",
                                  "logger": __name__}) + "\n")
    return head


def on_task_failure(context: Mapping[str, Any]) -> None:
    """``on_failure_callback`` of every oncopipe task: put the message atop the try's log, log the failure and
    email the operators."""
    facts = _describe(context)
    log.error("oncopipe task failed: %s", facts)
    try:
        write_failure_head(context)
    except Exception:  # a callback must not raise; the failure is still logged below and mailed
        log.exception("could not write the failure head of the task log")
    notify = _notify_module()
    recipients = operator_emails()
    if notify is None or not recipients:
        log.warning("failure logged only (%s)", "oncopipe.delivery.notify missing" if notify is None
                    else "ONCOPIPE_OPERATOR_EMAILS is empty")
        return
    notify.failure_callback(recipients)(context)  # never raises: a mail problem is logged


def refresh_deadline_missed(**kwargs: Any) -> None:
    """Deadline-alert callback of the platform refresh: the run is taking longer than its deadline."""
    message = f"platform_refresh missed its deadline: {kwargs}"
    log.error(message)
    notify = _notify_module()
    recipients = operator_emails()
    if notify is not None and recipients:
        context = kwargs.get("context") or {}
        dag_run = context.get("dag_run") if isinstance(context, Mapping) else None
        notify.notify_failure(recipients, dag_id="platform_refresh", task_id="(deadline)",
                              run_id=str(getattr(dag_run, "run_id", "unknown")), log_url=None,
                              error="the refresh is still running past its deadline")
