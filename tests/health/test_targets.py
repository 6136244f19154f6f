"""HEALTH_METRICS_TARGETS: ``id=url`` pairs, checked against the scheduler ids."""

from __future__ import annotations

import pytest

from pipeline.health.targets import TargetsError, metrics_targets, parse_metrics_targets, strip_userinfo
from pipeline.settings import Settings

KNOWN = ["csv-import", "batch-processing", "scheduler"]


def test_pairs_are_grouped_by_id_in_order() -> None:
    # When targets with two replicas of one pool are parsed
    targets = parse_metrics_targets(
        " csv-import=http://a:9191/metrics, batch-processing=http://b:9191/metrics,"
        "csv-import=http://a2:9191/metrics,,scheduler=https://s:9192/metrics,csv-import=http://a:9191/metrics",
        KNOWN,
    )

    # Then each id has its URLs once, in the order given
    assert targets == {
        "csv-import": ("http://a:9191/metrics", "http://a2:9191/metrics"),
        "batch-processing": ("http://b:9191/metrics",),
        "scheduler": ("https://s:9192/metrics",),
    }


def test_no_targets_is_empty() -> None:
    assert parse_metrics_targets("", KNOWN) == {}


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("csv-import", "expected 'id=url', got 'csv-import'"),
        ("=http://a/metrics", "expected 'id=url', got '=http://a/metrics'"),
        (
            "csv_import=http://a/metrics",
            "unknown id 'csv_import' (known: csv-import, batch-processing, scheduler)",
        ),
        ("csv-import=a:9191/metrics", "csv-import: not an http(s) URL: 'a:9191/metrics'"),
    ],
)
def test_a_bad_pair_is_named(value: str, message: str) -> None:
    with pytest.raises(TargetsError) as raised:
        parse_metrics_targets(value, KNOWN)
    assert str(raised.value) == f"HEALTH_METRICS_TARGETS: {message}"


def test_the_known_ids_are_the_schedulers_and_the_scheduler_process(settings: Settings) -> None:
    configured = settings.model_copy(
        update={
            "health_metrics_targets": "batch-processing-check=http://b/metrics,scheduler=http://s/metrics"
        }
    )

    assert set(metrics_targets(configured)) == {"batch-processing-check", "scheduler"}


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("http://guest:secret@rabbit:15672/api", "http://rabbit:15672/api"),
        ("http://guest@rabbit", "http://rabbit"),
        ("http://[::1]:15672", "http://[::1]:15672"),
        ("http://u:p@[::1]:15672/x", "http://[::1]:15672/x"),
    ],
)
def test_credentials_are_left_out_of_urls_shown(url: str, shown: str) -> None:
    assert strip_userinfo(url) == shown
