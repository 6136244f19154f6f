"""The health aggregator's HTTP sources: metrics endpoints, Prometheus, RabbitMQ's management API.

Every read is one blocking call that either returns what it found or raises with a message an operator can
act on; the aggregator runs it in a thread under ``HEALTH_SOURCE_TIMEOUT_MS`` and turns a failure into a
reason. The HTTP client's own timeouts are half as long again, so the aggregator's deadline is the one that
answers, and an abandoned read still ends soon after it; when the client's fires first all the same (the
aggregator's event loop running late), the aggregator words it alike: one wording for a source that hangs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import httpx
from prometheus_client.parser import text_string_to_metric_families

from pipeline import __version__
from pipeline.health.targets import strip_userinfo
from pipeline.settings import Settings, rabbitmq_vhost

__all__ = [
    "LAST_SUCCESS_METRIC",
    "STAGE_LAG_METRIC",
    "HttpSources",
    "MetricsFigures",
    "QueueStats",
    "SourceError",
    "rabbitmq_vhost",
]

STAGE_LAG_METRIC = "livedash_stage_lag_seconds"
LAST_SUCCESS_METRIC = "livedash_scheduler_last_success_timestamp_seconds"

#: The figures asked of Prometheus, each with the label its answer is keyed by.
PROMETHEUS_QUERIES = {
    "answering": ("sum by (job) (up)", "job"),
    "targets": ("count by (job) (up)", "job"),
    "lag": (f"max by (stage) ({STAGE_LAG_METRIC})", "stage"),
    "last_success": (f"max by (scheduler) ({LAST_SUCCESS_METRIC})", "scheduler"),
}


class SourceError(Exception):
    """A source answered, but not with something usable (an HTTP error, a body that does not parse)."""


@dataclass(frozen=True)
class QueueStats:
    """One RabbitMQ queue as its management API last saw it (it refreshes every few seconds)."""

    ready: int
    unacked: int
    consumers: int


@dataclass(frozen=True)
class MetricsFigures:
    """What a metrics endpoint (or Prometheus) says.

    ``lag_seconds`` is keyed by ``stage`` label, ``last_success`` (Unix time) by ``scheduler`` label.
    ``targets`` is only filled from Prometheus: per scrape job, how many of its targets answered and how many
    there are.
    """

    lag_seconds: Mapping[str, float] = field(default_factory=dict)
    last_success: Mapping[str, float] = field(default_factory=dict)
    targets: Mapping[str, tuple[int, int]] = field(default_factory=dict)


def parse_exposition(text: str) -> MetricsFigures:
    """The figures the aggregator uses, from Prometheus text exposition (raises :class:`SourceError`)."""
    lag: dict[str, float] = {}
    last_success: dict[str, float] = {}
    try:
        for family in text_string_to_metric_families(text):
            if family.name == STAGE_LAG_METRIC:
                figures, label = lag, "stage"
            elif family.name == LAST_SUCCESS_METRIC:
                figures, label = last_success, "scheduler"
            else:
                continue
            for sample in family.samples:
                key = sample.labels.get(label)
                if key is not None and sample.name == family.name:
                    figures[key] = max(figures.get(key, float("-inf")), float(sample.value))
    except ValueError as exc:
        raise SourceError(f"not Prometheus text exposition: {exc}") from exc
    return MetricsFigures(lag, last_success)


def _check(response: httpx.Response, what: str) -> None:
    if response.status_code != 200:
        hint = " (check the credentials in the URL)" if response.status_code in (401, 403) else ""
        raise SourceError(f"{what} answered HTTP {response.status_code}{hint}")


#: The HTTP client's timeout, as a multiple of ``HEALTH_SOURCE_TIMEOUT_MS`` (see the module's docstring).
CLIENT_TIMEOUT_FACTOR = 1.5


@dataclass(frozen=True)
class _Management:
    url: str
    auth: tuple[str, str] | None


def _management(url: str) -> _Management:
    parts = urlsplit(url)
    auth = None
    if parts.username is not None:
        auth = (unquote(parts.username), unquote(parts.password or ""))
    return _Management(strip_userinfo(url).rstrip("/"), auth)


class HttpSources:
    """The real HTTP reads, sharing one connection pool. Thread-safe; :meth:`close` when done."""

    def __init__(self, settings: Settings) -> None:
        self.timeout_seconds = settings.health_source_timeout_ms / 1000
        self.client = httpx.Client(
            timeout=httpx.Timeout(self.timeout_seconds * CLIENT_TIMEOUT_FACTOR),
            headers={"User-Agent": f"livedash-health/{__version__}"},
            follow_redirects=False,
        )
        self.prometheus_url = settings.prometheus_url.rstrip("/") if settings.prometheus_url else None
        # One management API per cluster node (any node answers for the whole cluster), tried in order.
        self.managements = [_management(url) for url in settings.rabbitmq_management_urls]
        self.vhost = settings.rabbitmq_vhost

    def close(self) -> None:
        self.client.close()

    def scrape(self, url: str) -> MetricsFigures:
        """GET one metrics endpoint and pick out stage lag and last successes."""
        response = self.client.get(url, headers={"Accept": "text/plain"})
        _check(response, strip_userinfo(url))
        return parse_exposition(response.text)

    def _query(self, promql: str, label: str) -> dict[str, float]:
        assert self.prometheus_url is not None
        response = self.client.get(f"{self.prometheus_url}/api/v1/query", params={"query": promql})
        _check(response, "Prometheus")
        try:
            body: Any = response.json()
            if body.get("status") != "success":
                raise SourceError(f"Prometheus refused {promql!r}: {body.get('error', body)}")
            result = body["data"]["result"]
            return {
                item["metric"][label]: float(item["value"][1]) for item in result if label in item["metric"]
            }
        except (ValueError, KeyError, TypeError, AttributeError, IndexError) as exc:
            raise SourceError(f"unexpected answer from Prometheus to {promql!r}: {exc!r}") from exc

    def prometheus(self) -> MetricsFigures:
        """The same figures from Prometheus's HTTP API (``PROMETHEUS_URL``), plus which targets are up."""
        answers = {name: self._query(promql, label) for name, (promql, label) in PROMETHEUS_QUERIES.items()}
        targets = {
            job: (int(answers["answering"].get(job, 0)), int(total))
            for job, total in answers["targets"].items()
        }
        return MetricsFigures(answers["lag"], answers["last_success"], targets)

    def _get_queues(self) -> httpx.Response:
        """The vhost's queues from the first node that answers; a node down or failing passes to the next."""
        failure: Exception | None = None
        for management in self.managements:
            try:
                response = self.client.get(
                    f"{management.url}/api/queues/{quote(self.vhost, safe='')}",
                    params={"columns": "name,messages_ready,messages_unacknowledged,consumers"},
                    auth=management.auth,
                )
            except httpx.TransportError as exc:
                failure = exc
                continue
            if response.status_code < 500 or management is self.managements[-1]:
                return response
        assert failure is not None
        raise failure

    def queues(self, names: Iterable[str]) -> dict[str, QueueStats]:
        """Ready, unacknowledged and consumers of each named queue that exists (absent: not declared)."""
        wanted = set(names)
        response = self._get_queues()
        if response.status_code == 404:
            raise SourceError(f"RabbitMQ has no virtual host {self.vhost!r}")
        _check(response, "RabbitMQ's management API")
        try:
            rows: Any = response.json()
            return {
                row["name"]: QueueStats(
                    ready=int(row.get("messages_ready") or 0),
                    unacked=int(row.get("messages_unacknowledged") or 0),
                    consumers=int(row.get("consumers") or 0),
                )
                for row in rows
                if row["name"] in wanted
            }
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise SourceError(f"unexpected answer from RabbitMQ's management API: {exc!r}") from exc
