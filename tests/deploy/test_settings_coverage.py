"""Every setting the code reads reaches both deployments: compose/.env.example lists it with its default, and
the Kubernetes base puts it in the ConfigMap or the Secret.

The list of settings comes from the code (``pipeline.settings.Settings.model_fields``), so a setting added
later fails these tests until the deployment files name it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from pipeline.settings import Settings
from tests.deploy.artifacts import (
    BASE,
    COMPOSE_FILE,
    DEMO_ENV,
    DEPLOY,
    ENV_EXAMPLE,
    Resource,
    commented_assignments,
    containers,
    default_settings,
    env_assignments,
    env_of,
    has_static_default,
    interpolated_variables,
    one,
    render,
    setting_names,
)

DOCS = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"

#: Settings that carry credentials: they belong in the Secret, never in the ConfigMap.
CREDENTIALS = {"DATABASE_URL", "RABBITMQ_URL", "RABBITMQ_MANAGEMENT_URL", "SECRET_KEY_FALLBACKS"} | {
    name.upper() for name, field in Settings.model_fields.items() if field.annotation is SecretStr
}
#: Where the Kubernetes base deliberately differs from the code's default, and why.
KUBERNETES_CHOICES = {"LOG_FORMAT": "json"}  # one JSON object per line, for the cluster's log collector
#: Variables Docker Compose itself reads from the env file.
COMPOSE_CLI_VARIABLES = {"COMPOSE_PROFILES"}


@pytest.fixture
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """No setting comes from the test process's own environment."""
    for name in setting_names():
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    yield monkeypatch


def comparable(settings: Settings) -> dict[str, object]:
    """Every field but the per-process instance id."""
    return settings.model_dump(exclude={"scheduler_instance_id"})


def documented_groups() -> list[tuple[str, list[str]]]:
    """docs/configuration.md's sections and the variables of each, in order."""
    groups: list[tuple[str, list[str]]] = []
    for line in DOCS.read_text().splitlines():
        if line.startswith("## "):
            groups.append((line[3:], []))
        elif match := re.match(r"^\| `([A-Z0-9_]+)` \|", line):
            groups[-1][1].append(match[1])
    return [(title, names) for title, names in groups if names]


# --- compose/.env.example ---------------------------------------------------------------------------------


def test_env_example_lists_every_setting_with_its_default_or_commented_out_when_it_has_none() -> None:
    # Given the settings the code reads, and the example's active and commented-out lines
    active = env_assignments(ENV_EXAMPLE)
    commented = commented_assignments(ENV_EXAMPLE)

    for name in setting_names():
        # Then a setting with one default is an active line; one that is unset or computed per process is a
        # commented-out line (an empty value is not "unset": OPENAI_BASE_URL= would be an empty base URL)
        if has_static_default(name):
            assert name in active, f"{name} is missing from compose/.env.example"
        else:
            assert name in commented and name not in active, f"{name} must be a commented-out line"


def test_env_example_values_are_the_code_defaults(clean_environment: pytest.MonkeyPatch) -> None:
    # When the pipeline reads compose/.env.example as its .env file
    from_example = Settings(_env_file=ENV_EXAMPLE)

    # Then it gets exactly the defaults it has without the file
    assert comparable(from_example) == comparable(default_settings())


def test_env_example_follows_the_groups_of_the_configuration_docs() -> None:
    # Given the example's settings in file order, and its section headings
    text = ENV_EXAMPLE.read_text()
    names = set(setting_names())
    in_file = [
        match[1]
        for line in text.splitlines()
        if (match := re.match(r"^#?\s*([A-Z][A-Z0-9_]*)=", line)) and match[1] in names
    ]
    headings = re.findall(r"^# === (.+?) =+$", text, flags=re.MULTILINE)

    # Then they come in the order and under the headings of docs/configuration.md
    groups = documented_groups()
    assert in_file == [name for _title, group in groups for name in group]
    assert [h for h in headings if h in {title for title, _ in groups}] == [title for title, _ in groups]


