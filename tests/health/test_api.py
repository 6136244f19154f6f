"""The HTTP API: the dashboard's shapes and status codes, authentication, validation, control, probes."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from dramatiq import Message
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from pipeline.cli import app as cli
from pipeline.db.engine import create_db_engine, get_engine
from pipeline.db.models import SchedulerTick
from pipeline.health.aggregator import HealthAggregator
from pipeline.health.api import create_app
from pipeline.health.sources import QueueStats
from pipeline.scheduling.overview import scheduler_overviews
from pipeline.settings import Settings
from tests.cli.conftest import clear_process_caches
from tests.health.conftest import TOKEN
from tests.health.fakes import NOW, FakeSources

AUTH = {"Authorization": f"Bearer {TOKEN}"}
MISSING_ID = "schedulerId: schedulerId is required for trigger, pause, resume, start, stop actions"

MakeClient = Callable[..., TestClient]


@pytest.fixture
def published() -> list[Message[None]]:
    return []


@pytest.fixture
def client_for(
    settings: Settings, engine: Engine, sources: FakeSources, published: list[Message[None]]
) -> Iterator[MakeClient]:
    """``client_for(**create_app_arguments)``: a started TestClient; by default over the fake sources and a
    publish that records the messages."""
    clients: list[TestClient] = []

    def record(message: Message[None]) -> Message[None]:
        published.append(message)
        return message

    def make(**arguments: object) -> TestClient:
        options: dict[str, object] = {
            "engine": engine,
            "aggregator": sources.aggregator(),
            "publish": record,
            **arguments,
        }
        app_settings = options.pop("settings", settings)
        assert isinstance(app_settings, Settings)
        client = TestClient(create_app(app_settings, **options))  # type: ignore[arg-type]
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def client(client_for: MakeClient) -> TestClient:
    return client_for()


def database_aggregator(settings: Settings, engine: Engine, sources: FakeSources) -> HealthAggregator:
    """The real run history and control state, with fake RabbitMQ figures (one consumer per queue)."""
    return HealthAggregator(
        settings,
        overviews=lambda now: scheduler_overviews(engine, settings, now),
        queues=sources.read_queues,
    )


def ticks(engine: Engine) -> int:
    with Session(engine) as db:
        return db.scalar(select(func.count()).select_from(SchedulerTick)) or 0


# --- GET / HEAD /api/admin/schedulers/health ----------------------------------------------------------------


def test_the_health_endpoint_answers_200_in_the_seed_shape_when_healthy(client: TestClient) -> None:
    # Given every scheduler healthy
    # When the health is asked for, without a token
    response = client.get("/api/admin/schedulers/health")

    # Then 200 with the dashboard's shape and a reasons list per scheduler
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"healthy", "status", "timestamp", "schedulers", "details"}
    assert (body["healthy"], body["status"]) == (True, "healthy")
    assert body["timestamp"] == "2026-01-05T12:00:00Z"
    assert body["schedulers"] == {"total": 5, "running": 5, "errors": 0}
    assert list(body["details"]) == [
        "csv-import",
        "import-processing",
        "session-processing",
        "batch-processing",
        "batch-processing-check",
    ]
    assert body["details"]["csv-import"] == {
        "status": "RUNNING",
        "healthy": True,
        "lastSuccess": "2026-01-05T11:59:00Z",
        "reasons": [],
    }


def test_the_health_endpoint_answers_503_when_a_scheduler_is_in_error(
    client: TestClient, sources: FakeSources
) -> None:
    # Given session processing's worker is dead while messages wait
    sources.queues["session-processing"] = QueueStats(ready=5, unacked=0, consumers=0)

    # When the health is asked for
    response = client.get("/api/admin/schedulers/health")

    # Then 503, unhealthy, and the detail says why
    assert response.status_code == 503
    body = response.json()
    assert (body["healthy"], body["status"]) == (False, "unhealthy")
    assert body["schedulers"] == {"total": 5, "running": 4, "errors": 1}
    assert body["details"]["session-processing"] == {
        "status": "ERROR",
        "healthy": False,
        "lastSuccess": "2026-01-05T11:59:00Z",
        "reasons": ["no consumers on queue session-processing while 5 message(s) wait: its worker is down"],
    }


def test_paused_and_stopped_schedulers_keep_the_health_at_200(
    client: TestClient, sources: FakeSources
) -> None:
    # Given one scheduler paused and one stopped by an operator
    sources.change("csv-import", control="PAUSED")
    sources.change("batch-processing", control="STOPPED")

    # When the health is asked for
    response = client.get("/api/admin/schedulers/health")

    # Then it is healthy, two fewer are running
    assert response.status_code == 200
    assert response.json()["schedulers"] == {"total": 5, "running": 3, "errors": 0}
    assert response.json()["details"]["csv-import"]["status"] == "PAUSED"


@pytest.mark.parametrize(("consumers", "expected"), [(1, 200), (0, 503)])
def test_head_answers_the_same_status_without_a_body(
    client: TestClient, sources: FakeSources, consumers: int, expected: int
) -> None:
    # Given csv-import's queue with or without consumers
    sources.queues["csv-import"] = QueueStats(ready=0, unacked=0, consumers=consumers)

    # When HEAD is asked
    response = client.head("/api/admin/schedulers/health")

    # Then the status is GET's, and there is no body
    assert response.status_code == expected
    assert response.content == b""


def test_a_health_that_cannot_be_computed_answers_500_in_the_seed_shape(
    client_for: MakeClient, sources: FakeSources, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given an aggregator with a bug
    aggregator = sources.aggregator()

    async def broken() -> None:
        raise RuntimeError("bug")

    monkeypatch.setattr(aggregator, "evaluate", broken)
    client = client_for(aggregator=aggregator)

    # When the health is asked for
    response = client.get("/api/admin/schedulers/health")

    # Then 500 with the error body; HEAD says 500 too
    assert response.status_code == 500
    body = response.json()
    assert (body["healthy"], body["status"], body["error"]) == (
        False,
        "error",
        "Failed to get scheduler health status",
    )
    assert client.head("/api/admin/schedulers/health").status_code == 500


# --- authentication -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"}]
)
def test_admin_endpoints_refuse_a_missing_or_wrong_token(client: TestClient, headers: dict[str, str]) -> None:
    # When the admin endpoints are called without the right bearer token
    listing = client.get("/api/admin/schedulers", headers=headers)
    action = client.post("/api/admin/schedulers", headers=headers, json={"action": "stopAll"})

    # Then both answer 401 and ask for a bearer token
    for response in (listing, action):
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"] == "Bearer"
        assert response.json() == {
            "success": False,
            "error": "unauthorized: a valid bearer token is required",
        }


def test_authentication_comes_before_validation(client: TestClient) -> None:
    # When an invalid body comes without a token
    response = client.post("/api/admin/schedulers", json={"action": "explode"})

    # Then the answer is 401, and says nothing about the body
    assert response.status_code == 401


def test_the_admin_api_is_disabled_without_a_token(client_for: MakeClient, settings: Settings) -> None:
    # Given ADMIN_API_TOKEN is empty
    client = client_for(settings=settings.model_copy(update={"admin_api_token": SecretStr("")}))

    # When the admin endpoints are called, with any token
    listing = client.get("/api/admin/schedulers", headers={"Authorization": "Bearer "})
    action = client.post("/api/admin/schedulers", headers=AUTH, json={"action": "stopAll"})

    # Then both answer 503 and say why; the health endpoint still answers
    for response in (listing, action):
        assert response.status_code == 503
        assert response.json() == {
            "success": False,
            "error": "admin API disabled: ADMIN_API_TOKEN is not set",
        }
    assert client.get("/api/admin/schedulers/health").status_code == 200


# --- GET /api/admin/schedulers ------------------------------------------------------------------------------


def test_the_scheduler_list_has_each_scheduler_with_its_figures_and_the_health(
    client: TestClient, sources: FakeSources
) -> None:
    # Given csv-import with a backlog, a dead letter and two failures
    sources.queues["csv-import"] = QueueStats(ready=7, unacked=2, consumers=3)
    sources.queues["csv-import.XQ"] = QueueStats(ready=1, unacked=0, consumers=0)
    sources.change("csv-import", consecutive_failures=2, recent_failures=2, last_error="boom")

    # When the list is asked for with the token
    response = client.get("/api/admin/schedulers", headers=AUTH)

    # Then every scheduler is there with its figures, and the health object
    assert response.status_code == 200
    body = response.json()
    assert body["success"] is True
    assert body["health"]["schedulers"] == {"total": 5, "running": 5, "errors": 0}
    assert [entry["id"] for entry in body["schedulers"]] == list(body["health"]["details"])
    csv = body["schedulers"][0]
    assert csv == {
        "id": "csv-import",
        "name": "CSV import",
        "queue": "csv-import",
        "cron": "*/10 * * * *",
        "timezone": "UTC",
        "status": "RUNNING",
        "healthy": True,
        "control": "ACTIVE",
        "enabled": True,
        "runningNow": False,
        "lastRun": "2026-01-05T11:59:00Z",
        "lastRunStatus": "SUCCEEDED",
        "lastSuccess": "2026-01-05T11:59:00Z",
        "lastError": "boom",
        "lastErrorAt": None,
        "lastTick": "2026-01-05T11:59:00Z",
        "lastTickOutcome": "ENQUEUED",
        "nextRun": "2026-01-05T12:01:00Z",
        "consecutiveFailures": 2,
        "metrics": {
            "window": "24h",
            "totalRuns": 12,
            "successfulRuns": 12,
            "failedRuns": 2,
            "averageRunSeconds": 1.5,
        },
        "queueStats": {
            "depth": 7,
            "unacked": 2,
            "consumers": 3,
            "delayed": 0,
            "deadLetters": 1,
            "declared": True,
        },
        "lagSeconds": None,
        "metricsEndpoint": {"state": "unknown", "answered": 0, "total": 0, "errors": []},
        "reasons": [],
    }
    assert body["sources"] == {
        "database": {"ok": True, "error": None},
        "rabbitmq": {"ok": True, "error": None},
        "metrics": {"ok": True, "error": None},
    }


def test_the_scheduler_list_still_answers_when_the_database_does_not(
    client: TestClient, sources: FakeSources
) -> None:
    # Given a database that fails
    sources.failures["database"] = ConnectionError("connection refused")

    # When the list is asked for
    response = client.get("/api/admin/schedulers", headers=AUTH)

    # Then every scheduler is listed in ERROR with nulls where the database would have answered
    assert response.status_code == 200
    body = response.json()
    assert body["sources"]["database"] == {
        "ok": False,
        "error": "database: ConnectionError: connection refused",
    }
    entry = body["schedulers"][1]
    assert (entry["status"], entry["control"], entry["metrics"]["totalRuns"]) == ("ERROR", None, None)
    assert entry["reasons"] == ["database unreachable: database: ConnectionError: connection refused"]


# --- POST /api/admin/schedulers -----------------------------------------------------------------------------


@pytest.mark.parametrize("action", ["trigger", "pause", "resume", "start", "stop"])
def test_a_single_action_without_a_scheduler_id_is_refused_in_the_seed_shape(
    client: TestClient, action: str
) -> None:
    # When a single action comes without schedulerId
    response = client.post("/api/admin/schedulers", headers=AUTH, json={"action": action})

    # Then 400 with the validation body
    assert response.status_code == 400
    assert response.json() == {"success": False, "error": "Validation failed", "errors": [MISSING_ID]}


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (
            {"action": "explode", "schedulerId": "csv-import"},
            "action: Input should be 'trigger', 'pause', 'resume', 'start', 'stop', 'startAll' or 'stopAll'",
        ),
        ({"schedulerId": "csv-import"}, "action: Field required"),
        ({"action": "pause", "schedulerId": ""}, MISSING_ID),
        ({"action": "pause", "schedulerId": 7}, "schedulerId: Input should be a valid string"),
        ([], "body: Input should be a valid dictionary or object to extract fields from"),
    ],
)
def test_invalid_bodies_are_refused_with_the_offending_field(
    client: TestClient, body: object, error: str
) -> None:
    # When an invalid body is posted
    response = client.post("/api/admin/schedulers", headers=AUTH, json=body)

    # Then 400 names the field and the problem
    assert response.status_code == 400
    assert response.json() == {"success": False, "error": "Validation failed", "errors": [error]}


def test_a_body_that_is_not_json_is_refused(client: TestClient) -> None:
    response = client.post(
        "/api/admin/schedulers",
        headers={**AUTH, "Content-Type": "application/json"},
        content=b"{action: pause",
    )

    assert response.status_code == 400
    assert response.json()["error"] == "Validation failed"


def test_an_unknown_scheduler_is_404_and_changes_nothing(client: TestClient, engine: Engine) -> None:
    # When an action names a scheduler that does not exist
    response = client.post(
        "/api/admin/schedulers", headers=AUTH, json={"action": "trigger", "schedulerId": "x"}
    )

    # Then 404 names the known ones, and no tick was recorded
    assert response.status_code == 404
    assert response.json() == {
        "success": False,
        "error": "unknown scheduler 'x' (known: csv-import, import-processing, session-processing, "
        "batch-processing, batch-processing-check)",
    }
    assert ticks(engine) == 0


def test_pausing_a_scheduler_shows_in_its_health_and_resuming_clears_it(
    client_for: MakeClient, settings: Settings, engine: Engine, sources: FakeSources
) -> None:
    # Given the API over the real control state (no scheduler has run yet: all STARTING)
    client = client_for(aggregator=database_aggregator(settings, engine, sources))
    assert client.get("/api/admin/schedulers/health").json()["details"]["csv-import"]["status"] == "STARTING"

    # When csv-import is paused
    response = client.post(
        "/api/admin/schedulers", headers=AUTH, json={"action": "pause", "schedulerId": "csv-import"}
    )

    # Then the answer says so, and the health shows it PAUSED
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"success", "message", "timestamp"}
    assert (body["success"], body["message"]) == (True, "Action 'pause' completed successfully")
    detail = client.get("/api/admin/schedulers/health").json()["details"]["csv-import"]
    assert (detail["status"], detail["reasons"]) == ("PAUSED", ["paused by an operator"])

    # And resuming it makes it STARTING again
    client.post("/api/admin/schedulers", headers=AUTH, json={"action": "resume", "schedulerId": "csv-import"})
    assert client.get("/api/admin/schedulers/health").json()["details"]["csv-import"]["status"] == "STARTING"


def test_stop_all_and_start_all_need_no_scheduler_id(
    client_for: MakeClient, settings: Settings, engine: Engine, sources: FakeSources
) -> None:
    # Given the API over the real control state
    client = client_for(aggregator=database_aggregator(settings, engine, sources))

    # When every scheduler is stopped
    stopped = client.post("/api/admin/schedulers", headers=AUTH, json={"action": "stopAll"})

    # Then all are STOPPED, which is healthy
    assert stopped.json()["message"] == "Action 'stopAll' completed successfully"
    health = client.get("/api/admin/schedulers/health")
    assert health.status_code == 200
    assert {detail["status"] for detail in health.json()["details"].values()} == {"STOPPED"}
    listing = client.get("/api/admin/schedulers", headers=AUTH).json()
    assert {entry["control"] for entry in listing["schedulers"]} == {"STOPPED"}
    assert {entry["nextRun"] for entry in listing["schedulers"]} == {None}

    # And startAll starts them again
    assert client.post("/api/admin/schedulers", headers=AUTH, json={"action": "startAll"}).status_code == 200
    health_after = client.get("/api/admin/schedulers/health").json()
    assert {detail["status"] for detail in health_after["details"].values()} == {"STARTING"}


def test_trigger_publishes_the_scheduler_tick(
    client: TestClient, engine: Engine, published: list[Message[None]]
) -> None:
    # When csv-import is triggered
    response = client.post(
        "/api/admin/schedulers", headers=AUTH, json={"action": "trigger", "schedulerId": "csv-import"}
    )

    # Then its tick message was published and recorded
    assert response.status_code == 200
    assert response.json()["message"] == "Action 'trigger' completed successfully"
    assert [(message.queue_name, message.actor_name) for message in published] == [
        ("csv-import", "csv_import_tick")
    ]
    assert ticks(engine) == 1


def test_a_broker_outage_on_trigger_is_503_and_records_nothing(
    client_for: MakeClient, engine: Engine
) -> None:
    # Given a broker that cannot be reached
    def unreachable(_message: Message[None]) -> Message[None]:
        raise ConnectionError("amqp://guest:guest@rabbit:5672: connection refused")

    client = client_for(publish=unreachable)

    # When a scheduler is triggered
    response = client.post(
        "/api/admin/schedulers", headers=AUTH, json={"action": "trigger", "schedulerId": "import-processing"}
    )

    # Then 503 says so (without the password), and no tick was recorded: the next attempt sends it
    assert response.status_code == 503
    assert response.json() == {
        "success": False,
        "error": "broker unavailable, nothing was sent: ConnectionError: amqp://guest:***@rabbit:5672: "
        "connection refused",
    }
    assert ticks(engine) == 0


def test_a_database_outage_on_an_action_is_503(
    client_for: MakeClient, settings: Settings, tmp_path: Path
) -> None:
    # Given a database that cannot be opened
    broken = create_db_engine(
        settings.model_copy(update={"database_url": f"sqlite:///{tmp_path}/no/such/dir.db"})
    )
    client = client_for(engine=broken)

    # When a scheduler is paused
    response = client.post(
        "/api/admin/schedulers", headers=AUTH, json={"action": "pause", "schedulerId": "csv-import"}
    )

    # Then 503 says the database is unavailable
    assert response.status_code == 503
    assert (
        response.json()["error"]
        == "database unavailable: (sqlite3.OperationalError) unable to open database file"
    )
    broken.dispose()


# --- probes and metrics -------------------------------------------------------------------------------------


def test_healthz_answers_while_the_process_lives(client: TestClient, sources: FakeSources) -> None:
    sources.failures["database"] = ConnectionError("down")

    response = client.get("/healthz")

    assert (response.status_code, response.json()) == (200, {"status": "ok"})


def test_readyz_answers_200_when_the_database_answers(client: TestClient) -> None:
    response = client.get("/readyz")

    assert (response.status_code, response.json()) == (200, {"status": "ready", "error": None})


def test_readyz_answers_503_when_the_database_does_not(
    client_for: MakeClient, settings: Settings, tmp_path: Path
) -> None:
    # Given a database that cannot be opened
    broken = create_db_engine(
        settings.model_copy(update={"database_url": f"sqlite:///{tmp_path}/no/such/dir.db"})
    )
    client = client_for(engine=broken)

    # When readiness is asked
    response = client.get("/readyz")

    # Then 503 with the reason
    assert response.status_code == 503
    assert response.json()["status"] == "unavailable"
    assert response.json()["error"] == "database: (sqlite3.OperationalError) unable to open database file"
    broken.dispose()


def test_metrics_are_evaluated_at_each_scrape(client: TestClient, sources: FakeSources) -> None:
    # Given csv-import's worker died, and two messages were dead-lettered on import processing
    sources.queues["csv-import"] = QueueStats(ready=1, unacked=0, consumers=0)
    sources.queues["import-processing.XQ"] = QueueStats(ready=2, unacked=0, consumers=0)
    reads = sources.queue_reads

    # When Prometheus scrapes /metrics (nobody asked for the health before)
    response = client.get("/metrics")

    # Then the health was evaluated for it, and the gauges are in the exposition
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert sources.queue_reads == reads + 1
    text = response.text
    assert 'livedash_scheduler_healthy{scheduler="csv-import"} 0.0' in text
    assert 'livedash_scheduler_healthy{scheduler="batch-processing"} 1.0' in text
    assert 'livedash_dead_letters{queue="import-processing",vhost="/"} 2.0' in text


def test_the_openapi_document_declares_the_bearer_scheme_and_no_422(client: TestClient) -> None:
    # When the OpenAPI document is fetched
    document = client.get("/openapi.json").json()

    # Then the admin operations use the bearer scheme, and no operation answers 422
    assert document["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    assert document["paths"]["/api/admin/schedulers"]["post"]["security"] == [{"HTTPBearer": []}]
    responses = [
        code
        for path in document["paths"].values()
        for operation in path.values()
        for code in operation["responses"]
    ]
    assert "422" not in responses
    assert NOW.year == 2026


def test_the_cli_prints_a_scheduler_with_the_api_s_keys_and_values(
    client_for: MakeClient,
    settings: Settings,
    engine: Engine,
    sources: FakeSources,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given schedulers with some history: csv-import paused, and a tick of import-processing triggered
    client = client_for(aggregator=database_aggregator(settings, engine, sources))
    for action, scheduler in (("pause", "csv-import"), ("trigger", "import-processing")):
        answer = client.post(
            "/api/admin/schedulers", headers=AUTH, json={"action": action, "schedulerId": scheduler}
        )
        assert answer.status_code == 200

    # When the API lists them, and `livedash schedulers list --json` does, on the same database
    api = {
        entry["id"]: entry for entry in client.get("/api/admin/schedulers", headers=AUTH).json()["schedulers"]
    }
    monkeypatch.setenv("DATABASE_URL", settings.database_url)
    monkeypatch.setenv("SCHEDULER_ENABLED", "true")
    clear_process_caches()
    try:
        listed = CliRunner().invoke(cli, ["schedulers", "list", "--json"], catch_exceptions=False)
    finally:
        get_engine().dispose()
        clear_process_caches()
    assert listed.exit_code == 0, listed.output

    # Then each scheduler of the CLI has exactly the API's keys, less the health verdict, with the same values
    # (the last success aside: the API also reads it from the worker pools' metrics)
    verdict = {"status", "healthy", "queueStats", "lagSeconds", "metricsEndpoint", "reasons"}
    printed = {entry["id"]: entry for entry in json.loads(listed.stdout)}
    assert list(printed) == list(api)
    for scheduler_id, entry in printed.items():
        assert set(entry) == set(api[scheduler_id]) - verdict
        assert {key: value for key, value in entry.items() if key != "lastSuccess"} == {
            key: api[scheduler_id][key] for key in entry if key != "lastSuccess"
        }
    assert printed["csv-import"]["control"] == "PAUSED"
    assert printed["import-processing"]["lastTickOutcome"] is not None
