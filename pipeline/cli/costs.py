"""``livedash costs``: what AI analysis cost, per company and model, mode or day, from the ledger."""

from __future__ import annotations

import json
import uuid
from datetime import date
from decimal import Decimal
from typing import cast

import typer
from rich.console import Console
from rich.table import Table

from pipeline.cli.errors import exit_with_usage_error
from pipeline.costs import Breakdown, cost_lines
from pipeline.db.engine import get_session_factory


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
        exit_with_usage_error(f"no company with id {text!r}")


def costs(
    company: str | None = typer.Option(None, "--company", metavar="ID", help="One company only."),
    since: str | None = typer.Option(None, "--since", metavar="DATE", help="Requests from this day (UTC)."),
    by: str | None = typer.Option(
        None, "--by", help="model, mode or day beside the company (default: both model and mode)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Requests, tokens, cost and cost per 1,000 sessions, per company and model, mode or day (exact sums)."""
    if by not in (None, "model", "mode", "day"):
        exit_with_usage_error(f"--by {by!r} must be model, mode or day")
    breakdown = cast(Breakdown | None, by)
    with get_session_factory()() as db:
        lines = cost_lines(db, company_id=_company(company), since=_since(since), by=breakdown)
    total = sum((line.cost_eur for line in lines), Decimal(0))
    if as_json:
        typer.echo(
            json.dumps({"lines": [line.as_json() for line in lines], "totalEur": str(total)}, indent=2)
        )
        return
    table = Table("company", "model", "mode", "day", "requests", "sessions", "prompt tokens",
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
    Console().print(table)
    typer.echo(f"total {total:.6f} EUR")
