"""Real mail through a local SMTP server (aiosmtpd on 127.0.0.1, a free port), read back from the server."""

from __future__ import annotations

import email
import email.policy
import socket
import threading
from types import SimpleNamespace

import pandas as pd
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from oncopipe.contracts.results import ResultTable, StudyResult
from oncopipe.delivery.audit import AuditLog
from oncopipe.delivery.export_store import publish_export
from oncopipe.delivery.notify import (
    NotificationError,
    SmtpSettings,
    export_mail,
    failure_callback,
    notify_export,
    smtp_settings,
)

STUDY = {"id": "mail_study", "title": "Mail study", "approval": {"reference": "CESREES-2025-007"},
         "recipients": ["pi@example.org", "stat@example.org"], "export": {"figures": ["png"]}}


class Inbox:
    """An aiosmtpd handler keeping every message it accepts."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], email.message.EmailMessage]] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd hook name)
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self.lock:
            self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), message))
        return "250 OK"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture()
def smtp_server(monkeypatch):
    inbox = Inbox()
    logins: list[str] = []

    def authenticate(server, session, envelope, mechanism, auth_data):
        ok = auth_data.login == b"oncopipe" and auth_data.password == b"s3cret-pass"
        if ok:
            logins.append(auth_data.login.decode())
        return AuthResult(success=ok, handled=False)

    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port, authenticator=authenticate,
                            auth_require_tls=False)
    controller.start()
    monkeypatch.setenv("AIRFLOW_CONN_SMTP_DEFAULT",
                       f"smtp://oncopipe:s3cret-pass@127.0.0.1:{port}?from_email=oncopipe%40example.org"
                       "&disable_ssl=true&disable_tls=true&timeout=10")
    monkeypatch.setenv("ONCOPIPE_EXPORTS_URL", "https://exports.example.org")
    yield SimpleNamespace(inbox=inbox, port=port, logins=logins)
    controller.stop()


def small_result() -> StudyResult:
    frame = pd.DataFrame({"site": ["lung", "liver", "Total"], "n": [40, 30, 70]})
    return StudyResult("mail_study", "demo", {}, [ResultTable("by_site", frame, "cases", count_columns=("n",),
                                                              group_columns=("site",), total_value="Total")])


def test_smtp_settings_from_env_uri_and_json(monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_SMTP_TEST", "smtp://u%40x:p%2Fw@mail.example.org:587?from_email=a%40b.org"
                                                  "&disable_ssl=true")
    s = smtp_settings("smtp_test")
    assert (s.host, s.port, s.login, s.password, s.from_email) == ("mail.example.org", 587, "u@x", "p/w", "a@b.org")
    assert not s.use_ssl and s.starttls
    s = SmtpSettings.from_env_value('{"conn_type": "smtp", "host": "h", "port": 2525, "extra": {"disable_ssl": true,'
                                    ' "disable_tls": true}}')
    assert (s.host, s.port, s.use_ssl, s.starttls) == ("h", 2525, False, False)


def test_export_notification_reaches_every_recipient(oncopipe_home, smtp_server):
    info = publish_export(small_result(), STUDY, {"mart_version": "v7", "extraction_date": "2026-06-30"}, "run_1")
    deliveries = notify_export(info, STUDY)
    assert [d.recipient for d in deliveries] == ["pi@example.org", "stat@example.org"]
    assert all(d.sent for d in deliveries)
    inbox = smtp_server.inbox.messages
    assert sorted(rcpt for _, tos, _ in inbox for rcpt in tos) == ["pi@example.org", "stat@example.org"]
    assert smtp_server.logins == ["oncopipe", "oncopipe"]
    sender, _, message = inbox[0]
    assert sender == "oncopipe@example.org"
    assert message["Subject"] == "[oncopipe] Mail study: results of run run_1 (CESREES-2025-007)"
    text = message.get_body(("plain",)).get_content()
    assert "https://exports.example.org/mail_study/run_1/report.html" in text
    assert "published marts v7, extraction 2026-06-30" in text
    html = message.get_body(("html",)).get_content()
    assert 'href="https://exports.example.org/mail_study/run_1/report.html"' in html
    events = [e for e in AuditLog(oncopipe_home / "exports").events("mail_study") if e.kind == "delivery"]
    assert [e.recipients for e in events] == [["pi@example.org"], ["stat@example.org"]]


def test_unreachable_server_is_reported_and_audited(oncopipe_home, monkeypatch):
    info = publish_export(small_result(), STUDY, {}, "run_2")
    monkeypatch.setenv("AIRFLOW_CONN_SMTP_DEFAULT",
                       f"smtp://127.0.0.1:{free_port()}?disable_ssl=true&disable_tls=true&retry_limit=1&timeout=5")
    with pytest.raises(NotificationError, match="pi@example.org: SMTP 127.0.0.1"):
        notify_export(info, STUDY)
    kinds = [e.kind for e in AuditLog(oncopipe_home / "exports").events("mail_study", "run_2")]
    assert kinds == ["export", "delivery_failed", "delivery_failed"]


def test_wrong_password_is_a_clear_error(oncopipe_home, smtp_server, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_SMTP_DEFAULT",
                       f"smtp://oncopipe:wrong@127.0.0.1:{smtp_server.port}?disable_ssl=true&disable_tls=true")
    info = publish_export(small_result(), STUDY, {}, "run_3")
    with pytest.raises(NotificationError, match="refused mail to pi@example.org"):
        notify_export(info, STUDY, recipients=["pi@example.org"])
    assert smtp_server.inbox.messages == []


def test_failure_callback_mails_the_task_log_link(smtp_server):
    ti = SimpleNamespace(dag_id="study_tradhor", task_id="analysis", run_id="scheduled__2026-07-01",
                         try_number=2, log_url="http://127.0.0.1:8080/dags/study_tradhor/runs/x/tasks/analysis")
    failure_callback(["ops@example.org"])({"task_instance": ti, "exception": ValueError("not enough data")})
    (sender, tos, message), = smtp_server.inbox.messages
    assert tos == ["ops@example.org"]
    assert message["Subject"] == "[oncopipe] FAILED study_tradhor.analysis (run scheduled__2026-07-01)"
    body = message.get_content()
    assert "Error: not enough data" in body and ti.log_url in body and "(try 2)" in body
    # The log itself through the REST API, on the same server as the UI link (the run id quoted).
    assert ("http://127.0.0.1:8080/api/v2/dags/study_tradhor/dagRuns/scheduled__2026-07-01/taskInstances/analysis/"
            "logs/2?full_content=true") in body


def test_failure_callback_never_raises(monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_SMTP_DEFAULT",
                       f"smtp://127.0.0.1:{free_port()}?disable_ssl=true&disable_tls=true&retry_limit=1")
    failure_callback(["ops@example.org"])({"task_instance": SimpleNamespace(dag_id="d", task_id="t", run_id="r")})


def test_export_mail_without_base_url_links_to_files(oncopipe_home, monkeypatch):
    monkeypatch.delenv("ONCOPIPE_EXPORTS_URL", raising=False)
    info = publish_export(small_result(), STUDY, {}, "run_4")
    mail = export_mail(info, STUDY)
    assert mail.links["report"] == (info.path / "report.html").resolve().as_uri()


def test_export_mail_escapes_the_study_title_in_its_html(oncopipe_home, monkeypatch):
    # A study title is free text from the registry: the HTML part shows it, the mail client must not run it.
    monkeypatch.setenv("ONCOPIPE_EXPORTS_URL", "https://exports.example.org/r&d")  # an & to escape in each href
    study = {**STUDY, "title": "Mail <script>alert('x')</script> & study"}
    info = publish_export(small_result(), study, {}, "run_5")
    mail = export_mail(info, study)
    assert "<script" not in mail.html
    assert "<strong>Mail &lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; study</strong>" in mail.html
    assert "Mail <script>alert('x')</script> & study" in mail.text, "the text part is not HTML: as written"
    assert f'<a href="{mail.links["report"].replace("&", "&amp;")}">report</a>' in mail.html
