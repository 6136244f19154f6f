"""How every command ends when it cannot do what it was asked: one line on stderr and a documented exit code.

=====  ===================  ==========================================================================
code   name                 when
=====  ===================  ==========================================================================
0                           done
1      ``FAILURE``          the command ran and failed (a refused action, a demo that went wrong)
2      ``USAGE_ERROR``      bad input: an unknown option or value, a bad configuration (also click's own)
3      ``NOT_FOUND``        the company, batch, scheduler or dead letter named does not exist
69     ``UNAVAILABLE``      PostgreSQL, RabbitMQ or the OpenAI API did not answer (sysexits' EX_UNAVAILABLE)
=====  ===================  ==========================================================================

``docs/operations.md`` documents the same table; a test keeps the two in step.
"""

from __future__ import annotations

from typing import NoReturn

import typer

__all__ = [
    "EXIT_CODES",
    "FAILURE",
    "NOT_FOUND",
    "UNAVAILABLE",
    "USAGE_ERROR",
    "exit_not_found",
    "exit_with_failure",
    "exit_with_usage_error",
]

FAILURE = 1
#: Bad input (unknown option or value, bad configuration), as typer/click use for usage errors.
USAGE_ERROR = 2
NOT_FOUND = 3
#: sysexits.h's EX_UNAVAILABLE: a service the command needs is down; trying again later may work.
UNAVAILABLE = 69

#: Every exit code of ``livedash`` and what it means.
EXIT_CODES = {
    0: "done",
    FAILURE: "the command ran and failed",
    USAGE_ERROR: "bad input or configuration",
    NOT_FOUND: "what was named does not exist",
    UNAVAILABLE: "PostgreSQL, RabbitMQ or the OpenAI API did not answer",
}


def _exit(message: str, code: int) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code=code)


def exit_with_usage_error(message: str) -> NoReturn:
    _exit(message, USAGE_ERROR)


def exit_not_found(message: str) -> NoReturn:
    _exit(message, NOT_FOUND)


def exit_with_failure(message: str) -> NoReturn:
    _exit(message, FAILURE)
