"""Cheap random choices for the generator's hot path: weighted over a fixed table, or uniform."""

from __future__ import annotations

import bisect
import itertools
import random
from collections.abc import Iterable, Sequence
from typing import Generic, TypeVar

__all__ = ["Weighted", "choose"]

T = TypeVar("T")


class Weighted(Generic[T]):
    """A table of values with relative weights; ``pick`` costs one ``random()`` and a bisection.

    ``random.Random.choices`` would do, but it builds a list on every call, and the generator draws from these
    tables millions of times.
    """

    __slots__ = ("_cumulative", "_total", "_values")

    def __init__(self, table: Iterable[tuple[T, float]]) -> None:
        values, weights = zip(*table, strict=True)
        self._values: tuple[T, ...] = values
        self._cumulative = tuple(itertools.accumulate(weights))
        self._total = self._cumulative[-1]

    def pick(self, rng: random.Random) -> T:
        """One value, drawn with probability proportional to its weight."""
        return self._values[bisect.bisect_right(self._cumulative, rng.random() * self._total)]


def choose(rng: random.Random, options: Sequence[T]) -> T:
    """One of ``options``, uniformly: ``random.Random.choice`` at a fraction of its cost on the hot path."""
    return options[int(rng.random() * len(options))]
