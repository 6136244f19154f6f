"""Start-up refuses placeholder and short secrets outside development mode, and the shipped examples with
their placeholders are refused."""

from __future__ import annotations

import base64
import os
import subprocess
import sys

import pytest

from pipeline.settings import SettingsError, load_settings, refuse_weak_secrets
from tests.deploy.artifacts import one, render

STRONG = "k" * 32


@pytest.mark.parametrize(
    ("variable", "value", "why"),
    [
        ("admin_api_token", "change-me", "ADMIN_API_TOKEN is a placeholder"),
        ("secret_key", "change-me", "SECRET_KEY is a placeholder"),
        ("secret_key", "change-me-" + "x" * 40, "SECRET_KEY is a placeholder"),
        ("admin_api_token", "x" * 31, "ADMIN_API_TOKEN is shorter than 32 characters"),
    ],
)
def test_a_weak_secret_is_refused_naming_the_variable_not_its_value(
    variable: str, value: str, why: str
) -> None:
    # Given the other secret strong and this one weak
    settings = load_settings(**{"admin_api_token": STRONG, "secret_key": STRONG, variable: value})

    # When start-up checks them
    with pytest.raises(SettingsError) as refused:
        refuse_weak_secrets(settings)

    # Then the message names the variable and never shows the value
    assert why in str(refused.value)
    assert value not in str(refused.value)


def test_strong_and_empty_secrets_start() -> None:
    # Empty: the admin API is off and no password can be stored, which is a choice, not a weakness
    refuse_weak_secrets(load_settings(admin_api_token=STRONG, secret_key=STRONG))
    refuse_weak_secrets(load_settings(admin_api_token="", secret_key=""))


def test_development_mode_accepts_weak_secrets() -> None:
    refuse_weak_secrets(load_settings(admin_api_token="dev", secret_key="change-me", development_mode=True))


@pytest.mark.parametrize("overlay", ["base", "overlays/example", "overlays/region-eu"])
def test_the_shipped_kubernetes_secrets_are_refused_at_start_up(overlay: str) -> None:
    # Given the Secret and ConfigMap `kubectl apply -k deploy/<overlay>` would create, with their placeholders
    resources = render(overlay)
    secret = one(resources, "Secret", "livedash-secrets-")["data"]
    config = one(resources, "ConfigMap", "livedash-config-")["data"]
    environment = {name: base64.b64decode(value).decode() for name, value in secret.items()}
    names = ("admin_api_token", "secret_key", "development_mode")
    values = {name: {**config, **environment}[name.upper()] for name in names}

    # Then a service started with them refuses to
    with pytest.raises(SettingsError, match="ADMIN_API_TOKEN is a placeholder"):
        refuse_weak_secrets(load_settings(**values))


def test_the_health_service_refuses_to_start_with_a_placeholder_token() -> None:
    # When `livedash health` starts with ADMIN_API_TOKEN=change-me
    environment = {**os.environ, "ADMIN_API_TOKEN": "change-me", "DATABASE_URL": "sqlite:///unused.sqlite3"}
    environment.pop("DEVELOPMENT_MODE", None)
    result = subprocess.run(
        [sys.executable, "-m", "pipeline", "health", "--host", "127.0.0.1", "--port", "0"],
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    # Then it exits 2 before serving, saying why
    assert result.returncode == 2, result.stderr
    assert "ADMIN_API_TOKEN is a placeholder" in result.stderr
