"""How every command reports a usage error: one line on stderr and exit code 2."""

from __future__ import annotations

from typing import NoReturn

import typer

__all__ = ["USAGE_ERROR", "exit_with_usage_error"]

#: Exit code for bad input (unknown id, bad URL, bad configuration), as typer/click use for usage errors.
USAGE_ERROR = 2


def exit_with_usage_error(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code=USAGE_ERROR)
