"""Fixtures of the observability tests: what RabbitMQ's Prometheus plugin serves, read once per session."""

from __future__ import annotations

import os

import httpx
import pytest

from tests.observability.artifacts import PROMETHEUS_CONFIG, load_yaml
from tests.observability.exposition import exposition_names, rabbitmq_scrape_urls
from tests.services import service_unavailable

#: RabbitMQ's Prometheus plugin on the test machine (`.ci/run` enables it).
RABBITMQ_PROMETHEUS_URL = os.environ.get("TEST_RABBITMQ_PROMETHEUS_URL", "http://127.0.0.1:15692")


@pytest.fixture(scope="session")
def rabbitmq_names_by_job() -> dict[str, frozenset[str]]:
    """Metric names of a live scrape of every RabbitMQ job of prometheus.yml (its own path and params)."""
    names = {}
    for job, url in rabbitmq_scrape_urls(load_yaml(PROMETHEUS_CONFIG), RABBITMQ_PROMETHEUS_URL).items():
        try:
            response = httpx.get(url, timeout=10)
            response.raise_for_status()
        except httpx.HTTPError as exc:
            service_unavailable("RabbitMQ's Prometheus plugin", f"{url}: {exc}")
        names[job] = exposition_names(response.text)
    return names
