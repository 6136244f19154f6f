"""The ``livedash`` command line: one sub-application per concern, each in its own module."""

from __future__ import annotations

import sys

import typer

from pipeline.cli import (
    batches,
    companies,
    db,
    demo,
    devtools,
    dlq,
    health,
    imports,
    run,
    scheduler,
    schedulers,
    secrets,
    sessions,
    status,
    worker,
)
from pipeline.cli.errors import USAGE_ERROR
from pipeline.settings import SettingsError

__all__ = ["app", "main"]

app = typer.Typer(
    name="livedash",
    help="LiveDash Pipeline: import chat sessions, fetch transcripts, analyse them with an LLM.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(db.app, name="db")
app.add_typer(batches.app, name="batches")
app.add_typer(companies.app, name="companies")
app.add_typer(devtools.app, name="devtools")
app.add_typer(dlq.app, name="dlq")
app.add_typer(imports.app, name="imports")
app.add_typer(schedulers.app, name="schedulers")
app.add_typer(secrets.app, name="secrets")
app.add_typer(sessions.app, name="sessions")
app.command("status")(status.status)
app.command("demo")(demo.demo)
app.command("worker")(worker.worker)
app.command("scheduler")(scheduler.scheduler)
app.command("run")(run.run)
app.command("health")(health.health)


def main() -> None:
    """Console-script entry point: a bad configuration is one clear message and exit code 2."""
    try:
        app()
    except SettingsError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(USAGE_ERROR)
