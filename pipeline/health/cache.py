"""The health evaluation, computed once per ``HEALTH_CACHE_MS`` however many callers ask at once.

Every evaluation reads PostgreSQL and the RabbitMQ management API. Without this, each anonymous health
request (and each scrape of ``/metrics``) read them again: 150 requests at concurrency 25 made the sources
time out. Callers that arrive while an evaluation runs wait for that one (single flight); callers within
``HEALTH_CACHE_MS`` of its end get its report. A failed evaluation is not kept: the next caller tries again.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from pipeline.health.aggregator import HealthReport

__all__ = ["CachedHealth"]


class CachedHealth:
    """``evaluate()`` shared by concurrent callers and kept for ``max_age_ms`` (0: only shared)."""

    def __init__(
        self,
        evaluate: Callable[[], Awaitable[HealthReport]],
        max_age_ms: int,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._evaluate = evaluate
        self._max_age = max_age_ms / 1000
        self._clock = clock
        self._report: HealthReport | None = None
        self._computed_at = 0.0
        self._running: asyncio.Task[HealthReport] | None = None

    async def report(self) -> HealthReport:
        """The current report: the kept one while fresh, else the running evaluation's, else a new one."""
        if self._report is not None and self._clock() - self._computed_at < self._max_age:
            return self._report
        if self._running is None:
            self._running = asyncio.ensure_future(self._evaluate_and_keep())
        # Shielded: a caller that gives up (a closed connection) does not cancel the others' evaluation.
        return await asyncio.shield(self._running)

    def forget(self) -> None:
        """Drop the kept report (an admin action changed what it says)."""
        self._report = None

    async def _evaluate_and_keep(self) -> HealthReport:
        try:
            report = await self._evaluate()
            self._report, self._computed_at = report, self._clock()
            return report
        finally:
            self._running = None
