"""``oncopipe marts``: publish the candidate marts and look at published versions."""

from __future__ import annotations

from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    marts_app = typer.Typer(name="marts", help="Published mart versions: publish, list, show.",
                            no_args_is_help=True)

    @marts_app.command("publish")
    def publish_cmd(
        extraction: Annotated[str | None, typer.Option(
            "--extraction", help="Extraction the marts were built from (default: last raw gate passed).")] = None,
    ) -> None:
        """Export the candidate marts from the warehouse, gate them (if not yet) and publish atomically."""
        from oncopipe.quality import GateFailed
        from oncopipe.warehouse import versions

        try:
            version = versions.publish_candidate(extraction_date=extraction)
        except GateFailed as exc:
            typer.echo(str(exc), err=True)
            raise typer.Exit(1) from None
        except versions.PublishError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None
        typer.echo(f"current version {version.version} (extraction {version.extraction}) in {version.path}")

    @marts_app.command("versions")
    def versions_cmd() -> None:
        """List published versions, oldest first; the current one is starred."""
        from rich.console import Console
        from rich.table import Table

        from oncopipe.warehouse import versions

        current = versions.current_version()
        table = Table(title="published mart versions")
        for column in ("", "version", "extraction", "created at", "rows", "dbt invocation"):
            table.add_column(column)
        for v in versions.list_versions():
            star = "*" if current is not None and v.version == current.version else ""
            table.add_row(star, v.version, v.extraction, v.created_at, str(sum(v.row_counts.values())),
                          v.dbt_invocation_id or "-")
        Console().print(table)

    app.add_typer(marts_app, name="marts")
