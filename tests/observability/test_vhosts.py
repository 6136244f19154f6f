"""RabbitMQ's queue series are told apart by virtual host everywhere they are read: regions sharing a broker
have their own vhost with the same queue names (docs/operations.md)."""

from __future__ import annotations

import re

from tests.observability.artifacts import dashboard_expressions, dashboards, rule_expressions

#: The series that name a queue of one vhost: RabbitMQ's per-queue families and the health API's gauge.
PER_QUEUE = re.compile(r"\b(rabbitmq_detailed_queue_\w+|livedash_dead_letters)\b(\{[^}]*\})?")
#: RabbitMQ's aggregated queue totals, which sum every vhost.
AGGREGATED_QUEUE_TOTALS = re.compile(r"\brabbitmq_(queue_messages\w*|queues|consumers)\b")
_BY = re.compile(r"\bby\s*\(([^)]*)\)")


def test_every_dashboard_query_of_a_queue_selects_the_chosen_vhost() -> None:
    # Given every panel query that reads a queue's series (the $vhost variable's own query lists them all)
    reading = [
        expression
        for expression in dashboard_expressions()
        if PER_QUEUE.search(expression.expr) and ", variable $vhost" not in expression.where
    ]
    assert reading

    # Then each such series is selected by the dashboard's $vhost, and no query reads the all-vhost totals
    for expression in reading:
        for match in PER_QUEUE.finditer(expression.expr):
            assert match[2] and 'vhost="$vhost"' in match[2], f"{expression.where}: {expression.expr}"
    for expression in dashboard_expressions():
        assert not AGGREGATED_QUEUE_TOTALS.search(expression.expr), f"{expression.where}: {expression.expr}"


def test_the_dashboards_that_read_queues_offer_a_vhost_variable() -> None:
    for name, dashboard in dashboards().items():
        text = str(dashboard.get("panels"))
        if PER_QUEUE.search(text):
            variables = {variable["name"] for variable in dashboard["templating"]["list"]}
            assert "vhost" in variables, name


def test_every_rule_groups_queue_series_by_vhost_and_queue() -> None:
    # Given every alert rule that reads a queue's series
    reading = [expression for expression in rule_expressions() if PER_QUEUE.search(expression.expr)]
    assert {expression.where for expression in reading} >= {
        "alerts.yml, alert DeadLettersGrowing",
        "alerts.yml, alert QueueWithoutConsumers",
    }

    # Then each of its aggregations and matchings keeps the vhost beside the queue
    for expression in reading:
        groupings = _BY.findall(expression.expr) + re.findall(r"\bon\s*\(([^)]*)\)", expression.expr)
        assert groupings, expression.where
        for labels in groupings:
            assert {"vhost", "queue"} <= {label.strip() for label in labels.split(",")}, expression.where
