"""``livedash demo``: run the whole pipeline in this process on the embedded defaults, and report."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import TaskID

    from pipeline.demo import StageProgress

__all__ = ["demo"]


def demo(
    companies: int = typer.Option(
        3,
        "--companies",
        min=2,
        max=50,
        help="Companies in the demo data set (one with broken rows, one locked out).",
    ),
    sessions: int = typer.Option(100, "--sessions", min=1, max=100_000, help="Sessions per company."),
    seed: int = typer.Option(0, "--seed", help="Seed of the generated data set."),
    keep: Annotated[
        Path | None, typer.Option("--keep", help="Work in this folder and keep it (database, data, log).")
    ] = None,
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON, and nothing else."),
) -> None:
    """Run the pipeline with SQLite, an in-process broker, the demo data source and the OpenAI emulator.

    Needs no RabbitMQ, PostgreSQL or OpenAI: CSVs are imported, transcripts fetched and parsed into messages,
    and sessions analysed through the Batch API, by the same actors that run on RabbitMQ. One company's CSV
    has broken rows and one company has a wrong password; the demo checks that the pipeline records both and
    carries on. Exit code 0 when everything went as expected, 1 otherwise.
    """
    from rich.console import Console

    from pipeline.demo import run_demo
    from pipeline.demo.render import print_report, report_as_json

    if as_json:
        report = run_demo(companies=companies, sessions=sessions, seed=seed, workdir=keep)
        sys.stdout.write(json.dumps(report_as_json(report), indent=2) + "\n")
        for line in report.unexpected:
            typer.echo(f"unexpected: {line}", err=True)
    else:
        console = Console()
        with _StageProgress(console) as progress:
            report = run_demo(
                companies=companies, sessions=sessions, seed=seed, workdir=keep, on_progress=progress.update
            )
        print_report(console, report)
    if not report.ok:
        raise typer.Exit(1)


class _StageProgress:
    """One progress bar per stage, fed with database counts from the demo's background thread."""

    def __init__(self, console: Console) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self._progress = Progress(
            TextColumn("{task.description:<20}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[unit]}"),
            TimeElapsedColumn(),
            console=console,
        )
        self._tasks: dict[str, TaskID] = {}
        for name, description, unit in (
            ("csv", "CSV import", "companies fetched"),
            ("imports", "import processing", "imports derived"),
            ("analysis", "AI analysis", "sessions analysed"),
            ("batches", "batches", "batches processed"),
        ):
            self._tasks[name] = self._progress.add_task(description, total=None, unit=unit)

    def __enter__(self) -> _StageProgress:
        self._progress.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._progress.stop()

    def update(self, counts: StageProgress) -> None:
        for name, done, total in (
            ("csv", counts.companies_fetched, counts.companies),
            ("imports", counts.imports_derived, counts.imports),
            ("analysis", counts.sessions_analysed, counts.sessions),
            ("batches", counts.batches_processed, counts.batches_submitted),
        ):
            # No total yet (nothing reached the stage): an indeterminate bar rather than 0 of 0.
            self._progress.update(self._tasks[name], completed=done, total=total or None)
