"""Running a background server in the foreground of a command until Ctrl-C or SIGTERM."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from types import FrameType

__all__ = ["run_until_stopped"]


def run_until_stopped(
    server: AbstractContextManager[object], url: Callable[[], str], on_ready: Callable[[str], None] | None
) -> None:
    """Enter ``server``, report its URL, and wait for Ctrl-C or SIGTERM before leaving it.

    Signals reach only the main thread, so call this from there.
    """
    stopping = threading.Event()

    def on_sigterm(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    previous = signal.signal(signal.SIGTERM, on_sigterm)
    try:
        with server:
            if on_ready is not None:
                on_ready(url())
            # A signal that lands on a server thread cannot interrupt the main thread's wait; with a timeout
            # the main thread still gets to run its signal handlers.
            with contextlib.suppress(KeyboardInterrupt):
                while not stopping.wait(0.2):
                    pass
    finally:
        signal.signal(signal.SIGTERM, previous)
