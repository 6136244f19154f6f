"""Faults the demo data source injects, so tests and the demo watch the pipeline cope with a bad source.

A fault is written as text, the same in a ``?fault=`` query parameter and in the control API:

* ``delay:2.5``: wait 2.5 seconds, then answer normally;
* ``status:503``: answer with that status (400 to 599) instead;
* ``truncate:100``: announce the full ``Content-Length`` but send only the first 100 bytes, then close;
* ``reset``: close the connection with a TCP reset and no response at all.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass

__all__ = ["Delay", "Fault", "FaultBook", "FaultRule", "Reset", "Status", "Truncate", "parse_fault"]


@dataclass(frozen=True, slots=True)
class Delay:
    seconds: float


@dataclass(frozen=True, slots=True)
class Status:
    code: int


@dataclass(frozen=True, slots=True)
class Truncate:
    size: int


@dataclass(frozen=True, slots=True)
class Reset:
    pass


Fault = Delay | Status | Truncate | Reset


def parse_fault(text: str) -> Fault:
    """The fault ``text`` describes; ValueError says what is wrong with it."""
    kind, _, argument = text.strip().partition(":")
    try:
        if kind == "reset" and not argument:
            return Reset()
        if kind == "delay":
            seconds = float(argument)
            if math.isfinite(seconds) and seconds >= 0:
                return Delay(seconds)
        elif kind == "status":
            code = int(argument)
            if 400 <= code <= 599:
                return Status(code)
        elif kind == "truncate":
            size = int(argument)
            if size >= 0:
                return Truncate(size)
    except ValueError:
        pass
    raise ValueError(
        f"bad fault {text!r}: expected delay:<seconds>, status:<400-599>, truncate:<bytes> or reset"
    )


@dataclass(slots=True)
class FaultRule:
    """A fault for requests whose path starts with ``path_prefix``; ``remaining`` None means until cleared."""

    path_prefix: str
    fault: str
    remaining: int | None


class FaultBook:
    """The faults set through the control API, consumed by the requests they match. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rules: list[FaultRule] = []

    def add(self, path_prefix: str, fault: str, times: int | None = None) -> FaultRule:
        """Apply ``fault`` to the next ``times`` matching requests, or to all of them if ``times`` is None."""
        parse_fault(fault)
        if times is not None and times < 1:
            raise ValueError("times must be at least 1, or None for until cleared")
        rule = FaultRule(path_prefix, fault, times)
        with self._lock:
            self._rules.append(rule)
        return rule

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def rules(self) -> list[FaultRule]:
        """The active rules, oldest first."""
        with self._lock:
            return [FaultRule(rule.path_prefix, rule.fault, rule.remaining) for rule in self._rules]

    def take(self, path: str) -> Fault | None:
        """The fault for a request to ``path``, counting it against the oldest matching rule."""
        with self._lock:
            for rule in self._rules:
                if path.startswith(rule.path_prefix):
                    if rule.remaining is not None:
                        rule.remaining -= 1
                        if rule.remaining == 0:
                            self._rules.remove(rule)
                    return parse_fault(rule.fault)
        return None
