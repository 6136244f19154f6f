"""The demo report's renderings: the text ``livedash demo`` prints, and the ``--json`` document.

:class:`~pipeline.demo.report.DemoReport` is plain data; nothing here reads the database or judges.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from rich.console import Console
from rich.table import Table

from pipeline.cli.output import camel_case
from pipeline.demo.report import DemoReport

__all__ = ["print_report", "report_as_json"]


def report_as_json(report: DemoReport) -> dict[str, Any]:
    """The report as the ``--json`` output prints it: camelCase keys like every ``--json`` of the CLI (the
    keys of sentiment, category and stage counts are data and stay as they are)."""

    def records(items: list[Any]) -> list[dict[str, Any]]:
        return [camel_case(item.__dict__) for item in items]

    return camel_case(
        {
            "ok": report.ok,
            "unexpected": report.unexpected,
            "seconds": round(report.seconds, 3),
            "sessions_per_company": report.sessions_per_company,
            # Left behind when asked for (--keep) or when something was unexpected; otherwise removed.
            "workdir": str(report.workdir) if report.workdir.exists() else None,
            "companies": records(report.companies),
            "sessions": camel_case(
                {
                    "good_rows": report.good_rows,
                    "imported": report.imported,
                    "created": report.sessions,
                    "messages": report.messages,
                    "analysed": report.analysed,
                }
            ),
            "sentiment": report.sentiment,
            "categories": report.categories,
            "questions": report.questions,
            "cost": camel_case(
                {
                    "eur": round(report.cost_eur, 6),
                    "prompt_tokens": report.prompt_tokens,
                    "completion_tokens": report.completion_tokens,
                    "total_tokens": report.total_tokens,
                }
            ),
            "cost_lines": records(report.cost_lines),
            "budget": None if report.budget is None else camel_case(report.budget.__dict__),
            "batches": {"submitted": report.batches_submitted, "processed": report.batches_processed},
            "scheduler_runs": records(report.scheduler_runs),
            "failures": camel_case(
                {
                    "fetches": records(report.fetch_failures),
                    "csv_rows": records(report.row_errors),
                    "sessions": records(report.session_failures),
                    "other": report.other_failures,
                }
            ),
            "injected": records(report.injected),
            "pipeline": report.pipeline,
            "log_records": report.log_records,
        }
    )


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{label} {number}" for label, number in counts.items()) or "none"


def _table(*columns: str, numbers_from: int) -> Table:
    """A compact table that fits 80 columns; the columns from ``numbers_from`` on are right-aligned."""
    table = Table(*columns, box=None, pad_edge=False, padding=(0, 1, 0, 0), header_style="bold underline")
    for column in table.columns[numbers_from:]:
        column.justify = "right"
    return table


def print_report(console: Console, report: DemoReport) -> None:
    """The report as ``livedash demo`` prints it: tables, failures, and the verdict."""
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
    _print_figures(console, report)
    _print_runs(console, report)
    _print_failures(console, report)
    _print_verdict(console, report)


def _print_figures(console: Console, report: DemoReport) -> None:
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
    if report.budget is not None:
        episode = report.budget
        console.print(
            f"budget:     {episode.company} got {episode.budget_eur} EUR a month: {episode.waited} requests "
            f'waited with "budget reached" ({episode.spent_at_raise_eur} EUR spent), then went on after a '
            f"raise to {episode.raised_to_eur} EUR",
            highlight=False,
        )
    costs = _table("company", "model", "mode", "requests", "sessions", "cost EUR", "EUR / 1,000 sessions",
                   numbers_from=3)  # fmt: skip
    for line in report.cost_lines:
        costs.add_row(
            line.company,
            line.model,
            line.mode,
            str(line.requests),
            str(line.sessions),
            f"{float(line.cost_eur):.4f}",
            f"{float(line.cost_per_1000_sessions_eur):.4f}",
        )
    console.print(costs)


def _print_runs(console: Console, report: DemoReport) -> None:
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


def _print_failures(console: Console, report: DemoReport) -> None:
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


def _print_verdict(console: Console, report: DemoReport) -> None:
    if report.kept:
        console.print(f"\ndatabase: {report.database}", highlight=False)
        if report.log_records:
            console.print(
                f"log:      {report.log_records} warnings and errors in {report.log}", highlight=False
            )
    if report.ok:
        console.print(
            "\n[bold green]as expected[/]: every good row imported and analysed, the broken rows and the "
            "wrong password recorded, the budget held and went on after its raise, nothing else failed"
        )
        return
    console.print()
    for line in report.unexpected:
        console.print(f"[bold red]unexpected[/]: {line}", highlight=False)
    console.print(f"the work folder is kept: {report.workdir}", highlight=False)
