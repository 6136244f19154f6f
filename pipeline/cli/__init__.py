"""The ``livedash`` command line: one sub-application per concern, each in its own module.

Help, ``--version`` and ``-h`` must answer at once, so no command module imports SQLAlchemy, Dramatiq,
pika, the OpenAI SDK or FastAPI at module level: each command imports what it needs in its body
(``bench/cli_startup.py`` measures the start, ``tests/cli/test_startup.py`` keeps it light).
"""

from __future__ import annotations

import sys

import typer

from pipeline import __version__
from pipeline.cli import (
    batches,
    companies,
    costs,
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

__all__ = ["app", "main"]

app = typer.Typer(
    name="livedash",
    help="LiveDash Pipeline: import chat sessions, fetch transcripts, analyse them with an LLM.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    # Inherited by every sub-command's context.
    context_settings={"help_option_names": ["-h", "--help"]},
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
app.command("costs")(costs.costs)
app.command("demo")(demo.demo)
app.command("worker")(worker.worker)
app.command("scheduler")(scheduler.scheduler)
app.command("run")(run.run)
app.command("health")(health.health)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"livedash {__version__}")
        raise typer.Exit()


@app.callback()
def _options(
    _version: bool = typer.Option(
        False,
        "--version",
        callback=_print_version,
        is_eager=True,
        expose_value=False,
        help="Print the version and exit.",
    ),
) -> None:
    """The options of ``livedash`` itself, before any command (the help text is the application's)."""


def main() -> None:
    """Console-script entry point: what stops a command is one line on stderr, never a traceback.

    A bad configuration exits 2; PostgreSQL, RabbitMQ or the OpenAI API down exits 69, naming the service
    and its URL without the password (``pipeline.cli.errors`` has every code). Anything else is a bug and
    keeps its traceback.
    """
    try:
        app()
    except Exception as exc:
        # Imported only now: the help must not pay for the settings and the outage checks.
        from pipeline.cli.outages import explain

        explained = explain(exc)
        if explained is None:
            raise
        message, code = explained
        typer.echo(f"error: {message}", err=True)
        sys.exit(code)
