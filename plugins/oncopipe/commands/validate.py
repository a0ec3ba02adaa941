"""``oncopipe validate``: run a quality gate outside Airflow, or regenerate the committed suites."""

from __future__ import annotations

from typing import Annotated

import typer

_STAGES = ("raw", "marts")


def _table(report) -> None:  # noqa: ANN001 (GateReport, imported lazily: GX is slow to import)
    from rich.console import Console
    from rich.table import Table

    console = Console()
    table = Table(title=f"{report.stage} gate, extraction {report.extraction or '-'}, run {report.run_id}")
    for column in ("subject", "expectation", "severity", "result", "observed"):
        table.add_column(column, overflow="fold")
    failed = [o for o in report.outcomes if not o.success]
    shown = sorted(failed, key=lambda o: (o.severity != "critical", o.subject, o.expectation))
    for o in shown:
        style = "bold red" if o.severity == "critical" else "yellow"
        table.add_row(o.subject, o.expectation, o.severity, f"[{style}]FAILED[/{style}]", o.observed[:160])
    per_subject: dict[str, list[int]] = {}
    for o in report.outcomes:
        counts = per_subject.setdefault(o.subject, [0, 0])
        counts[0] += 1
        counts[1] += o.success
    for subject, (total, ok) in sorted(per_subject.items()):
        table.add_row(subject, f"{ok}/{total} expectations met", "", "[green]ok[/green]" if ok == total else "", "")
    console.print(table)
    for suite, why in report.skipped.items():
        console.print(f"[yellow]skipped[/yellow] {suite}: {why}")
    for o in report.critical_failures:
        console.print(f"[bold red]CRITICAL[/bold red] {o.message}")
    verdict = "[green]PASSED[/green]" if report.passed else "[bold red]FAILED[/bold red]"
    console.print(f"{verdict} {report.pass_counts}")
    if report.quarantined_to:
        console.print(f"extraction quarantined to {report.quarantined_to}")


def register(app: typer.Typer) -> None:
    @app.command("validate")
    def validate(
        stage: Annotated[str, typer.Option("--stage", help="raw (a landed extraction) or marts (the candidate).")
                         ] = "raw",
        extraction: Annotated[str | None, typer.Option(
            "--extraction", help="Extraction date YYYY-MM-DD (raw stage; default: latest in the landing).")] = None,
        source: Annotated[list[str] | None, typer.Option(
            "--source", help="Check only this landing source (repeatable; raw stage).")] = None,
        no_quarantine: Annotated[bool, typer.Option(
            "--no-quarantine", help="Report only: leave a failing extraction in the landing.")] = False,
        write_suites: Annotated[bool, typer.Option(
            "--write-suites", help="Regenerate expectations/ (suites, validation definitions, checkpoints) "
                                   "from plugins/oncopipe/quality/suites.py, then exit.")] = False,
    ) -> None:
        """Run the raw or marts Great Expectations gate and print a table of results.

        Exit code 1 when a critical expectation fails (the raw gate then quarantines the extraction unless
        --no-quarantine; the marts gate drops the candidate). History: <quality>/history.sqlite; Data Docs:
        <quality>/data_docs/index.html.
        """
        from oncopipe.contracts.settings import get_settings

        if write_suites:
            from oncopipe.quality.context_files import write_context

            names = write_context()
            typer.echo(f"wrote {len(names)} suites with their validation definitions and checkpoints to expectations/")
            return
        if stage not in _STAGES:
            raise typer.BadParameter(f"--stage must be one of {', '.join(_STAGES)}, not {stage!r}")
        from oncopipe.landing.layout import latest_extraction
        from oncopipe.quality import GateFailed, QualityConfig, run_raw_gate
        from oncopipe.warehouse.spark_engine import gate_engine
        from oncopipe.warehouse.versions import gate_candidate

        settings = get_settings().ensure()
        try:
            if stage == "raw":
                date = extraction or latest_extraction(settings.landing)
                if date is None:
                    raise typer.BadParameter(f"no extraction in {settings.landing}; give --extraction")
                with _spinner(f"raw gate on extraction {date}"), gate_engine(settings) as engine:
                    report = run_raw_gate(date, settings, QualityConfig(quarantine=not no_quarantine),
                                          sources=source or None, spark=engine)
            else:
                with _spinner("marts gate on the candidate marts"):
                    report = gate_candidate(settings)
        except GateFailed as exc:
            _table(exc.report)
            raise typer.Exit(1) from None
        except FileNotFoundError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None
        _table(report)
        typer.echo(f"data docs: {settings.quality / 'data_docs' / 'index.html'}")


def _spinner(text: str):  # noqa: ANN202 (a rich status context manager)
    from rich.console import Console

    return Console(stderr=True).status(text)
