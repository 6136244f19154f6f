"""``livedash demo``: run the whole pipeline in this process on the embedded defaults, and report."""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from pipeline.demo import DemoReport, StageProgress, run_demo

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
    if as_json:
        report = run_demo(companies=companies, sessions=sessions, seed=seed, workdir=keep)
        sys.stdout.write(json.dumps(report.as_json(), indent=2) + "\n")
        for line in report.unexpected:
            typer.echo(f"unexpected: {line}", err=True)
    else:
        console = Console()
        with _StageProgress(console) as progress:
            report = run_demo(
                companies=companies, sessions=sessions, seed=seed, workdir=keep, on_progress=progress.update
            )
        _print_report(console, report)
    if not report.ok:
        raise typer.Exit(1)


class _StageProgress:
    """One progress bar per stage, fed with database counts from the demo's background thread."""

    def __init__(self, console: Console) -> None:
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


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{label} {number}" for label, number in counts.items()) or "none"


def _table(*columns: str, numbers_from: int) -> Table:
    """A compact table that fits 80 columns; the columns from ``numbers_from`` on are right-aligned."""
    table = Table(*columns, box=None, pad_edge=False, padding=(0, 1, 0, 0), header_style="bold underline")
    for column in table.columns[numbers_from:]:
        column.justify = "right"
    return table


def _print_report(console: Console, report: DemoReport) -> None:
    console.print(
        f"\n[bold]LiveDash demo[/]: {len(report.companies)} companies of {report.sessions_per_company} "
        f"sessions, {report.seconds:.1f} s",
        highlight=False,
    )
    companies = _table(
        "company", "scenario", "fetch", "rows", "imported", "errors", "analysed", numbers_from=3
    )
    for company in report.companies:
        companies.add_row(
            company.name,
            company.scenario,
            f"{company.fetch or '-'} {company.http_status or ''}".strip(),
            str(company.rows),
            str(company.imported),
            str(company.row_errors),
            str(company.analysed),
        )
    console.print(companies)
    console.print(
        f"sessions:   {report.imported} imported of {report.good_rows} good rows, {report.sessions} created "
        f"with {report.messages} messages, {report.analysed} analysed",
        highlight=False,
    )
    console.print(f"sentiment:  {_counts(report.sentiment)}", highlight=False)
    console.print(f"categories: {_counts(report.categories)}", highlight=False)
    console.print(f"questions:  {report.questions} distinct", highlight=False)
    console.print(
        f"cost:       {report.cost_eur:.4f} EUR, {report.total_tokens} tokens "
        f"({report.prompt_tokens} prompt, {report.completion_tokens} completion)",
        highlight=False,
    )
    console.print(
        f"batches:    {report.batches_processed} processed of {report.batches_submitted} submitted",
        highlight=False,
    )

    runs = _table("scheduler run", "runs", "succeeded", "failed", "items", "with tick", numbers_from=1)
    by_job: dict[str, Counter[str]] = {}
    for run in report.scheduler_runs:
        tally = by_job.setdefault(run.job, Counter())
        tally["runs"] += 1
        tally[run.status] += 1
        tally["items"] += run.items
        tally["ticked"] += run.tick is not None
    for job, tally in by_job.items():
        runs.add_row(job, *(str(tally[key]) for key in ("runs", "SUCCEEDED", "FAILED", "items", "ticked")))
    console.print(runs)

    console.print("[bold underline]failures[/]")
    for fetch in report.fetch_failures:
        retried = "not retried" if fetch.attempts == 1 else f"{fetch.attempts} attempts"
        console.print(
            f"fetch    {fetch.company}: {fetch.error} ({retried})",
            highlight=False,
        )
    for error in report.row_errors:
        console.print(f"CSV row  {error.company} line {error.line}: {error.reason}", highlight=False)
    for failure in report.session_failures:
        console.print(
            f"session  {failure.company} {failure.session_id or failure.import_id}: {failure.stage} "
            f"{failure.error}",
            highlight=False,
        )
    for line in report.other_failures:
        console.print(f"other    {line}", highlight=False)
    if not report.session_failures:
        console.print("sessions none failed a stage")

    if report.kept:
        console.print(f"\ndatabase: {report.database}", highlight=False)
        if report.log_records:
            console.print(
                f"log:      {report.log_records} warnings and errors in {report.log}", highlight=False
            )
    if report.ok:
        console.print(
            "\n[bold green]as expected[/]: every good row imported and analysed, the broken rows and the "
            "wrong password recorded, nothing else failed"
        )
        return
    console.print()
    for line in report.unexpected:
        console.print(f"[bold red]unexpected[/]: {line}", highlight=False)
    console.print(f"the work folder is kept: {report.workdir}", highlight=False)
