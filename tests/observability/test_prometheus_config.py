"""Prometheus's configuration: one job per worker pool (each replica a target), the scheduler, the health API
and RabbitMQ, the rules file where compose mounts it, and queries that name only jobs that exist."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.observability.artifacts import (
    ALERT_RULES,
    DASHBOARD_PROVIDERS,
    DASHBOARDS_DIR,
    DASHBOARDS_MOUNT,
    DATASOURCES,
    PROMETHEUS_CONFIG,
    ROOT,
    RULES_MOUNT,
    all_expressions,
    load_yaml,
)
from tests.observability.promql import read_query

POOLS = ("csv-import", "import-processing", "session-processing", "batch-processing")


def _jobs() -> dict[str, Any]:
    return {job["job_name"]: job for job in load_yaml(PROMETHEUS_CONFIG)["scrape_configs"]}


def test_the_rules_file_is_read_where_compose_mounts_it() -> None:
    # Given prometheus.yml, valid YAML
    config = load_yaml(PROMETHEUS_CONFIG)

    # Then it loads exactly the alert rules file at its mount point
    assert config["rule_files"] == [RULES_MOUNT]


@pytest.mark.parametrize(("job", "port"), [*((pool, 9191) for pool in POOLS), ("scheduler", 9192)])
def test_every_replica_of_a_pool_or_of_the_scheduler_is_a_target_of_its_job(job: str, port: int) -> None:
    # Given the job named after the compose service
    config = _jobs()[job]

    # Then its targets come from the service's DNS A records on the metrics port, so `--scale` adds targets,
    # and nothing else is scraped under its name
    (discovery,) = config["dns_sd_configs"]
    assert (discovery["names"], discovery["type"], discovery["port"]) == ([job], "A", port)
    assert "static_configs" not in config


def test_the_health_api_and_rabbitmq_are_scraped() -> None:
    # Given the jobs
    jobs = _jobs()

    # Then the health API's /metrics, RabbitMQ's aggregated /metrics and its per-queue families are scraped
    assert jobs["health"]["static_configs"][0]["targets"] == ["health:3000"]
    assert jobs["health"].get("metrics_path", "/metrics") == "/metrics"
    assert jobs["rabbitmq"]["static_configs"][0]["targets"] == ["rabbitmq:15692"]
    assert jobs["rabbitmq"].get("metrics_path", "/metrics") == "/metrics"
    detailed = jobs["rabbitmq-detailed"]
    assert detailed["static_configs"][0]["targets"] == ["rabbitmq:15692"]
    assert detailed["metrics_path"] == "/metrics/detailed"
    assert detailed["params"] == {"family": ["queue_coarse_metrics", "queue_consumer_count"]}


def test_every_job_a_query_names_is_scraped() -> None:
    # Given the scrape jobs
    jobs = set(_jobs())

    # When the job matchers of every dashboard and alert query are read (a regex counts when it is a plain
    # alternation of names; Grafana variables are left to the variable's own query)
    unknown = []
    for expression in all_expressions():
        for matcher in read_query(expression.expr).matchers:
            if matcher.label != "job" or "$" in matcher.value:
                continue
            if matcher.op in {"=", "!="}:
                names = [matcher.value]
            elif re.fullmatch(r"[\w-]+(\|[\w-]+)*", matcher.value):
                names = matcher.value.split("|")
            else:
                continue
            unknown += [f"{expression.where}: job {name!r}" for name in names if name not in jobs]

    # Then each job exists (a misspelt job makes a panel empty and an alert silent)
    assert not unknown, unknown


def _compose_files() -> list[Path]:
    candidates = [*ROOT.glob("compose/*.y*ml"), *ROOT.glob("*compose*.y*ml")]
    return sorted(path for path in candidates if "services" in (load_yaml(path) or {}))


def _mounts(service: Any, base: Path) -> list[tuple[Path, str]]:
    """(host path, container path) of every bind mount of a compose service."""
    mounts = []
    for volume in service.get("volumes", []):
        if isinstance(volume, str):
            parts = volume.split(":")
            if len(parts) < 2 or not parts[0].startswith((".", "/")):
                continue
            source, target = parts[0], parts[1]
        elif volume.get("type") == "bind":
            source, target = volume["source"], volume["target"]
        else:
            continue
        mounts.append(((base / source).resolve(), target))
    return mounts


def _host_path(mounts: list[tuple[Path, str]], container_path: str) -> Path | None:
    """Which host file a container sees at ``container_path`` (mounted itself, or inside a mounted folder)."""
    for source, target in mounts:
        if container_path == target:
            return source
        if container_path.startswith(target.rstrip("/") + "/"):
            return source / container_path[len(target.rstrip("/")) + 1 :]
    return None


@pytest.mark.parametrize(
    ("container_path", "host_path"),
    [
        (RULES_MOUNT, ALERT_RULES),
        ("/etc/prometheus/prometheus.yml", PROMETHEUS_CONFIG),
        (DASHBOARDS_MOUNT, DASHBOARDS_DIR),
        ("/etc/grafana/provisioning/datasources/prometheus.yml", DATASOURCES),
        ("/etc/grafana/provisioning/dashboards/dashboards.yml", DASHBOARD_PROVIDERS),
    ],
)
def test_compose_mounts_the_files_where_prometheus_and_grafana_read_them(
    container_path: str, host_path: Path
) -> None:
    # Given the compose files of the project
    files = _compose_files()
    if not files:
        pytest.skip("no compose file in this tree")

    # When the bind mounts of every service are resolved
    seen = set()
    for file in files:
        for service in load_yaml(file)["services"].values():
            found = _host_path(_mounts(service, file.parent), container_path)
            if found is not None:
                seen.add(found)

    # Then some service sees our file at that path, and none sees another file there
    assert seen == {host_path.resolve()}, f"{container_path}: {seen}"
