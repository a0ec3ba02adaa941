"""``oncopipe demo``: a small synthetic extraction in the configured landing folder, and what it holds."""

from __future__ import annotations

from typing import Annotated

import typer

DEMO_PATIENTS = 2_000
DEMO_SEED = 42
DEMO_EXTRACTION_DATE = "2025-06-30"


def register(app: typer.Typer) -> None:
    @app.command("demo")
    def demo(
        patients: Annotated[int, typer.Option("--patients", min=1, help="People to simulate.")] = DEMO_PATIENTS,
        seed: Annotated[int, typer.Option("--seed", help="Random seed.")] = DEMO_SEED,
        extraction_date: Annotated[str, typer.Option(
            "--extraction-date", help="Cut-off date.")] = DEMO_EXTRACTION_DATE,
    ) -> None:
        """Generate a small extraction into the landing folder (settings.landing) and summarise it."""
        from rich.progress import Progress, SpinnerColumn, TextColumn

        from oncopipe.settings import get_settings
        from oncopipe.synth.extraction import generate

        settings = get_settings().ensure()
        with Progress(SpinnerColumn(), TextColumn("generating {task.description}")) as progress:
            progress.add_task(f"{patients} people at {extraction_date}")
            report = generate(settings.landing, patients, seed, extraction_date)
        typer.echo(f"landing: {settings.landing} (extraction={extraction_date})")
        for source in sorted(report.rows):
            typer.echo(f"  {source:15} files={report.files[source]:3d} rows={report.rows[source]:,}")
        typer.echo(f"truth (tests only): {report.truth_dir}")
