"""Airflow notifiers of the oncopipe DAGs: the operators' mail when a task fails.

Every oncopipe task has two failure callbacks (:func:`oncopipe.orchestration.dag_factory.default_args`):
:func:`oncopipe.orchestration.alerts.on_task_failure` logs the failure and puts its message atop the try's log,
and :class:`FailureMailNotifier` mails it to ``ONCOPIPE_OPERATOR_EMAILS`` through the SMTP provider's hook.

Only ``airflow.sdk`` is imported here, which every DAG file imports already; the SMTP provider and the mail
module are imported when a task has failed, so parsing a DAG file imports neither.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from airflow.sdk import BaseNotifier

from oncopipe.orchestration.alerts import operator_emails


class FailureMailNotifier(BaseNotifier):
    """Mail a failed task (DAG, task, run, try, error, links to its log in the UI and the REST API) to the
    operators, one message each, through :func:`oncopipe.delivery.notify.notify_failure`.

    A mail problem is logged in the task's log, never raised: it must not hide the task's own failure.

    Args:
        conn_id: the SMTP connection (default: ``smtp_default``).
    """

    def __init__(self, conn_id: str | None = None) -> None:
        super().__init__()
        self.conn_id = conn_id

    def notify(self, context: Mapping[str, Any]) -> None:
        """Send the mail (``context``: the failed task's Airflow context)."""
        recipients = operator_emails()
        if not recipients:
            self.log.warning("failure mailed to nobody: ONCOPIPE_OPERATOR_EMAILS is empty")
            return
        from oncopipe.delivery import notify

        ti = context.get("ti") or context.get("task_instance")
        dag_run = context.get("dag_run")
        try:
            deliveries = notify.notify_failure(
                recipients,
                dag_id=str(getattr(ti, "dag_id", None) or getattr(context.get("dag"), "dag_id", "unknown")),
                task_id=str(getattr(ti, "task_id", "unknown")),
                run_id=str(getattr(ti, "run_id", None) or getattr(dag_run, "run_id", "unknown")),
                log_url=getattr(ti, "log_url", None),
                error=context.get("exception"),
                try_number=getattr(ti, "try_number", None),
                conn_id=self.conn_id or notify.DEFAULT_CONN_ID,
                map_index=getattr(ti, "map_index", None),
            )
        except notify.NotificationError as error:
            self.log.error("failure mail to %s not sent: %s", ", ".join(recipients), error)
            return
        for delivery in deliveries:
            if delivery.sent:
                self.log.info("failure mailed to %s (%s)", delivery.recipient, delivery.message_id)
            else:
                self.log.error("failure mail to %s not sent: %s", delivery.recipient, delivery.error)
