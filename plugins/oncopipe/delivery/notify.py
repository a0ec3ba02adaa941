"""Email: tell each recipient of a study that an export is ready, and tell operators when a task failed.

Mail goes through the Airflow connection ``smtp_default`` (any ``conn_id`` may be given):

* inside Airflow (``airflow.sdk`` already imported, e.g. in a task or callback), or when no
  ``AIRFLOW_CONN_<CONN_ID>`` variable is set, the connection is resolved by ``airflow.sdk.BaseHook``
  (environment, secrets backends, metadata database);
* otherwise (CLI, tests) the ``AIRFLOW_CONN_SMTP_DEFAULT`` variable is parsed directly, URI or JSON form,
  which is what Airflow itself would read, without importing Airflow.

Connection fields follow the Airflow SMTP provider: host, port, login, password, and extras ``from_email``,
``disable_ssl`` (default false: SMTP over SSL), ``disable_tls`` (default false: STARTTLS on plain SMTP),
``timeout`` (seconds, default 30), ``retry_limit`` (default 3). Example for a local relay::

    AIRFLOW_CONN_SMTP_DEFAULT='smtp://127.0.0.1:25?from_email=oncopipe%40example.org&disable_ssl=true&disable_tls=true'

Emails carry a link, never data: ``ONCOPIPE_EXPORTS_URL`` (e.g. ``https://exports.example.org``) is the base
URL of the exports folder; without it the link is a ``file://`` path on the platform. Each delivery (or
failed delivery) is appended to the export audit log with its recipient.
"""

from __future__ import annotations

import json
import logging
import os
import smtplib
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlsplit

from oncopipe.contracts.settings import get_settings
from oncopipe.delivery.audit import DELIVERY, DELIVERY_FAILED, AuditLog
from oncopipe.delivery.metadata import ExportInfo, StudyInfo
from oncopipe.delivery.output_check import check_mail

log = logging.getLogger(__name__)

DEFAULT_CONN_ID = "smtp_default"
_TRUE = {"1", "true", "yes", "on"}


class NotificationError(RuntimeError):
    """Mail could not be sent; the message names the connection or the recipients."""


@dataclass(frozen=True)
class SmtpSettings:
    """An SMTP connection as the Airflow SMTP provider reads it."""

    host: str
    port: int
    login: str | None = None
    password: str | None = None
    from_email: str = "oncopipe@localhost"
    use_ssl: bool = True
    starttls: bool = True
    timeout: float = 30.0
    retry_limit: int = 3

    @classmethod
    def from_fields(cls, host: str | None, port: int | None, login: str | None, password: str | None,
                    extra: Mapping[str, Any]) -> SmtpSettings:
        if not host:
            raise NotificationError("SMTP connection has no host")

        def flag(name: str) -> bool:
            return str(extra.get(name, "false")).lower() in _TRUE

        use_ssl = not flag("disable_ssl")
        return cls(host=host, port=int(port or (465 if use_ssl else 25)), login=login or None,
                   password=password or None, from_email=str(extra.get("from_email") or cls.from_email),
                   use_ssl=use_ssl, starttls=not use_ssl and not flag("disable_tls"),
                   timeout=float(extra.get("timeout", 30)), retry_limit=max(1, int(extra.get("retry_limit", 3))))

    @classmethod
    def from_env_value(cls, value: str) -> SmtpSettings:
        """Parse an ``AIRFLOW_CONN_*`` value: a URI (``smtp://user:pw@host:port?from_email=...``) or JSON."""
        value = value.strip()
        if value.startswith("{"):
            data = json.loads(value)
            extra = data.get("extra") or {}
            if isinstance(extra, str):
                extra = json.loads(extra)
            return cls.from_fields(data.get("host"), data.get("port"), data.get("login"), data.get("password"),
                                   extra)
        parts = urlsplit(value)
        extra = dict(parse_qsl(parts.query))
        if "__extra__" in extra:
            extra = json.loads(extra["__extra__"])
        return cls.from_fields(parts.hostname, parts.port, unquote(parts.username) if parts.username else None,
                               unquote(parts.password) if parts.password else None, extra)


def smtp_settings(conn_id: str = DEFAULT_CONN_ID) -> SmtpSettings:
    """Resolve the SMTP connection ``conn_id`` (see the module docstring for the order)."""
    env = os.environ.get(f"AIRFLOW_CONN_{conn_id.upper()}")
    if "airflow.sdk" in sys.modules or not env:
        try:
            from airflow.sdk import BaseHook
        except ImportError:
            BaseHook = None  # noqa: N806 (Airflow absent: fall through to the environment)
        if BaseHook is not None:
            try:
                conn = BaseHook.get_connection(conn_id)
                return SmtpSettings.from_fields(conn.host, conn.port, conn.login, conn.password, conn.extra_dejson)
            except NotificationError:
                raise
            except Exception as error:  # Airflow raises its own not-found types across versions
                if not env:
                    raise NotificationError(f"SMTP connection {conn_id!r} is not defined: {error}") from error
    if env:
        return SmtpSettings.from_env_value(env)
    raise NotificationError(f"SMTP connection {conn_id!r} is not defined (set AIRFLOW_CONN_{conn_id.upper()})")


