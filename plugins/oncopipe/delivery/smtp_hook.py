"""The Airflow SMTP provider's hook, with the two things oncopipe's mail needs that it does not do.

:class:`airflow.providers.smtp.hooks.smtp.SmtpHook` resolves the connection (environment, secrets backends,
metadata database), connects over SSL or STARTTLS with certificate checks, logs in and retries. oncopipe adds:

* a ``text/plain`` part before the HTML one (``multipart/alternative``): the provider sends HTML only, and an
  export notice or a failure must read the same in a text-only mail client;
* strict connection extras: the provider reads ``disable_tls`` and ``disable_ssl`` with ``bool()``, so the
  string ``"false"`` (what a connection URI such as ``smtp://host:587?disable_tls=false`` holds) turns TLS off
  and sends the password in clear. Here a flag is a JSON boolean or one of true/false, 1/0, yes/no, on/off, and
  anything else (``timeout`` and ``retry_limit``: not a whole number) is an error naming the connection and the
  extra;
* STARTTLS only on plain SMTP: with its defaults (neither flag set) the provider opens SMTP over SSL and then
  sends STARTTLS inside it, which a server on port 465 does not offer (``SMTPNotSupportedError``).

What the provider retries, measured on local servers (tests/integration/test_notify.py has the first two): a
session dropped before the greeting (reconnects at once), and a failed send on the same session (``retry_limit``
more times, no pause: a 451 and a permanent 550 alike, so a refused recipient is asked 6 times by default). It does
not retry a refused connection, a timeout or a 421 greeting: for export mails the ``notify_recipients`` task's own
retries (with backoff) cover those; a failure mail is then logged as not sent.

This module imports Airflow: :mod:`oncopipe.delivery.notify` imports it only when a mail is sent, so importing
the notification module (or a DAG file) configures nothing.
"""

from __future__ import annotations

import smtplib
from collections.abc import Iterable
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from typing import Any

from airflow.providers.smtp.hooks.smtp import SmtpHook

_FLAGS = {"true": True, "1": True, "yes": True, "on": True, "false": False, "0": False, "no": False, "off": False}


class MailHook(SmtpHook):
    """:class:`SmtpHook` sending a text and an HTML part, with connection extras read strictly."""

    def __init__(self, smtp_conn_id: str = SmtpHook.default_conn_name) -> None:
        super().__init__(smtp_conn_id=smtp_conn_id)
        self._plain_text: str | None = None

    def get_conn(self) -> MailHook:
        """Check the connection's extras, then connect and log in as the provider does.

        The provider reads most extras only once connected; reading them first turns a wrong value into an error
        before anything is sent (at the cost of resolving the connection twice).
        """
        if self._smtp_client is None:
            self.smtp_connection = self.get_connection(self.smtp_conn_id)
            for flag in ("disable_ssl", "disable_tls"):
                self._flag(flag)
            self._number("timeout", 30)
            self._number("retry_limit", 5)
        super().get_conn()
        return self

    def _flag(self, name: str) -> bool:
        value = self.conn.extra_dejson.get(name, False)
        if isinstance(value, bool):
            return value
        parsed = _FLAGS.get(str(value).strip().lower())
        if parsed is None:
            raise ValueError(f"SMTP connection {self.smtp_conn_id!r}: extra {name}={value!r} is not a boolean "
                             f"(use true or false)")
        return parsed

    def _number(self, name: str, default: int) -> int:
        value = self.conn.extra_dejson.get(name, default)
        try:
            number = int(value)
        except (TypeError, ValueError):
            number = -1
        if number < 0 or isinstance(value, bool):
            raise ValueError(f"SMTP connection {self.smtp_conn_id!r}: extra {name}={value!r} is not a whole number "
                             f"of 0 or more")
        return number

    @property
    def smtp_starttls(self) -> bool:
        wanted = not self._flag("disable_tls")  # read first: a bad value is an error even over SSL
        return wanted and not self.use_ssl

    @property
    def use_ssl(self) -> bool:
        return not self._flag("disable_ssl")

    @property
    def timeout(self) -> int:
        return self._number("timeout", 30)

    @property
    def smtp_retry_limit(self) -> int:
        return self._number("retry_limit", 5)

    def send_text_and_html(self, *, to: str | Iterable[str], subject: str, text: str, html: str,
                           from_email: str | None = None, headers: dict[str, Any] | None = None) -> None:
        """Send one ``multipart/alternative`` message (text part first: clients show the last part they can).

        The session must be open (:meth:`get_conn`); the provider retries the send ``retry_limit`` times.
        """
        self._plain_text = text
        try:
            self.send_email_smtp(to=to, subject=subject, html_content=html, from_email=from_email,
                                 mime_subtype="alternative", custom_headers=headers)
        finally:
            self._plain_text = None

    def _build_mime_message(self, *args: Any, **kwargs: Any) -> tuple[MIMEMultipart, list[str]]:
        message, recipients = super()._build_mime_message(*args, **kwargs)
        if self._plain_text is not None:
            message.get_payload().insert(0, MIMEText(self._plain_text, "plain", kwargs.get("mime_charset", "utf-8")))
        return message, recipients

    def close(self) -> None:
        """End the session with QUIT, also after :meth:`get_conn` failed past the connect (a refused login or
        STARTTLS leaves the provider's client open, and its ``__exit__`` closes without QUIT)."""
        client = self._smtp_client
        if client is None:
            return
        try:
            client.quit()
        except (smtplib.SMTPException, OSError):
            pass  # the server already went away: nothing left to say goodbye to
        finally:
            client.close()
            self._smtp_client = None
