"""Real mail through local SMTP servers (aiosmtpd on 127.0.0.1, free ports), read back from the server.

Mail leaves through the Airflow SMTP provider's hook (oncopipe.delivery.smtp_hook.MailHook): plain SMTP with a
login, STARTTLS and SMTP over SSL with a certificate made here and trusted through ``SSL_CERT_FILE`` (the check is
on: an untrusted certificate is refused), a dropped session and a 451 retried, the task-failure notifier.
"""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import ipaddress
import socket
import ssl
import threading
from types import SimpleNamespace

import pandas as pd
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult
from oncopipe.contracts.results import ResultTable, StudyResult
from oncopipe.delivery.audit import AuditLog
from oncopipe.delivery.export_store import publish_export
from oncopipe.delivery.notify import NotificationError, export_mail, notify_export, notify_failure, smtp_connection

STUDY = {"id": "mail_study", "title": "Mail study", "approval": {"reference": "CESREES-2025-007"},
         "recipients": ["pi@example.org", "stat@example.org"], "export": {"figures": ["png"]}}
OPS = "ops@example.org"


class Inbox:
    """An aiosmtpd handler keeping every message it accepts, with whether its session was encrypted.

    ``busy_data`` first DATA commands are answered 451 (a transient refusal the client should retry).
    """

    def __init__(self, busy_data: int = 0) -> None:
        self.messages: list[tuple[str, list[str], email.message.EmailMessage]] = []
        self.encrypted: list[bool] = []
        self.data_commands = 0
        self.busy_data = busy_data
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd hook name)
        with self.lock:
            self.data_commands += 1
            if self.data_commands <= self.busy_data:
                return "451 4.3.0 busy, try again"
            message = email.message_from_bytes(envelope.content, policy=email.policy.default)
            self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), message))
            self.encrypted.append(server.transport.get_extra_info("cipher") is not None)
        return "250 OK"


class DropsFirstSessions(Controller):
    """A controller whose first ``drop`` connections are closed before the greeting (a server restarting)."""

    def __init__(self, handler, *, drop: int, **kwargs) -> None:
        super().__init__(handler, **kwargs)
        self.drop = drop
        self.connections = -1  # start() opens connection 0 itself, to see the server answer

    def factory(self) -> SMTP:
        controller = self

        class Server(SMTP):
            async def _handle_client(self) -> None:
                controller.connections += 1
                if 1 <= controller.connections <= controller.drop:
                    self.transport.close()
                    return
                await super()._handle_client()

        return Server(self.handler, **self.SMTP_kwargs)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(controller_class=Controller, handler=None, **kwargs) -> SimpleNamespace:
    """Start an SMTP server on 127.0.0.1 (stopped by the caller: ``server.controller.stop()``)."""
    inbox = handler or Inbox()
    logins: list[str] = []

    def authenticate(server, session, envelope, mechanism, auth_data):
        ok = auth_data.login == b"oncopipe" and auth_data.password == b"s3cret-pass"
        if ok:
            logins.append(auth_data.login.decode())
        return AuthResult(success=ok, handled=False)

    port = free_port()
    kwargs.setdefault("auth_require_tls", False)
    controller = controller_class(inbox, hostname="127.0.0.1", port=port, authenticator=authenticate, **kwargs)
    controller.start()
    return SimpleNamespace(inbox=inbox, port=port, logins=logins, controller=controller)


