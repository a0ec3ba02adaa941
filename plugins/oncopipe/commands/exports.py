"""``oncopipe exports list|show|verify``: what researchers received, and is it still intact and safe."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from oncopipe.contracts.settings import get_settings
from oncopipe.delivery.audit import AuditLog
from oncopipe.delivery.export_store import ExportError, find_export, list_exports, verify_export


def register(app: typer.Typer) -> None:
    group = typer.Typer(help="Researcher exports: list, show and verify published runs.", no_args_is_help=True)
    app.add_typer(group, name="exports")

    @group.command("list")
    def list_command(
        study: Annotated[str | None, typer.Option("--study", "-s", help="Only this study id.")] = None,
        as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    ) -> None:
        """List every published run of every study (by study, then run)."""
        runs = list_exports(get_settings().exports, study)
        if as_json:
            typer.echo(json.dumps([{**r, "path": str(r["path"])} for r in runs], indent=2, sort_keys=True))
            return
        # Fits 100 columns: one block per study (its title names the approval), the run id is the folder.
        console = Console(soft_wrap=not sys.stdout.isatty())
        console.print(f"exports in {get_settings().exports}")
        by_study: dict[str, list[dict]] = {}
        for r in runs:
            by_study.setdefault(r["study_id"], []).append(r)
        for study_id, study_runs in by_study.items():
            approvals = ", ".join(dict.fromkeys(r["approval"] for r in study_runs))
            table = Table("run (folder)", "published (UTC)", "mart version", box=None, pad_edge=False,
                          title=f"{study_id} - approval {approvals}", title_justify="left", title_style="bold")
            for r in study_runs:
                table.add_row(r["run_id"], r["created_at"][:16].replace("T", " "), r["mart_version"])
            console.print(table)
        if not runs:
            typer.echo("no export published yet" + (f" for study {study}" if study else ""))

    @group.command("show")
    def show_command(
        study: Annotated[str, typer.Argument(help="Study id.")],
        run: Annotated[str, typer.Argument(help="Run id (as given to the export, or its folder name).")],
    ) -> None:
        """Show a run's manifest summary, files and audit events (deliveries included)."""
        root = get_settings().exports
        try:
            folder = find_export(study, run, root)
        except ExportError as error:
            typer.echo(str(error), err=True)
            raise typer.Exit(2) from None
        manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
        for key in ("run_id", "created_at", "extraction_date", "mart_version", "dbt_invocation_id", "code_version"):
            typer.echo(f"{key:18} {manifest.get(key)}")
        typer.echo(f"{'approval':18} {manifest['approval']['reference']} {manifest['approval'].get('committee', '')}")
        typer.echo(f"{'masked by rule':18} {manifest['disclosure']['counts_by_rule']}")
        typer.echo(f"{'recipients':18} {', '.join(manifest.get('recipients', []))}")
        typer.echo("files:")
        for rel, digest in sorted(manifest["files"].items()):
            typer.echo(f"  {digest}  {rel}")
        typer.echo("audit:")
        for event in AuditLog(root).events(study, manifest.get("airflow_run_id") or manifest["run_id"]):
            who = f" to {', '.join(event.recipients)}" if event.recipients else ""
            typer.echo(f"  {event.at}  {event.kind}{who}  by {event.operator}")

    @group.command("verify")
    def verify_command(
        study: Annotated[str | None, typer.Argument(help="Study id (omit with --all).")] = None,
        run: Annotated[str | None, typer.Argument(help="Run id.")] = None,
        path: Annotated[Path | None, typer.Option("--path", help="An export folder, instead of study and run.")] = None,
        all_runs: Annotated[bool, typer.Option("--all", help="Verify every published run.")] = False,
    ) -> None:
        """Re-check checksums and every disclosure rule of published exports; exit 1 on any problem."""
        root = get_settings().exports
        try:
            if all_runs:
                folders = [r["path"] for r in list_exports(root)]
            elif path is not None:
                folders = [path]
            elif study and run:
                folders = [find_export(study, run, root)]
            else:
                raise ExportError("give STUDY RUN, --path or --all")
        except ExportError as error:
            typer.echo(str(error), err=True)
            raise typer.Exit(2) from None
        failed = 0
        for folder in folders:
            try:
                problems = verify_export(folder, exports=None if path is not None else root)
            except ExportError as error:
                problems = [str(error)]
            if problems:
                failed += 1
                typer.echo(f"FAIL {folder}")
                for problem in problems:
                    typer.echo(f"  - {problem}")
            else:
                typer.echo(f"ok   {folder}")
        if failed:
            raise typer.Exit(1)
