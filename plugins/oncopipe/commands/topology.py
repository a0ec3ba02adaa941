"""``oncopipe topology``: render docker-compose.yml, write secrets, run the production topology natively."""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path
from typing import Annotated

import typer

from oncopipe.contracts.settings import get_settings


def register(app: typer.Typer) -> None:
    topology_app = typer.Typer(help="Production topology: docker-compose.yml and the native process harness.",
                               no_args_is_help=True)
    app.add_typer(topology_app, name="topology")

    @topology_app.command("render")
    def render(
        check: bool = typer.Option(False, "--check", help="Exit 1 if the committed files differ from the render."),
    ) -> None:
        """Write docker-compose.yml and .env.example from oncopipe/orchestration/deployment.py (the one source)."""
        from oncopipe.orchestration import deployment

        outputs = {deployment.COMPOSE_FILE: deployment.render_compose(),
                   deployment.ENV_EXAMPLE_FILE: deployment.env_example_text()}
        stale = [p for p, text in outputs.items() if not p.exists() or p.read_text(encoding="utf-8") != text]
        if check:
            for path in stale:
                typer.echo(f"stale: {path} (run `oncopipe topology render`)", err=True)
            raise typer.Exit(1 if stale else 0)
        for path, text in outputs.items():
            path.write_text(text, encoding="utf-8")
            typer.echo(f"{'written' if path in stale else 'unchanged'}: {path}")

    @topology_app.command("secrets")
    def secrets() -> None:
        """Print a .env with fresh random secrets (redirect it: `oncopipe topology secrets > .env`)."""
        from oncopipe.orchestration import deployment

        for name, value in deployment.generate_secrets().items():
            typer.echo(f"{name}={value}")

    @topology_app.command("env")
    def env(
        target: str = typer.Option("compose", help="compose or native"),
        env_file: Annotated[Path | None, typer.Option(help="Secrets file for native (default: .env).")] = None,
    ) -> None:
        """Print the environment every Airflow process of a deployment gets (secrets masked)."""
        from oncopipe.orchestration import deployment

        if target == "compose":
            environment = deployment.COMPOSE_TARGET.environment()
        elif target == "native":
            secrets = deployment.read_env_file(env_file or deployment.ENV_FILE)
            settings = get_settings()
            environment = deployment.native_target(
                secrets=secrets, data=settings.home, airflow_home=settings.airflow_home,
                postgres_db="oncopipe_airflow", api_port=8080).environment()
            for value in secrets.values():
                environment = {k: v.replace(value, "***") for k, v in environment.items()}
        else:
            raise typer.BadParameter("compose or native", param_hint="--target")
        for key, value in environment.items():
            typer.echo(f"{key}={value}")

    @topology_app.command("up")
    def up(
        env_file: Annotated[Path | None, typer.Option(help="Secrets file (default: .env of the checkout).")] = None,
        database: str = typer.Option("oncopipe_airflow", help="PostgreSQL metadata database (created if absent)."),
        postgres_host: str = typer.Option("127.0.0.1"),
        postgres_port: int = typer.Option(5432),
        postgres_user: str = typer.Option("postgres"),
        redis_db: int = typer.Option(0, help="Redis database number of the Celery broker."),
        port: int = typer.Option(8080, help="api-server port on 127.0.0.1 (0: any free port)."),
        celery: bool = typer.Option(True, help="CeleryExecutor with one worker (else LocalExecutor)."),
        detach: bool = typer.Option(False, help="Return once healthy; stop later with `oncopipe topology down`."),
        timeout: float = typer.Option(240.0, help="Seconds to wait for every process to be healthy."),
    ) -> None:
        """Start the production topology as native processes (PostgreSQL and Redis on this machine).

        Logs: <ONCOPIPE_HOME>/topology/logs/<process>.log; PIDs: <ONCOPIPE_HOME>/topology/pids.json.
        """
        from oncopipe.orchestration import deployment
        from oncopipe.orchestration.native import NativeTopology, TopologyError, create_database, free_port

        path = env_file or deployment.ENV_FILE
        if not path.exists():
            typer.echo(f"{path} not found: `oncopipe topology secrets > {path}` writes one", err=True)
            raise typer.Exit(2)
        secrets = deployment.read_env_file(path)
        settings = get_settings()
        try:
            target = deployment.native_target(
                secrets=secrets, data=settings.home, airflow_home=settings.airflow_home, postgres_db=database,
                api_port=port or free_port(), redis_db=redis_db, celery=celery, postgres_host=postgres_host,
                postgres_port=postgres_port, postgres_user=postgres_user)
        except ValueError as error:
            typer.echo(f"{path}: {error}", err=True)
            raise typer.Exit(2) from None
        create_database(database, postgres_host, postgres_port, postgres_user, secrets["POSTGRES_PASSWORD"])
        harness = NativeTopology(target, settings.home / "topology", secrets["ONCOPIPE_ADMIN_PASSWORD"],
                                 celery=celery)
        try:
            seconds = harness.up(timeout)
        except TopologyError as error:
            harness.stop_all()
            typer.echo(str(error), err=True)
            raise typer.Exit(1) from None
        typer.echo(f"healthy in {seconds:.0f} s: {harness.api_url} (user admin); logs in {harness.log_dir}")
        for name, started in harness.started.items():
            typer.echo(f"  {name:14} pid {started.popen.pid}")
        if detach:
            return
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        try:
            while not stop.wait(5):
                exited = [n for n, alive in harness.alive().items() if not alive]
                if exited:
                    typer.echo(f"exited: {', '.join(exited)} (see {harness.log_dir})", err=True)
                    break
        except KeyboardInterrupt:
            pass
        codes = harness.stop_all()
        typer.echo(f"stopped: {codes}")
        sys.exit(0)

    @topology_app.command("down")
    def down(timeout: float = typer.Option(30.0, help="Seconds before SIGKILL.")) -> None:
        """Stop the processes a detached `oncopipe topology up` started (by their recorded PIDs)."""
        from oncopipe.orchestration.native import stop_recorded

        outcome = stop_recorded(get_settings().home / "topology", timeout)
        if not outcome:
            typer.echo("nothing recorded: no detached topology is running")
        for name, what in outcome.items():
            typer.echo(f"{name:14} {what}")