@pytest.fixture()
def smtp_server(monkeypatch):
    server = serve()
    monkeypatch.setenv("AIRFLOW_CONN_SMTP_DEFAULT",
                       f"smtp://oncopipe:s3cret-pass@127.0.0.1:{server.port}?from_email=oncopipe%40example.org"
                       "&disable_ssl=true&disable_tls=true&timeout=10")
    monkeypatch.setenv("ONCOPIPE_EXPORTS_URL", "https://exports.example.org")
    yield server
    server.controller.stop()


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    """A self-signed certificate for 127.0.0.1 and its key (PEM files), made here."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "oncopipe test SMTP")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    folder = tmp_path_factory.mktemp("smtp_tls")
    (folder / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                                       serialization.PrivateFormat.PKCS8,
                                                       serialization.NoEncryption()))
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(folder / "cert.pem", folder / "key.pem")
    return SimpleNamespace(cert=folder / "cert.pem", server_context=server_context)


def small_result() -> StudyResult:
    frame = pd.DataFrame({"site": ["lung", "liver", "Total"], "n": [40, 30, 70]})
    return StudyResult("mail_study", "demo", {}, [ResultTable("by_site", frame, "cases", count_columns=("n",),
                                                              group_columns=("site",), total_value="Total")])


def test_the_connection_is_read_by_airflow_from_a_uri_or_json(monkeypatch):
    from oncopipe.delivery.smtp_hook import MailHook

    monkeypatch.setenv("AIRFLOW_CONN_SMTP_TEST", "smtp://u%40x:p%2Fw@mail.example.org:587?from_email=a%40b.org"
                                                  "&disable_ssl=true")
    conn = smtp_connection("smtp_test")
    assert (conn.host, conn.port, conn.login, conn.password) == ("mail.example.org", 587, "u@x", "p/w")
    hook = MailHook("smtp_test")
    hook.smtp_connection = conn
    assert (hook.from_email, hook.use_ssl, hook.smtp_starttls) == ("a@b.org", False, True)
    monkeypatch.setenv("AIRFLOW_CONN_SMTP_TEST", '{"conn_type": "smtp", "host": "h", "port": 2525, '
                                                  '"extra": {"disable_ssl": true, "disable_tls": true}}')
    hook = MailHook("smtp_test")
    hook.smtp_connection = smtp_connection("smtp_test")
    assert (hook.host, hook.port, hook.use_ssl, hook.smtp_starttls) == ("h", 2525, False, False)
    with pytest.raises(NotificationError, match="'smtp_nowhere' is not defined"):
        smtp_connection("smtp_nowhere")


def test_connection_flags_are_read_strictly(monkeypatch):
    """The provider reads ``disable_tls`` with ``bool()``: the URI's string "false" would turn STARTTLS off."""
    from airflow.providers.smtp.hooks.smtp import SmtpHook
    from oncopipe.delivery.smtp_hook import MailHook

    monkeypatch.setenv("AIRFLOW_CONN_SMTP_TEST", "smtp://mail.example.org:587?disable_ssl=false&disable_tls=false")
    stock, ours = SmtpHook("smtp_test"), MailHook("smtp_test")
    stock.smtp_connection = ours.smtp_connection = smtp_connection("smtp_test")
    assert (stock.use_ssl, stock.smtp_starttls) == (False, False), "the provider's reading, which oncopipe avoids"
    assert (ours.use_ssl, ours.smtp_starttls) == (True, False)  # SSL on, and no STARTTLS inside SSL
    monkeypatch.setenv("AIRFLOW_CONN_SMTP_TEST", "smtp://127.0.0.1:1?disable_ssl=true&disable_tls=maybe")
    with pytest.raises(NotificationError, match=r"'smtp_test' is misconfigured: .*disable_tls='maybe' is not a "
                                                r"boolean"):
        notify_failure([OPS], dag_id="d", task_id="t", run_id="r", log_url=None, conn_id="smtp_test")
    monkeypatch.setenv("AIRFLOW_CONN_SMTP_TEST", "smtp://127.0.0.1:1?disable_ssl=true&retry_limit=-1")
    with pytest.raises(NotificationError, match="retry_limit='-1' is not a whole number"):
        notify_failure([OPS], dag_id="d", task_id="t", run_id="r", log_url=None, conn_id="smtp_test")


