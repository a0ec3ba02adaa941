"""``oncopipe run``: the whole platform in one process (the embedded default)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from oncopipe.embedded import DEFAULT_EXTRACTION_DATE, DEFAULT_PATIENTS, DEFAULT_SEED


def run_and_report(*, patients: int, seed: int, extraction_date: str, summary: Path | None) -> None:
    """Run :func:`oncopipe.embedded.run_platform` and print where the results are; exit 1 if a run failed."""
    from rich.console import Console

    from oncopipe.embedded import run_platform
    from oncopipe.settings import get_settings

    console = Console()
    settings = get_settings()
    summary = summary or settings.home / "runs" / "last_run.json"
    with console.status("running the platform...") as status:
        def progress(message: str) -> None:
            console.log(message)
            status.update(message)

        result = run_platform(patients=patients, seed=seed, extraction_date=extraction_date, progress=progress,
                              summary_path=summary)
    console.rule("oncopipe run")
    if result.published_version:
        console.print(f"published marts: version [bold]{result.published_version}[/bold] "
                      f"(extraction {result.published_extraction}) in {result.published_path}")
    else:
        console.print("[yellow]nothing published yet[/yellow]")
    for study_id, path in sorted(result.exports.items()):
        console.print(f"export {study_id}: {path}")
    for dag_id, why in sorted(result.not_run.items()):
        console.print(f"[dim]{dag_id}: {why}[/dim]")
    for outcome in (*result.refreshes, *result.studies):
        if outcome.state != "success":
            console.print(f"[red]{outcome.dag_id} {outcome.state}[/red]: failed tasks {outcome.failed_tasks}; "
                          f"logs under {settings.airflow_home / 'logs'}")
    console.print(f"summary: {summary} ({result.seconds:.0f} s)")
    if not result.ok:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    @app.command("run")
    def run(
        patients: Annotated[int, typer.Option(
            "--patients", min=1, help="People to simulate if no extraction has landed yet.")] = DEFAULT_PATIENTS,
        seed: Annotated[int, typer.Option("--seed", help="Random seed of the generated extraction.")] = DEFAULT_SEED,
        extraction_date: Annotated[str, typer.Option(
            "--extraction-date", help="Cut-off date of the generated extraction.")] = DEFAULT_EXTRACTION_DATE,
        summary: Annotated[Path | None, typer.Option(
            "--summary", help="Where to write the JSON summary (default <home>/runs/last_run.json).")] = None,
    ) -> None:
        """Run the whole platform in one process: refresh (raw gate, dbt, marts gate, publish), then the
        approved studies whose marts were updated (SQLite metadata under <home>/airflow, DuckDB warehouse)."""
        run_and_report(patients=patients, seed=seed, extraction_date=extraction_date, summary=summary)


