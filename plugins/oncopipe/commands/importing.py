"""``oncopipe import``: land a delivered extract (the insurer's files) as one extraction of the landing."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    @app.command("import")
    def import_(
        src: Annotated[Path, typer.Argument(help="The delivered extract folder (one file per table and year).")],
        extraction_date: Annotated[str, typer.Option("--extraction-date", help="Extraction date YYYY-MM-DD.")],
        fmt: Annotated[str | None, typer.Option(
            "--format", help="Take only csv, parquet or sas (sas7bdat) files (default: every data file).")] = None,
        mapping: Annotated[list[str] | None, typer.Option(
            "--map", help="Rename a delivered column to its contract name, OLD=NEW (repeatable).")] = None,
        landing: Annotated[Path | None, typer.Option(
            "--landing", help="Landing folder (default: ONCOPIPE_LANDING, see `oncopipe paths`).")] = None,
        encoding: Annotated[str, typer.Option(
            "--encoding", help="Text encoding of the CSV files, e.g. cp1252 (Windows-1252 / Latin-1).")] = "utf-8",
    ) -> None:
        """Check each file against the landing contract, convert types and dates by it, land atomically."""
        from oncopipe.contracts.settings import get_settings
        from oncopipe.landing.importer import ExtractImportError, import_extract, parse_mapping

        target = landing or get_settings().landing
        try:
            report = import_extract(src, target, extraction_date, fmt=fmt, mapping=parse_mapping(mapping or []),
                                    encoding=encoding)
        except ExtractImportError as exc:
            typer.echo(f"import refused: {exc}", err=True)
            raise typer.Exit(1) from exc
        for source in sorted(report.rows):
            typer.echo(f"{source:15} files={len(report.files[source]):3d} rows={report.rows[source]:,} "
                       f"({', '.join(report.files[source])})")
        for name in report.skipped:
            typer.echo(f"skipped {name} (not a data file)")
        typer.echo(f"landed extraction {extraction_date} in {target}")
