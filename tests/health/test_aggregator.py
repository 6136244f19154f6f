"""The aggregator over its sources: timeouts, failures as reasons, metrics scraped or asked of Prometheus."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import httpx
import pytest
from prometheus_client import REGISTRY, CollectorRegistry, Gauge, generate_latest
from sqlalchemy import Engine

from pipeline.health.aggregator import HealthAggregator, HealthReport, MetricsRead, build_aggregator
from pipeline.health.rules import EndpointState, Status
from pipeline.health.sources import (
    HttpSources,
    MetricsFigures,
    QueueStats,
    SourceError,
    parse_exposition,
    rabbitmq_vhost,
)
from pipeline.settings import Settings
from tests.health.fakes import NOW, FakeSources
from tests.health.servers import Answer, serving

#: The deadline of the tests of the deadline: a read that sleeps or stalls for longer is abandoned at it.
SHORT_DEADLINE_MS = 300


def short_deadline(settings: Settings) -> Settings:
    return settings.model_copy(update={"health_source_timeout_ms": SHORT_DEADLINE_MS})


def evaluate(aggregator: HealthAggregator) -> HealthReport:
    try:
        return asyncio.run(aggregator.evaluate())
    finally:
        aggregator.close()


def by_id(report: HealthReport, scheduler_id: str) -> tuple[Status, tuple[str, ...]]:
    for scheduler in report.schedulers:
        if scheduler.job.id == scheduler_id:
            return scheduler.status, scheduler.reasons
    raise AssertionError(f"no scheduler {scheduler_id}")


def source_errors(source: str) -> float:
    return REGISTRY.get_sample_value("livedash_health_source_errors_total", {"source": source}) or 0.0


def exposition(lag: dict[str, float], last_success: dict[str, float]) -> str:
    """What a worker pool's metrics endpoint serves, made by prometheus_client itself."""
    registry = CollectorRegistry()
    lag_gauge = Gauge("livedash_stage_lag_seconds", "lag", ["stage"], registry=registry)
    success_gauge = Gauge(
        "livedash_scheduler_last_success_timestamp_seconds", "last", ["scheduler"], registry=registry
    )
    Gauge("dramatiq_workers", "other", registry=registry).set(2)
    for stage, value in lag.items():
        lag_gauge.labels(stage).set(value)
    for scheduler, value in last_success.items():
        success_gauge.labels(scheduler).set(value)
    return generate_latest(registry).decode()


def test_healthy_sources_make_a_healthy_report(sources: FakeSources) -> None:
    # Given sources that say every scheduler ran a minute ago and has consumers
    # When the aggregator evaluates
    report = evaluate(sources.aggregator())

    # Then every scheduler runs, and the report is healthy
    assert report.healthy
    assert (len(report.schedulers), report.running, report.errors) == (5, 5, 0)
    assert report.timestamp == NOW
    assert report.source_errors == {}


def test_a_source_that_raises_becomes_a_reason_and_is_counted(sources: FakeSources) -> None:
    # Given RabbitMQ's management API fails
    sources.failures["rabbitmq"] = SourceError("RabbitMQ's management API answered HTTP 503")
    before = source_errors("rabbitmq")

    # When the aggregator evaluates
    report = evaluate(sources.aggregator())

    # Then no exception: each scheduler carries the reason, the source error is counted
    status, reasons = by_id(report, "csv-import")
    assert status is Status.RUNNING
    assert reasons == (
        "RabbitMQ management API unreadable, consumers unknown: "
        "RabbitMQ: RabbitMQ's management API answered HTTP 503",
    )
    assert report.source_errors == {"rabbitmq": "RabbitMQ: RabbitMQ's management API answered HTTP 503"}
    assert source_errors("rabbitmq") == before + 1


