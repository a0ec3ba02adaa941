"""``oncopipe studies list|validate``: the study registry (``dags/studies/*.yml``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from oncopipe.contracts.settings import STUDIES_DIR
from oncopipe.studies.registry import StudyError, load_study, scan_registry

studies_app = typer.Typer(help="The study registry: one YAML per approved study.", no_args_is_help=True)


@studies_app.command("list")
def list_studies(
    directory: Annotated[Path, typer.Option("--dir", help="Registry folder.")] = STUDIES_DIR,
) -> None:
    """List every study with its analysis, approval, whether it may run today, and its schedule."""
    table = Table(title=f"studies in {directory}")
    for column in ("id", "analysis", "approval", "runs today", "schedule", "reads"):
        table.add_column(column)
    entries = scan_registry(directory)
    for entry in entries:
        study = entry.study
        if study is None:
            table.add_row(entry.path.stem, "-", "-", "[red]invalid file[/red]", "-", "-")
            continue
        problem = study.approval_problem()
        schedule = f"assets: {', '.join(study.schedule.assets)}" if study.schedule.assets else study.schedule.cron
        table.add_row(study.id, study.analysis.kind, f"{study.approval.committee} {study.approval.reference}",
                      "[green]yes[/green]" if problem is None else f"[yellow]no: {problem}[/yellow]",
                      schedule or "-", ", ".join(study.reads))
    Console().print(table)
    if any(e.error for e in entries):
        typer.echo("some study files are invalid: run `oncopipe studies validate`", err=True)


@studies_app.command("validate")
def validate(
    paths: Annotated[
        list[Path] | None, typer.Argument(help="Study files to check (default: every file of the registry).")
    ] = None,
    directory: Annotated[Path, typer.Option("--dir", help="Registry folder.")] = STUDIES_DIR,
) -> None:
    """Validate study files; print each error with its file and field, exit 1 if any is invalid."""
    errors: list[str] = []
    checked = 0
    if paths:
        for path in paths:
            checked += 1
            try:
                load_study(path)
            except StudyError as exc:
                errors.append(str(exc))
    else:
        for entry in scan_registry(directory):
            checked += 1
            if entry.error:
                errors.append(entry.error)
    for error in errors:
        typer.echo(error, err=True)
    if errors:
        typer.echo(f"{len(errors)} of {checked} study file(s) invalid", err=True)
        raise typer.Exit(1)
    typer.echo(f"{checked} study file(s) valid")


@studies_app.command("owed")
def owed() -> None:
    """List the approved studies with no export of the current published marts (a run failed or died after
    the publish); exit 1 if any. `oncopipe run` runs them again; under the scheduler, trigger their DAG."""
    from oncopipe.orchestration.embedded import owed_exports

    missing = owed_exports()
    for dag_id, why in sorted(missing.items()):
        typer.echo(f"{dag_id}: {why}")
    if missing:
        raise typer.Exit(1)
    typer.echo("every approved study has an export of the current published marts")


def register(app: typer.Typer) -> None:
    app.add_typer(studies_app, name="studies")
