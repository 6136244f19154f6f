"""``livedash status``: how every company's import stands."""

from __future__ import annotations

import json

import typer
from rich.console import Console
from rich.table import Table

from pipeline.db.engine import get_session_factory
from pipeline.stages.csv_reports import company_import_status


def status(as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table.")) -> None:
    """Per company: stored imports and the last CSV fetch with its counts."""
    with get_session_factory()() as db:
        companies = company_import_status(db)
    if as_json:
        typer.echo(json.dumps({"companies": companies}, indent=2))
        return
    table = Table("company", "status", "imports", "last fetch", "new", "changed", "invalid", "error")
    for company in companies:
        fetch = company["last_fetch"] or {}
        table.add_row(
            company["name"],
            company["status"],
            str(company["imports"]),
            f"{fetch.get('outcome', '-')} {fetch.get('finished_at') or ''}".strip(),
            str(fetch.get("rows_new", "")),
            str(fetch.get("rows_changed", "")),
            str(fetch.get("rows_invalid", "")),
            fetch.get("error") or "",
        )
    Console().print(table)