def test_a_source_that_hangs_is_abandoned_at_the_timeout(sources: FakeSources, settings: Settings) -> None:
    # Given a database read that takes 5 s, and HEALTH_SOURCE_TIMEOUT_MS=300
    def slow_database(_now: object) -> list[object]:
        time.sleep(5)
        return []

    aggregator = sources.aggregator(settings=short_deadline(settings))
    aggregator.overviews = slow_database  # type: ignore[assignment]
    before = source_errors("database")

    # When the aggregator evaluates
    started = time.monotonic()
    report = evaluate(aggregator)
    elapsed = time.monotonic() - started

    # Then it answers after the timeout, not after the read: every scheduler is in ERROR with the reason
    assert elapsed < 2
    assert not report.healthy
    assert by_id(report, "csv-import") == (
        Status.ERROR,
        ("database unreachable: database: no answer within 300 ms",),
    )
    assert source_errors("database") == before + 1


def test_a_metrics_endpoint_that_stalls_over_http_does_not_hang_the_evaluation(
    sources: FakeSources, settings: Settings
) -> None:
    # Given a real HTTP metrics endpoint that accepts the connection and never answers
    with serving(lambda _path, _query: None) as server:
        url = server.url("/metrics")
        http = HttpSources(short_deadline(settings))
        aggregator = sources.aggregator(
            metrics=[MetricsRead("metrics", url, lambda: http.scrape(url), ("csv-import",))],
            targets={"csv-import": (url,)},
            settings=short_deadline(settings),
        )

        # When the aggregator evaluates
        started = time.monotonic()
        report = evaluate(aggregator)
        elapsed = time.monotonic() - started
        http.close()

    # Then it answers within about the timeout, the worker is alive (consumers) and the reason says so
    assert elapsed < 2
    status, reasons = by_id(report, "csv-import")
    assert status is Status.RUNNING
    assert len(reasons) == 1
    assert reasons[0].startswith(f"metrics endpoint unreachable: {url}: ")
    assert reasons[0].endswith("1 consumer(s) on csv-import: the worker is alive")


def test_an_http_timeout_that_ends_the_read_before_the_deadline_is_worded_as_the_deadline(
    sources: FakeSources, settings: Settings
) -> None:
    # Given a metrics read ended by the HTTP client's own timeout, as when the aggregator's event loop runs
    # late (a loaded machine) and sees the client's timeout before its own deadline
    def timed_out() -> MetricsFigures:
        raise httpx.ReadTimeout("timed out")

    url = "http://127.0.0.1:9/metrics"
    aggregator = sources.aggregator(
        metrics=[MetricsRead("metrics", url, timed_out, ("csv-import",))], targets={"csv-import": (url,)}
    )

    # When the aggregator evaluates
    report = evaluate(aggregator)

    # Then the reason is the one of a source that does not answer in time, not the client's exception
    csv_import = next(s for s in report.schedulers if s.job.id == "csv-import")
    deadline = settings.health_source_timeout_ms
    assert csv_import.metrics_endpoint == EndpointState(0, 1, (f"{url}: no answer within {deadline} ms",))


