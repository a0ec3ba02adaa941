"""The test harness's REST API client (apache-airflow-client) against a recording HTTP server on 127.0.0.1.

What the live topology tests cannot show cheaply: the request the client sends (a trigger names no logical date,
as Airflow 3 requires it explicitly; the bearer token), that a GET is retried after a dropped connection while a
POST is not (it may have taken effect), and that an API error reaches the test with its status and detail.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from oncopipe.orchestration.native import TopologyError
from support.native_harness import AirflowApi

HEALTHY = {"metadatabase": {"status": "healthy"}, "scheduler": {"status": "healthy"},
           "triggerer": {"status": "healthy"}, "dag_processor": {"status": "healthy"}}


class _Recorder(BaseHTTPRequestHandler):
    seen: list[tuple[str, str, dict, str | None]] = []
    drop: dict[str, int] = {}  # method -> how many connections to drop without an answer

    def _answer(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
        self.seen.append((self.command, self.path, json.loads(body) if body else {},
                          self.headers.get("Authorization")))
        if self.drop.get(self.command, 0) > 0:
            self.drop[self.command] -= 1
            self.close_connection = True
            self.connection.shutdown(2)  # no status line: the client sees the connection dropped
            return
        if self.path == "/auth/token":
            status, answer = ((201, {"access_token": "tok-123"}) if json.loads(body)["password"] == "right"
                              else (401, {"detail": "Invalid credentials"}))
        elif self.path.startswith("/api/v2/monitor/health"):
            status, answer = 200, HEALTHY
        elif "/logs/" in self.path:
            status, answer = 200, {"content": [{"event": "::group::Log message source details"},
                                               {"event": "Task failed: raw gate failed", "timestamp": None,
                                                "level": "error"}], "continuation_token": None}
        elif self.path.endswith("/dagRuns"):
            status, answer = 409, {"detail": "DAGRun with dag_run_id: 'manual__x' already exists"}
        else:
            status, answer = 404, {"detail": "Not Found"}
        data = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PATCH = _answer

    def log_message(self, *args) -> None:  # keep the test output quiet
        pass


@pytest.fixture()
def server() -> Iterator[str]:
    _Recorder.seen, _Recorder.drop = [], {}
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_logs_in_and_sends_the_token_where_the_api_asks_for_it(server):
    api = AirflowApi(server, "admin", "right", timeout=5)
    assert _Recorder.seen[0][:3] == ("POST", "/auth/token", {"username": "admin", "password": "right"})
    assert api.health()["scheduler"]["status"] == "healthy"
    assert _Recorder.seen[-1][3] is None  # health is public
    with pytest.raises(TopologyError):
        api.unpause("platform_refresh")
    assert _Recorder.seen[-1][:4] == ("PATCH", "/api/v2/dags/platform_refresh", {"is_paused": False}, "Bearer tok-123")


def test_a_wrong_password_is_an_error_naming_the_endpoint(server):
    with pytest.raises(TopologyError, match=r"/auth/token: HTTP 401.*Invalid credentials"):
        AirflowApi(server, "admin", "wrong", timeout=5)


def test_a_trigger_names_no_logical_date_and_its_error_says_why(server):
    api = AirflowApi(server, "admin", "right", timeout=5)
    with pytest.raises(TopologyError, match=r"trigger_dag_run platform_refresh: HTTP 409.*already exists"):
        api.trigger("platform_refresh", {"extraction": "2024-12-31"})
    method, path, body, _ = _Recorder.seen[-1]
    assert (method, path) == ("POST", "/api/v2/dags/platform_refresh/dagRuns")
    assert body == {"logical_date": None, "conf": {"extraction": "2024-12-31"}}


def test_a_get_is_retried_after_a_dropped_connection_a_post_is_not(server):
    api = AirflowApi(server, "admin", "right", timeout=5)
    _Recorder.drop = {"GET": 1, "POST": 1}
    assert api.health()["metadatabase"]["status"] == "healthy"
    assert [m for m, *_ in _Recorder.seen].count("GET") == 2
    posts = [m for m, *_ in _Recorder.seen].count("POST")
    with pytest.raises(TopologyError, match="trigger_dag_run platform_refresh: no answer"):
        api.trigger("platform_refresh")
    assert [m for m, *_ in _Recorder.seen].count("POST") == posts + 1


def test_a_log_reads_back_as_its_events(server):
    api = AirflowApi(server, "admin", "right", timeout=5)
    events = api.log_events("platform_refresh", "manual__2024-12-31T00:00:00+00:00", "raw_gate")
    assert events == ["::group::Log message source details", "Task failed: raw gate failed"]
    assert _Recorder.seen[-1][1].startswith("/api/v2/dags/platform_refresh/dagRuns/manual__2024-12-31T00")
    assert "/taskInstances/raw_gate/logs/1?full_content=true" in _Recorder.seen[-1][1]
