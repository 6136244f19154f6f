"""``livedash imports``: what the CSV import refused, row by row, and the fields it stored as null."""

from __future__ import annotations

import uuid

import typer

from pipeline.cli.errors import exit_not_found, exit_with_usage_error
from pipeline.cli.output import camel_case, new_table, print_json, print_tables
from pipeline.cli.paging import BEFORE_HELP, parse_before

app = typer.Typer(help="CSV imports, their row errors and field warnings.", no_args_is_help=True)


@app.command()
def errors(
    company: str | None = typer.Option(None, "--company", metavar="ID", help="Only this company's errors."),
    kind: str | None = typer.Option(
        None, "--kind", metavar="KIND", help="Only refused rows (error) or field warnings (warning)."
    ),
    limit: int = typer.Option(50, "--limit", min=1, max=10_000, help="How many, newest first."),
    before: str | None = typer.Option(None, "--before", metavar="TIME", help=BEFORE_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """List recent CSV row errors (refused rows) and field warnings (fields stored as null), newest first."""
    from pipeline.db.engine import get_session_factory
    from pipeline.db.enums import CsvRowProblem
    from pipeline.stages.csv_reports import recent_row_errors

    company_id = None
    if company is not None:
        try:
            company_id = uuid.UUID(company)
        except ValueError:
            exit_not_found(f"no company with id {company!r}")
    problem = None
    if kind is not None:
        try:
            problem = CsvRowProblem(kind.upper())
        except ValueError:
            exit_with_usage_error(f"--kind is error or warning, not {kind!r}")
    with get_session_factory()() as db:
        rows = recent_row_errors(
            db, company_id=company_id, kind=problem, limit=limit, before=parse_before(before)
        )
    if as_json:
        print_json([camel_case(row) for row in rows])
        return
    table = new_table("company", "kind", "line", "reason", "value", "when")
    for row in rows:
        value = row["raw"] if row["kind"] == CsvRowProblem.WARNING else ""
        table.add_row(row["company"], row["kind"], str(row["line"]), row["reason"], value, row["created_at"])
    print_tables(table)
