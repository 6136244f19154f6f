"""The done-when of the observability: a real Prometheus server, scraping the pipeline started each documented
way, holds every metric the dashboards and the alert rules query. Nothing here is written by hand: the
series are what the exporters really serve after the schedulers' ticks ran once.

The Prometheus binary is not a Python package (Debian's `prometheus` package has it; `.ci/run` unpacks it and
sets PROMETHEUS_BIN). Without it these tests skip, except under CI=true, where they fail.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from pipeline.publishing import Publisher
from pipeline.scheduling.control import apply_action
from pipeline.scheduling.jobs import scheduled_jobs
from pipeline.settings import Settings
from tests.factories import make_company
from tests.observability.artifacts import PROMETHEUS_CONFIG, all_expressions, load_yaml
from tests.observability.conftest import RABBITMQ_PROMETHEUS_URL
from tests.observability.promql import read_query
from tests.processes import free_port, livedash, running, wait_for_metrics
from tests.services import IN_CI, RABBITMQ_URL, require_rabbitmq

POOL_JOBS = ("csv-import", "import-processing", "session-processing", "batch-processing")


@pytest.fixture(scope="module")
def prometheus_bin() -> str:
    found = os.environ.get("PROMETHEUS_BIN") or shutil.which("prometheus")
    if not found:
        message = "the prometheus server is not installed (set PROMETHEUS_BIN or put it on PATH)"
        if IN_CI:
            pytest.fail(f"{message}; CI=true: .ci/run fetches it")
        pytest.skip(message)
    return found


def _queried_names() -> frozenset[str]:
    """Every metric name a dashboard or an alert rule queries, but Prometheus's own ``up``."""
    return frozenset(
        name
        for expression in all_expressions()
        for name in read_query(expression.expr).metric_names
        if name != "up"
    )


def _consecutive_free_ports(count: int) -> int:
    """The first of ``count`` consecutive free ports on 127.0.0.1 (what ``livedash run``'s pools take)."""
    for _ in range(50):
        first = free_port()
        if first + count > 65535:
            continue
        probes = []
        try:
            for port in range(first, first + count):
                probe = socket.socket()
                probes.append(probe)
                probe.bind(("127.0.0.1", port))
        except OSError:
            continue
        finally:
            for probe in probes:
                probe.close()
        return first
    raise AssertionError("no consecutive free ports")


def _prometheus_config(targets: dict[str, list[str]]) -> dict[str, Any]:
    """The repository's prometheus.yml (its jobs, paths and params) with each job's targets replaced by the
    local processes', scraped every second."""
    config: dict[str, Any] = load_yaml(PROMETHEUS_CONFIG)
    config["global"] = {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"}
    config["rule_files"] = []
    rabbitmq = RABBITMQ_PROMETHEUS_URL.removeprefix("http://").rstrip("/")
    for job in config["scrape_configs"]:
        job.pop("dns_sd_configs", None)
        name = job["job_name"]
        local = [rabbitmq] if name.startswith("rabbitmq") else targets.get(name, [])
        job["static_configs"] = [{"targets": local}] if local else []
        if name == "health":
            # Each scrape of the health API reads its sources first (HEALTH_SOURCE_TIMEOUT_MS at most).
            job["scrape_interval"] = job["scrape_timeout"] = "5s"
    return config


@contextmanager
def _prometheus(binary: str, config: dict[str, Any], tmp_path: Path) -> Iterator[str]:
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config), encoding="utf-8")
    port = free_port()
    log = tmp_path / "prometheus.log"
    argv = [
        binary,
        f"--config.file={tmp_path / 'prometheus.yml'}",
        f"--storage.tsdb.path={tmp_path / 'tsdb'}",
        f"--web.listen-address=127.0.0.1:{port}",
    ]
    with running(argv, {}, log) as server:
        url = f"http://127.0.0.1:{port}"
        wait_for_metrics(f"{url}/-/ready", "Ready", server, log)
        yield url


def _names_in(prometheus: str) -> frozenset[str]:
    response = httpx.get(f"{prometheus}/api/v1/label/__name__/values", timeout=5)
    response.raise_for_status()
    return frozenset(response.json()["data"])


def _trigger_every_tick(engine: Engine, settings: Settings) -> None:
    publisher = Publisher(settings)
    try:
        for job in scheduled_jobs(settings):
            apply_action(engine, settings, "trigger", job.id, publish=publisher, requested_by="test")
    finally:
        publisher.close()


def _missing_after_the_ticks(prometheus: str, engine: Engine, settings: Settings) -> frozenset[str]:
    """The queried names Prometheus still lacks once every tick ran (waits at most 90 s for them).

    One company exists, as in any deployment: the per-company series (its budget's share) have a label value.
    """
    wanted = _queried_names()
    with Session(engine) as db, db.begin():
        make_company(db)
    _trigger_every_tick(engine, settings)
    deadline = time.monotonic() + 90
    missing = wanted - _names_in(prometheus)
    while missing and time.monotonic() < deadline:
        time.sleep(1)
        missing = wanted - _names_in(prometheus)
    return missing


