"""Email: tell each recipient of a study that an export is ready, and tell operators when a task failed.

Mail leaves through the Airflow SMTP provider's hook (:class:`oncopipe.delivery.smtp_hook.MailHook`) on the
connection ``smtp_default`` (any ``conn_id`` may be given), which Airflow resolves: in a task through the
execution API, outside Airflow (a command, a test) from ``AIRFLOW_CONN_<CONN_ID>`` (URI or JSON) and the
secrets backends. The same functions serve both; the task-failure notifier of the DAGs
(:class:`oncopipe.orchestration.notifiers.FailureMailNotifier`) calls :func:`notify_failure`.

Connection fields are the provider's: host, port, login, password, and extras ``from_email``, ``disable_ssl``
(default false: SMTP over SSL), ``disable_tls`` (default false: STARTTLS on plain SMTP), ``timeout`` (seconds,
default 30), ``retry_limit`` (default 5), ``ssl_context`` (``default``: the server certificate is checked against
the system's CAs, or ``SSL_CERT_FILE``; ``none``: not checked). Flags must read true or false (see
:mod:`oncopipe.delivery.smtp_hook`). Example for a local relay::

    AIRFLOW_CONN_SMTP_DEFAULT='smtp://127.0.0.1:25?from_email=oncopipe%40example.org&disable_ssl=true&disable_tls=true'

Importing this module imports no Airflow: the provider is imported when the first mail is sent.

Emails carry a link, never data: ``ONCOPIPE_EXPORTS_URL`` (e.g. ``https://exports.example.org``) is the base
URL of the exports folder; without it the link is a ``file://`` path on the platform. Each delivery (or
failed delivery) is appended to the export audit log with its recipient.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from email.utils import make_msgid
from pathlib import Path
from typing import Any
from urllib.parse import quote

from oncopipe.contracts.settings import get_settings
from oncopipe.delivery.audit import DELIVERY, DELIVERY_FAILED, AuditLog
from oncopipe.delivery.metadata import ExportInfo, StudyInfo
from oncopipe.delivery.output_check import check_mail

DEFAULT_CONN_ID = "smtp_default"
#: The sender when the connection has no ``from_email`` extra.
DEFAULT_FROM = "oncopipe@localhost"


class NotificationError(RuntimeError):
    """Mail could not be sent; the message names the connection or the recipients."""


def smtp_connection(conn_id: str = DEFAULT_CONN_ID) -> Any:
    """The Airflow connection ``conn_id``, resolved as the hook resolves it.

    Raises:
        NotificationError: the connection is not defined.
    """
    from airflow.sdk.exceptions import AirflowNotFoundException

    from oncopipe.delivery.smtp_hook import MailHook

    try:
        return MailHook.get_connection(conn_id)
    except AirflowNotFoundException as error:
        raise NotificationError(f"SMTP connection {conn_id!r} is not defined (set AIRFLOW_CONN_{conn_id.upper()} "
                                f"or add it to Airflow): {error}") from error


@dataclass(frozen=True)
class Delivery:
    """One recipient of one mail: sent or not, and why."""

    recipient: str
    sent: bool
    message_id: str | None = None
    error: str | None = None


def send_to_each(recipients: Iterable[str], subject: str, text: str, html: str, *,
                 conn_id: str = DEFAULT_CONN_ID) -> list[Delivery]:
    """Send one message per recipient (a text and an HTML part) over one SMTP session of the provider's hook.

    The hook retries a session the server drops while it greets and a send that fails (``retry_limit``); a
    refused connection, a refused login or a refused recipient is reported in that recipient's delivery.

    Raises:
        NotificationError: the connection is undefined or its extras are invalid (nothing was tried).
    """
    import smtplib

    from airflow.sdk.exceptions import AirflowException

    from oncopipe.delivery.smtp_hook import MailHook

    recipients = list(recipients)
    hook = MailHook(conn_id)
    try:
        try:
            hook.get_conn()
        except (AirflowException, OSError) as error:  # smtplib's and ssl's errors are OSErrors
            if hook.smtp_connection is None:
                raise NotificationError(f"SMTP connection {conn_id!r} is not defined (set "
                                        f"AIRFLOW_CONN_{conn_id.upper()} or add it to Airflow)") from error
            refused = isinstance(error, smtplib.SMTPResponseException) and not isinstance(error,
                                                                                            smtplib.SMTPConnectError)
            verb = "refused mail to" if refused else "unreachable for"
            return [Delivery(to, False, error=f"SMTP {hook.host}:{hook.port} {verb} {to}: {error}")
                    for to in recipients]
        except (ValueError, RuntimeError) as error:  # MailHook's checks of the extras, the provider's ssl_context
            raise NotificationError(f"SMTP connection {conn_id!r} is misconfigured: {error}") from error
        sender = hook.from_email or DEFAULT_FROM
        deliveries = []
        for to in recipients:
            message_id = make_msgid(domain=sender.rpartition("@")[2] or "oncopipe")
            try:
                hook.send_text_and_html(to=to, subject=subject, text=text, html=html, from_email=sender,
                                        headers={"Message-ID": message_id})
                deliveries.append(Delivery(to, True, message_id))
            except OSError as error:
                deliveries.append(Delivery(to, False, error=f"SMTP {hook.host}:{hook.port} refused mail to {to}: "
                                                            f"{error}"))
        return deliveries
    finally:
        hook.close()


def export_link(path: Path, exports: Path | None = None) -> str:
    """Where a recipient opens an export file: ``$ONCOPIPE_EXPORTS_URL/<relative path>`` or a file URI."""
    settings = get_settings()
    root = (exports or settings.exports).resolve()
    base = settings.exports_url
    path = path.resolve()
    if base:
        return f"{base.rstrip('/')}/{path.relative_to(root).as_posix()}"
    return path.as_uri()


@dataclass(frozen=True)
class ExportMail:
    """The subject and bodies of an export notification."""

    subject: str
    text: str
    html: str
    links: dict[str, str] = field(default_factory=dict)


def export_mail(info: ExportInfo, study: Any, *, exports: Path | None = None) -> ExportMail:
    """Compose the notification of a published export (a link to the report and folder, no data)."""
    meta = StudyInfo.of(study)
    manifest = json.loads(info.manifest.read_text(encoding="utf-8"))
    links = {"folder": export_link(info.path, exports), "manifest": export_link(info.manifest, exports)}
    if info.report is not None:
        links["report"] = export_link(info.report, exports)
    subject = f"[oncopipe] {meta.title}: results of run {info.run_id} ({meta.approval_reference})"
    masked = sum(info.masked_by_rule.values())
    lines = [
        "Hello,",
        "",
        f"New results of the study “{meta.title}” ({meta.study_id}) are available on the platform.",
        "",
        f"Approval:      {meta.approval_reference}",
        f"Run:           {info.run_id}",
        f"Data version:  published marts {manifest.get('mart_version') or 'unknown'}, "
        f"extraction {manifest.get('extraction_date') or 'unknown'}",
        f"Report:        {links.get('report', 'none')}",
        f"Export folder: {links['folder']}",
        f"Manifest:      {links['manifest']} ({len(info.files)} files with checksums)",
        "",
        f"Disclosure control masked {masked} cell(s) (counts of 1 to 9 and their complements); the report "
        "explains the rules.",
        "These results may be used only under the approval above.",
        "",
        "-- oncopipe",
    ]
    html = _template("mail.html.j2").render(subject=subject, study=meta, run_id=info.run_id, links=links)
    return ExportMail(subject, "\n".join(lines) + "\n", html, links)


def _template(name: str) -> Any:
    from oncopipe.delivery.report import environment  # the report's autoescaping environment (+0.1 s: jinja2)

    return environment().get_template(name)


def notify_export(info: ExportInfo, study: Any, *, conn_id: str = DEFAULT_CONN_ID,
                  recipients: Iterable[str] | None = None, exports: Path | None = None) -> list[Delivery]:
    """Email every recipient of the study about a published export and audit each delivery.

    Args:
        info: what :func:`oncopipe.delivery.export_store.publish_export` returned.
        study: the study metadata (for the title and approval).
        conn_id: the Airflow SMTP connection.
        recipients: override the study's recipients (default: ``info.recipients``).
        exports: the exports folder (default: the one holding ``info.path``).

    Returns:
        One delivery per recipient.

    Raises:
        NotificationError: the connection is undefined, or at least one recipient could not be reached
            (after every recipient was tried; each outcome is in the audit log).
        OutputCheckFailed: the mail would state a small count (nothing is sent).
    """
    root = exports or info.path.parent.parent
    mail = export_mail(info, study, exports=root)
    check_mail(info.path, mail.subject, mail.text, mail.html)  # what leaves by mail is an output too
    recipients = list(recipients if recipients is not None else info.recipients)
    deliveries = send_to_each(recipients, mail.subject, mail.text, mail.html, conn_id=conn_id)
    audit = AuditLog(root)
    for delivery in deliveries:
        if delivery.sent:
            audit.append(DELIVERY, info.study_id, run_id=info.run_id, approval_reference=info.approval_reference,
                         path=str(info.path), recipients=[delivery.recipient],
                         detail={"message_id": delivery.message_id, "subject": mail.subject})
        else:
            audit.append(DELIVERY_FAILED, info.study_id, run_id=info.run_id,
                         approval_reference=info.approval_reference, path=str(info.path),
                         recipients=[delivery.recipient], detail={"error": delivery.error})
    failed = [d for d in deliveries if not d.sent]
    if failed:
        raise NotificationError("could not notify " + "; ".join(f"{d.recipient}: {d.error}" for d in failed))
    return deliveries


def api_log_url(log_url: str | None, *, dag_id: str, run_id: str, task_id: str, try_number: int | None,
                map_index: int | None = None) -> str | None:
    """The REST API address of a task try's log, next to the UI's ``log_url`` (``<base>/dags/...``).

    The UI link opens the log view in a browser; this one gives the log itself (JSON lines) to a client that has
    a token (``curl -H "Authorization: Bearer $TOKEN" ...``). None when the UI link or the try is unknown.
    """
    base, sep, _ = (log_url or "").partition("/dags/")
    if not sep or not try_number:
        return None
    mapped = f"&map_index={map_index}" if map_index is not None and map_index >= 0 else ""
    return (f"{base}/api/v2/dags/{quote(dag_id, safe='')}/dagRuns/{quote(run_id, safe='')}/taskInstances/"
            f"{quote(task_id, safe='')}/logs/{try_number}?full_content=true{mapped}")


def failure_mail(*, dag_id: str, task_id: str, run_id: str, log_url: str | None, error: Any = None,
                 try_number: int | None = None, api_url: str | None = None) -> tuple[str, str, str]:
    """Subject, text and HTML of a task-failure notification (``api_url``: the log through the REST API)."""
    subject = f"[oncopipe] FAILED {dag_id}.{task_id} (run {run_id})"
    body = [f"Task {task_id} of DAG {dag_id} failed in run {run_id}"
            + (f" (try {try_number})" if try_number else "") + ".", ""]
    if error is not None:
        body += [f"Error: {error}", ""]
    body += [f"Log: {log_url or 'unavailable'}"]
    if api_url:
        body += [f"Log through the REST API (with a token): {api_url}"]
    body += ["", "The last published marts and exports are unchanged.", "-- oncopipe"]
    html = _template("failure_mail.html.j2").render(subject=subject, dag_id=dag_id, task_id=task_id, run_id=run_id,
                                                     try_number=try_number, error=error, log_url=log_url,
                                                     api_url=api_url)
    return subject, "\n".join(body) + "\n", html


def notify_failure(recipients: Iterable[str], *, dag_id: str, task_id: str, run_id: str, log_url: str | None,
                   error: Any = None, try_number: int | None = None, conn_id: str = DEFAULT_CONN_ID,
                   map_index: int | None = None) -> list[Delivery]:
    """Email a task failure (subject, error, links to the task log in the UI and the REST API) to each recipient.

    Returns:
        One delivery per recipient (a recipient the server refused is not sent, with the reason).

    Raises:
        NotificationError: the connection is undefined or misconfigured.
    """
    subject, text, html = failure_mail(dag_id=dag_id, task_id=task_id, run_id=run_id, log_url=log_url, error=error,
                                       try_number=try_number,
                                       api_url=api_log_url(log_url, dag_id=dag_id, run_id=run_id, task_id=task_id,
                                                           try_number=try_number, map_index=map_index))
    return send_to_each(recipients, subject, text, html, conn_id=conn_id)
