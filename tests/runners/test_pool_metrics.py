"""Every way of starting a worker pool exports every process's metrics on one port, logs in LOG_FORMAT with
secrets masked, and forgets the files of earlier runs: `dramatiq pipeline.actors` (any -p/-t, what a KEDA pod
may run) and `livedash worker`. Each form is started as a real process and scraped."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.pool_metrics import remove_stale_runs
from tests.processes import free_port, livedash, running, wait_for_metrics
from tests.services import RABBITMQ_URL, require_rabbitmq

#: The password of RABBITMQ_URL in the test environment, which no log line may show.
_PASSWORD = re.compile(r"://[^:/@]+:(?P<password>[^@]+)@")

DRAMATIQ = [sys.executable, "-m", "dramatiq", "pipeline.actors"]
FORMS = {
    "dramatiq -p 2 -t 1": [*DRAMATIQ, "--queues", "session-processing", "-p", "2", "-t", "1"],
    "dramatiq -p 1 -t 3": [*DRAMATIQ, "--queues", "csv-import", "--processes", "1", "--threads", "3"],
    "livedash worker -p 2": livedash("worker", "--scheduler", "batch-processing-check", "-p", "2", "-t", "1"),
}
PROCESSES = {"dramatiq -p 2 -t 1": 2, "dramatiq -p 1 -t 3": 1, "livedash worker -p 2": 2}


def _stale_run(base: Path) -> Path:
    """A run directory of a pool whose main process is gone, holding a counter of that run."""
    stale = base / "run-999999999-0123456789ab"
    stale.mkdir(parents=True)
    subprocess.run(
        [sys.executable, "-c", "from pipeline.metrics import CSV_FETCHES; CSV_FETCHES.labels('stale').inc()"],
        env={**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(stale)},
        check=True,
    )
    return stale


@pytest.mark.rabbitmq
@pytest.mark.parametrize("form", FORMS)
def test_every_way_of_starting_a_pool_exports_and_logs_like_the_others(form: str, tmp_path: Path) -> None:
    # Given a metrics base directory holding an earlier run's files, JSON logs, a password in the broker URL
    require_rabbitmq()
    base = tmp_path / "metrics"
    stale = _stale_run(base)
    port = free_port()
    log = tmp_path / "pool.log"
    env = {
        "RABBITMQ_URL": RABBITMQ_URL,
        "PROMETHEUS_MULTIPROC_DIR": str(base),
        "METRICS_HOST": "127.0.0.1",
        "METRICS_PORT": str(port),
        "LOG_FORMAT": "json",
        "WORKER_SHUTDOWN_GRACE_SECONDS": "5",
    }

    # When the pool is started that way and scraped once it serves Dramatiq's metrics
    with running(FORMS[form], env, log) as pool:
        metrics = wait_for_metrics(f"http://127.0.0.1:{port}/metrics", "dramatiq_messages_total", pool, log)

    # Then one port serves the pipeline's counters (at zero, before any work) and Dramatiq's, from every
    # worker process, and nothing of the earlier run
    assert 'livedash_publish_failures_total{queue="csv-import"} 0.0' in metrics
    assert 'livedash_openai_unknown_price_total{model="gpt-4o"} 0.0' in metrics
    assert 'livedash_stage_items_total{outcome="failed",stage="session-processing"} 0.0' in metrics
    assert "dramatiq_message_errors_total{" in metrics
    pids = set(re.findall(r'dramatiq_delayed_messages_inprogress\{[^}]*pid="(\d+)"', metrics))
    assert len(pids) == PROCESSES[form], metrics
    assert 'outcome="stale"' not in metrics
    assert not stale.exists()
    # And every worker process logged in JSON, with the broker's password masked
    output = log.read_text(errors="replace")
    entries = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    started = [entry for entry in entries if entry["message"].startswith("worker process ")]
    assert len(started) == PROCESSES[form], output
    assert all(":***@" in entry["message"] for entry in started), started
    password = _PASSWORD.search(RABBITMQ_URL)
    assert password is not None
    assert f":{password['password']}@" not in output


def test_only_the_runs_of_a_main_process_that_is_gone_are_stale(tmp_path: Path) -> None:
    # Given the directories of a finished run, of a live process's run, of another run of our own parent
    # (a container restarted as the same pid), and this run's
    gone = tmp_path / "run-999999999-aaaaaaaaaaaa"
    live = tmp_path / f"run-{os.getpid()}-bbbbbbbbbbbb"
    restarted = tmp_path / f"run-{os.getppid()}-cccccccccccc"
    current = tmp_path / f"run-{os.getppid()}-dddddddddddd"
    other = tmp_path / "not-a-run"
    for directory in (gone, live, restarted, current, other):
        directory.mkdir()

    # When the stale runs are removed
    removed = remove_stale_runs(tmp_path, current)

    # Then the finished one and our parent's earlier one are gone; the others stay
    assert sorted(removed) == sorted([gone, restarted])
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted(
        path.name for path in (live, current, other)
    )
