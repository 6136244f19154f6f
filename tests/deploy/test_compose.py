"""compose/docker-compose.yml: valid for the Compose specification, and the stack the architecture describes.

Docker does not run here, so the file is checked the way Compose reads it: YAML merge keys resolved, variables
interpolated (with their defaults, or from compose/demo.env), then validated against the official Compose
specification schema (tests/deploy/schemas/compose-spec.json).
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.deploy.artifacts import (
    COMPOSE_DIR,
    DEMO_ENV,
    POOLS,
    REPO,
    compose_file,
    compose_schema_validator,
    compose_services,
    container_path,
    env_assignments,
)

#: Services built from this repository's Dockerfile (they run `livedash ...`).
PIPELINE_IMAGE = "livedash-pipeline:local"
#: Pipeline services that must not wait for the migration (they do not touch the database).
INDEPENDENT_OF_THE_DATABASE = {"migrate", "demo-data", "demo-source", "openai-emulator"}


def pipeline_services(services: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {name: s for name, s in services.items() if s.get("image") == PIPELINE_IMAGE}


@pytest.mark.parametrize(
    "variables",
    [{}, env_assignments(DEMO_ENV)],
    ids=["defaults", "demo.env"],
)
def test_the_compose_file_follows_the_compose_specification(variables: dict[str, str]) -> None:
    # Given the compose file interpolated as `docker compose config` would (no .env, or the demo's)
    document = compose_file(variables)

    # When it is validated against the official Compose specification schema
    errors = sorted(compose_schema_validator().iter_errors(document), key=lambda e: list(e.absolute_path))

    # Then there is no error
    assert [f"{list(e.absolute_path)}: {e.message}" for e in errors] == []


def test_the_schema_check_rejects_what_compose_rejects() -> None:
    # Given the stack with a typo in a service key and a bad depends_on condition
    document = compose_file()
    document["services"]["csv-import"]["comand"] = ["worker"]
    document["services"]["scheduler"]["depends_on"] = {"migrate": {"condition": "service_done"}}

    # When it is validated
    errors = list(compose_schema_validator().iter_errors(document))

    # Then both mistakes are reported
    assert len(errors) == 2


def test_there_is_one_scalable_service_per_worker_pool() -> None:
    # Given the services of the stack
    services = compose_services()

    for pool in POOLS:
        service = services[pool]
        # Then each pool runs `livedash worker --scheduler <pool>` from the pipeline image
        assert service["image"] == PIPELINE_IMAGE
        assert service["command"] == ["worker", "--scheduler", pool]
        # And `docker compose up --scale <pool>=N` works: no fixed container name, no host port
        assert "container_name" not in service, pool
        assert "ports" not in service, pool
        # And a stopped replica may finish its in-flight messages (WORKER_SHUTDOWN_GRACE_SECONDS is 600)
        assert service["stop_grace_period"] == "660s"


def test_every_pipeline_service_starts_after_the_one_shot_migration() -> None:
    # Given the migration service
    services = compose_services()
    migrate = services["migrate"]

    # Then it runs `livedash db upgrade` once, after PostgreSQL is healthy
    assert migrate["command"] == ["db", "upgrade"]
    assert migrate["restart"] == "no"
    assert migrate["depends_on"] == {"postgres": {"condition": "service_healthy"}}

    # And every other service that uses the database waits for it to complete successfully, and for RabbitMQ
    for name, service in pipeline_services(services).items():
        if name in INDEPENDENT_OF_THE_DATABASE:
            continue
        depends_on = service["depends_on"]
        assert depends_on["migrate"] == {"condition": "service_completed_successfully"}, name
        assert depends_on["rabbitmq"] == {"condition": "service_healthy"}, name


def test_the_scheduler_runs_two_replicas_and_the_health_api_listens_on_3000() -> None:
    services = compose_services()

    # The scheduler: `livedash scheduler`, two replicas (each tick is enqueued once whatever their number)
    assert services["scheduler"]["command"] == ["scheduler"]
    assert services["scheduler"]["deploy"]["replicas"] == 2
    assert "container_name" not in services["scheduler"]

    # The health API: `livedash health` on port 3000, checked on /healthz, reading metrics from Prometheus
    health = services["health"]
    assert health["command"] == ["health"]
    assert health["ports"] == ["127.0.0.1:3000:3000"]
    assert "http://127.0.0.1:3000/healthz" in " ".join(health["healthcheck"]["test"])
    assert health["environment"]["PROMETHEUS_URL"] == "http://prometheus:9090"


def test_pipeline_containers_reach_the_stacks_own_database_and_broker() -> None:
    # Given the default credentials of the stack
    services = compose_services()

    for name, service in pipeline_services(services).items():
        environment = service["environment"]
        # Then every pipeline container talks to the postgres and rabbitmq services
        assert environment["DATABASE_URL"] == "postgresql://livedash:livedash@postgres:5432/livedash", name
        assert environment["RABBITMQ_URL"] == "amqp://livedash:livedash@rabbitmq:5672/%2F", name
        assert environment["RABBITMQ_MANAGEMENT_URL"] == "http://livedash:livedash@rabbitmq:15672", name
        # And reads its settings from compose/.env when there is one
        assert service["env_file"] == [{"path": ".env", "required": False}], name

    # And RabbitMQ and PostgreSQL are created with those credentials
    assert services["rabbitmq"]["environment"] == {
        "RABBITMQ_DEFAULT_USER": "livedash",
        "RABBITMQ_DEFAULT_PASS": "livedash",
    }
    assert services["postgres"]["environment"]["POSTGRES_PASSWORD"] == "livedash"


def test_rabbitmq_runs_with_the_management_and_prometheus_plugins() -> None:
    rabbitmq = compose_services()["rabbitmq"]

    # Given RabbitMQ 4 with the management UI
    assert rabbitmq["image"] == "rabbitmq:4-management"

    # When its plugins file is the mounted compose/rabbitmq/enabled_plugins
    mounted = container_path(rabbitmq, "/etc/rabbitmq/enabled_plugins")
    assert mounted == COMPOSE_DIR / "rabbitmq" / "enabled_plugins"

    # Then it is an Erlang list that enables both plugins
    text = mounted.read_text().strip()
    assert re.fullmatch(r"\[[a-z_, ]+\]\.", text), text
    assert set(text.strip("[].").replace(" ", "").split(",")) == {
        "rabbitmq_management",
        "rabbitmq_prometheus",
    }


def test_postgresql_15_keeps_its_data_in_a_named_volume() -> None:
    document = compose_file()
    postgres = document["services"]["postgres"]

    assert postgres["image"] == "postgres:15"
    assert "postgres-data:/var/lib/postgresql/data" in postgres["volumes"]
    assert "postgres-data" in document["volumes"]


def test_prometheus_and_grafana_mount_the_observability_files() -> None:
    services = compose_services()
    observability = REPO / "observability"

    # Prometheus: its configuration and the alert rules, at the paths prometheus.yml names
    prometheus = services["prometheus"]
    assert container_path(prometheus, "/etc/prometheus/prometheus.yml") == (
        observability / "prometheus" / "prometheus.yml"
    )
    assert (
        container_path(prometheus, "/etc/prometheus/alerts.yml")
        == observability / "prometheus" / "alerts.yml"
    )
    assert "--config.file=/etc/prometheus/prometheus.yml" in prometheus["command"]

    # Grafana: provisioning (data sources, dashboard providers) and the dashboards' JSON
    grafana = services["grafana"]
    assert container_path(grafana, "/etc/grafana/provisioning") == observability / "grafana" / "provisioning"
    assert container_path(grafana, "/etc/grafana/dashboards") == observability / "grafana" / "dashboards"


def test_every_bind_mounted_file_exists() -> None:
    # A missing source would make Docker create an empty directory in its place, and the service fail.
    for name, service in compose_services().items():
        for volume in service.get("volumes", []):
            source = str(volume).split(":")[0]
            if source.startswith("."):
                assert (COMPOSE_DIR / source).exists(), f"{name}: {source} does not exist"


def test_the_demo_profile_adds_the_data_source_and_the_openai_emulator() -> None:
    services = compose_services()
    demo = {name for name, service in services.items() if "demo" in service.get("profiles", [])}

    # The demo's services exist only in the demo profile; everything else runs without a profile
    assert demo == {"demo-data", "demo-source", "openai-emulator", "demo-companies"}
    assert all("profiles" not in service for name, service in services.items() if name not in demo)

    # The data set's URLs point at the source service, which serves it on every address of its container
    generate = services["demo-data"]["command"]
    assert generate[:2] == ["devtools", "generate"]
    assert generate[generate.index("--base-url") + 1] == "http://demo-source:8765"
    assert services["demo-source"]["command"] == [
        "devtools",
        "source",
        "--dir",
        "/app/data",
        "--host",
        "0.0.0.0",
        "--port",
        "8765",
    ]
    assert services["openai-emulator"]["command"][:6] == [
        "devtools",
        "openai",
        "--host",
        "0.0.0.0",
        "--port",
        "8766",
    ]


def test_demo_env_turns_on_the_demo_and_points_the_pipeline_at_it() -> None:
    # Given compose/demo.env, the --env-file of the offline demo
    demo = env_assignments(DEMO_ENV)

    # Then it turns on the profile and hands itself to the pipeline containers
    assert demo["COMPOSE_PROFILES"] == "demo"
    assert demo["LIVEDASH_ENV_FILE"] == "demo.env"
    services = compose_services(demo)
    assert services["csv-import"]["env_file"] == [{"path": "demo.env", "required": False}]

    # And the pipeline uses the emulator and may fetch from the stack's private network
    assert demo["OPENAI_BASE_URL"] == "http://openai-emulator:8766/v1"
    assert demo["CSV_ALLOW_PRIVATE_NETWORKS"] == "true"
    assert demo["SECRET_KEY"], "company passwords cannot be stored without SECRET_KEY"
