"""``livedash health``: uvicorn on HEALTH_HOST/HEALTH_PORT, a clear error for bad targets, a real start."""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import typer
from typer.testing import CliRunner

from pipeline.cli import health as health_command
from pipeline.db import migrate
from pipeline.db.engine import create_db_engine, get_engine, get_session_factory
from pipeline.settings import get_settings, load_settings


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """A migrated SQLite database, process caches cleared and logging restored around the test (the
    command configures the root logger)."""
    root = logging.getLogger()
    saved = (list(root.handlers), root.level, logging.getLogger("httpx").level)
    database_url = f"sqlite:///{tmp_path / 'cli.sqlite3'}"
    engine = create_db_engine(load_settings(database_url=database_url))
    migrate.upgrade(engine)
    engine.dispose()
    values = {
        "DATABASE_URL": database_url,
        "ADMIN_API_TOKEN": "cli-token",
        "LOG_FORMAT": "json",
        "DEVELOPMENT_MODE": "true",  # a short test token
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    for cache in (get_settings, get_engine, get_session_factory):
        cache.cache_clear()
    yield values
    get_engine().dispose()
    for cache in (get_settings, get_engine, get_session_factory):
        cache.cache_clear()
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])
    logging.getLogger("httpx").setLevel(saved[2])


def app() -> typer.Typer:
    application = typer.Typer()
    application.command()(health_command.health)
    return application


def test_the_command_serves_the_api_on_the_configured_address(
    environment: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given HEALTH_HOST and HEALTH_PORT, and uvicorn replaced by a recorder
    monkeypatch.setenv("HEALTH_HOST", "127.0.0.9")
    monkeypatch.setenv("HEALTH_PORT", "3999")
    served: list[dict[str, object]] = []
    monkeypatch.setattr("uvicorn.run", lambda app, **options: served.append({"app": app, **options}))

    # When `livedash health` runs without options, then with --port
    first = CliRunner().invoke(app(), [], catch_exceptions=False)
    second = CliRunner().invoke(app(), ["--port", "4001", "--host", "::1"], catch_exceptions=False)

    # Then uvicorn serves the API on the settings' address, and the options win over them
    assert (first.exit_code, second.exit_code) == (0, 0)
    assert [(run["host"], run["port"]) for run in served] == [("127.0.0.9", 3999), ("::1", 4001)]
    assert served[0]["log_config"] is None
    assert getattr(served[0]["app"], "title", None) == "LiveDash health and admin API"


def test_bad_metrics_targets_stop_the_command_with_a_usage_error(
    environment: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a target with an unknown scheduler id
    monkeypatch.setenv("HEALTH_METRICS_TARGETS", "csv_import=http://a:9191/metrics")

    # When `livedash health` runs
    result = CliRunner().invoke(app(), [])

    # Then it exits 2 and names the problem
    assert result.exit_code == 2
    assert "error: HEALTH_METRICS_TARGETS: unknown id 'csv_import'" in result.output


def test_the_command_starts_a_real_server_and_stops_on_sigterm(environment: dict[str, str]) -> None:
    # Given `livedash health` started as its own process on a free port
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import typer; from pipeline.cli.health import health; typer.run(health)",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        env={**os.environ, **environment},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        # When it has started
        deadline = time.monotonic() + 30
        alive = None
        while time.monotonic() < deadline and alive is None and process.poll() is None:
            try:
                alive = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
            except httpx.TransportError:
                time.sleep(0.1)
        ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5)
        refused = httpx.get(f"http://127.0.0.1:{port}/api/admin/schedulers", timeout=10)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            output, _ = process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            output, _ = process.communicate()

    # Then it answered its probes and refused an admin call without a token
    text = output.decode(errors="replace")
    assert alive is not None and alive.status_code == 200, text
    assert ready.status_code == 200, text
    assert refused.status_code == 401, text
    # And stopped cleanly (uvicorn shuts down, then ends by the signal it received)
    assert "Application shutdown complete." in text
    assert process.returncode in (0, -signal.SIGTERM), text
    # And it logged as configured (JSON lines), without the token
    assert '"logger": "uvicorn.error"' in text
    assert "cli-token" not in text
