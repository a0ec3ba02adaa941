"""``oncopipe demo``: the whole platform end to end on a small synthetic extraction (what ``make demo`` runs).

It is ``oncopipe run`` at the demo scale: if nothing has landed yet, a synthetic extraction of
:data:`DEMO_PATIENTS` people is generated, written as the insurer delivers it
(``<home>/deliveries/synthetic-<date>/``: T_MCO23B.csv, DD/MM/YYYY dates, NUM_ENQ) and landed by ``oncopipe
import``, the path a real extract takes; then the platform refresh (raw gate, dbt, marts gate, publish) and every
approved study run in one process, and the command prints where the published marts and the exports are.
Airflow's own logs go to ``<airflow_home>/logs/embedded/`` (``--verbose``: the console).
"""

from __future__ import annotations

from pathlib import Path
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
        summary: Annotated[Path | None, typer.Option(
            "--summary", help="Where to write the JSON summary (default <home>/runs/last_run.json).")] = None,
        verbose: Annotated[bool, typer.Option(
            "--verbose", help="Print Airflow, dbt and GX logs here instead of <airflow_home>/logs/embedded/.")
        ] = False,
    ) -> None:
        """Generate a small extraction if none has landed and land it through delivered CSV and oncopipe import,
        then run the whole platform on it (oncopipe run)."""
        from oncopipe.commands.run import run_and_report

        run_and_report(patients=patients, seed=seed, extraction_date=extraction_date, summary=summary,
                       verbose=verbose, delivered=True)
