"""Native harness: the production topology as processes on this machine.

It starts exactly the processes of :mod:`oncopipe.orchestration.deployment` (api-server, scheduler, dag-processor,
triggerer, Celery worker) with the environment of a native :class:`~oncopipe.orchestration.deployment.Target`, against a
PostgreSQL and a Redis the machine reaches (127.0.0.1 by default). Each process runs in its own session, so
stopping it reaches every process it started and nothing else: SIGTERM to its process group (uvicorn workers,
Celery forks), SIGKILL after a grace period, then whatever is left in its session (a task runner, which
Airflow's supervisor puts in a process group of its own). Every PID it started is written to
``<state>/pids.json`` so ``oncopipe topology down`` can stop a detached deployment. Logs go to
``<state>/logs/<process>.log``.

The harness stops what it started however the caller leaves: normally, on an exception or KeyboardInterrupt
(a second interrupt while stopping kills at once), and at interpreter exit (``atexit``) if it was never told.
"""

from __future__ import annotations

import atexit
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from oncopipe.orchestration import deployment, processes
from oncopipe.orchestration.deployment import HEALTH_PATH, MIGRATE_COMMANDS, Process, Target

#: Variables a process must not inherit from the caller: the topology sets the ones it needs.
_INHERITED_PREFIXES = ("AIRFLOW", "ONCOPIPE_", "_AIRFLOW")


class TopologyError(RuntimeError):
    """A process of the topology failed to start, exited, or did not become healthy in time."""


def default_airflow_bin() -> Path:
    """The ``airflow`` executable next to the running interpreter (the project's venv)."""
    return Path(sys.executable).parent / "airflow"


def log_tail(path: Path, lines: int = 40) -> str:
    """The last ``lines`` lines of a log file, for error messages."""
    if not path.exists():
        return f"(no log at {path})"
    return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])


@dataclass
class Started:
    """A process the harness started."""

    process: Process
    popen: subprocess.Popen
    log: Path