def test_the_real_sources_over_http(settings: Settings, engine: Engine) -> None:
    # Given a worker pool's metrics endpoint, a stalled one, and a RabbitMQ management API, all real HTTP
    queues = [
        {"name": "import-processing", "messages_ready": 0, "messages_unacknowledged": 1, "consumers": 2},
        {"name": "import-processing.XQ", "messages_ready": 4, "messages_unacknowledged": 0, "consumers": 0},
        {"name": "csv-import", "messages_ready": 2, "consumers": 0},
        {"name": "other-queue", "messages_ready": 99, "messages_unacknowledged": 0, "consumers": 0},
    ]
    body = exposition({"import-processing": 12.5}, {"import-processing": time.time() - 30})

    def route(path: str, query: dict[str, str]) -> Answer | None:
        if path == "/metrics":
            return 200, "text/plain; version=0.0.4", body
        if path == "/stalled/metrics":
            return None
        if path == "/api/queues/%2F" and query.get("columns"):
            return 200, "application/json", json.dumps(queues)
        return 404, "text/plain", "no"

    with serving(route) as server:
        good, stalled = server.url("/metrics"), server.url("/stalled/metrics")
        configured = settings.model_copy(
            update={
                "health_metrics_targets": f"import-processing={good},import-processing={stalled}",
                "rabbitmq_management_url": server.url("").replace("http://", "http://guest:secret@"),
                "rabbitmq_url": "amqp://guest:guest@127.0.0.1:5672/%2F",
                # Long enough for the real reads that answer (SQLite, HTTP) on a loaded machine.
                "health_source_timeout_ms": 2_000,
            }
        )

        # When the aggregator over the real sources evaluates
        report = evaluate(build_aggregator(configured, engine))
        seen = list(server.seen)

    # Then import processing shows its lag, consumers and one endpoint of two unreachable
    processing = next(s for s in report.schedulers if s.job.id == "import-processing")
    assert processing.lag_seconds == 12.5
    assert processing.queue is not None
    assert (processing.queue.unacked, processing.queue.consumers, processing.queue.dead_letters) == (1, 2, 4)
    assert processing.metrics_endpoint == EndpointState(1, 2, (f"{stalled}: no answer within 2000 ms",))
    # And its last success comes from the metrics (the database has no run yet)
    assert processing.last_success is not None
    assert processing.status is Status.RUNNING
    # And csv-import, which never ran, has two messages and no consumer: its worker is down
    assert by_id(report, "csv-import")[0] is Status.ERROR
    # And the dead letters are exported, RabbitMQ was asked with the URL's credentials
    dead_letters = {"vhost": "/", "queue": "import-processing"}
    assert REGISTRY.get_sample_value("livedash_dead_letters", dead_letters) == 4
    assert ("/api/queues/%2F", {"columns": "name,messages_ready,messages_unacknowledged,consumers"},
            "Basic Z3Vlc3Q6c2VjcmV0") in seen  # fmt: skip


def test_metrics_are_asked_of_prometheus_when_it_is_configured(settings: Settings, engine: Engine) -> None:
    # Given a Prometheus that knows two csv-import targets (one up), the scheduler (down) and the figures
    answers = {
        "sum by (job) (up)": [({"job": "csv-import"}, "1"), ({"job": "scheduler"}, "0")],
        "count by (job) (up)": [({"job": "csv-import"}, "2"), ({"job": "scheduler"}, "1")],
        "max by (stage) (livedash_stage_lag_seconds)": [({"stage": "session-processing"}, "7200")],
        "max by (scheduler) (livedash_scheduler_last_success_timestamp_seconds)": [],
    }

    def route(path: str, query: dict[str, str]) -> Answer | None:
        if path == "/prom/api/v1/query" and query["query"] in answers:
            result = [
                {"metric": metric, "value": [NOW.timestamp(), value]}
                for metric, value in answers[query["query"]]
            ]
            body = {"status": "success", "data": {"resultType": "vector", "result": result}}
            return 200, "application/json", json.dumps(body)
        if path.startswith("/api/queues/"):
            return 200, "application/json", "[]"
        return 400, "application/json", json.dumps({"status": "error", "error": "bad query"})

    with serving(route) as server:
        configured = settings.model_copy(
            update={"prometheus_url": server.url("/prom/"), "rabbitmq_management_url": server.url("")}
        )

        # When the aggregator evaluates
        report = evaluate(build_aggregator(configured, engine))

    # Then the endpoint states come from Prometheus's `up`, and the lag from its query
    csv = next(s for s in report.schedulers if s.job.id == "csv-import")
    assert csv.metrics_endpoint == EndpointState(1, 2, ("Prometheus sees 1 of 2 csv-import target(s) down",))
    assert report.components["scheduler"] == EndpointState(
        0, 1, ("Prometheus sees 1 of 1 scheduler target(s) down",)
    )
    sessions = next(s for s in report.schedulers if s.job.id == "session-processing")
    assert sessions.lag_seconds == 7200
    assert report.source_errors == {}


