"""The ``periodic`` option of cron tick actors, present only when this deployment runs cron ticks."""

from __future__ import annotations

from typing import Any

from periodiq import cron

from pipeline.settings import get_settings

__all__ = ["periodic"]


def periodic(expression: str) -> dict[str, Any]:
    """Actor options for a tick on ``expression``; periodiq schedules every actor that has the option at all,
    so with ``SCHEDULER_ENABLED=false`` the tick must not carry it."""
    return {"periodic": cron(expression)} if get_settings().scheduler_enabled else {}
