"""One native production topology per test session, shared by the topology tests and the live-UI browser test.

Registered from tests/conftest.py (``pytest_plugins``). Starting the topology (database migration, five Airflow
processes, DAG parsing) is most of the cost of those tests, so it happens once: a fresh PostgreSQL database and
Redis database, scheduler + api-server + dag-processor + triggerer + one Celery worker, started by PID with the
environment of ``oncopipe.orchestration.deployment`` (the one docker-compose.yml is rendered from) and stopped by PID
when the session ends, or at once on Ctrl-C, SIGTERM or a failed start (see :func:`ephemeral_topology`).

The tests using it run last, browser test first (tests/conftest.py orders them): it sees the platform before
any extraction landed, then tests/integration/test_topology.py lands one and refreshes it.
"""

from __future__ import annotations

import email
import email.policy
import threading
from collections.abc import Iterator

import pytest
from oncopipe.orchestration.native import NativeTopology, free_port
from support.native_harness import AirflowApi, ephemeral_topology

ADMIN = "admin"
PASSWORD = "topology-admin-password"
DATABASE = "oncopipe_native_test"
REDIS_DB = 12
OPERATORS = "ops@example.org"


class Mailbox:
    """An SMTP server on 127.0.0.1 that keeps every message it receives."""

    def __init__(self) -> None:
        self.messages: list[str] = []
        self.arrived = threading.Condition()
        self.port = free_port()

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's handler protocol)
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        body = message.get_body(preferencelist=("plain", "html"))
        with self.arrived:
            self.messages.append(f"Subject: {message['subject']}\n{body.get_content() if body else ''}")
            self.arrived.notify_all()
        return "250 OK"

    def wait_for(self, text: str, timeout: float) -> str:
        """The first message containing ``text``, waiting up to ``timeout`` seconds for it."""
        with self.arrived:
            found = self.arrived.wait_for(lambda: next((m for m in self.messages if text in m), None), timeout)
        assert found, f"no mail containing {text!r} within {timeout:.0f} s; got {len(self.messages)} other(s)"
        return found


@pytest.fixture(scope="session")
def mailbox() -> Iterator[Mailbox]:
    """The SMTP server the topology's ``smtp_default`` connection points to."""
    from aiosmtpd.controller import Controller

    box = Mailbox()
    controller = Controller(box, hostname="127.0.0.1", port=box.port)
    controller.start()
    yield box
    controller.stop()


@pytest.fixture(scope="session")
def native_airflow(tmp_path_factory, mailbox) -> Iterator[NativeTopology]:
    """The running topology (healthy); at the end of the session every process must stop on SIGTERM."""
    root = tmp_path_factory.mktemp("native_topology")
    smtp = f"smtp://127.0.0.1:{mailbox.port}?disable_ssl=true&disable_tls=true&from_email=oncopipe%40localhost"
    with ephemeral_topology(root, DATABASE, celery=True, redis_db=REDIS_DB, admin_password=PASSWORD,
                            smtp_url=smtp, operator_emails=OPERATORS) as harness:
        yield harness
    assert not harness.forced, f"needed SIGKILL to stop: {harness.forced}"
    assert not any(harness.alive().values())


@pytest.fixture(scope="session")
def airflow_api(native_airflow) -> AirflowApi:
    """A REST API client logged in as the admin user."""
    return AirflowApi(native_airflow.api_url, ADMIN, PASSWORD)