def test_an_unreachable_prometheus_is_a_reason(settings: Settings, sources: FakeSources) -> None:
    # Given a Prometheus read that fails
    def down() -> MetricsFigures:
        raise SourceError("Prometheus answered HTTP 502")

    before = source_errors("prometheus")

    # When the aggregator evaluates
    report = evaluate(
        sources.aggregator(metrics=[MetricsRead("prometheus", "Prometheus", down)], prometheus_mode=True)
    )

    # Then each scheduler notes it, the schedulers still run, the error is counted
    status, reasons = by_id(report, "batch-processing")
    assert status is Status.RUNNING
    assert reasons == ("metrics unreadable: Prometheus: Prometheus answered HTTP 502",)
    assert report.source_errors == {"prometheus": "Prometheus: Prometheus answered HTTP 502"}
    assert source_errors("prometheus") == before + 1


def test_a_scheduler_without_its_own_target_uses_the_pool_of_its_queue(sources: FakeSources) -> None:
    # Given only batch-processing's pool is configured; batch-processing-check shares its queue
    def scrape() -> MetricsFigures:
        return MetricsFigures(last_success={"batch-processing-check": NOW.timestamp()})

    url = "http://batch:9191/metrics"
    aggregator = sources.aggregator(
        metrics=[MetricsRead("metrics", url, scrape, ("batch-processing",))],
        targets={"batch-processing": (url,)},
    )

    # When the aggregator evaluates
    report = evaluate(aggregator)

    # Then both batch schedulers see that pool's endpoint up, and the check's last success from it
    check = next(s for s in report.schedulers if s.job.id == "batch-processing-check")
    assert check.metrics_endpoint == EndpointState(1, 1)
    assert check.last_success == NOW
    csv = next(s for s in report.schedulers if s.job.id == "csv-import")
    assert csv.metrics_endpoint is None


def test_every_evaluation_sets_the_health_gauges(sources: FakeSources) -> None:
    # Given csv-import's worker died, and import-processing has 3 dead letters
    sources.queues["csv-import"] = QueueStats(ready=0, unacked=0, consumers=0)
    sources.queues["import-processing.XQ"] = QueueStats(ready=3, unacked=0, consumers=0)

    # When the aggregator evaluates
    evaluate(sources.aggregator())

    # Then the gauges say so
    assert REGISTRY.get_sample_value("livedash_scheduler_healthy", {"scheduler": "csv-import"}) == 0
    assert REGISTRY.get_sample_value("livedash_scheduler_healthy", {"scheduler": "import-processing"}) == 1
    dead_letters = {"vhost": "/", "queue": "import-processing"}
    assert REGISTRY.get_sample_value("livedash_dead_letters", dead_letters) == 3
    assert REGISTRY.get_sample_value("livedash_dead_letters", {"vhost": "/", "queue": "csv-import"}) == 0


def test_the_exposition_parser_takes_the_largest_sample_per_label() -> None:
    # Given an exposition with the figures and unrelated families
    text = exposition({"import-processing": 4.0}, {"csv-import": 1700000000.0}) + "\n"

    # When it is parsed
    figures = parse_exposition(text)

    # Then only the used figures are kept
    assert figures.lag_seconds == {"import-processing": 4.0}
    assert figures.last_success == {"csv-import": 1700000000.0}


def test_a_body_that_is_not_an_exposition_is_a_source_error() -> None:
    with pytest.raises(SourceError, match="not Prometheus text exposition"):
        parse_exposition("<html>login</html>\n")


@pytest.mark.parametrize(
    ("url", "vhost"),
    [
        ("amqp://guest:guest@127.0.0.1:5672/%2F", "/"),
        ("amqp://guest:guest@127.0.0.1:5672", "/"),
        ("amqp://u:p@rabbit/livedash", "livedash"),
    ],
)
def test_the_vhost_comes_from_the_amqp_url(url: str, vhost: str) -> None:
    assert rabbitmq_vhost(url) == vhost


def test_a_report_names_no_source_errors_when_none_failed(sources: FakeSources, tmp_path: Path) -> None:
    # Given a queue that is not declared yet
    del sources.queues["session-processing"]

    # When the aggregator evaluates
    report = evaluate(sources.aggregator())

    # Then the scheduler notes it, and no source failed
    status, reasons = by_id(report, "session-processing")
    assert status is Status.ERROR  # it ran before: a queue without consumers is a dead worker
    assert "queue session-processing is not declared yet (no worker or producer has used it)" in reasons
    assert report.source_errors == {}
