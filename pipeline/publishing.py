"""Sending a message by queue and actor name, from a process that declares no actor (the CLI, the health API).

The names come from the job registry; the broker is built from the settings at the first send, and no actor
is declared on it: the receiving pool has them.
"""

from __future__ import annotations

import threading
from functools import lru_cache

import dramatiq
from dramatiq import Message

from pipeline.broker import build_broker
from pipeline.settings import Settings, get_settings

__all__ = ["Publisher", "enqueue_by_name"]


class Publisher:
    """``publish(message)`` declares the message's queue and enqueues it; the broker is made on first use."""

    def __init__(self, settings: Settings, *, role: str = "livedash") -> None:
        self.settings = settings
        self.role = role
        self._broker: dramatiq.Broker | None = None
        self._lock = threading.Lock()

    @property
    def broker(self) -> dramatiq.Broker:
        with self._lock:
            if self._broker is None:
                self._broker = build_broker(self.settings, role=self.role)
            return self._broker

    def __call__(self, message: Message[None]) -> Message[None]:
        broker = self.broker
        broker.declare_queue(message.queue_name)
        published: Message[None] = broker.enqueue(message)
        return published

    def close(self) -> None:
        with self._lock:
            if self._broker is not None:
                self._broker.close()
                self._broker = None


@lru_cache(maxsize=1)
def _process_publisher(role: str) -> Publisher:
    return Publisher(get_settings(), role=role)


def enqueue_by_name(message: Message[None], *, role: str = "livedash") -> Message[None]:
    """Publish on this process's broker (built from the process-wide settings at the first call), its
    connection named after ``role``."""
    return _process_publisher(role)(message)
