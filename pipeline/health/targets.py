"""``HEALTH_METRICS_TARGETS``: which metrics endpoint tells about which scheduler.

The value is comma-separated ``id=url`` pairs. ``id`` is a scheduler id, or ``scheduler`` for the scheduler
process itself; an id may appear several times (one pair per replica of its worker pool).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from pipeline.scheduling.jobs import scheduled_jobs
from pipeline.settings import Settings

__all__ = ["SCHEDULER_PROCESS", "TargetsError", "metrics_targets", "parse_metrics_targets", "strip_userinfo"]

#: The target id of the scheduler process (it serves tick counters, not runs).
SCHEDULER_PROCESS = "scheduler"


class TargetsError(ValueError):
    """``HEALTH_METRICS_TARGETS`` cannot be used; the message names the offending pair."""


def parse_metrics_targets(value: str, known_ids: list[str]) -> dict[str, tuple[str, ...]]:
    """``id=url,id=url`` as ``{id: (url, ...)}`` in the order given; raises :class:`TargetsError`."""
    targets: dict[str, list[str]] = {}
    for pair in value.split(","):
        if not pair.strip():
            continue
        target_id, separator, url = (part.strip() for part in pair.partition("="))
        if not separator or not target_id or not url:
            raise TargetsError(f"HEALTH_METRICS_TARGETS: expected 'id=url', got {pair.strip()!r}")
        if target_id not in known_ids:
            raise TargetsError(
                f"HEALTH_METRICS_TARGETS: unknown id {target_id!r} (known: {', '.join(known_ids)})"
            )
        parts = urlsplit(url)
        if parts.scheme not in {"http", "https"} or not parts.hostname:
            raise TargetsError(f"HEALTH_METRICS_TARGETS: {target_id}: not an http(s) URL: {url!r}")
        if url not in targets.setdefault(target_id, []):
            targets[target_id].append(url)
    return {target_id: tuple(urls) for target_id, urls in targets.items()}


def metrics_targets(settings: Settings) -> dict[str, tuple[str, ...]]:
    """The configured targets, checked against this deployment's scheduler ids."""
    known = [job.id for job in scheduled_jobs(settings)] + [SCHEDULER_PROCESS]
    return parse_metrics_targets(settings.health_metrics_targets, known)


def strip_userinfo(url: str) -> str:
    """``url`` without ``user:password@``, for messages."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{parts.port}" if parts.port else host
    return parts._replace(netloc=netloc).geturl()
