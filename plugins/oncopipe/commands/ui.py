"""``oncopipe ui``: the Airflow UI on the embedded metadata (``airflow standalone`` on 127.0.0.1)."""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
from pathlib import Path
from typing import Annotated

import typer

UI_USER = "admin"


def ui_environment(port: int) -> tuple[dict[str, str], str]:
    """The environment of ``airflow standalone`` and the password of :data:`UI_USER` (kept under airflow_home)."""
    from oncopipe.embedded import airflow_environment
    from oncopipe.settings import get_settings

    settings = get_settings().ensure()
    env = {**os.environ, **airflow_environment(settings)}
    passwords = settings.airflow_home / "simple_auth_manager_passwords.json"
    stored = json.loads(passwords.read_text(encoding="utf-8")) if passwords.exists() else {}
    if UI_USER not in stored:
        stored[UI_USER] = secrets.token_urlsafe(12)
        passwords.write_text(json.dumps(stored), encoding="utf-8")
        passwords.chmod(0o600)
    # `airflow standalone` starts its components as `airflow <component>` looked up on PATH: put this
    # environment's bin folder first, so `.venv/bin/oncopipe ui` works without an activated venv.
    bin_dir = os.path.dirname(sys.executable)
    env.update({
        "PATH": os.pathsep.join([bin_dir, env.get("PATH", "")]),
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{UI_USER}:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    })
    return env, stored[UI_USER]


def _default_sigint() -> None:
    # typer/rich may have installed handlers; the child must die on SIGINT, which is how standalone stops cleanly.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def register(app: typer.Typer) -> None:
    @app.command("ui")
    def ui(
        port: Annotated[int, typer.Option("--port", help="Port of the API server / UI.")] = 8080,
    ) -> None:
        """Start the Airflow UI (airflow standalone: scheduler, dag-processor, triggerer, api-server) on
        127.0.0.1 with a known login; Ctrl-C stops it cleanly."""
        from oncopipe import embedded

        settings = embedded.configure()
        embedded.prepare_metadata(progress=typer.echo)
        embedded.ensure_manifest(settings, progress=typer.echo)
        env, password = ui_environment(port)
        airflow = Path(sys.executable).with_name("airflow")
        typer.echo(f"Airflow UI: http://127.0.0.1:{port}  login: {UI_USER} / {password}")
        typer.echo(f"metadata: {settings.airflow_home}; stop with Ctrl-C")
        child = subprocess.Popen([str(airflow), "standalone"], env=env, preexec_fn=_default_sigint)
        try:
            code = child.wait()
        except KeyboardInterrupt:
            child.send_signal(signal.SIGINT)
            try:
                code = child.wait(timeout=60)
            except subprocess.TimeoutExpired:
                child.terminate()
                code = child.wait()
        raise typer.Exit(code if code and code > 0 else 0)
