"""``livedash demo``: run the whole pipeline in this process on the embedded defaults, and report."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from pipeline.db.enums import ProcessingStatus
from pipeline.demo import run_demo

__all__ = ["demo"]


def demo(
    companies: int = typer.Option(3, "--companies", min=1, max=50, help="Companies in the demo data set."),
    sessions: int = typer.Option(100, "--sessions", min=1, max=100_000, help="Sessions per company."),
    seed: int = typer.Option(0, "--seed", help="Seed of the generated data set."),
    keep: Annotated[
        Path | None, typer.Option("--keep", help="Work in this folder and keep it (database, data).")
    ] = None,
) -> None:
    """Run the pipeline with SQLite, an in-process broker, the demo data source and the OpenAI emulator.

    Needs no RabbitMQ, PostgreSQL or OpenAI: CSVs are imported, transcripts fetched and parsed into messages,
    and sessions analysed through the Batch API, by the same actors that run on RabbitMQ.
    """
    console = Console()
    with console.status("running the pipeline: CSV import, import processing, AI analysis in batches ..."):
        report = run_demo(companies=companies, sessions=sessions, seed=seed, workdir=keep)
    console.print(
        f"{report.companies} companies, {report.imports} CSV rows imported, {report.sessions} sessions with "
        f"{report.messages} messages, {report.analysed} analysed through {report.batches} OpenAI batches "
        f"for {report.cost_eur:.4f} EUR "
        f"in {report.seconds:.1f} s"
    )
    table = Table("stage", *(status.value for status in ProcessingStatus))
    for stage, counts in report.pipeline.items():
        table.add_row(stage, *(str(counts.get(status.value, 0)) for status in ProcessingStatus))
    console.print(table)
    if keep is not None:
        console.print(f"database: {report.database}")
