"""The ``oncopipe`` command line.

Each module of :mod:`oncopipe.commands` adds its own commands through a ``register(app)`` function,
so an area of the platform owns its commands without editing this file.
"""

from __future__ import annotations

import importlib
import pkgutil

import typer

from oncopipe import commands

app = typer.Typer(
    name="oncopipe",
    help="Scheduled, quality-gated cancer research on SNDS-shaped data (Airflow + dbt + Great Expectations).",
    no_args_is_help=True,
    add_completion=False,
)

for _module in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
    importlib.import_module(f"{commands.__name__}.{_module.name}").register(app)


@app.callback()
def main() -> None:
    """oncopipe: landing -> raw gate -> dbt -> marts gate -> publish -> study DAGs -> exports."""
