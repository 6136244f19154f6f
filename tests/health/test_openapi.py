"""Every answer of the API matches its OpenAPI document (/openapi.json), checked by schemathesis.

Schemathesis generates requests from the document (valid and invalid ones), calls the ASGI application
in-process, and validates each answer with its default checks (documented status code, content type and
headers, body against the response schema, invalid data refused, authentication not ignored) and ours: no
500. Its "no 5xx" check is left out, since 503 is a documented answer (unhealthy, admin API disabled,
broker or database down).
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import count
from typing import Any

import pytest
import schemathesis
from dramatiq import Message
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.schemas import OpenApiSchema
from sqlalchemy import Engine

from pipeline.health.api import create_app
from pipeline.health.sources import QueueStats
from pipeline.settings import Settings
from tests.health.conftest import TOKEN
from tests.health.fakes import FakeSources


@pytest.fixture
def api_schema(settings: Settings, engine: Engine, sources: FakeSources) -> Iterator[OpenApiSchema]:
    """The document of an app whose csv-import worker dies every other evaluation (so both 200 and 503
    health answers are produced)."""
    evaluations = count()
    read_queues = sources.read_queues

    def flapping(names: object) -> dict[str, QueueStats]:
        alive = next(evaluations) % 2
        sources.queues["csv-import"] = QueueStats(ready=1, unacked=0, consumers=alive)
        return dict(read_queues(names))  # type: ignore[arg-type]

    sources.read_queues = flapping  # type: ignore[method-assign]
    aggregator = sources.aggregator()

    def publish(message: Message[None]) -> Message[None]:
        return message

    app = create_app(settings, engine=engine, aggregator=aggregator, publish=publish)
    yield schemathesis.openapi.from_asgi("/openapi.json", app)
    aggregator.close()


def no_internal_error(
    _ctx: schemathesis.CheckContext, response: schemathesis.Response, case: schemathesis.Case[Any]
) -> None:
    """503 is an answer of this API (unhealthy, admin API disabled, broker down); 500 never is."""
    assert response.status_code != 500, f"{case.operation.label} answered 500: {response.text}"


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_every_answer_matches_the_openapi_document(api_schema: OpenApiSchema, mode: GenerationMode) -> None:
    # Given requests generated from the document, valid ones or invalid ones, all with the admin token
    @given(case=api_schema.as_strategy(generation_mode=mode))
    @hypothesis_settings(
        max_examples=60,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    def call(case: schemathesis.Case[Any]) -> None:
        # When each is sent, then its answer is documented and matches its schema
        case.call_and_validate(
            headers={"Authorization": f"Bearer {TOKEN}"},
            excluded_checks=[not_a_server_error],
            additional_checks=[no_internal_error],
        )

    call()
