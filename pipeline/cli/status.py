"""``livedash status``: how every company's import stands."""

from __future__ import annotations

import json
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from pipeline.db.engine import get_session_factory
from pipeline.db.enums import ProcessingStatus
from pipeline.stages.csv_reports import company_import_status
from pipeline.stages.pipeline_reports import pipeline_status


def _imports(company: dict[str, Any]) -> str:
    """The stored import count, ``~`` before an estimate, ``-`` for a company too small to be estimated."""
    if company["imports"] is None:
        return "-"
    return f"~{company['imports']}" if company["imports_estimated"] else str(company["imports"])


def status(as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table.")) -> None:
    """Per company: stored imports and the last CSV fetch; per stage: sessions by status."""
    with get_session_factory()() as db:
        companies = company_import_status(db)
        pipeline = pipeline_status(db)
    if as_json:
        typer.echo(json.dumps({"companies": companies, **pipeline}, indent=2))
        return
    table = Table(
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
