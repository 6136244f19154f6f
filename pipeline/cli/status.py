"""``livedash status``: how every company's import stands."""

from __future__ import annotations

from typing import Any

import typer

from pipeline.cli.output import camel_case, new_table, print_json, print_tables
from pipeline.db.enums import ProcessingStatus


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
    """Per company: stored imports and the last CSV fetch; per stage: sessions by status."""
    from pipeline.db.engine import get_session_factory
    from pipeline.stages.csv_reports import company_import_status
    from pipeline.stages.pipeline_reports import pipeline_status

    with get_session_factory()() as db:
        companies = company_import_status(db)
        pipeline = pipeline_status(db)
    if as_json:
        print_json({"companies": [_company_json(company) for company in companies], **camel_case(pipeline)})
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
    print_tables(table, stages)
