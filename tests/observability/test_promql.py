"""The PromQL reader finds the metric names of a query, and only those."""

from __future__ import annotations

import pytest

from tests.observability.artifacts import template_query_expression
from tests.observability.promql import Matcher, PromQLError, read_query


def test_label_names_and_values_in_a_selector_are_not_metric_names() -> None:
    # Given a selector with matchers of every kind
    expr = 'livedash_stage_lag_seconds{stage="session-processing", job=~"a|b", queue!="x", le!~"1"}'

    # When it is read
    query = read_query(expr)

    # Then only the metric is a name, and the matchers are kept with their unquoted values
    assert query.metric_names == {"livedash_stage_lag_seconds"}
    assert query.matchers == (
        Matcher("stage", "=", "session-processing"),
        Matcher("job", "=~", "a|b"),
        Matcher("queue", "!=", "x"),
        Matcher("le", "!~", "1"),
    )


@pytest.mark.parametrize(
    "expr",
    [
        "sum by (stage, outcome) (rate(livedash_stage_items_total[5m]))",
        "sum(rate(livedash_stage_items_total[5m])) by (stage, outcome)",
        "sum without (instance) (rate(livedash_stage_items_total[5m]))",
        "SUM BY (stage) (rate(livedash_stage_items_total[5m]))",
        "topk(3, sum by (stage) (increase(livedash_stage_items_total[1h])))",
    ],
)
def test_functions_aggregations_and_grouping_labels_are_not_metric_names(expr: str) -> None:
    # Given an aggregation, its grouping written before or after, and functions

    # When it is read
    query = read_query(expr)

    # Then the counter is the only name
    assert query.metric_names == {"livedash_stage_items_total"}


def test_binary_operators_keywords_and_vector_matching_labels_are_not_metric_names() -> None:
    # Given a query with set operators, vector matching, bool and a label_replace
    expr = """
        max by (queue) (rabbitmq_detailed_queue_messages_ready) > bool 0
        and on (queue) group_left (instance) max by (queue) (rabbitmq_detailed_queue_consumers) == 0
        or ignoring (job) up unless label_replace(livedash_dead_letters, "queue", "$1", "queue", "(.+)")
        or atan2 (vector(1)) # a comment naming not_a_metric
    """

    # When it is read
    query = read_query(expr)

    # Then only the four metrics are names
    assert query.metric_names == {
        "rabbitmq_detailed_queue_messages_ready",
        "rabbitmq_detailed_queue_consumers",
        "up",
        "livedash_dead_letters",
    }
    assert {"max", "label_replace", "vector"} <= query.functions


def test_durations_offsets_subqueries_numbers_and_literals_are_not_metric_names() -> None:
    # Given durations in ranges, subqueries and offsets, and numbers in several notations
    expr = (
        "max_over_time(rate(livedash_csv_rows_total[5m])[1h30m:1m]) offset -5m"
        " + 26 * 3600 + 1e3 + 0x1F + .5 + Inf - NaN + livedash_batches @ end()"
    )

    # When it is read
    query = read_query(expr)

    # Then the two metrics are the only names
    assert query.metric_names == {"livedash_csv_rows_total", "livedash_batches"}


def test_a_name_matcher_names_a_metric() -> None:
    # Given a selector by __name__
    query = read_query('{__name__="livedash_batches", status="FAILED"}')

    # Then that metric is named
    assert query.metric_names == {"livedash_batches"}


def test_grafana_variables_are_found_in_strings_and_ranges_and_are_not_metric_names() -> None:
    # Given a dashboard query with Grafana variables in matchers and in the range
    expr = 'sum(rate(dramatiq_messages_total{job=~"$job", queue_name=~"${queue:regex}"}[$__rate_interval]))'

    # When it is read
    query = read_query(expr)

    # Then the variables are reported, and the counter is the only name
    assert query.metric_names == {"dramatiq_messages_total"}
    assert query.variables == {"job", "queue", "__rate_interval"}


@pytest.mark.parametrize(
    ("expr", "problem"),
    [
        ("sum(rate(livedash_batches[5m])) + ratee(livedash_batches[5m])", "unknown function 'ratee'"),
        ('livedash_batches{status="FAILED"', "unclosed"),
        ("livedash_batches{status=FAILED}", "cannot read label matchers"),
        ("rate(livedash_batches[five minutes])", "cannot read range"),
        ("livedash_batches; drop", "unexpected ';'"),
    ],
)
def test_a_query_the_reader_cannot_understand_is_an_error_not_a_silent_skip(expr: str, problem: str) -> None:
    # Given a query that is broken (or beyond the reader)

    # When it is read
    # Then it is refused with the reason
    with pytest.raises(PromQLError, match=problem):
        read_query(expr)


@pytest.mark.parametrize(
    ("variable_query", "expr"),
    [
        ('label_values(up{job=~"a|b"}, job)', 'up{job=~"a|b"}'),
        ("label_values(job)", None),
        ("query_result(max by (queue) (livedash_dead_letters))", "max by (queue) (livedash_dead_letters)"),
        ("metrics(livedash_.*)", None),
        ("livedash_batches", "livedash_batches"),
    ],
)
def test_grafana_variable_queries_give_up_their_promql(variable_query: str, expr: str | None) -> None:
    # Given a Grafana Prometheus variable query

    # When its PromQL is taken out
    # Then it is the selector or expression inside, or nothing for those without one
    assert template_query_expression(variable_query) == expr
