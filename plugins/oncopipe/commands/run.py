"""``oncopipe run``: the whole platform in one process (the embedded default).

The console shows one line per stage, ``HH:MM:SS message``, never wrapped when the output is not a terminal
(raw gate, dbt groups, marts gate, publish, each study task; a gate that passed with warnings says how many),
the studies that were refused or are waiting (one line when no extraction came in: ``no new extraction since
<date>: studies are up to date``), and where the results are; ``--study ID`` runs that study only. Everything
else the run prints - Airflow's task logs, dbt, Great Expectations - goes to
``<airflow_home>/logs/embedded/run-<UTC time>.log`` (``var/airflow/...`` by default); ``--verbose`` prints it
on the console instead.
"""

from __future__ import annotations

import datetime as dt
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, NoReturn, TextIO

import typer

from oncopipe.orchestration.embedded import DEFAULT_EXTRACTION_DATE, DEFAULT_PATIENTS, DEFAULT_SEED, WAITING


def run_log_path(airflow_home: Path) -> Path:
    """Where the logs of one embedded run go (one file per run)."""
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    return airflow_home / "logs" / "embedded" / f"run-{stamp}.log"


@contextmanager
def output_to(path: Path) -> Iterator[TextIO]:
    """Send this process's stdout and stderr (file descriptors 1 and 2, so Airflow, dbt, GX and any library
    writing there) to ``path``; yield a stream on the original stdout for the progress lines."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    console = os.fdopen(os.dup(1), "w", buffering=1)
    try:
        with path.open("a", encoding="utf-8") as sink:
            os.dup2(sink.fileno(), 1)
            os.dup2(sink.fileno(), 2)
            try:
                yield console
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os.dup2(saved[0], 1)
                os.dup2(saved[1], 2)
    finally:
        for fd in saved:
            os.close(fd)
        console.close()


def console_on(stream: TextIO) -> Any:
    """A rich console on ``stream`` that never wraps a line when the stream is not a terminal (a log file, a
    pipe, CI): wrapped at 80 columns, paths were cut in two."""
    from rich.console import Console

    return Console(file=stream, highlight=False, log_path=False, soft_wrap=not stream.isatty())


def progress_line(console: Any, message: str) -> None:
    """``HH:MM:SS message``, the message printed as is (no rich markup: it holds ``[...]`` lists)."""
    from rich.text import Text

    console.print(Text.assemble((dt.datetime.now().strftime("%H:%M:%S"), "dim"), " ", message))


def run_and_report(*, patients: int, seed: int, extraction_date: str, summary: Path | None,
                   verbose: bool = False, study: str | None = None, delivered: bool = False) -> None:
    """Run :func:`oncopipe.orchestration.embedded.run_platform` and print where the results are (``delivered``: a
    generated extraction lands through delivered CSV and the import).

    Exits 1 if a run failed, 2 if ``study`` names no study.
    """
    from oncopipe.contracts.settings import get_settings
    from oncopipe.orchestration.embedded import run_platform

    settings = get_settings()
    summary = summary or settings.home / "runs" / "last_run.json"
    log_path = None if verbose else run_log_path(settings.airflow_home)
    with (output_to(log_path) if log_path else _stdout()) as stream:
        console = console_on(stream)
        if log_path:
            console.print(f"Airflow, dbt and Great Expectations logs: {log_path} (--verbose prints them here)")
        with console.status("running the platform...") as status:
            def progress(message: str) -> None:
                progress_line(console, message)
                status.update(message.strip())

            try:
                result = run_platform(patients=patients, seed=seed, extraction_date=extraction_date,
                                      progress=progress, summary_path=summary, study=study,
                                      delivered=delivered)
            except KeyError as exc:
                console.print(f"[red]{exc.args[0]}[/red]")
                end_process(2)
        console.rule("oncopipe run")
        if result.published_version:
            console.print(f"published marts: version [bold]{result.published_version}[/bold] "
                          f"(extraction {result.published_extraction}) in {result.published_path}")
        else:
            console.print("[yellow]nothing published yet[/yellow]")
        for study_id, path in sorted(result.exports.items()):
            console.print(f"export {study_id}: {path}  (report: {Path(path) / 'report.html'})")
        up_to_date = all(o.note == "nothing new" for o in result.refreshes)  # said once, in the progress lines
        for dag_id, why in sorted(result.not_run.items()):
            if up_to_date and why.startswith(WAITING):
                continue
            style = "yellow" if why.startswith("refused") else "dim"
            console.print(f"[{style}]{dag_id}: {why}[/{style}]")
        for outcome in (*result.refreshes, *result.studies):
            if outcome.state != "success":
                skipped = (f"; {len(outcome.skipped_tasks)} downstream task(s) skipped (upstream failed)"
                           if outcome.skipped_tasks else "")
                console.print(f"[red]{outcome.dag_id} {outcome.state}[/red]: failed tasks {outcome.failed_tasks}"
                              f"{skipped}; logs in {log_path or 'the output above'}")
        for dag_id, why in sorted(result.owed.items()):
            console.print(f"[yellow]{dag_id}: {why}[/yellow]; the next `oncopipe run` retries it")
        console.print(f"exports index: {settings.exports / 'index.html'}")
        console.print(f"summary: {summary} ({result.seconds:.0f} s)")
    end_process(0 if result.ok else 1)


def end_process(code: int) -> NoReturn:
    """Exit with ``code``, skipping the interpreter's teardown when this process is the ``oncopipe`` command.

    After a run the process holds Airflow, dbt, GX, DuckDB and the analysis libraries: freeing all of it at exit
    took 8.9 s (load ~13; 13 to 15 s of the benchmark's wall time at load ~9) for nothing, the process ending
    anyway. The exit handlers still run (``atexit``: Airflow's ORM, dbt-duckdb connections, the gates' temporary
    GX folders, logging), then the standard streams are flushed and the process ends. Called in-process (a test
    runner), it raises ``typer.Exit`` as usual.
    """
    if Path(sys.argv[0]).name != "oncopipe":
        raise typer.Exit(code)
    import atexit
    import threading

    # What a normal exit runs before atexit: threading's exit callbacks, which shut down concurrent.futures'
    # executors. Without them multiprocessing's exit handler waits forever on a worker of a pool left open (Airflow's
    # OpenLineage listener keeps one for its DAG-run events: `oncopipe run` on Spark hung after its summary).
    for callback in reversed(getattr(threading, "_threading_atexits", [])):
        callback()
    atexit._run_exitfuncs()  # noqa: SLF001 - the documented handlers, run as a normal exit would
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


@contextmanager
def _stdout() -> Iterator[TextIO]:
    yield sys.stdout


def register(app: typer.Typer) -> None:
    @app.command("run")
    def run(
        patients: Annotated[int, typer.Option(
            "--patients", min=1, help="People to simulate if no extraction has landed yet.")] = DEFAULT_PATIENTS,
        seed: Annotated[int, typer.Option("--seed", help="Random seed of the generated extraction.")] = DEFAULT_SEED,
        extraction_date: Annotated[str, typer.Option(
            "--extraction-date", help="Cut-off date of the generated extraction.")] = DEFAULT_EXTRACTION_DATE,
        summary: Annotated[Path | None, typer.Option(
            "--summary", help="Where to write the JSON summary (default <home>/runs/last_run.json).")] = None,
        verbose: Annotated[bool, typer.Option(
            "--verbose", help="Print Airflow, dbt and GX logs here instead of <airflow_home>/logs/embedded/.")
        ] = False,
        study: Annotated[str | None, typer.Option(
            "--study", help="Run only this study (its id), even if its marts have no new version.")] = None,
    ) -> None:
        """Run the whole platform in one process: refresh (raw gate, dbt, marts gate, publish), then the
        approved studies whose marts were updated (SQLite metadata under <home>/airflow, DuckDB warehouse)."""
        run_and_report(patients=patients, seed=seed, extraction_date=extraction_date, summary=summary,
                       verbose=verbose, study=study)
