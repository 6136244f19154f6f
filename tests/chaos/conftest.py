"""Services of the chaos tests' own: a PostgreSQL cluster and RabbitMQ nodes they may kill and restart.

Never the machine's shared servers: each fixture starts its own on free ports of 127.0.0.1 and removes it
(processes and data) at the end. A machine without RabbitMQ or PostgreSQL binaries skips these tests, or
fails them when ``CI=true``.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest

from pipeline.devtools.chaos import ChaosPlan, ChaosReport
from pipeline.devtools.postgres_server import PostgresServer, PostgresServerError
from pipeline.devtools.rabbitmq_nodes import RabbitCluster, RabbitNodeError
from tests.services import service_unavailable


@pytest.fixture
def own_postgres() -> Iterator[PostgresServer]:
    """A PostgreSQL server of the test's own, which it may stop and start."""
    try:
        server = PostgresServer().__enter__()
    except PostgresServerError as exc:
        service_unavailable("an own PostgreSQL server", exc)
    try:
        yield server
    finally:
        server.close()


def _cluster(size: int) -> Iterator[RabbitCluster]:
    cluster = RabbitCluster(size)
    try:
        cluster.start()
    except RabbitNodeError as exc:
        cluster.close()
        service_unavailable(f"an own RabbitMQ cluster of {size}", exc)
    try:
        yield cluster
    finally:
        cluster.close()


@pytest.fixture
def own_rabbitmq() -> Iterator[RabbitCluster]:
    """One RabbitMQ node of the test's own, which it may kill and restart."""
    yield from _cluster(1)


@pytest.fixture
def rabbitmq_cluster() -> Iterator[RabbitCluster]:
    """Three clustered RabbitMQ nodes of the test's own."""
    yield from _cluster(3)


def forget(report: ChaosReport) -> None:
    """Remove a passed run's data set and process logs (a failed run keeps them: ``explain`` names them)."""
    shutil.rmtree(report.log_dir.parent, ignore_errors=True)


def explain(report: ChaosReport) -> str:
    """What a failing assertion prints: the whole report, and where the processes' logs are."""
    return "\n".join([*report.lines(), f"logs: {report.log_dir}"])


#: The CI runs: small, seeded, every fault short.
SMALL = ChaosPlan(
    companies=6,
    sessions_per_company=20,
    gap_seconds=(0.5, 1.5),
    broker_outage_seconds=2,
    database_outage_seconds=3,
    emulator_outage_seconds=2,
    transcript_hang_seconds=2,
    company_every_seconds=4,
    recovery_timeout=60,
    quiet_timeout=360,
)
