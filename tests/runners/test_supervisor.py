"""`livedash run`: children supervised, a crashed one restarted with backoff, SIGTERM stopping everything."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from pipeline.runners.supervisor import Child, Supervisor
from pipeline.settings import Settings, load_settings
from tests.services import RABBITMQ_URL, require_rabbitmq

SLEEPER = [sys.executable, "-c", "import time; time.sleep(600)"]


def _settings(**changes: object) -> Settings:
    return load_settings(scheduler_restart_backoff_ms=50, worker_shutdown_grace_seconds=5, **changes)


def _wait_for(condition: object, timeout: float = 30) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(condition) and condition():
            return True
        time.sleep(0.05)
    return False


def _running(supervisor: Supervisor, exit_codes: list[int]) -> threading.Thread:
    thread = threading.Thread(target=lambda: exit_codes.append(supervisor.run()))
    thread.start()
    assert _wait_for(lambda: all(child.process for child in supervisor.children))
    return thread


def test_a_killed_child_is_restarted_and_the_others_keep_running() -> None:
    # Given two supervised children
    supervisor = Supervisor(_settings(scheduler_max_restarts=3), [Child("a", SLEEPER), Child("b", SLEEPER)])
    exit_codes: list[int] = []
    thread = _running(supervisor, exit_codes)
    first, other = supervisor.children
    assert first.process is not None and other.process is not None
    killed_pid, other_pid = first.process.pid, other.process.pid
    try:
        # When one is killed
        os.kill(killed_pid, signal.SIGKILL)

        # Then it is started again, as a new process, and the other was not touched
        assert _wait_for(lambda: first.process is not None and first.process.pid != killed_pid)
        assert first.restarts == 1
        assert other.process is not None and other.process.pid == other_pid and other.process.poll() is None
    finally:
        supervisor.stopping.set()
        thread.join(timeout=30)
    # And stopping the supervisor stops both children
    assert first.process is not None and first.process.poll() is not None
    assert other.process.poll() is not None
    assert exit_codes == [0]


def test_a_child_that_keeps_crashing_stops_the_supervisor_with_a_failure() -> None:
    # Given a child that exits at once, two restarts allowed
    crasher = Child("crasher", [sys.executable, "-c", "raise SystemExit(3)"])
    supervisor = Supervisor(_settings(scheduler_max_restarts=2), [crasher, Child("steady", SLEEPER)])

    # When it is supervised, then after two restarts the supervisor gives up, stops the others, fails
    assert supervisor.run() == 1
    assert crasher.restarts == 2
    assert supervisor.failed == "crasher exited with code 3 after 2 restarts"
    assert all(child.process is None or child.process.poll() is not None for child in supervisor.children)


def test_without_auto_restart_a_crash_stops_everything() -> None:
    supervisor = Supervisor(
        _settings(scheduler_auto_restart=False), [Child("crasher", [sys.executable, "-c", "pass"])]
    )
    assert supervisor.run() == 1
    assert supervisor.children[0].restarts == 0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _children_of(pid: int) -> dict[int, str]:
    listed = subprocess.run(
        ["ps", "-o", "pid=,args=", "--ppid", str(pid)], capture_output=True, text=True, check=False
    )
    return {
        int(line.split(None, 1)[0]): line.split(None, 1)[1] for line in listed.stdout.strip().splitlines()
    }


@pytest.mark.postgres
@pytest.mark.rabbitmq
def test_livedash_run_restarts_its_killed_scheduler_and_stops_on_sigterm(
    pg_settings: Settings, tmp_path: Path
) -> None:
    require_rabbitmq()
    # Given `livedash run` with every child: the scheduler, four pools and the health API
    health_port = _free_port()
    run = subprocess.Popen(
        [sys.executable, "-m", "pipeline", "run"],
        env={
            **os.environ,
            "DATABASE_URL": pg_settings.database_url,
            "RABBITMQ_URL": RABBITMQ_URL,
            "SECRET_KEY": "test-secret",
            "DEVELOPMENT_MODE": "true",  # a short test secret
            "HEALTH_PORT": str(health_port),
            "HEALTH_HOST": "127.0.0.1",
            "METRICS_PORT": "0",
            "SCHEDULER_METRICS_PORT": "0",
            "WORKER_PROCESSES": "1",
            "WORKER_THREADS": "1",
            "WORKER_SHUTDOWN_GRACE_SECONDS": "20",
            "SCHEDULER_RESTART_BACKOFF_MS": "100",
            "TMPDIR": str(tmp_path),
        },
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        assert _wait_for(lambda: _healthz(health_port), timeout=90), "the health API never answered"
        children = _children_of(run.pid)
        assert len(children) == 6, children
        [scheduler_pid] = [pid for pid, args in children.items() if args.endswith("pipeline scheduler")]

        # When the scheduler child is killed
        os.kill(scheduler_pid, signal.SIGKILL)

        # Then a new scheduler child takes its place, and the other five are the same processes
        def replaced() -> bool:
            now = _children_of(run.pid)
            schedulers = [pid for pid, args in now.items() if args.endswith("pipeline scheduler")]
            return len(now) == 6 and schedulers != [scheduler_pid] and len(schedulers) == 1

        assert _wait_for(replaced, timeout=30), _children_of(run.pid)
        assert set(children) - {scheduler_pid} <= set(_children_of(run.pid))
    finally:
        # And SIGTERM stops the whole group cleanly
        run.send_signal(signal.SIGTERM)
        try:
            output, _ = run.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(run.pid, signal.SIGKILL)
            output, _ = run.communicate()
    log = output.decode(errors="replace")
    assert run.returncode == 0, log
    assert "restarting scheduler" in log
    assert _children_of(run.pid) == {}


def _healthz(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False
