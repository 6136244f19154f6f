"""Replicas side by side on one host: each takes its own metrics port (the documented way); a replica whose
port is taken says so in one line, without a traceback, and goes on with its work."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from pipeline.settings import Settings
from tests.processes import free_port, livedash, running, wait_for_metrics
from tests.services import RABBITMQ_URL, require_rabbitmq

IN_USE = "is in use (another replica on this host?)"


def _wait_for_line(log: Path, text: str) -> str:
    deadline = time.monotonic() + 60
    while text not in log.read_text(errors="replace") and time.monotonic() < deadline:
        time.sleep(0.3)
    return log.read_text(errors="replace")


def _pool(port: int) -> tuple[list[str], dict[str, str]]:
    argv = [
        sys.executable,
        "-m",
        "dramatiq",
        "pipeline.actors",
        "--queues",
        "csv-import",
        "-p",
        "1",
        "-t",
        "1",
    ]
    env = {"RABBITMQ_URL": RABBITMQ_URL, "METRICS_HOST": "127.0.0.1", "METRICS_PORT": str(port)}
    return argv, env


@pytest.mark.rabbitmq
def test_pools_on_one_host_take_a_port_each_and_a_taken_port_is_one_line(tmp_path: Path) -> None:
    # Given two pools on their own ports, and a third started on the first one's port
    require_rabbitmq()
    first, second = free_port(), free_port()
    logs = [tmp_path / f"pool-{index}.log" for index in range(3)]
    with (
        running(*_pool(first), logs[0]) as pool_a,
        running(*_pool(second), logs[1]) as pool_b,
    ):
        wait_for_metrics(f"http://127.0.0.1:{first}/metrics", "dramatiq_messages_total", pool_a, logs[0])
        with running(*_pool(first), logs[2]) as pool_c:
            # When the third one's exporter finds its port taken
            output = _wait_for_line(logs[2], IN_USE)
            still_running = pool_c.poll() is None
        # Then the first two serve their own metrics
        assert "dramatiq_messages_total" in wait_for_metrics(
            f"http://127.0.0.1:{second}/metrics", "dramatiq_messages_total", pool_b, logs[1]
        )

    # And the third said so in one line naming the setting, without a traceback, and kept consuming
    lines = [line for line in output.splitlines() if IN_USE in line]
    assert len(lines) == 1, output
    assert f"127.0.0.1:{first}" in lines[0] and "METRICS_PORT" in lines[0]
    assert "Traceback" not in output
    assert still_running, output


@pytest.mark.postgres
@pytest.mark.rabbitmq
def test_a_second_scheduler_on_a_taken_port_says_so_in_one_line_and_runs(
    pg_settings: Settings, tmp_path: Path
) -> None:
    # Given a scheduler serving its metrics
    require_rabbitmq()
    port = free_port()
    env = {
        "DATABASE_URL": pg_settings.database_url,
        "RABBITMQ_URL": RABBITMQ_URL,
        "METRICS_HOST": "127.0.0.1",
        "SCHEDULER_METRICS_PORT": str(port),
    }
    first_log, second_log = tmp_path / "first.log", tmp_path / "second.log"
    with running(livedash("scheduler"), {**env, "SCHEDULER_INSTANCE_ID": "first"}, first_log) as first:
        metrics = wait_for_metrics(
            f"http://127.0.0.1:{port}/metrics", "livedash_scheduler_ticks_total", first, first_log
        )
        # When a second replica starts on the same host with the same port
        with running(livedash("scheduler"), {**env, "SCHEDULER_INSTANCE_ID": "second"}, second_log) as second:
            output = _wait_for_line(second_log, "scheduler second started")
            still_running = second.poll() is None

    # Then the first one's counters start at zero, failures included
    assert 'livedash_scheduler_ticks_total{outcome="failed",scheduler="csv-import"} 0.0' in metrics
    # And the second said in one line that its port is taken, without a traceback, and runs its ticks
    lines = [line for line in output.splitlines() if IN_USE in line]
    assert len(lines) == 1, output
    assert "SCHEDULER_METRICS_PORT" in lines[0]
    assert "Traceback" not in output
    assert still_running, output


@pytest.mark.postgres
@pytest.mark.rabbitmq
def test_a_scheduler_ignores_a_pools_metrics_directory_that_does_not_exist_yet(
    pg_settings: Settings, tmp_path: Path
) -> None:
    # Given the environment of a host whose pools keep their metrics under PROMETHEUS_MULTIPROC_DIR, and no
    # pool has created that directory yet
    require_rabbitmq()
    port = free_port()
    env = {
        "DATABASE_URL": pg_settings.database_url,
        "RABBITMQ_URL": RABBITMQ_URL,
        "METRICS_HOST": "127.0.0.1",
        "SCHEDULER_METRICS_PORT": str(port),
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "not-yet-made"),
    }
    log = tmp_path / "scheduler.log"

    # When a scheduler starts there
    with running(livedash("scheduler"), env, log) as scheduler:
        metrics = wait_for_metrics(
            f"http://127.0.0.1:{port}/metrics", "livedash_scheduler_ticks_total", scheduler, log
        )

    # Then it serves its own metrics from memory, and wrote nothing for the pools' collector to find
    assert 'livedash_scheduler_ticks_total{outcome="failed",scheduler="csv-import"} 0.0' in metrics
    assert not (tmp_path / "not-yet-made").exists()
