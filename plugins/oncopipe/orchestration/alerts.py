"""What Airflow calls when something goes wrong: task failures and the refresh deadline.

Both hand over to :mod:`oncopipe.delivery.notify` (the exports area's notification functions) when it is installed,
and always log, so a failure is never silent even where no mail server is configured.
"""

from __future__ import annotations

import importlib
import logging
import os
from collections.abc import Mapping
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
    return [e.strip() for e in os.environ.get("ONCOPIPE_OPERATOR_EMAILS", "").split(",") if e.strip()]


def on_task_failure(context: Mapping[str, Any]) -> None:
    """``on_failure_callback`` of every oncopipe task: log the failure and email the operators."""
    facts = _describe(context)
    log.error("oncopipe task failed: %s", facts)
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
