"""``oncopipe generate`` (a synthetic SNDS-shaped extraction) and ``oncopipe lifetable``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from oncopipe.synth.faults import FAULT_KINDS

_FAULT_HELP = "Faults to inject, comma-separated KIND or KIND@SOURCE. Kinds: " + "; ".join(
    f"{f.kind} ({f.source}{', any source with @' if f.any_source else ''}: {f.description})" for f in FAULT_KINDS)


def register(app: typer.Typer) -> None:
    @app.command("generate")
    def generate(
        patients: Annotated[int, typer.Option("--patients", min=1, help="Number of people to simulate.")],
        seed: Annotated[int, typer.Option("--seed", min=0, help="Random seed (same seed, same bytes).")],
        extraction_date: Annotated[str, typer.Option("--extraction-date", help="Cut-off date YYYY-MM-DD.")],
        out: Annotated[Path, typer.Option("--out", help="Landing folder to write into.")],
        fmt: Annotated[str, typer.Option("--format", help="parquet or csv (';' separated).")] = "parquet",
        faults: Annotated[str, typer.Option("--faults", help=_FAULT_HELP)] = "",
        dirt_rate: Annotated[float, typer.Option(
            "--dirt-rate", min=0.0, max=0.2,
            help="Rate of ordinary dirt (information lines, duplicates, ...).")] = 0.01,
        workers: Annotated[int, typer.Option("--workers", min=0, help="Worker processes (0 = up to 2).")] = 0,
        delivered: Annotated[Path | None, typer.Option(
            "--delivered", help="Also write the extraction as the insurer delivers it into this folder (T_MCO23B.csv, "
                                "DD/MM/YYYY dates, NUM_ENQ), for `oncopipe import`.")] = None,
        delivered_format: Annotated[str, typer.Option(
            "--delivered-format", help="csv (the insurer's ';' text files) or parquet.")] = "csv",
    ) -> None:
        """Write one SNDS-shaped extraction (every landing source) plus its planted truth under _truth/;
        with --delivered, the same extraction in the delivered shape as well."""
        from oncopipe.synth.delivered import DELIVERED_FORMATS

        if delivered_format not in DELIVERED_FORMATS:
            raise typer.BadParameter(f"--delivered-format must be one of {', '.join(DELIVERED_FORMATS)}")
        from oncopipe.synth.extraction import generate as run

        with Progress(TextColumn("[bold]generate"), BarColumn(), MofNCompleteColumn(), TextColumn("chunks"),
                      TimeElapsedColumn()) as progress:
            task = progress.add_task("chunks", total=None)

            def on_chunk(done: int, total: int) -> None:
                progress.update(task, completed=done, total=total)

            try:
                report = run(out, patients, seed, extraction_date, fmt=fmt, faults=faults or None,
                             dirt_rate=dirt_rate, workers=workers or None, on_chunk=on_chunk)
            except ValueError as exc:
                raise typer.BadParameter(str(exc)) from exc
        for source in sorted(report.rows):
            typer.echo(f"{source:15} files={report.files[source]:4d} rows={report.rows[source]:,}")
        for f in report.faults:
            typer.echo(f"fault {f['kind']} on {f['source']}: {f['rows_affected']} rows")
        typer.echo(f"truth: {report.truth_dir}")
        if delivered is not None:
            from oncopipe.synth.delivered import write_delivered

            written = write_delivered(out, report.extraction_date, delivered, fmt=delivered_format)
            typer.echo(f"delivered: {len(written.files)} files in {delivered} "
                       f"(land them with `oncopipe import {delivered} --extraction-date {report.extraction_date}`)")

    @app.command("lifetable")
    def lifetable(out: Annotated[Path, typer.Option("--out", help="CSV file to write.")]) -> None:
        """Write the French general-population life table (sex, age, year, qx, hazard) as CSV."""
        from oncopipe.landing.lifetables import write_life_table

        path = write_life_table(out)
        typer.echo(f"wrote {path}")


