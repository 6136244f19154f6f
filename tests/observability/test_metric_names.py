"""Every metric a dashboard or an alert queries exists: declared by the pipeline or by Dramatiq's middleware,
or served by RabbitMQ's Prometheus plugin at the paths Prometheus scrapes. A misspelt name would otherwise
draw an empty panel or an alert that can never fire."""

from __future__ import annotations

from collections.abc import Iterable

import pytest

from tests.observability.artifacts import Expression, alert_rules, all_expressions, dashboard_expressions
from tests.observability.exposition import (
    dramatiq_metric_names,
    livedash_metric_families,
    livedash_metric_names,
)
from tests.observability.promql import read_query

#: Prefixes of the metric names the dashboards and alerts may use, and where each kind is defined.
SOURCES = ("livedash_", "dramatiq_", "rabbitmq_")
#: Prometheus's own per-target series.
BUILTIN = frozenset({"up"})


def _uses(expressions: Iterable[Expression], prefix: str) -> list[tuple[str, str]]:
    """(where, name) for every metric name starting with ``prefix`` in ``expressions``."""
    return sorted(
        (expression.where, name)
        for expression in expressions
        for name in read_query(expression.expr).metric_names
        if name.startswith(prefix)
    )


def _recorded() -> frozenset[str]:
    return frozenset(rule["record"] for rule in alert_rules() if "record" in rule)


def _report(undefined: list[tuple[str, str]], source: str) -> str:
    lines = "\n".join(f"  {name}  ({where})" for where, name in undefined)
    return f"metric names not defined by {source}:\n{lines}"


def test_the_check_reads_every_query_and_sees_every_kind_of_metric() -> None:
    # Given every query of the dashboards and the alert rules
    expressions = all_expressions()

    # When their metric names are read (a query the reader cannot understand fails here)
    names = {name for expression in expressions for name in read_query(expression.expr).metric_names}

    # Then there are queries from both dashboards and the rules, and each source of metrics is used, so the
    # checks below cannot pass by finding nothing
    places = {expression.where.split(",")[0] for expression in expressions}
    assert places == {"livedash-pipeline.json", "rabbitmq-overview.json", "alerts.yml"}
    for prefix in SOURCES:
        assert any(name.startswith(prefix) for name in names), prefix
    assert "up" in names


def test_every_metric_name_comes_from_a_known_source() -> None:
    # Given every metric name of every query
    used = _uses(all_expressions(), "")

    # When those of no known source are kept (not ours, Dramatiq's, RabbitMQ's, Prometheus's or recorded)
    unknown = [
        (where, name)
        for where, name in used
        if not name.startswith(SOURCES) and name not in BUILTIN | _recorded()
    ]

    # Then there are none
    assert not unknown, _report(unknown, "any known source")


def test_livedash_names_are_declared_in_pipeline_metrics() -> None:
    # Given the names pipeline/metrics.py declares (counters as _total, histograms as _bucket/_sum/_count)
    declared = livedash_metric_names()

    # When the livedash_ names of every query are compared with them
    undefined = [
        (where, name) for where, name in _uses(all_expressions(), "livedash_") if name not in declared
    ]

    # Then each one is declared
    assert not undefined, _report(undefined, "pipeline/metrics.py")


def test_dramatiq_names_are_declared_by_its_prometheus_middleware() -> None:
    # Given the names Dramatiq's Prometheus middleware declares when a worker process boots
    declared = dramatiq_metric_names()
    assert "dramatiq_messages_total" in declared

    # When the dramatiq_ names of every query are compared with them
    undefined = [
        (where, name) for where, name in _uses(all_expressions(), "dramatiq_") if name not in declared
    ]

    # Then each one is declared
    assert not undefined, _report(undefined, "dramatiq.middleware.prometheus")


@pytest.mark.rabbitmq
def test_rabbitmq_names_are_served_by_the_endpoints_prometheus_scrapes(
    rabbitmq_names_by_job: dict[str, frozenset[str]],
) -> None:
    # Given a live scrape of the local RabbitMQ at every RabbitMQ job's path and params in prometheus.yml
    served = frozenset().union(*rabbitmq_names_by_job.values())
    assert rabbitmq_names_by_job, "prometheus.yml has no RabbitMQ job"

    # When the rabbitmq_ names of every query are compared with what was served
    undefined = [(where, name) for where, name in _uses(all_expressions(), "rabbitmq_") if name not in served]

    # Then each one is served: a name of a family the detailed job does not request counts as undefined
    jobs = ", ".join(sorted(rabbitmq_names_by_job))
    assert not undefined, _report(undefined, f"RabbitMQ's Prometheus plugin (jobs {jobs})")


def test_every_metric_the_pipeline_declares_is_on_the_pipeline_dashboard() -> None:
    # Given the metrics pipeline/metrics.py declares, each with the names of its series
    families = livedash_metric_families()

    # When the names the pipeline dashboard queries are collected
    shown = {
        name
        for expression in dashboard_expressions()
        if expression.where.startswith("livedash-pipeline.json")
        for name in read_query(expression.expr).metric_names
    }

    # Then every metric has a panel (a histogram by any of its series): a new metric comes with its panel
    missing = sorted(family for family, names in families.items() if not names & shown)
    assert not missing, f"metrics of pipeline/metrics.py without a panel on livedash-pipeline.json: {missing}"