@dataclass
class NativeTopology:
    """Start, watch and stop the topology's processes.

    Use it as a context manager: leaving the block stops every process it started, whatever the way out.

    Attributes:
        target: the native target (see :func:`oncopipe.orchestration.deployment.native_target`).
        state_dir: where logs and ``pids.json`` go.
        admin_password: password of the UI's admin user (written to the auth manager's passwords file).
        celery: start the Celery worker too.
        airflow_bin: the ``airflow`` executable.
        stop_timeout: seconds a process gets to exit after SIGTERM before SIGKILL.
        only: the processes to run, if not those of :func:`oncopipe.orchestration.deployment.processes`
            (tests of the harness).
        tuning: settings added to every process's environment on top of the topology's (the test harness's
            shorter intervals, :data:`oncopipe.orchestration.deployment.TEST_TUNING`); empty for a real deployment.
    """

    target: Target
    state_dir: Path
    admin_password: str
    celery: bool = True
    airflow_bin: Path = field(default_factory=default_airflow_bin)
    stop_timeout: float = 30.0
    only: tuple[Process, ...] = ()
    tuning: Mapping[str, str] = field(default_factory=dict)
    started: dict[str, Started] = field(default_factory=dict)
    forced: list[str] = field(default_factory=list)
    #: Every session the harness ever led (a killed and restarted process leaves one behind), oldest first.
    sessions: list[int] = field(default_factory=list)

    @property
    def environment(self) -> dict[str, str]:
        """The topology's environment (what every process gets on top of PATH, HOME, ...)."""
        return self.target.environment()

    @property
    def api_url(self) -> str:
        """Base URL of the api-server."""
        return self.target.values["api_url"]

    @property
    def log_dir(self) -> Path:
        return self.state_dir / "logs"

    def process_environment(self) -> dict[str, str]:
        """The full environment of a process: the caller's, minus Airflow/oncopipe settings, plus the topology's
        (and the :attr:`tuning`, which may not override it)."""
        overlap = sorted(set(self.tuning) & set(self.environment))
        if overlap:
            raise ValueError(f"tuning may not override the topology's settings: {', '.join(overlap)}")
        inherited = {k: v for k, v in os.environ.items() if not k.startswith(_INHERITED_PREFIXES)}
        return {**inherited, **self.tuning, **self.environment}

    def processes(self) -> tuple[Process, ...]:
        return self.only or deployment.processes(celery=self.celery)

    def prepare(self) -> None:
        """Create the data folders and the passwords file (the compose ``init`` service)."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        deployment.prepare(self.environment, self.admin_password)

    def migrate(self) -> None:
        """Migrate the metadata database, create the pools, parse dbt (the compose ``migrate`` service).

        Raises:
            TopologyError: a command failed; the message holds the end of its log.
        """
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = self.log_dir / "migrate.log"
        with log.open("a", encoding="utf-8") as out:
            for program, *args in MIGRATE_COMMANDS:
                executable = {"airflow": str(self.airflow_bin), "python": sys.executable}[program]
                out.write(f"$ {program} {' '.join(args)}\n")
                out.flush()
                done = subprocess.run([executable, *args], env=self.process_environment(),
                                      stdout=out, stderr=subprocess.STDOUT, check=False)
                if done.returncode != 0:
                    raise TopologyError(f"`{program} {' '.join(args)}` exited {done.returncode}:\n{log_tail(log)}")

    def start(self, name: str) -> Started:
        """Start one process by name (see :data:`oncopipe.orchestration.deployment.PROCESSES`)."""
        process = next((p for p in self.processes() if p.name == name), None)
        if process is None:
            raise KeyError(f"no process {name!r} in the topology (celery={self.celery})")
        if name in self.started and self.started[name].popen.poll() is None:
            raise TopologyError(f"{name} is already running (pid {self.started[name].popen.pid})")
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = self.log_dir / f"{name}.log"
        if not self.sessions:
            atexit.register(self._stop_at_exit)
        with log.open("a", encoding="utf-8") as out:
            out.write(f"--- start {time.strftime('%Y-%m-%dT%H:%M:%S')} {' '.join(process.args)}\n")
            out.flush()
            popen = subprocess.Popen(process.native_command(self.airflow_bin), env=self.process_environment(),
                                     stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     start_new_session=True)
        self.sessions.append(popen.pid)
        self.started[name] = Started(process, popen, log)
        self._write_pids()
        return self.started[name]

    def start_all(self, timeout: float = 180.0) -> None:
        """Start every process of the topology; those that need the api-server once it answers.

        Raises:
            TopologyError: the api-server exited or did not answer within ``timeout`` seconds.
        """
        first = [p for p in self.processes() if not p.needs_api]
        for process in first:
            self.start(process.name)
        began = time.monotonic()
        while self.health() is None:
            for process in first:
                started = self.started[process.name]
                if started.popen.poll() is not None:
                    raise TopologyError(f"{process.name} exited with code {started.popen.returncode}:\n"
                                        f"{log_tail(started.log)}")
            if time.monotonic() - began > timeout:
                raise TopologyError(f"the api-server did not answer within {timeout:.0f} s:\n"
                                    f"{log_tail(self.log_dir / 'api-server.log')}")
            time.sleep(0.5)
        for process in self.processes():
            if process.needs_api:
                self.start(process.name)

    def kill(self, name: str) -> None:
        """SIGKILL a process and its group at once (the fault tests' crash)."""
        started = self.started[name]
        _signal_group(started.popen.pid, signal.SIGKILL)
        started.popen.wait()

    def stop(self, name: str) -> int:
        """Stop a process: SIGTERM to its group, SIGKILL to its session after :attr:`stop_timeout`; then what
        is left of its session (SIGTERM, SIGKILL after a grace period). A SIGKILL is recorded in :attr:`forced`.

        Returns:
            The process's exit code.
        """
        popen = self.started[name].popen
        if popen.poll() is None:
            _signal_group(popen.pid, signal.SIGTERM)
            try:
                popen.wait(timeout=self.stop_timeout)
            except subprocess.TimeoutExpired:
                self.forced.append(name)
                _signal_session(popen.pid, signal.SIGKILL)
                popen.wait()
        # A task runner lives in a process group of its own (Airflow's supervisor calls setpgid), not in its
        # leader's, but stays in the session.
        if not _end_session(popen.pid, min(self.stop_timeout, 10.0)):
            self.forced.append(f"{name} (leftovers)")
        return popen.returncode

    def stop_all(self) -> dict[str, int]:
        """Stop every process started, in reverse start order (workers before the api-server they call).

        An exception while stopping (a KeyboardInterrupt: Ctrl-C pressed twice) SIGKILLs everything left before
        it propagates.
        """
        codes: dict[str, int] = {}
        try:
            for name in reversed(list(self.started)):
                codes[name] = self.stop(name)
            for sid in self.sessions:  # sessions of processes killed and restarted (the fault tests)
                _end_session(sid, 5.0)
        except BaseException:
            self.kill_all()
            raise
        finally:
            self._write_pids()
        atexit.unregister(self._stop_at_exit)
        return codes

    def kill_all(self) -> None:
        """SIGKILL every process of every session the harness led, at once, and reap the leaders."""
        for sid in self.sessions:
            _signal_session(sid, signal.SIGKILL)
        for started in self.started.values():
            started.popen.wait()
        for sid in self.sessions:
            _wait_session_empty(sid, 10.0)

    def _stop_at_exit(self) -> None:
        if any(self.alive().values()) or any(_session_members(sid) for sid in self.sessions):
            print(f"oncopipe.orchestration.native: stopping the topology's processes at exit ({self.state_dir})",
                  file=sys.stderr)
            self.stop_timeout = min(self.stop_timeout, 5.0)
            self.stop_all()

    def alive(self) -> dict[str, bool]:
        """Whether each started process is still running."""
        return {name: s.popen.poll() is None for name, s in self.started.items()}

    def health(self) -> dict | None:
        """The api-server's health report, or None while it does not answer."""
        try:
            with urllib.request.urlopen(self.api_url + HEALTH_PATH, timeout=5) as response:
                return json.load(response)
        except (urllib.error.URLError, ConnectionError, TimeoutError, json.JSONDecodeError):
            return None

    def unhealthy(self) -> list[str]:
        """Names of the started processes that are not (yet) healthy."""
        report = self.health()
        waiting = []
        for name, started in self.started.items():
            process = started.process
            if started.popen.poll() is not None:
                raise TopologyError(f"{name} exited with code {started.popen.returncode}:\n{log_tail(started.log)}")
            if process.health_component:
                status = (report or {}).get(process.health_component, {}).get("status")
                if status != "healthy":
                    waiting.append(name)
            elif process.ready_log and process.ready_log not in started.log.read_text(errors="replace"):
                waiting.append(name)
        return waiting

    def wait_healthy(self, timeout: float = 180.0, interval: float = 1.0) -> float:
        """Wait until every started process reports healthy.

        Returns:
            Seconds waited.

        Raises:
            TopologyError: a process exited, or one was still unhealthy after ``timeout`` seconds.
        """
        began = time.monotonic()
        while True:
            waiting = self.unhealthy()
            if not waiting:
                return time.monotonic() - began
            if time.monotonic() - began > timeout:
                tails = "\n".join(f"--- {n}:\n{log_tail(self.started[n].log, 15)}" for n in waiting)
                raise TopologyError(f"not healthy after {timeout:.0f} s: {', '.join(waiting)}\n{tails}")
            time.sleep(interval)

    def up(self, timeout: float = 180.0, *, migrate: bool = True) -> float:
        """Prepare, migrate, start everything and wait for health; returns the seconds it took.

        If anything fails or is interrupted on the way, every process started so far is stopped first.

        Args:
            timeout: seconds to wait for the api-server, then for every process, to be healthy.
            migrate: run the ``migrate`` steps (False: the database is a copy of a migrated one).
        """
        began = time.monotonic()
        try:
            self.prepare()
            if migrate:
                self.migrate()
            self.start_all(timeout)
            self.wait_healthy(timeout)
        except BaseException:
            self.stop_all()
            raise
        return time.monotonic() - began

    def _write_pids(self) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        pids = {name: s.popen.pid for name, s in self.started.items() if s.popen.poll() is None}
        (self.state_dir / "pids.json").write_text(json.dumps(pids, indent=2) + "\n", encoding="utf-8")

    def __enter__(self) -> NativeTopology:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop_all()


def _signal_group(pid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        pass


def _session_members(sid: int, *, airflow_only: bool = False) -> list[int]:
    """PIDs of the live (non-zombie) processes of session ``sid``.

    Linux does not reuse a PID while a session or group still carries it, so the members of a session the
    harness started are its descendants, even reparented ones, and nothing else. ``airflow_only`` keeps only
    those whose command line names airflow (for PIDs read back from a file).
    """
    return [pid for pid in processes.live_processes(session=sid) if not airflow_only or _is_airflow(pid)]


def _signal_session(sid: int, sig: signal.Signals, *, airflow_only: bool = False) -> None:
    for pid in _session_members(sid, airflow_only=airflow_only):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def _wait_session_empty(sid: int, timeout: float, *, airflow_only: bool = False) -> bool:
    deadline = time.monotonic() + timeout
    while _session_members(sid, airflow_only=airflow_only):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def _end_session(sid: int, grace: float, *, airflow_only: bool = False) -> bool:
    """Stop what is left of a session: SIGTERM, then SIGKILL after ``grace`` seconds.

    Returns:
        True if nothing was left or it exited on SIGTERM; False if SIGKILL was needed.
    """
    if not _session_members(sid, airflow_only=airflow_only):
        return True
    _signal_session(sid, signal.SIGTERM, airflow_only=airflow_only)
    if _wait_session_empty(sid, grace, airflow_only=airflow_only):
        return True
    _signal_session(sid, signal.SIGKILL, airflow_only=airflow_only)
    _wait_session_empty(sid, 10.0, airflow_only=airflow_only)
    return False


def stop_recorded(state_dir: Path, timeout: float = 30.0) -> dict[str, str]:
    """Stop the processes a detached ``oncopipe topology up`` recorded in ``<state>/pids.json``.

    Only a recorded PID whose command line is still an ``airflow`` command is signalled, so a PID the
    system reused for something else is left alone; so are the other members of its session (task runners
    left behind by a leader that died).

    Returns:
        What happened to each recorded process.
    """
    pids_file = state_dir / "pids.json"
    if not pids_file.exists():
        return {}
    outcome: dict[str, str] = {}
    recorded: Mapping[str, int] = json.loads(pids_file.read_text(encoding="utf-8"))
    for name, pid in reversed(list(recorded.items())):
        if not _is_airflow(pid):
            left = _end_session(pid, timeout, airflow_only=True)
            outcome[name] = (f"pid {pid} not running (or not airflow): left alone"
                             + ("" if left else "; its session's airflow processes killed"))
            continue
        _signal_group(pid, signal.SIGTERM)
        outcome[name] = "stopped" if _wait_gone(pid, timeout) else "killed"
        _signal_group(pid, signal.SIGKILL)
        _end_session(pid, 5.0, airflow_only=True)
    pids_file.unlink()
    return outcome


def _is_airflow(pid: int) -> bool:
    """A live process whose command line names airflow (a zombie has none)."""
    # Airflow retitles its processes ("airflow api_server -- host:..."), so look for the word, not the path.
    return any("airflow" in arg for arg in processes.command_line(pid) or ())


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _is_zombie(pid):
            return True
        time.sleep(0.2)
    return False


def _is_zombie(pid: int) -> bool:
    """A zombie, or gone."""
    return processes.state(pid) in ("Z", None)


def create_database(name: str, host: str = "127.0.0.1", port: int = 5432, user: str = "postgres",
                    password: str | None = None, *, recreate: bool = False) -> None:
    """Create a PostgreSQL database for the metadata (dropping it first with ``recreate``)."""
    _admin_sql(host, port, user, password,
               ([f'drop database if exists "{name}" with (force)'] if recreate else [])
               + [f'create database "{name}"'], skip_if_exists=name if not recreate else None)


def drop_database(name: str, host: str = "127.0.0.1", port: int = 5432, user: str = "postgres",
                  password: str | None = None) -> None:
    """Drop a PostgreSQL database, closing its connections first."""
    _admin_sql(host, port, user, password, [f'drop database if exists "{name}" with (force)'])


def _admin_sql(host: str, port: int, user: str, password: str | None, statements: Iterable[str],
               skip_if_exists: str | None = None) -> None:
    import psycopg2

    connection = psycopg2.connect(host=host, port=port, user=user, password=password, dbname="postgres")
    try:
        connection.autocommit = True
        with connection.cursor() as cursor:
            if skip_if_exists:
                cursor.execute("select 1 from pg_database where datname = %s", (skip_if_exists,))
                if cursor.fetchone():
                    return
            for statement in statements:
                cursor.execute(statement)
    finally:
        connection.close()


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
