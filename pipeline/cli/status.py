"""``livedash status``: how every company's import stands."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import typer

from pipeline.cli.output import camel_case, new_table, print_json, print_tables
from pipeline.db.enums import ProcessingStatus

if TYPE_CHECKING:
    from rich.table import Table


def _budgets() -> list[dict[str, Any]]:
    """This month's AI spend of each company with a budget or a spend, and whether it reached its budget."""
    from datetime import UTC, datetime

    from pipeline.db.engine import get_session_factory
    from pipeline.settings import get_settings
    from pipeline.stages.budgets import BUDGET_REACHED, budget_uses, month_of

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


def _budget_table(budgets: list[dict[str, Any]]) -> Table:
    table = new_table(
        "company",
        "monthly budget EUR",
        "spent EUR",
        "reserved EUR",
        "used",
        "state",
        title="AI budgets this month",
    )
    for row in budgets:
        ratio = row["used_ratio"]
        table.add_row(
            row["company"],
            row["monthly_eur"] or "unlimited",
            f"{float(row['spent_eur']):.2f}",
            f"{float(row['reserved_eur']):.2f}",
            "" if ratio is None else f"{ratio:.0%}",
            row["state"],
        )
    return table


def _imports(company: dict[str, Any]) -> str:
    """The stored import count, ``~`` before an estimate, ``-`` for a company too small to be estimated."""
    if company["imports"] is None:
        return "-"
    return f"~{company['imports']}" if company["imports_estimated"] else str(company["imports"])


def _company_json(company: dict[str, Any]) -> dict[str, Any]:
    """A company's import status with camelCase keys, its last fetch's too."""
    fetch = company["last_fetch"]
    return {**camel_case(company), "lastFetch": camel_case(fetch) if fetch else None}


def status(as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table.")) -> None:
    """Per company: stored imports and the last CSV fetch; per stage: sessions by status; AI budgets."""
    from pipeline.db.engine import get_session_factory
    from pipeline.stages.csv_reports import company_import_status
    from pipeline.stages.pipeline_reports import pipeline_status

    with get_session_factory()() as db:
        companies = company_import_status(db)
        pipeline = pipeline_status(db)
    budgets = _budgets()
    if as_json:
        print_json(
            {
                "companies": [_company_json(company) for company in companies],
                **camel_case(pipeline),
                "budgets": [camel_case(row) for row in budgets],
            }
        )
        return
    table = new_table(
        "company", "status", "imports", "last fetch", "new", "changed", "invalid", "warnings", "error"
    )
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
            str(fetch.get("field_warnings", "")),
            fetch.get("error") or "",
        )
    stages = new_table(
        "stage",
        *(status.value for status in ProcessingStatus),
        title=f"{'~' if pipeline['estimated'] else ''}{pipeline['totalSessions']} sessions",
    )
    for stage, counts in pipeline["pipeline"].items():
        stages.add_row(stage, *(str(counts.get(status.value, 0)) for status in ProcessingStatus))
    print_tables(table, stages, *([_budget_table(budgets)] if budgets else []))
