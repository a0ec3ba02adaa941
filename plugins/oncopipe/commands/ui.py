"""``oncopipe ui``: the Airflow UI on the embedded metadata (``airflow standalone`` on 127.0.0.1).

What it does, in order:

1. migrates the embedded SQLite metadata if needed and parses the dbt project (the refresh DAG is generated
   from its manifest);
2. starts ``airflow standalone`` (scheduler, dag-processor, triggerer, api-server; LocalExecutor) in a process
   group of its own, the api-server on ``127.0.0.1:<port>``, login ``admin`` with a password generated once and
   kept in ``<airflow_home>/simple_auth_manager_passwords.json``; prints the login, then "ready" once the
   api-server reports every component healthy; the plugins folder is the project's ``plugins/`` (the operator
   views), and the tasks reach the execution API on this port;
2b. then un-pauses the platform and study DAGs (Airflow creates them paused; an earlier ``oncopipe run`` left
   them so) as the dag-processor writes them, and prints which, with their schedules, so that schedules fire
   while the UI runs. Not before "ready": a task the scheduler started before the api-server answered failed
   (connection refused on the execution API), seen on the first start;
3. on Ctrl-C (SIGINT) or SIGTERM: sends SIGINT to standalone (the only signal it stops cleanly on: it then
   sends SIGTERM to each of its components and waits for them), waits up to :data:`INTERRUPT_GRACE_S` for the
   whole process group to end, then SIGTERM and, after :data:`TERMINATE_GRACE_S`, SIGKILL to whatever of the
   group is left; exits 0 once the group is gone.

Standalone runs in its own process group so that a terminal's Ctrl-C reaches only this command, which forwards
it once, to standalone alone. Interrupting the whole group, as a terminal does when standalone runs in the
foreground, also interrupts the scheduler's LocalExecutor workers while the scheduler waits for them to finish:
seen twice here, the scheduler and its workers then outlived SIGINT by 60 s and SIGTERM by 15 s and needed SIGKILL.

The scheduler and the triggerer normally start a log server each (ports 8793/8794, bound on every interface).
Here every component runs on this machine and writes its task logs under ``<airflow_home>/logs``, which the
api-server reads directly, so they are started with ``--skip-serve-logs`` (through a small ``airflow`` shim put
first on PATH: standalone starts its components as ``airflow <component>`` from PATH). Nothing listens on
anything but ``127.0.0.1:<port>``, and the UI does not collide with another Airflow on the machine.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Annotated

import typer

UI_USER = "admin"
HOST = "127.0.0.1"
#: How long standalone gets to stop after SIGINT before the group is sent SIGTERM, then SIGKILL.
INTERRUPT_GRACE_S = 60.0
TERMINATE_GRACE_S = 15.0
#: LocalExecutor slots (Airflow's default of 32 starts 32 idle worker processes on a 2-core machine).
PARALLELISM = 4
COMPONENTS = ("metadatabase", "scheduler", "triggerer", "dag_processor")
#: How long after "ready" the DAGs may take to appear (parsed by the dag-processor) to be un-paused.
UNPAUSE_WAIT_S = 300.0


def ui_environment(port: int) -> tuple[dict[str, str], str]:
    """The environment of ``airflow standalone`` and the password of :data:`UI_USER` (kept under airflow_home)."""
    from oncopipe.contracts.settings import get_settings
    from oncopipe.orchestration.embedded import airflow_environment

    settings = get_settings().ensure()
    env = {**os.environ, **airflow_environment(settings)}
    passwords = settings.airflow_home / "simple_auth_manager_passwords.json"
    stored = json.loads(passwords.read_text(encoding="utf-8")) if passwords.exists() else {}
    if UI_USER not in stored:
        stored[UI_USER] = secrets.token_urlsafe(12)
        passwords.write_text(json.dumps(stored), encoding="utf-8")
        passwords.chmod(0o600)
    shim_dir = _airflow_shim(settings.airflow_home / "bin")
    # The shim first, then this environment's bin folder, so `.venv/bin/oncopipe ui` works without an activated
    # venv (FileNotFoundError 'airflow' otherwise).
    bin_dir = os.path.dirname(sys.executable)
    env.update({
        "PATH": os.pathsep.join([str(shim_dir), bin_dir, env.get("PATH", "")]),
        "AIRFLOW__API__HOST": HOST,
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__BASE_URL": f"http://{HOST}:{port}",
        # The tasks the LocalExecutor starts report to the api-server's execution API: on this port, not on
        # Airflow's default (localhost:8080), or every scheduled task fails before it starts.
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://{HOST}:{port}/execution/",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{UI_USER}:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__PARALLELISM": str(PARALLELISM),
    })
    return env, stored[UI_USER]


def _airflow_shim(folder: Path) -> Path:
    """Write ``<folder>/airflow``: this environment's ``airflow``, with ``--skip-serve-logs`` added to the
    scheduler and the triggerer (see the module docstring)."""
    airflow = Path(sys.executable).with_name("airflow")
    folder.mkdir(parents=True, exist_ok=True)
    shim = folder / "airflow"
    text = ("#!/bin/sh\n"
            "# Written by `oncopipe ui`: no log servers (every component reads and writes logs on this machine).\n"
            'case "$1" in\n'
            f'  scheduler|triggerer) exec "{airflow}" "$@" --skip-serve-logs ;;\n'
            f'  *) exec "{airflow}" "$@" ;;\n'
            "esac\n")
    if not shim.exists() or shim.read_text(encoding="utf-8") != text:
        shim.write_text(text, encoding="utf-8")
        shim.chmod(0o755)
    return folder


def unpause_dags(dag_ids: set[str]) -> tuple[list[str], set[str]]:
    """Un-pause those of ``dag_ids`` the metadata holds; returns the ones un-paused now and every one found."""
    from airflow.models.dag import DagModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        models = session.scalars(select(DagModel).where(DagModel.dag_id.in_(dag_ids))).all()
        paused = [m for m in models if m.is_paused]
        for model in paused:
            model.is_paused = False
        return sorted(m.dag_id for m in paused), {m.dag_id for m in models}


def schedules_line() -> str:
    """What runs on its own while the UI runs: each platform and study DAG with its schedule."""
    from oncopipe.studies.registry import scan_registry

    parts = ["platform_refresh (@hourly: skipped while nothing new has landed)"]
    for entry in scan_registry(check_kinds=False):
        study = entry.study
        if study is None:
            continue
        when = f"cron {study.schedule.cron}" if study.schedule.cron else "on new published marts"
        parts.append(f"{study.dag_id} ({when})")
    return ("un-paused, running on their schedules: " + ", ".join(parts)
            + "; pause one with its toggle in the UI or `airflow dags pause <dag_id>`")


def port_in_use(port: int) -> bool:
    """Whether something already listens on ``127.0.0.1:<port>``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(1.0)
        return sock.connect_ex((HOST, port)) == 0


