"""The admin API refuses before it reads: authentication first, then a capped body; public reasons are
generic and every answer is redacted."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, MutableMapping
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import Engine

from pipeline.health.api import create_app
from pipeline.settings import Settings
from tests.health.conftest import TOKEN
from tests.health.fakes import FakeSources

AUTH = {"Authorization": f"Bearer {TOKEN}"}
PATH = "/api/admin/schedulers"
LEAKED = "amqp://user:hunter2-password@rabbit.internal:5672/%2F"


def app_for(settings: Settings, engine: Engine, sources: FakeSources, **changes: object) -> FastAPI:
    return create_app(
        settings.model_copy(update=changes),
        engine=engine,
        aggregator=sources.aggregator(),
        publish=lambda message: message,
    )


def call(app: FastAPI, headers: dict[str, str], chunks: Callable[[], dict[str, Any]]) -> tuple[int, bytes]:
    """One POST to the admin path through the bare ASGI app; ``chunks`` is its ``receive``."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": PATH,
        "raw_path": PATH.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(name.lower().encode(), value.encode()) for name, value in headers.items()],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
    }
    answer: dict[str, Any] = {"body": b""}

    async def receive() -> dict[str, Any]:
        return chunks()

    async def send(message: MutableMapping[str, Any]) -> None:
        if message["type"] == "http.response.start":
            answer["status"] = message["status"]
        elif message["type"] == "http.response.body":
            answer["body"] += message.get("body", b"")

    asyncio.run(app(scope, receive, send))
    return answer["status"], answer["body"]


def never_read() -> dict[str, Any]:
    raise AssertionError("the body was read")


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"}],
    ids=["no token", "wrong token", "not bearer"],
)
def test_an_unauthenticated_request_is_refused_401_whatever_its_body(
    settings: Settings, engine: Engine, sources: FakeSources, headers: dict[str, str]
) -> None:
    # Given the admin API, and requests without the token carrying unparseable JSON, or a huge body
    client = TestClient(app_for(settings, engine, sources))
    bad_json = client.post(PATH, content=b"{bad", headers={**headers, "Content-Type": "application/json"})
    huge = call(
        app_for(settings, engine, sources),
        {**headers, "Content-Type": "application/json", "Content-Length": str(150 * 1024 * 1024)},
        never_read,
    )

    # Then both are 401, and the huge body was never read
    assert bad_json.status_code == 401
    assert bad_json.json() == {"success": False, "error": "unauthorized: a valid bearer token is required"}
    assert huge[0] == 401


def test_an_authenticated_request_with_bad_json_is_still_a_validation_failure(
    settings: Settings, engine: Engine, sources: FakeSources
) -> None:
    # When the token comes with unparseable JSON
    response = TestClient(app_for(settings, engine, sources)).post(
        PATH, content=b"{bad", headers={**AUTH, "Content-Type": "application/json"}
    )

    # Then it is 400, as docs/health.md says
    assert response.status_code == 400


def test_a_declared_body_over_the_cap_is_refused_413_without_reading_it(
    settings: Settings, engine: Engine, sources: FakeSources
) -> None:
    # Given ADMIN_API_MAX_BODY_BYTES=1024 and an authenticated request declaring 1025 bytes
    app = app_for(settings, engine, sources, admin_api_max_body_bytes=1024)
    headers = {**AUTH, "Content-Type": "application/json", "Content-Length": "1025"}

    # When it is sent, with a body that must not be read
    status, body = call(app, headers, never_read)

    # Then 413 in the API's shape, naming the setting
    assert status == 413
    assert json.loads(body) == {
        "success": False,
        "error": "request body larger than ADMIN_API_MAX_BODY_BYTES=1024",
    }


