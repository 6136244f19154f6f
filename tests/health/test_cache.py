"""The health report is computed once however many callers ask at once, and kept for HEALTH_CACHE_MS."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from sqlalchemy import Engine

from pipeline.health.aggregator import HealthReport
from pipeline.health.api import create_app
from pipeline.health.cache import CachedHealth
from pipeline.settings import Settings
from tests.health.fakes import NOW, FakeSources


def test_concurrent_callers_share_one_evaluation() -> None:
    # Given an evaluation that waits until released, and no caching beyond its run
    started = 0
    release = asyncio.Event()

    async def evaluate() -> HealthReport:
        nonlocal started
        started += 1
        await release.wait()
        return HealthReport(NOW, ())

    async def scenario() -> list[HealthReport]:
        cache = CachedHealth(evaluate, max_age_ms=0)
        callers = [asyncio.ensure_future(cache.report()) for _ in range(25)]
        await asyncio.sleep(0)
        release.set()
        return await asyncio.gather(*callers)

    # When 25 callers ask while it runs
    reports = asyncio.run(scenario())

    # Then it ran once, and every caller got its report
    assert started == 1
    assert all(report is reports[0] for report in reports)


def test_a_report_is_kept_for_its_age_then_computed_again() -> None:
    # Given a cache of 2000 ms on a clock the test moves
    now = [100.0]
    evaluations = 0

    async def evaluate() -> HealthReport:
        nonlocal evaluations
        evaluations += 1
        return HealthReport(NOW, ())

    async def scenario() -> list[int]:
        cache = CachedHealth(evaluate, max_age_ms=2000, clock=lambda: now[0])
        seen = []
        for moment in (100.0, 101.9, 102.1):
            now[0] = moment
            await cache.report()
            seen.append(evaluations)
        return seen

    # When asked at 0 s, 1.9 s and 2.1 s
    # Then the second answer is the kept one, the third a new evaluation
    assert asyncio.run(scenario()) == [1, 1, 2]


def test_a_failed_evaluation_is_not_kept() -> None:
    # Given an evaluation that fails once
    calls = 0

    async def evaluate() -> HealthReport:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("boom")
        return HealthReport(NOW, ())

    async def scenario() -> HealthReport:
        cache = CachedHealth(evaluate, max_age_ms=60_000)
        with pytest.raises(RuntimeError):
            await cache.report()
        return await cache.report()

    # Then the next caller evaluates again
    assert asyncio.run(scenario()).schedulers == ()
    assert calls == 2


def test_concurrent_health_requests_read_the_sources_once(
    settings: Settings, engine: Engine, sources: FakeSources
) -> None:
    # Given the API with HEALTH_CACHE_MS=5000
    app = create_app(
        settings.model_copy(update={"health_cache_ms": 5000}),
        engine=engine,
        aggregator=sources.aggregator(),
        publish=lambda message: message,
    )

    async def scenario() -> list[int]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
            paths = ["/api/admin/schedulers/health"] * 20 + ["/metrics"] * 5
            answers = await asyncio.gather(*(client.get(path) for path in paths))
        return [answer.status_code for answer in answers]

    # When 25 requests (health and metrics scrapes) arrive at once
    statuses = asyncio.run(scenario())

    # Then all are answered from one read of RabbitMQ
    assert statuses == [200] * 25
    assert sources.queue_reads == 1