def _environment(settings: Settings, tmp_path: Path) -> dict[str, str]:
    return {
        "DATABASE_URL": settings.database_url,
        "RABBITMQ_URL": RABBITMQ_URL,
        "SECRET_KEY": secrets.token_urlsafe(48),
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"),
        "METRICS_HOST": "127.0.0.1",
        "HEALTH_HOST": "127.0.0.1",
        "WORKER_PROCESSES": "1",
        "WORKER_THREADS": "2",
        "WORKER_SHUTDOWN_GRACE_SECONDS": "5",
        "LOG_FORMAT": "json",
        "AI_PROCESSING_MODE": "batch",
        "HEALTH_SOURCE_TIMEOUT_MS": "2000",
    }


@pytest.mark.postgres
@pytest.mark.rabbitmq
def test_livedash_run_shows_every_queried_metric_in_prometheus(
    prometheus_bin: str, pg_engine: Engine, pg_settings: Settings, tmp_path: Path
) -> None:
    # Given `livedash run` (scheduler, a pool per queue on consecutive ports, health API) and a Prometheus
    # scraping it with the repository's jobs
    require_rabbitmq()
    first_pool = _consecutive_free_ports(len(POOL_JOBS))
    scheduler, health = free_port(), free_port()
    env = {
        **_environment(pg_settings, tmp_path),
        "METRICS_PORT": str(first_pool),
        "SCHEDULER_METRICS_PORT": str(scheduler),
        "HEALTH_PORT": str(health),
    }
    targets = {job: [f"127.0.0.1:{first_pool + offset}"] for offset, job in enumerate(POOL_JOBS)}
    targets |= {"scheduler": [f"127.0.0.1:{scheduler}"], "health": [f"127.0.0.1:{health}"]}
    log = tmp_path / "run.log"
    with (
        running(livedash("run"), env, log) as run,
        _prometheus(prometheus_bin, _prometheus_config(targets), tmp_path) as prometheus,
    ):
        for offset in range(len(POOL_JOBS)):
            wait_for_metrics(f"http://127.0.0.1:{first_pool + offset}/metrics", "dramatiq_", run, log)

        # When every scheduler's tick has run once
        missing = _missing_after_the_ticks(prometheus, pg_engine, pg_settings)

    # Then Prometheus has every metric the dashboards and the rules query
    assert not missing, sorted(missing)


@pytest.mark.postgres
@pytest.mark.rabbitmq
def test_the_plain_dramatiq_command_shows_every_queried_metric_in_prometheus(
    prometheus_bin: str, pg_engine: Engine, pg_settings: Settings, tmp_path: Path
) -> None:
    # Given one pool started by `dramatiq pipeline.actors -p 2` for every queue, `livedash scheduler` and
    # `livedash health`, and a Prometheus scraping them
    require_rabbitmq()
    pool, scheduler, health = free_port(), free_port(), free_port()
    env = {
        **_environment(pg_settings, tmp_path),
        "METRICS_PORT": str(pool),
        "SCHEDULER_METRICS_PORT": str(scheduler),
        "HEALTH_PORT": str(health),
    }
    targets = {
        "csv-import": [f"127.0.0.1:{pool}"],
        "scheduler": [f"127.0.0.1:{scheduler}"],
        "health": [f"127.0.0.1:{health}"],
    }
    dramatiq = [livedash()[0], "-m", "dramatiq", "pipeline.actors", "-p", "2", "-t", "2"]
    with ExitStack() as stack:
        log = tmp_path / "processes.log"
        workers = stack.enter_context(running(dramatiq, env, log))
        stack.enter_context(running(livedash("scheduler"), env, log))
        stack.enter_context(running(livedash("health"), env, log))
        prometheus = stack.enter_context(_prometheus(prometheus_bin, _prometheus_config(targets), tmp_path))
        wait_for_metrics(f"http://127.0.0.1:{pool}/metrics", "dramatiq_", workers, log)

        # When every scheduler's tick has run once
        missing = _missing_after_the_ticks(prometheus, pg_engine, pg_settings)

    # Then Prometheus has every metric the dashboards and the rules query
    assert not missing, sorted(missing)


def test_the_names_waited_for_come_from_every_source() -> None:
    # Given the names the two tests above wait for
    names = _queried_names()

    # Then they include the pipeline's, Dramatiq's and RabbitMQ's, so the tests cannot pass by asking nothing
    assert {name.split("_")[0] for name in names} == {"livedash", "dramatiq", "rabbitmq"}
    assert "livedash_publish_failures_total" in names
    assert "dramatiq_messages_total" in names
