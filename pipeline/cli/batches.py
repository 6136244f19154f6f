"""``livedash batches``: the OpenAI batches, their state and their cost; cancelling one."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

import typer

from pipeline.cli.errors import exit_not_found, exit_with_failure
from pipeline.cli.output import camel_case, new_table, print_json, print_tables
from pipeline.cli.paging import BEFORE_HELP, parse_before

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from pipeline.db.models import AIBatchRequest
    from pipeline.db.paging import Cursor

app = typer.Typer(help="OpenAI batches: list, show and cancel them.", no_args_is_help=True)


#: What names the company of a batch filled with several companies' requests.
SEVERAL_COMPANIES = "(several companies)"


def _describe(batch: AIBatchRequest, company: str | None) -> dict[str, Any]:
    return {
        "id": str(batch.id),
        "company": SEVERAL_COMPANIES if company is None else company,
        "model": batch.model,
        "status": batch.status.value,
        "openai_batch_id": batch.openai_batch_id,
        "requests": batch.request_count,
        "completed": batch.completed_count,
        "failed": batch.failed_count,
        "prompt_tokens": batch.prompt_tokens,
        "completion_tokens": batch.completion_tokens,
        "cost_eur": batch.total_cost_eur,
        "created_at": batch.created_at.isoformat(),
        "submitted_at": batch.submitted_at.isoformat() if batch.submitted_at else None,
        "processed_at": batch.processed_at.isoformat() if batch.processed_at else None,
        "error": batch.error_message,
        "input_file_id": batch.input_file_id,
        "output_file_id": batch.output_file_id,
        "error_file_id": batch.error_file_id,
    }


def _batch_id(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        exit_not_found(f"no batch with id {value!r}")


def newest_batches(db: Session, *, limit: int, before: Cursor | None = None) -> list[dict[str, Any]]:
    """The newest batches after the cursor ``before`` (from the newest when None): one index walk."""
    from sqlalchemy import select

    from pipeline.db.models import AIBatchRequest, Company
    from pipeline.db.paging import Cursor, older_than

    statement = (
        select(AIBatchRequest, Company.name)
        .outerjoin(Company, Company.id == AIBatchRequest.company_id)
        .order_by(AIBatchRequest.created_at.desc(), AIBatchRequest.id.desc())
        .limit(limit)
    )
    if before is not None:
        statement = statement.where(older_than(before, AIBatchRequest.created_at, AIBatchRequest.id))
    return [
        {**_describe(batch, company), "cursor": Cursor.of(batch.created_at, batch.id)}
        for batch, company in db.execute(statement)
    ]


@app.command("list")
def list_(
    limit: int = typer.Option(50, "--limit", min=1, max=10_000, help="How many, newest first."),
    before: str | None = typer.Option(None, "--before", metavar="TIME", help=BEFORE_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """List the newest batches with their status, counts and cost."""
    from pipeline.db.engine import get_session_factory

    with get_session_factory()() as db:
        rows = newest_batches(db, limit=limit, before=parse_before(before))
    if as_json:
        print_json([camel_case(row) for row in rows])
        return
    table = new_table(
        "id", "company", "model", "status", "requests", "completed", "failed", "cost EUR", "created"
    )
    for row in rows:
        table.add_row(
            row["id"],
            row["company"],
            row["model"],
            row["status"],
            str(row["requests"]),
            str(row["completed"]),
            str(row["failed"]),
            f"{row['cost_eur']:.4f}",
            row["created_at"],
        )
    print_tables(table)


@app.command()
def show(batch_id: str = typer.Argument(..., metavar="ID")) -> None:
    """Show one batch, with its requests counted by status."""
    from sqlalchemy import func, select

    from pipeline.db.engine import get_session_factory
    from pipeline.db.models import AIBatchRequest, AIProcessingRequest, Company

    with get_session_factory()() as db:
        found = db.execute(
            select(AIBatchRequest, Company.name)
            .outerjoin(Company, Company.id == AIBatchRequest.company_id)
            .where(AIBatchRequest.id == _batch_id(batch_id))
        ).first()
        if found is None:
            exit_not_found(f"no batch with id {batch_id!r}")
        batch, company = found
        requests = {
            status.value: count
            for status, count in db.execute(
                select(AIProcessingRequest.processing_status, func.count())
                .where(AIProcessingRequest.batch_id == batch.id)
                .group_by(AIProcessingRequest.processing_status)
            )
        }
    print_json(camel_case({**_describe(batch, company), "requests_by_status": requests}))


@app.command()
def cancel(batch_id: str = typer.Argument(..., metavar="ID")) -> None:
    """Cancel a batch at OpenAI; its finished lines are kept and the rest go back to pending."""
    import openai

    from pipeline.analysis.openai_calls import openai_client
    from pipeline.db.engine import get_engine
    from pipeline.settings import get_settings
    from pipeline.stages.batch_check import cancel_batch

    with openai_client(get_settings()) as client:
        try:
            status = cancel_batch(get_engine(), client, _batch_id(batch_id))
        except LookupError as exc:
            exit_not_found(str(exc))
        except openai.APIStatusError as exc:
            exit_with_failure(
                f"OpenAI refused to cancel batch {batch_id}: HTTP {exc.status_code}: {exc.message}"
            )
    typer.echo(f"{batch_id} {status}; the next check ingests what it finished and re-queues the rest")