def health(port: int) -> dict | None:
    """The api-server's health report (``HEALTH_PATH``), or None while it does not answer."""
    from oncopipe.orchestration.deployment import HEALTH_PATH

    try:
        with urllib.request.urlopen(f"http://{HOST}:{port}{HEALTH_PATH}", timeout=5) as response:
            return json.loads(response.read())
    except (OSError, ValueError, urllib.error.URLError):
        return None


def all_healthy(report: dict | None) -> bool:
    return bool(report) and all((report.get(c) or {}).get("status") == "healthy" for c in COMPONENTS)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def group_processes(pgid: int) -> list[str]:
    """``<pid> <name>`` of every live process of a process group (through psutil)."""
    from oncopipe.orchestration.processes import live_processes

    return sorted(f"{pid} {name}" for pid, name in live_processes(group=pgid).items())


def _wait_group_gone(child: subprocess.Popen, pgid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        child.poll()  # reap standalone itself, or it stays in the group as a zombie
        if child.returncode is not None and not _group_alive(pgid):
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)


def stop_group(child: subprocess.Popen, echo=print, *, interrupt_grace: float = INTERRUPT_GRACE_S,
               terminate_grace: float = TERMINATE_GRACE_S) -> str:
    """Stop standalone and every process of its group: SIGINT, then SIGTERM, then SIGKILL.

    Returns the name of the signal that ended the group (``SIGINT`` when standalone stopped cleanly).
    """
    pgid = child.pid  # standalone leads its own group (process_group=0)
    started = time.monotonic()
    for sig, grace in ((signal.SIGINT, interrupt_grace), (signal.SIGTERM, terminate_grace),
                       (signal.SIGKILL, terminate_grace)):
        if sig != signal.SIGINT:
            echo(f"airflow standalone still running after {time.monotonic() - started:.0f} s: {sig.name} to "
                 f"its process group {pgid} ({', '.join(group_processes(pgid))})")
        try:
            if sig == signal.SIGINT:
                child.send_signal(sig)  # standalone alone: it stops its components itself
            else:
                os.killpg(pgid, sig)
        except ProcessLookupError:
            pass
        if _wait_group_gone(child, pgid, grace):
            echo(f"airflow standalone stopped ({sig.name}) in {time.monotonic() - started:.1f} s")
            return sig.name
    raise RuntimeError(f"process group {pgid} survived SIGKILL")


