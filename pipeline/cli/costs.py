"""``livedash costs``: what AI analysis cost, per company and model, mode or day, from the ledger."""

from __future__ import annotations

import uuid
from datetime import date
from typing import TYPE_CHECKING, cast

import typer

from pipeline.cli.errors import exit_with_usage_error
from pipeline.cli.output import new_table, print_json, print_tables

if TYPE_CHECKING:
    from pipeline.costs import Breakdown

_BREAKDOWNS = ("model", "mode", "day")


def _since(text: str | None) -> date | None:
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        exit_with_usage_error(f"--since {text!r} is not a date (YYYY-MM-DD)")


def _company(text: str | None) -> uuid.UUID | None:
    if text is None:
        return None
    try:
        return uuid.UUID(text)
    except ValueError:
        exit_with_usage_error(f"--company {text!r} is not a company id (a UUID)")


def costs(
    company: str | None = typer.Option(None, "--company", metavar="ID", help="One company only."),
    since: str | None = typer.Option(None, "--since", metavar="DATE", help="Requests from this day (UTC)."),
    by: str | None = typer.Option(
        None, "--by", help="model, mode or day beside the company (default: both model and mode)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Requests, tokens, cost and cost per 1,000 sessions, per company and model, mode or day (exact sums)."""
    if by is not None and by not in _BREAKDOWNS:
        exit_with_usage_error(f"--by {by!r} must be model, mode or day")
    company_id, start = _company(company), _since(since)
    from decimal import Decimal

    from pipeline.costs import cost_lines
    from pipeline.db.engine import get_session_factory

    with get_session_factory()() as db:
        lines = cost_lines(db, company_id=company_id, since=start, by=cast("Breakdown | None", by))
    total = sum((line.cost_eur for line in lines), Decimal(0))
    if as_json:
        print_json({"lines": [line.as_json() for line in lines], "totalEur": str(total)})
        return
    table = new_table("company", "model", "mode", "day", "requests", "sessions", "prompt tokens",
                      "completion tokens", "cost EUR", "EUR / 1,000 sessions")  # fmt: skip
    for line in lines:
        table.add_row(
            line.company_name,
            line.model,
            line.mode,
            line.day,
            str(line.requests),
            str(line.sessions),
            str(line.prompt_tokens),
            str(line.completion_tokens),
            f"{line.cost_eur:.6f}",
            f"{line.cost_per_1000_sessions:.4f}",
        )
    print_tables(table)
    typer.echo(f"total {total:.6f} EUR")
