"""``livedash dlq``: list and replay what Dramatiq dead-lettered."""

from __future__ import annotations

import json
from dataclasses import asdict

import typer

from pipeline.cli.errors import exit_not_found, exit_with_usage_error
from pipeline.cli.output import camel_case, new_table, print_json, print_tables

app = typer.Typer(
    help="Dead-lettered messages (<queue>.XQ): list them and send them back.", no_args_is_help=True
)


def _queues(queue: str | None) -> list[str]:
    from pipeline.queues import ALL_QUEUES

    if queue is None:
        return list(ALL_QUEUES)
    if queue not in ALL_QUEUES:
        exit_with_usage_error(f"unknown queue {queue!r} (known: {', '.join(ALL_QUEUES)})")
    return [queue]


@app.command("list")
def list_(
    queue: str | None = typer.Argument(None, help="One stage queue; all of them by default."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Show the dead letters: actor, arguments, the error that killed them, and when."""
    from pipeline.dead_letters import list_dead_letters
    from pipeline.settings import get_settings

    letters = list_dead_letters(get_settings().rabbitmq_url, _queues(queue))
    if as_json:
        print_json([camel_case(asdict(letter)) for letter in letters])
        return
    table = new_table("queue", "message id", "actor", "args", "retries", "failed at", "error")
    for letter in letters:
        table.add_row(
            letter.queue,
            letter.message_id,
            letter.actor,
            json.dumps(letter.args),
            str(letter.retries),
            str(letter.failed_at or ""),
            letter.error or "",
        )
    print_tables(table)


@app.command()
def replay(
    queue: str = typer.Argument(..., help="The stage queue whose dead letters go back to it."),
    message_id: str | None = typer.Option(None, "--id", help="Only this message."),
) -> None:
    """Send dead letters back to their queue with a fresh retry budget (every actor is idempotent)."""
    from pipeline.dead_letters import replay_dead_letters
    from pipeline.publishing import Publisher
    from pipeline.settings import get_settings

    (chosen,) = _queues(queue)
    publisher = Publisher(get_settings())
    try:
        replayed = replay_dead_letters(
            get_settings().rabbitmq_url, chosen, message_id=message_id, publish=publisher
        )
    finally:
        publisher.close()
    if message_id is not None and not replayed:
        exit_not_found(f"no dead letter {message_id!r} in {chosen}.XQ")
    typer.echo(f"{len(replayed)} message(s) sent back to {chosen}")
