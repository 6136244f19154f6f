"""Fixtures for the source tests: a local HTTP server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.sources.httpserver import LocalServer, running_server


@pytest.fixture
def server() -> Iterator[LocalServer]:
    with running_server() as server:
        yield server
