"""``livedash sessions``: failed sessions with their reasons, and resetting them."""

from __future__ import annotations

import typer

from pipeline.cli.errors import exit_not_found, exit_with_usage_error
from pipeline.cli.output import camel_case, new_table, print_json, print_tables
from pipeline.cli.paging import BEFORE_HELP, parse_before
from pipeline.db.enums import ProcessingStage

app = typer.Typer(help="Sessions in the pipeline: failures and retries.", no_args_is_help=True)

_STAGES = ", ".join(stage.value for stage in ProcessingStage)


def _stage(value: str) -> ProcessingStage:
    try:
        return ProcessingStage(value.upper())
    except ValueError:
        exit_with_usage_error(f"unknown stage {value!r} (known: {_STAGES})")


@app.command()
def failed(
    stage: str | None = typer.Option(None, "--stage", help=f"Only this stage: {_STAGES}."),
    limit: int = typer.Option(100, "--limit", min=1, max=10_000),
    before: str | None = typer.Option(None, "--before", metavar="TIME", help=BEFORE_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """List failed sessions (and imports that failed before becoming one), newest first, with the reason."""
    from pipeline.db.engine import get_session_factory
    from pipeline.stages.pipeline_reports import failed_sessions

    chosen = _stage(stage) if stage else None
    with get_session_factory()() as db:
        rows = failed_sessions(db, stage=chosen, limit=limit, before=parse_before(before))
    if as_json:
        print_json([camel_case(row) for row in rows])
        return
    table = new_table("stage", "company", "session / import", "retries", "failed at", "reason")
    for row in rows:
        table.add_row(
            row["stage"],
            row["company"],
            row["session_id"] or f"import {row['import_id']}",
            str(row["retries"]),
            row["failed_at"] or "",
            row["error"] or "",
        )
    print_tables(table)


@app.command()
def retry(
    stage: str = typer.Option(..., "--stage", help=f"The failed stage to run again: {_STAGES}."),
    company: str | None = typer.Option(None, "--company", metavar="ID", help="Only this company's sessions."),
) -> None:
    """Reset failed sessions of a stage to PENDING; the stage's next sweep runs them again."""
    from pipeline.companies import UnknownCompany, get_company
    from pipeline.db.engine import get_session_factory
    from pipeline.stages.pipeline_reports import retry_failed

    chosen = _stage(stage)
    with get_session_factory().begin() as db:
        company_id = None
        if company is not None:
            try:
                company_id = get_company(db, company).id
            except UnknownCompany as exc:
                exit_not_found(str(exc))
        count = retry_failed(db, chosen, company_id=company_id)
    typer.echo(f"{count} reset to PENDING for {chosen.value}; the next sweep picks them up")