def test_every_name_in_the_env_files_is_a_setting_or_a_variable_of_the_compose_file() -> None:
    # Given the variables docker-compose.yml interpolates
    compose_variables = interpolated_variables(COMPOSE_FILE.read_text())
    settings = set(setting_names())

    # Then the env files name nothing else (a typo would be silently ignored by the pipeline)
    for path in (ENV_EXAMPLE, DEMO_ENV):
        unknown = set(env_assignments(path)) - settings - compose_variables - COMPOSE_CLI_VARIABLES
        assert unknown == set(), f"{path.name}: {sorted(unknown)}"

    # And every variable of the compose file is explained in the example, set or commented out
    explained = set(env_assignments(ENV_EXAMPLE)) | commented_assignments(ENV_EXAMPLE)
    assert compose_variables - explained == set()


def test_demo_env_is_a_valid_configuration(clean_environment: pytest.MonkeyPatch) -> None:
    # When the pipeline reads compose/demo.env
    demo = Settings(_env_file=DEMO_ENV)

    # Then it starts (no validation error) with the demo's choices
    assert demo.openai_base_url == "http://openai-emulator:8766/v1"
    assert demo.csv_allow_private_networks is True
    assert demo.batch_min_requests == 1


# --- Kubernetes: ConfigMap and Secret ---------------------------------------------------------------------


def configmap(resources: list[Resource]) -> dict[str, str]:
    data: dict[str, str] = one(resources, "ConfigMap", "livedash-config-")["data"]
    return data


def secret_keys(resources: list[Resource]) -> set[str]:
    return set(one(resources, "Secret", "livedash-secrets-")["data"])


def test_every_setting_is_in_the_configmap_or_the_secret_of_the_base() -> None:
    # Given the base's rendered ConfigMap and Secret
    resources = render("base")
    in_configmap, in_secret = set(configmap(resources)), secret_keys(resources)
    documented_unset = commented_assignments(BASE / "config.env")

    for name in setting_names():
        if has_static_default(name):
            # Then each setting with a default is in exactly one of them
            assert (name in in_configmap) != (name in in_secret), f"{name}: in the ConfigMap or the Secret"
        elif Settings.model_fields[name.lower()].default_factory is not None:
            # A per-process default (SCHEDULER_INSTANCE_ID) is set per pod, from the pod's name
            for deployment in (r for r in resources if r["kind"] == "Deployment"):
                for container in containers(deployment):
                    assert name in env_of(container), f"{deployment['metadata']['name']} does not set {name}"
        else:
            # An unset-by-default setting is named in config.env for the overlays to set
            assert name in documented_unset or name in in_configmap, f"{name} is missing from config.env"

    # And nothing else: a name the code does not read would be silently ignored
    assert (in_configmap | in_secret) - set(setting_names()) == set()


def test_credentials_are_only_in_the_secret() -> None:
    resources = render("base")
    assert secret_keys(resources) >= CREDENTIALS
    assert CREDENTIALS.isdisjoint(configmap(resources))
    assert secret_keys(resources) == CREDENTIALS


def test_the_configmap_holds_the_code_defaults_except_the_deliberate_choices(
    clean_environment: pytest.MonkeyPatch,
) -> None:
    # Given the code's defaults with the choices made for Kubernetes
    expected = default_settings().model_copy(update={k.lower(): v for k, v in KUBERNETES_CHOICES.items()})

    # When the pipeline starts with the base ConfigMap as its environment
    for name, value in configmap(render("base")).items():
        clean_environment.setenv(name, value)
    configured = Settings(_env_file=None)

    # Then every value is valid, and it is that configuration
    assert comparable(configured) == comparable(expected)


@pytest.mark.parametrize(
    "path",
    [
        BASE / "secrets.env",
        DEPLOY / "overlays/example/secrets.example.env",
        DEPLOY / "overlays/region-eu/secrets.example.env",
    ],
    ids=["base", "example", "region-eu"],
)
def test_every_secrets_file_holds_exactly_the_credentials(
    path: Path, clean_environment: pytest.MonkeyPatch
) -> None:
    # Given a secrets file of the base or an overlay
    assert set(env_assignments(path)) == CREDENTIALS

    # Then the pipeline accepts it, with PostgreSQL and RabbitMQ URLs
    settings = Settings(_env_file=path)
    assert settings.database_url.startswith("postgresql://")
    assert settings.rabbitmq_url.startswith("amqp://")
    assert settings.rabbitmq_management_url.startswith("http://")
