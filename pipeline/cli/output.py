"""What the list commands print: tables that never cut a value, and JSON with the admin API's key style.

``--json`` keys are camelCase everywhere, as in the admin API (its bodies are the public contract), and a
scheduler is printed with the API's own model (``pipeline.scheduling.records``).

Rich fits a table to the terminal, and to 80 columns when the output is piped, cutting what does not fit
with ``…``: an id cut that way is useless in a script. So every column folds a long value onto the next line
instead of cutting it, and piped output is as wide as its widest row.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

__all__ = ["camel_case", "console", "new_table", "print_json", "print_tables"]

#: The width of piped output: wide enough for any row, so that Rich never folds or cuts it.
PIPED_WIDTH = 100_000


def console() -> Console:
    """A console as wide as the terminal, or, when the output is not a terminal, as any row."""
    from rich.console import Console

    if sys.stdout.isatty():
        return Console()
    return Console(width=PIPED_WIDTH, soft_wrap=True)


def new_table(*headers: str, title: str | None = None) -> Table:
    """A table whose columns fold a value that does not fit, never cut it."""
    from rich.table import Table

    table = Table(title=title)
    for header in headers:
        table.add_column(header, overflow="fold")
    return table


def print_tables(*tables: Table) -> None:
    output = console()
    for table in tables:
        output.print(table)


def print_json(data: Any) -> None:
    """``data`` as indented JSON on stdout (datetimes and other values as their text)."""
    typer.echo(json.dumps(data, indent=2, default=str))


def camel_case(record: Mapping[str, Any]) -> dict[str, Any]:
    """``record`` with its own keys in camelCase, the admin API's style (``created_at`` → ``createdAt``).

    Only the record's own keys: nested values are data (a message's keyword arguments, counts by status)
    and are left as they are; a nested record is converted by its caller.
    """
    return {_camel(key): value for key, value in record.items()}


def _camel(key: str) -> str:
    head, *rest = key.split("_")
    return head + "".join(word.capitalize() for word in rest)