def send_mail(settings: SmtpSettings, to: str, subject: str, text: str, html: str | None = None) -> str:
    """Send one message to one recipient; retries transient failures. Returns the Message-ID."""
    message = EmailMessage()
    message["From"] = settings.from_email
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain=settings.from_email.rpartition("@")[2] or "oncopipe")
    message.set_content(text)
    if html:
        message.add_alternative(html, subtype="html")
    last: Exception | None = None
    for attempt in range(settings.retry_limit):
        try:
            smtp_class = smtplib.SMTP_SSL if settings.use_ssl else smtplib.SMTP
            with smtp_class(settings.host, settings.port, timeout=settings.timeout) as smtp:
                if settings.starttls:
                    smtp.starttls()
                if settings.login:
                    smtp.login(settings.login, settings.password or "")
                smtp.send_message(message)
            return str(message["Message-ID"])
        except (smtplib.SMTPServerDisconnected, smtplib.SMTPConnectError, ConnectionError, TimeoutError) as error:
            last = error
            if attempt + 1 < settings.retry_limit:
                time.sleep(min(2 ** attempt, 10))  # back off before retrying a transient network error
        except smtplib.SMTPException as error:
            raise NotificationError(f"SMTP {settings.host}:{settings.port} refused mail to {to}: {error}") from error
    raise NotificationError(f"SMTP {settings.host}:{settings.port} unreachable for {to}: {last}") from last


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
class Delivery:
    """One recipient of one export: sent or not, and why."""

    recipient: str
    sent: bool
    message_id: str | None = None
    error: str | None = None


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
    from oncopipe.delivery.report import environment  # here: the failure mails do without the report's imports

    html = environment().get_template("mail.html.j2").render(subject=subject, study=meta, run_id=info.run_id,
                                                              links=links)
    return ExportMail(subject, "\n".join(lines) + "\n", html, links)


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
    settings = smtp_settings(conn_id)
    audit = AuditLog(root)
    deliveries = []
    for to in recipients if recipients is not None else info.recipients:
        try:
            message_id = send_mail(settings, to, mail.subject, mail.text, mail.html)
            deliveries.append(Delivery(to, True, message_id))
            audit.append(DELIVERY, info.study_id, run_id=info.run_id, approval_reference=info.approval_reference,
                         path=str(info.path), recipients=[to], detail={"message_id": message_id,
                                                                       "subject": mail.subject})
        except NotificationError as error:
            deliveries.append(Delivery(to, False, error=str(error)))
            audit.append(DELIVERY_FAILED, info.study_id, run_id=info.run_id,
                         approval_reference=info.approval_reference, path=str(info.path), recipients=[to],
                         detail={"error": str(error)})
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
                 try_number: int | None = None, api_url: str | None = None) -> tuple[str, str]:
    """Subject and body of a task-failure notification (``api_url``: the log through the REST API)."""
    subject = f"[oncopipe] FAILED {dag_id}.{task_id} (run {run_id})"
    body = [f"Task {task_id} of DAG {dag_id} failed in run {run_id}"
            + (f" (try {try_number})" if try_number else "") + ".", ""]
    if error is not None:
        body += [f"Error: {error}", ""]
    body += [f"Log: {log_url or 'unavailable'}"]
    if api_url:
        body += [f"Log through the REST API (with a token): {api_url}"]
    body += ["", "The last published marts and exports are unchanged.", "-- oncopipe"]
    return subject, "\n".join(body) + "\n"


def notify_failure(recipients: Iterable[str], *, dag_id: str, task_id: str, run_id: str, log_url: str | None,
                   error: Any = None, try_number: int | None = None, conn_id: str = DEFAULT_CONN_ID,
                   map_index: int | None = None) -> list[Delivery]:
    """Email a task failure (subject, error, links to the task log in the UI and the REST API) to each recipient."""
    subject, body = failure_mail(dag_id=dag_id, task_id=task_id, run_id=run_id, log_url=log_url, error=error,
                                 try_number=try_number,
                                 api_url=api_log_url(log_url, dag_id=dag_id, run_id=run_id, task_id=task_id,
                                                     try_number=try_number, map_index=map_index))
    settings = smtp_settings(conn_id)
    deliveries = []
    for to in recipients:
        try:
            deliveries.append(Delivery(to, True, send_mail(settings, to, subject, body)))
        except NotificationError as exc:
            deliveries.append(Delivery(to, False, error=str(exc)))
    return deliveries


def failure_callback(recipients: Iterable[str], *, conn_id: str = DEFAULT_CONN_ID) -> Callable[[Mapping], None]:
    """An ``on_failure_callback`` for DAGs/tasks that emails ``recipients`` with the task log URL.

    The callback never raises: a mail problem is logged, not allowed to mask the task's own failure.
    """
    recipients = tuple(recipients)

    def callback(context: Mapping[str, Any]) -> None:
        ti = context.get("task_instance") or context.get("ti")
        dag_run = context.get("dag_run")
        try:
            notify_failure(
                recipients,
                dag_id=str(getattr(ti, "dag_id", None) or getattr(context.get("dag"), "dag_id", "unknown")),
                task_id=str(getattr(ti, "task_id", "unknown")),
                run_id=str(getattr(ti, "run_id", None) or getattr(dag_run, "run_id", "unknown")),
                log_url=getattr(ti, "log_url", None),
                error=context.get("exception"),
                try_number=getattr(ti, "try_number", None),
                conn_id=conn_id,
                map_index=getattr(ti, "map_index", None),
            )
        except Exception:  # a callback must not raise
            log.exception("failure notification to %s could not be sent", ", ".join(recipients))

    return callback
