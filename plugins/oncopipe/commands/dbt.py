"""``oncopipe dbt build|docs|freshness|contracts``: run the dbt project on the landing folder and warehouse."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from oncopipe.warehouse.dbt_runner import DbtCommand, DbtRun, run_dbt

dbt_app = typer.Typer(help="Run the dbt project (staging -> intermediate -> marts) on the landed extractions.",
                      no_args_is_help=True)

SelectOption = Annotated[list[str] | None, typer.Option("--select", "-s", help="dbt node selection (repeatable).")]
VarOption = Annotated[list[str] | None, typer.Option(
    "--var", help="Project variable NAME=VALUE (repeatable), e.g. hospital_days=ignore.")]


def _parse_vars(values: list[str] | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in values or ():
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise typer.BadParameter(f"--var expects NAME=VALUE, got {item!r}")
        out[name] = int(value) if value.lstrip("-").isdigit() else value
    return out


def _run_with_progress(command: DbtCommand, **kwargs: Any) -> DbtRun:
    console = Console(stderr=True)
    with Progress(SpinnerColumn(), TextColumn("[bold]dbt {task.fields[command]}[/bold]"), BarColumn(),
                  TextColumn("{task.completed} nodes done"), TextColumn("{task.description}"),
                  TimeElapsedColumn(), console=console, transient=True) as progress:
        task = progress.add_task("starting", total=None, command=command)

        def on_event(event: Any) -> None:
            name = event.info.name
            if name == "NodeStart":
                progress.update(task, description=event.data.node_info.node_name)
            elif name == "NodeFinished":
                progress.advance(task)

        return run_dbt(command, callbacks=[on_event], quiet=True, **kwargs)


def _report(run: DbtRun) -> None:
    console = Console()
    table = Table(title=f"dbt {run.name} (invocation {run.invocation_id})")
    for column in ("layer", "nodes", "failed", "warned", "seconds"):
        table.add_column(column, justify="right" if column != "layer" else "left")
    layers: dict[str, list] = {}
    for node in run.nodes:
        layers.setdefault(node.layer, []).append(node)
    for layer, nodes in sorted(layers.items()):
        table.add_row(layer, str(len(nodes)), str(sum(n.failed for n in nodes)),
                      str(sum(n.status == "warn" for n in nodes)), f"{sum(n.execution_time_s for n in nodes):.1f}")
    if run.nodes:
        console.print(table)
    for node in run.warnings:
        console.print(f"[yellow]warn[/yellow] {escape(node.describe())}")
    console.print(escape(run.summary()), style=None if run.success else "red")
    if not run.success:
        raise typer.Exit(1)


@dbt_app.command("build")
def build(
    select: SelectOption = None,
    full_refresh: Annotated[bool, typer.Option("--full-refresh", help="Rebuild incremental models.")] = False,
    var: VarOption = None,
) -> None:
    """Seed, run and test every model (or the selection): landing -> staging -> intermediate -> marts."""
    _report(_run_with_progress("build", select=select or (), full_refresh=full_refresh, vars=_parse_vars(var)))


@dbt_app.command("docs")
def docs(select: SelectOption = None) -> None:
    """Generate the dbt documentation site (manifest + catalog) under <home>/dbt/target."""
    run = _run_with_progress("docs", select=select or ())
    _report(run)
    typer.echo(f"docs in {run.target_path} (serve with: dbt docs serve --target-path {run.target_path} "
               "--project-dir dbt_project --profiles-dir dbt_project)")


@dbt_app.command("freshness")
def freshness(select: SelectOption = None) -> None:
    """Check how old the latest accepted extraction of every source is (warn/error thresholds in the YAML)."""
    _report(_run_with_progress("freshness", select=select or ()))


@dbt_app.command("contracts")
def contracts(
    check: Annotated[bool, typer.Option("--check", help="Only say whether contracts/marts.json is current.")] = False,
) -> None:
    """Rewrite plugins/oncopipe/contracts/marts.json from the dbt manifest (``dbt parse``): the published marts'
    columns, types and keys, as the models of dbt_project/models/marts declare them."""
    import json

    from oncopipe.contracts import marts
    from oncopipe.warehouse import dbt_nodes

    manifest = dbt_nodes.parse()
    if check:
        declared = marts.contracts_from_manifest(json.loads(manifest.read_text(encoding="utf-8")))
        changes = marts.contract_differences(marts.load_contracts(), declared)
        for line in changes:
            typer.echo(f"stale: {line}", err=True)
        typer.echo(f"{marts.CONTRACTS_FILE}: {'stale' if changes else 'current'} (from {manifest})")
        raise typer.Exit(1 if changes else 0)
    changes = marts.write_contracts(manifest)
    typer.echo(f"{marts.CONTRACTS_FILE}: rewritten from {manifest}" + "".join(f"\n  {line}" for line in changes))


def register(app: typer.Typer) -> None:
    app.add_typer(dbt_app, name="dbt")
