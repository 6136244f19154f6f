"""`livedash --help`, `--version` and `-h`: answered at once, without loading what no help needs.

Help is slow only when it imports SQLAlchemy, Dramatiq, pika, the OpenAI SDK or FastAPI, so the test looks at
what a real process imported rather than at a clock (``bench/cli_startup.py`` measures the time).
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import typer.main
from typer.testing import CliRunner

from pipeline import __version__
from pipeline.cli import app

#: What the help of a command must not import: each costs tens to hundreds of milliseconds. (Not pydantic:
#: typer itself converts parameters with it. pydantic_settings: the pipeline's settings, about 0.2 s.)
HEAVY = (
    "alembic",
    "dramatiq",
    "fastapi",
    "httpx",
    "httpx2",
    "openai",
    "pika",
    "prometheus_client",
    "psycopg",
    "pydantic_settings",
    "sqlalchemy",
    "starlette",
    "uvicorn",
)

#: Runs ``livedash`` with the process's arguments, then prints the heavy modules it imported, as JSON.
RUNNER = f"""
import json, sys
sys.argv[0] = "livedash"
from pipeline.cli import main
try:
    main()
except SystemExit:
    pass
print(json.dumps(sorted(name for name in sys.modules if name.split(".")[0] in {HEAVY!r})), file=sys.stderr)
"""


def _commands(command: object, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """The path of ``command`` and of every command under it (a group has ``commands``)."""
    paths = [path]
    children: dict[str, object] = getattr(command, "commands", {})
    for name, child in children.items():
        paths += _commands(child, (*path, name))
    return paths


EVERY_COMMAND = _commands(typer.main.get_command(app))


@pytest.mark.parametrize(
    "arguments",
    [
        ["--help"],
        ["-h"],
        ["--version"],
        ["companies", "--help"],
        ["schedulers", "trigger", "-h"],
        ["demo", "-h"],
    ],
    ids=" ".join,
)
def test_help_and_version_import_no_database_broker_or_sdk(arguments: list[str]) -> None:
    # When help or the version is asked for, in a process of its own
    done = subprocess.run(
        [sys.executable, "-c", RUNNER, *arguments], capture_output=True, text=True, timeout=60, check=True
    )

    # Then it answers, having imported none of the heavy libraries
    assert "livedash" in done.stdout
    assert json.loads(done.stderr.strip().splitlines()[-1]) == []


def test_every_command_answers_dash_h_with_its_help() -> None:
    runner = CliRunner()
    assert len(EVERY_COMMAND) > 30
    for path in EVERY_COMMAND:
        # When any command or group is given -h
        result = runner.invoke(app, [*path, "-h"])

        # Then it prints its help and exits 0
        assert result.exit_code == 0, (path, result.output)
        assert "Usage: livedash" in result.output, path


def test_version_prints_the_package_version() -> None:
    result = CliRunner().invoke(app, ["--version"])

    assert result.exit_code == 0
    assert result.stdout == f"livedash {__version__}\n"
