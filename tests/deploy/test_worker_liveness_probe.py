"""deploy/base/probes/worker_liveness.py, the worker pools' liveness probe, run as Kubernetes runs it: a
plain `python` process against the pool's metrics endpoint (here a local HTTP server serving a Prometheus
exposition), exit status 0 for alive."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.deploy.artifacts import LIVENESS_PROBE


def exposition(in_progress: float, finished: float) -> str:
    """What Dramatiq's Prometheus middleware serves, in the shape of a two-actor pool."""
    return (
        "# HELP dramatiq_messages_inprogress The number of messages in progress.\n"
        "# TYPE dramatiq_messages_inprogress gauge\n"
        f'dramatiq_messages_inprogress{{actor_name="a",queue_name="q"}} {in_progress}\n'
        'dramatiq_messages_inprogress{actor_name="b",queue_name="q"} 0.0\n'
        "# TYPE dramatiq_messages_total counter\n"
        f'dramatiq_messages_total{{actor_name="a",queue_name="q"}} {finished}\n'
        'dramatiq_messages_total{actor_name="b",queue_name="q"} 2.0\n'
        'dramatiq_delayed_messages_inprogress{actor_name="a",queue_name="q"} 7.0\n'
    )


class Pool:
    """A fake pool's metrics endpoint whose exposition the test changes between probes."""

    def __init__(self) -> None:
        self.body = exposition(0, 0)
        pool = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = pool.body.encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/metrics"


@pytest.fixture
def pool() -> Iterator[Pool]:
    pool = Pool()
    thread = threading.Thread(target=pool.server.serve_forever, daemon=True)
    thread.start()
    yield pool
    pool.server.shutdown()
    pool.server.server_close()


def probe(url: str, state: Path, stuck_after: float) -> subprocess.CompletedProcess[str]:
    env = {
        "LIVENESS_URL": url,
        "LIVENESS_STATE_FILE": str(state),
        "LIVENESS_STUCK_AFTER_SECONDS": str(stuck_after),
    }
    return subprocess.run(
        [sys.executable, str(LIVENESS_PROBE)],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_a_pool_that_finishes_messages_is_alive(pool: Pool, tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    # Given a busy pool that keeps finishing messages, probed with no tolerance at all
    for finished in (10, 11, 12):
        pool.body = exposition(in_progress=3, finished=finished)
        # Then every probe passes
        assert probe(pool.url, state, stuck_after=0).returncode == 0


def test_an_idle_pool_is_alive_however_long_it_waits(pool: Pool, tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    # Given a pool with nothing in progress (delayed retries waiting do not count) and nothing finishing
    pool.body = exposition(in_progress=0, finished=5)
    for _ in range(3):
        assert probe(pool.url, state, stuck_after=0).returncode == 0


def test_messages_in_progress_with_none_finishing_past_the_limit_is_a_stuck_consumer(
    pool: Pool, tmp_path: Path
) -> None:
    state = tmp_path / "state.json"
    # Given a pool that had a message in progress at the last probe
    pool.body = exposition(in_progress=1, finished=5)
    assert probe(pool.url, state, stuck_after=0).returncode == 0

    # When the next probe sees it still in progress and nothing finished, past the limit
    result = probe(pool.url, state, stuck_after=0)

    # Then the pod is reported dead, with the reason
    assert result.returncode == 1
    assert "messages in progress: 1, none finished" in result.stderr


def test_a_long_message_within_the_limit_is_not_stuck(pool: Pool, tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    # Given one long message in progress, probed twice well within the limit (660 s in the Deployments)
    pool.body = exposition(in_progress=1, finished=5)
    assert probe(pool.url, state, stuck_after=660).returncode == 0
    assert probe(pool.url, state, stuck_after=660).returncode == 0


def test_metrics_that_do_not_answer_fail_the_probe(tmp_path: Path) -> None:
    # Given a port where nothing listens
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    url = f"http://127.0.0.1:{server.server_address[1]}/metrics"
    server.server_close()

    result = probe(url, tmp_path / "state.json", stuck_after=660)

    assert result.returncode == 1
    assert "do not answer" in result.stderr