def test_export_notification_reaches_every_recipient(oncopipe_home, smtp_server):
    info = publish_export(small_result(), STUDY, {"mart_version": "v7", "extraction_date": "2026-06-30"}, "run_1")
    deliveries = notify_export(info, STUDY)
    assert [d.recipient for d in deliveries] == ["pi@example.org", "stat@example.org"]
    assert all(d.sent for d in deliveries)
    inbox = smtp_server.inbox.messages
    assert sorted(rcpt for _, tos, _ in inbox for rcpt in tos) == ["pi@example.org", "stat@example.org"]
    assert smtp_server.logins == ["oncopipe"], "one session (one login) for every recipient"
    sender, _, message = inbox[0]
    assert sender == "oncopipe@example.org"
    assert message["Subject"] == "[oncopipe] Mail study: results of run run_1 (CESREES-2025-007)"
    assert message["Message-ID"] == deliveries[0].message_id
    # Text first, HTML last: a client shows the last alternative it can, a text-only one the text.
    assert message.get_content_type() == "multipart/alternative"
    assert [part.get_content_type() for part in message.iter_parts()] == ["text/plain", "text/html"]
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


def test_starttls_checks_the_certificate_and_reads_disable_tls_false_as_false(oncopipe_home, certificate,
                                                                             monkeypatch):
    """The URI says ``disable_tls=false`` (a string): STARTTLS must happen, or this server refuses the mail.

    The stock provider hook would read the string as true, skip STARTTLS and be refused (530), and its login
    would go out in clear: the server here only accepts a login over TLS.
    """
    server = serve(tls_context=certificate.server_context, require_starttls=True, auth_require_tls=True)
    try:
        monkeypatch.setenv("SSL_CERT_FILE", str(certificate.cert))  # what ssl.create_default_context() trusts
        monkeypatch.setenv("AIRFLOW_CONN_SMTP_DEFAULT",
                           f"smtp://oncopipe:s3cret-pass@127.0.0.1:{server.port}?from_email=oncopipe%40example.org"
                           "&disable_ssl=true&disable_tls=false&timeout=10")
        info = publish_export(small_result(), STUDY, {}, "run_tls")
        deliveries = notify_export(info, STUDY, recipients=["pi@example.org"])
        assert [d.sent for d in deliveries] == [True]
        assert server.inbox.encrypted == [True] and server.logins == ["oncopipe"]
    finally:
        server.controller.stop()


def test_smtp_over_ssl_checks_the_certificate(certificate, monkeypatch):
    server = serve(ssl_context=certificate.server_context)
    try:
        # Defaults: SSL on; no STARTTLS inside it (the provider's own default would send one and fail here).
        monkeypatch.setenv("AIRFLOW_CONN_SMTP_DEFAULT", f"smtp://127.0.0.1:{server.port}?timeout=10")
        monkeypatch.setenv("SSL_CERT_FILE", str(certificate.cert.parent / "nothing-trusted.pem"))
        refused, = notify_failure([OPS], dag_id="d", task_id="t", run_id="r", log_url=None)
        assert not refused.sent and "CERTIFICATE_VERIFY_FAILED" in refused.error, refused
        monkeypatch.setenv("SSL_CERT_FILE", str(certificate.cert))
        sent, = notify_failure([OPS], dag_id="d", task_id="t", run_id="r", log_url=None)
        assert sent.sent, sent
        assert server.inbox.encrypted == [True]
    finally:
        server.controller.stop()


def test_a_dropped_session_and_a_busy_server_are_retried(monkeypatch):
    """The server drops the first connection before its greeting and answers 451 to the first DATA: the
    hook reconnects once and sends again once, and one message arrives."""
    server = serve(DropsFirstSessions, Inbox(busy_data=1), drop=1)
    try:
        monkeypatch.setenv("AIRFLOW_CONN_SMTP_DEFAULT", f"smtp://127.0.0.1:{server.port}?disable_ssl=true"
                                                        "&disable_tls=true&retry_limit=2&timeout=10")
        sent, = notify_failure([OPS], dag_id="d", task_id="t", run_id="r", log_url=None)
        assert sent.sent, sent
        assert server.controller.connections == 2 and server.inbox.data_commands == 2
        assert len(server.inbox.messages) == 1
    finally:
        server.controller.stop()


