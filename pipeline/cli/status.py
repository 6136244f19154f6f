"""``livedash status``: how every company's import stands."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from pipeline.db.engine import get_session_factory
from pipeline.db.enums import ProcessingStatus
from pipeline.settings import get_settings
from pipeline.stages.budgets import BUDGET_REACHED, budget_uses, month_of
from pipeline.stages.csv_reports import company_import_status
from pipeline.stages.pipeline_reports import pipeline_status


def _budgets() -> list[dict[str, Any]]:
    """This month's AI spend of each company with a budget or a spend, and whether it reached its budget."""
    with get_session_factory()() as db:
        uses = budget_uses(db, get_settings(), month_of(datetime.now(UTC)))
    return [
        {
            "company": use.company_name,
            "company_id": str(use.company_id),
            "monthly_eur": None if use.budget is None else str(use.budget),
            "spent_eur": str(use.spent),
            "reserved_eur": str(use.reserved),
            "used_ratio": use.ratio,
            "state": BUDGET_REACHED if (use.ratio or 0) >= 1 else "ok",
        }
        for use in uses
        if use.budget is not None or use.used
    ]


def _imports(company: dict[str, Any]) -> str:
    """The stored import count, ``~`` before an estimate, ``-`` for a company too small to be estimated."""
    if company["imports"] is None:
        return "-"
    return f"~{company['imports']}" if company["imports_estimated"] else str(company["imports"])


def status(as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table.")) -> None:
    """Per company: stored imports and the last CSV fetch; per stage: sessions by status; AI budgets."""
    with get_session_factory()() as db:
        companies = company_import_status(db)
        pipeline = pipeline_status(db)
    budgets = _budgets()
    if as_json:
        typer.echo(json.dumps({"companies": companies, **pipeline, "budgets": budgets}, indent=2))
        return
    table = Table("company", "status", "imports", "last fetch", "new", "changed", "invalid", "error")
    for company in companies:
        fetch = company["last_fetch"] or {}
        table.add_row(
            company["name"],
            company["status"],
            _imports(company),
            f"{fetch.get('outcome', '-')} {fetch.get('finished_at') or ''}".strip(),
            str(fetch.get("rows_new", "")),
            str(fetch.get("rows_changed", "")),
            str(fetch.get("rows_invalid", "")),
            fetch.get("error") or "",
        )
    console = Console()
    console.print(table)
    stages = Table(
        "stage",
        *(status.value for status in ProcessingStatus),
        title=f"{'~' if pipeline['estimated'] else ''}{pipeline['totalSessions']} sessions",
    )
    for stage, counts in pipeline["pipeline"].items():
        stages.add_row(stage, *(str(counts.get(status.value, 0)) for status in ProcessingStatus))
    console.print(stages)
    if budgets:
        spend = Table("company", "monthly budget EUR", "spent EUR", "reserved EUR", "used", "state",
                      title="AI budgets this month")  # fmt: skip
        for row in budgets:
            ratio = row["used_ratio"]
            spend.add_row(
                row["company"],
                row["monthly_eur"] or "unlimited",
                f"{float(row['spent_eur']):.2f}",
                f"{float(row['reserved_eur']):.2f}",
                "" if ratio is None else f"{ratio:.0%}",
                row["state"],
            )
        console.print(spend)