def test_a_streamed_body_is_counted_and_refused_413_as_soon_as_it_passes_the_cap(
    settings: Settings, engine: Engine, sources: FakeSources
) -> None:
    # Given a 1 KiB cap and an authenticated chunked body of endless 256-byte chunks
    app = app_for(settings, engine, sources, admin_api_max_body_bytes=1024)
    reads = 0

    def endless() -> dict[str, Any]:
        nonlocal reads
        reads += 1
        assert reads < 100, "the body was read past its cap"
        return {"type": "http.request", "body": b" " * 256, "more_body": True}

    # When it is sent without a Content-Length
    status, body = call(app, {**AUTH, "Content-Type": "application/json"}, endless)

    # Then 413 after the fifth chunk (1280 bytes > 1024), no more read
    assert status == 413
    assert reads == 5
    assert json.loads(body)["error"] == "request body larger than ADMIN_API_MAX_BODY_BYTES=1024"


def test_a_body_within_the_cap_is_served(settings: Settings, engine: Engine, sources: FakeSources) -> None:
    # When an authenticated action fits the cap
    response = TestClient(app_for(settings, engine, sources)).post(
        PATH, json={"action": "pause", "schedulerId": "csv-import"}, headers=AUTH
    )

    # Then it is carried out
    assert response.status_code == 200, response.text


def test_the_public_health_serves_generic_reasons_and_the_token_the_details(
    settings: Settings, engine: Engine, sources: FakeSources
) -> None:
    # Given a stored run error and a RabbitMQ error that both quote a URL with its password
    sources.change("csv-import", consecutive_failures=5, last_error=f"ConnectionError: cannot reach {LEAKED}")
    sources.failures["rabbitmq"] = ConnectionError(f"refused by {LEAKED}")
    client = TestClient(app_for(settings, engine, sources))

    # When the health is asked for without, then with, the token
    public = client.get("/api/admin/schedulers/health").json()["details"]["csv-import"]
    detailed = client.get("/api/admin/schedulers/health", headers=AUTH).json()["details"]["csv-import"]

    # Then the public reasons are the generic summaries, without any error text or host
    assert public["reasons"] == [
        "5 runs in a row failed, the limit is HEALTH_MAX_CONSECUTIVE_FAILURES=3",
        "RabbitMQ management API unreadable, consumers unknown",
    ]
    # And the token's reasons have the details, with the password masked
    assert any("rabbit.internal" in reason for reason in detailed["reasons"])
    assert "hunter2" not in json.dumps(detailed)
    assert "amqp://user:***@rabbit.internal" in json.dumps(detailed)


def test_the_admin_list_masks_a_stored_error(
    settings: Settings, engine: Engine, sources: FakeSources
) -> None:
    # Given a run error stored before errors were redacted on their way in
    sources.change("csv-import", last_error=f"ConnectionError: {LEAKED}?token=abc")

    # When the admin list is read
    response = TestClient(app_for(settings, engine, sources)).get(PATH, headers=AUTH)

    # Then the error is served masked
    entry = next(item for item in response.json()["schedulers"] if item["id"] == "csv-import")
    assert entry["lastError"] == "ConnectionError: amqp://user:***@rabbit.internal:5672/%2F?token=***"


def test_the_admin_api_disabled_still_refuses_before_reading(
    settings: Settings, engine: Engine, sources: FakeSources
) -> None:
    # Given ADMIN_API_TOKEN empty
    app = app_for(settings, engine, sources, admin_api_token=SecretStr(""))

    # When a body comes, even with a token
    status, _ = call(app, {**AUTH, "Content-Length": "10"}, never_read)

    # Then 503 (disabled), the body unread
    assert status == 503


def test_every_admin_route_is_gated_and_the_health_probe_is_not(
    settings: Settings, engine: Engine, sources: FakeSources
) -> None:
    # Given the admin API without a token
    client = TestClient(app_for(settings, engine, sources))
    budget = "/api/admin/companies/00000000-0000-0000-0000-000000000000/budget"

    # When the spend routes are asked, one with unparseable JSON, and the health probe
    bad_json = client.put(budget, content=b"{bad", headers={"Content-Type": "application/json"})
    costs = client.get("/api/admin/costs")
    health = client.get("/api/admin/schedulers/health")

    # Then the admin routes are refused 401 before any body is read; the health probe answers
    assert (bad_json.status_code, costs.status_code) == (401, 401)
    assert health.status_code in (200, 503)