def serve(port: int, echo=print) -> int:
    """Run ``airflow standalone`` until SIGINT/SIGTERM (see the module docstring); returns the exit code."""
    from oncopipe.orchestration import embedded

    if port_in_use(port):
        echo(f"port {port} is already in use on {HOST}: choose another with --port")
        return 2
    stop = threading.Event()

    def request_stop(signum: int, _frame: object) -> None:
        stop.set()

    # Handlers first: a caught signal is reset to the default in the child at exec, so standalone can be
    # interrupted even when this command was started with SIGINT ignored (e.g. in the background of a script).
    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        settings = embedded.configure()
        embedded.prepare_metadata(progress=echo)
        embedded.ensure_manifest(settings, progress=echo)
        env, password = ui_environment(port)
        echo(f"Airflow UI: http://{HOST}:{port}  login: {UI_USER} / {password}")
        echo(f"metadata and task logs: {settings.airflow_home}; stop with Ctrl-C")
        if stop.is_set():
            return 0
        airflow = Path(sys.executable).with_name("airflow")
        child = subprocess.Popen([str(airflow), "standalone"], env=env, process_group=0)
        ready = False
        to_unpause = set(embedded.platform_dag_ids())
        unpause_until = None
        while child.poll() is None and not stop.is_set():
            if not ready and all_healthy(health(port)):
                ready = True
                unpause_until = time.monotonic() + UNPAUSE_WAIT_S
                echo(f"ready: http://{HOST}:{port} (every component healthy)")
            if ready and to_unpause:
                resumed, found = unpause_dags(to_unpause)
                if resumed:
                    echo(f"un-paused: {', '.join(resumed)}")
                to_unpause -= found
                if not to_unpause:
                    echo(schedules_line())
                elif time.monotonic() > unpause_until:
                    echo(f"not parsed after {UNPAUSE_WAIT_S:.0f} s, left as Airflow made them (paused): "
                         f"{', '.join(sorted(to_unpause))}; un-pause them with their toggle in the UI")
                    to_unpause = set()
            stop.wait(1.0)
        if child.returncode is not None:
            echo(f"airflow standalone exited by itself with code {child.returncode}")
            return child.returncode or 1
        echo(f"stopping: SIGINT to airflow standalone (pid {child.pid}, leader of its process group), up to "
             f"{INTERRUPT_GRACE_S:.0f} s before SIGTERM to the group")
        stop_group(child, echo)
        return 0
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def register(app: typer.Typer) -> None:
    @app.command("ui")
    def ui(
        port: Annotated[int, typer.Option("--port", help="Port of the API server / UI on 127.0.0.1.")] = 8080,
    ) -> None:
        """Start the Airflow UI (airflow standalone: scheduler, dag-processor, triggerer, api-server) on
        127.0.0.1 with a known login; Ctrl-C stops it cleanly."""
        raise typer.Exit(serve(port, echo=typer.echo))