def _failed_task_context() -> dict:
    ti = SimpleNamespace(dag_id="study_tradhor", task_id="analysis", run_id="scheduled__2026-07-01",
                         try_number=2, map_index=-1,
                         log_url="http://127.0.0.1:8080/dags/study_tradhor/runs/x/tasks/analysis?try_number=2")
    return {"ti": ti, "exception": ValueError("not enough data: <10 cases & 0 events")}


def test_failure_notifier_mails_the_task_log_link(smtp_server, monkeypatch):
    from oncopipe.orchestration.notifiers import FailureMailNotifier

    monkeypatch.setenv("ONCOPIPE_OPERATOR_EMAILS", OPS)
    context = _failed_task_context()
    FailureMailNotifier()(context)
    (sender, tos, message), = smtp_server.inbox.messages
    assert (sender, tos) == ("oncopipe@example.org", [OPS])
    assert message["Subject"] == "[oncopipe] FAILED study_tradhor.analysis (run scheduled__2026-07-01)"
    body = message.get_body(("plain",)).get_content()
    log_url = context["ti"].log_url
    assert "Error: not enough data: <10 cases & 0 events" in body and f"Log: {log_url}" in body
    assert "(try 2)" in body
    # The log itself through the REST API, on the same server as the UI link (the run id quoted).
    api_url = ("http://127.0.0.1:8080/api/v2/dags/study_tradhor/dagRuns/scheduled__2026-07-01/taskInstances/"
               "analysis/logs/2?full_content=true")
    assert f"Log through the REST API (with a token): {api_url}" in body
    html = message.get_body(("html",)).get_content()
    assert f'<a href="{log_url}">Task log</a>' in html and f'<a href="{api_url}">' in html
    assert "<pre>not enough data: &lt;10 cases &amp; 0 events</pre>" in html


def test_failure_notifier_logs_and_never_raises(monkeypatch, capfd):
    from oncopipe.orchestration.notifiers import FailureMailNotifier

    # Airflow's structlog writes its log lines to the process's stdout (the task log, in a task): read them there.

    monkeypatch.setenv("ONCOPIPE_OPERATOR_EMAILS", OPS)
    monkeypatch.setenv("AIRFLOW_CONN_SMTP_DEFAULT",
                       f"smtp://127.0.0.1:{free_port()}?disable_ssl=true&disable_tls=true&retry_limit=1")
    FailureMailNotifier()(_failed_task_context())
    assert f"failure mail to {OPS} not sent: SMTP 127.0.0.1:" in capfd.readouterr().out
    monkeypatch.setenv("ONCOPIPE_OPERATOR_EMAILS", "")
    monkeypatch.delenv("AIRFLOW_CONN_SMTP_DEFAULT")  # no operator: not even looked up
    FailureMailNotifier()(_failed_task_context())
    assert "ONCOPIPE_OPERATOR_EMAILS is empty" in capfd.readouterr().out


def test_the_refresh_deadline_is_mailed(smtp_server, monkeypatch):
    from oncopipe.orchestration.alerts import refresh_deadline_missed

    monkeypatch.setenv("ONCOPIPE_OPERATOR_EMAILS", OPS)
    run_id = "scheduled__2026-12-04T06:00:00+00:00"
    refresh_deadline_missed(context={"dag_run": SimpleNamespace(run_id=run_id)})
    (_, tos, message), = smtp_server.inbox.messages
    assert tos == [OPS] and message["Subject"] == f"[oncopipe] FAILED platform_refresh.(deadline) (run {run_id})"
    assert "the refresh is still running past its deadline" in message.get_body(("plain",)).get_content()


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
