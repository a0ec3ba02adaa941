"""``oncopipe paths``: show where the platform reads and writes."""

from __future__ import annotations

import typer

from oncopipe.contracts.settings import get_settings


def register(app: typer.Typer) -> None:
    @app.command("paths")
    def paths() -> None:
        """Print the resolved locations (landing, warehouse, published marts, exports, ...)."""
        settings = get_settings()
        for name in ("home", "landing", "quarantine", "warehouse", "published", "exports", "quality",
                     "airflow_home"):
            typer.echo(f"{name:13} {getattr(settings, name)}")
