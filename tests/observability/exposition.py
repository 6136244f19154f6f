"""The metric names that exist: declared by the pipeline, by Dramatiq's middleware, or served by RabbitMQ.

Names are those a scrape exposes, as PromQL sees them: a counter ``x_total`` is ``x_total``, a histogram
``x`` is ``x_bucket``, ``x_sum`` and ``x_count``, a gauge is its name. (Multiprocess mode, which the worker
pools use, exposes no ``_created`` samples, so those are not counted as names.)
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from types import ModuleType
from typing import Any
from urllib.parse import urlencode

from prometheus_client.metrics import MetricWrapperBase

__all__ = [
    "declared_families",
    "declared_names",
    "dramatiq_metric_names",
    "exposition_names",
    "livedash_metric_families",
    "livedash_metric_names",
    "rabbitmq_scrape_urls",
]

#: Sample names of one metric family, by prometheus_client's family type (family names have no suffix).
_SUFFIXES = {
    "counter": ("_total",),
    "gauge": ("",),
    "histogram": ("_bucket", "_sum", "_count"),
    "gaugehistogram": ("_bucket", "_gsum", "_gcount"),
    "summary": ("_sum", "_count"),
    "info": ("_info",),
    "stateset": ("",),
    "enum": ("",),
    "unknown": ("",),
}


def declared_families(collectors: Iterable[MetricWrapperBase]) -> dict[str, frozenset[str]]:
    """The sample names each of the given prometheus_client metrics exposes, by family name."""
    return {
        family.name: frozenset(family.name + suffix for suffix in _SUFFIXES[family.type])
        for collector in collectors
        for family in collector.describe()
    }


def declared_names(collectors: Iterable[MetricWrapperBase]) -> frozenset[str]:
    """The sample names the given prometheus_client metrics expose."""
    return frozenset().union(*declared_families(collectors).values())


def _collectors(namespace: ModuleType | object) -> list[MetricWrapperBase]:
    return [value for value in vars(namespace).values() if isinstance(value, MetricWrapperBase)]


def livedash_metric_families() -> dict[str, frozenset[str]]:
    """What ``pipeline.metrics`` declares, by family: the collectors it defines (each registered in the
    default registry under these names; read from the module so that what other tests import cannot change
    it)."""
    import pipeline.metrics

    return declared_families(_collectors(pipeline.metrics))


def livedash_metric_names() -> frozenset[str]:
    return frozenset().union(*livedash_metric_families().values())


@contextmanager
def _preserved_environment(*names: str) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in names}
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def dramatiq_metric_names() -> frozenset[str]:
    """What Dramatiq's Prometheus middleware declares, read from a live instance of it.

    The middleware declares its metrics in ``after_process_boot`` (in a registry of its own), so a worker
    process's boot is replayed against a StubBroker and the collectors are read from the middleware. The hook
    points ``PROMETHEUS_MULTIPROC_DIR`` at Dramatiq's folder; the environment is restored afterwards.
    """
    from dramatiq.brokers.stub import StubBroker
    from dramatiq.middleware.prometheus import Prometheus

    middleware: Any = Prometheus()
    with _preserved_environment("PROMETHEUS_MULTIPROC_DIR", "prometheus_multiproc_dir"):
        middleware.after_process_boot(StubBroker())
    return declared_names(_collectors(middleware))


_SAMPLE_NAME = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")


def exposition_names(text: str) -> frozenset[str]:
    """Metric names in a Prometheus text exposition: every ``# TYPE`` line (with a histogram's or summary's
    sample suffixes), so that a family without samples yet (no queue declared) still counts, and every sample.
    """
    names = set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(maxsplit=3)
            names.add(name)
            if kind == "histogram":
                names.update(f"{name}{suffix}" for suffix in ("_bucket", "_sum", "_count"))
            elif kind == "summary":
                names.update(f"{name}{suffix}" for suffix in ("_sum", "_count"))
        elif line.strip() and not line.startswith("#"):
            sample = _SAMPLE_NAME.match(line)
            if sample:
                names.add(sample.group())
    return frozenset(names)


def rabbitmq_scrape_urls(prometheus_config: Any, base_url: str) -> dict[str, str]:
    """The URL on ``base_url`` of every scrape job of ``prometheus_config`` that reads RabbitMQ's plugin
    (a static target on port 15692), with the job's metrics_path and params, by job name."""
    urls = {}
    for job in prometheus_config["scrape_configs"]:
        targets = [target for static in job.get("static_configs", []) for target in static.get("targets", [])]
        if not any(str(target).endswith(":15692") for target in targets):
            continue
        query = urlencode(job.get("params", {}), doseq=True)
        path = job.get("metrics_path", "/metrics")
        urls[job["job_name"]] = f"{base_url.rstrip('/')}{path}" + (f"?{query}" if query else "")
    return urls
