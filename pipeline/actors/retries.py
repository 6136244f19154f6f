"""The ``retry_when`` of every work actor: the error tree of :mod:`pipeline.errors` decides.

Ticks are not retried at all (``max_retries=0``): the next tick does their work.
"""

from __future__ import annotations

from pipeline import errors
from pipeline.settings import get_settings

__all__ = ["should_retry"]


def should_retry(retries: int, exception: BaseException) -> bool:
    """Dramatiq's retry decision: never a permanent error, else up to the error's or ACTOR_MAX_RETRIES."""
    return errors.should_retry(retries, exception, max_retries=get_settings().actor_max_retries)
