"""The Dockerfile and .dockerignore: a slim Python 3.11 image, built from the pinned pyproject.toml, running
`livedash` as a non-root user, with a health check that needs nothing but Python.

No Docker engine here: the Dockerfile is parsed, and its health check command is run as a plain process
against a local HTTP server.
"""

from __future__ import annotations

import fnmatch
import json
import shlex
import subprocess
import sys
import threading
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.deploy.artifacts import DOCKERFILE, DOCKERIGNORE, REPO, default_settings

Instruction = tuple[str, str]


def instructions() -> list[Instruction]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined, comments dropped."""
    joined: list[str] = []
    pending = ""
    for line in DOCKERFILE.read_text().splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        joined.append(pending + stripped)
        pending = ""
    return [(text.split(maxsplit=1)[0].upper(), text.split(maxsplit=1)[1]) for text in joined]


def stages() -> list[list[Instruction]]:
    """The build stages, each from its FROM on; ARGs before the first FROM are substituted into FROMs."""
    args: dict[str, str] = {}
    found: list[list[Instruction]] = []
    for instruction, arguments in instructions():
        if instruction == "ARG" and not found:
            name, _, value = arguments.partition("=")
            args[name] = value
            continue
        text = arguments
        if instruction == "FROM":
            for name, value in args.items():
                text = text.replace("${" + name + "}", value)
            found.append([])
        found[-1].append((instruction, text))
    return found


def healthcheck_command() -> list[str]:
    (arguments,) = [a for stage in stages()[-1:] for i, a in stage if i == "HEALTHCHECK"]
    command: list[str] = json.loads(arguments[arguments.index("CMD") + len("CMD") :].strip())
    return command


def test_both_stages_build_on_the_slim_python_311_image() -> None:
    # Given the project's Python requirement
    requires = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["requires-python"]
    assert requires == ">=3.11,<3.12"

    # Then every stage starts from python:3.11-slim
    assert [stage[0][1].split()[0] for stage in stages()] == ["python:3.11-slim", "python:3.11-slim"]


def test_dependencies_come_from_the_hashed_lock() -> None:
    build = stages()[0]
    copied = [arguments for instruction, arguments in build if instruction == "COPY"]
    runs = " ".join(arguments for instruction, arguments in build if instruction == "RUN")

    # The build stage installs pip from its own hashed lock, then requirements.lock with its hashes, then the
    # project without dependencies
    assert "requirements-pip.lock requirements.lock pyproject.toml README.md ./" in copied
    locked = runs.index("pip install --require-hashes -r requirements.lock")
    assert runs.index("-r requirements-pip.lock") < locked
    assert "pip install --no-deps ." in runs
    dependencies = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    assert all("==" in dependency for dependency in dependencies)


def test_the_runtime_image_runs_livedash_as_a_non_root_user() -> None:
    runtime = stages()[-1]
    users = [arguments for instruction, arguments in runtime if instruction == "USER"]

    # A fixed numeric uid and gid, not root (Kubernetes' runAsNonRoot checks the number)
    assert users == ["10001:10001"]
    # The entrypoint is the package's console script
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert ("ENTRYPOINT", '["livedash"]') in runtime
    assert scripts["livedash"] == "pipeline.cli:main"
    # Only the virtual environment is taken from the build stage
    assert [a for i, a in runtime if i == "COPY"] == ["--from=build /opt/livedash /opt/livedash"]


def test_the_image_exposes_the_default_ports_of_the_settings() -> None:
    settings = default_settings()
    (exposed,) = [arguments for instruction, arguments in stages()[-1] if instruction == "EXPOSE"]

    assert set(exposed.split()) == {
        str(settings.health_port),
        str(settings.metrics_port),
        str(settings.scheduler_metrics_port),
    }


def test_every_copied_source_exists_and_is_not_ignored() -> None:
    # Given the .dockerignore patterns (none negated)
    patterns = [
        line.strip() for line in DOCKERIGNORE.read_text().splitlines() if line.strip() and line[0] != "#"
    ]
    assert not any(pattern.startswith("!") for pattern in patterns)

    for stage in stages():
        for instruction, arguments in stage:
            if instruction != "COPY" or arguments.startswith("--from"):
                continue
            *sources, _target = shlex.split(arguments)
            for source in sources:
                # Then each source is in the repository and reaches the build context
                assert (REPO / source).exists(), source
                ignored = [p for p in patterns if fnmatch.fnmatch(source, p.removeprefix("**/"))]
                assert ignored == [], f"{source} is excluded by .dockerignore {ignored}"

    # And what must never be in an image stays out of the context
    for secret_or_bulk in (".env", ".git", "tests", ".venv"):
        assert secret_or_bulk in patterns


class _Handler(BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:
        self.send_response(self.status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def http_server(status: int) -> Iterator[str]:
    handler = type("Handler", (_Handler,), {"status": status})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/metrics"
    finally:
        server.shutdown()
        server.server_close()


def run_healthcheck(url: str | None) -> int:
    python, flag, code = healthcheck_command()
    assert (python, flag) == ("python", "-c")
    env = {"HEALTHCHECK_URL": url} if url else {}
    return subprocess.run([sys.executable, flag, code], env=env, timeout=30, check=False).returncode


def test_the_healthcheck_defaults_to_the_worker_metrics_port() -> None:
    _python, _flag, code = healthcheck_command()
    assert f"'http://127.0.0.1:{default_settings().metrics_port}/metrics'" in code
    assert "HEALTHCHECK_URL" in code


@pytest.mark.parametrize(("status", "healthy"), [(200, True), (503, False)])
def test_the_healthcheck_passes_only_on_a_successful_answer(status: int, healthy: bool) -> None:
    # Given an endpoint that answers with `status`
    with http_server(status) as url:
        # When the image's HEALTHCHECK command runs against it
        returncode = run_healthcheck(url)

    # Then the container counts as healthy only for a 2xx answer
    assert (returncode == 0) is healthy


def test_the_healthcheck_fails_when_nothing_listens() -> None:
    # Given a port that was just freed
    with http_server(200) as url:
        pass

    # Then the check fails instead of hanging
    assert run_healthcheck(url) != 0
