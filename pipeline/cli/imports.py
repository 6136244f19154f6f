"""``livedash imports``: what the CSV import refused, row by row."""

from __future__ import annotations

import uuid

import typer

from pipeline.cli.errors import exit_not_found
from pipeline.cli.output import camel_case, new_table, print_json, print_tables
from pipeline.cli.paging import BEFORE_HELP, parse_before

app = typer.Typer(help="CSV imports and their row errors.", no_args_is_help=True)


@app.command()
def errors(
    company: str | None = typer.Option(None, "--company", metavar="ID", help="Only this company's errors."),
    limit: int = typer.Option(50, "--limit", min=1, max=10_000, help="How many, newest first."),
    before: str | None = typer.Option(None, "--before", metavar="TIME", help=BEFORE_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """List recent CSV row errors with their line numbers and reasons."""
    from pipeline.db.engine import get_session_factory
    from pipeline.stages.csv_reports import recent_row_errors

    company_id = None
    if company is not None:
        try:
            company_id = uuid.UUID(company)
        except ValueError:
            exit_not_found(f"no company with id {company!r}")
    with get_session_factory()() as db:
        rows = recent_row_errors(db, company_id=company_id, limit=limit, before=parse_before(before))
    if as_json:
        print_json([camel_case(row) for row in rows])
        return
    table = new_table("company", "line", "reason", "when")
    for row in rows:
        table.add_row(row["company"], str(row["line"]), row["reason"], row["created_at"])
    print_tables(table)
