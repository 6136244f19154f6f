"""The settings: defaults, and start-up refusing bad values with the variable and the reason."""

from __future__ import annotations

import subprocess
import sys
import uuid

import pytest

from pipeline.settings import CompaniesFilter, Settings, SettingsError, load_settings


def test_defaults_follow_the_seed() -> None:
    # Given an environment that sets nothing
    # When the settings are read
    settings = Settings(_env_file=None)

    # Then the default cadences and sizes apply
    assert settings.csv_import_interval == "*/10 * * * *"
    assert settings.import_processing_interval == "*/2 * * * *"
    assert settings.session_processing_interval == "*/5 * * * *"
    assert settings.batch_processing_interval == "*/5 * * * *"
    assert settings.batch_processing_check_interval == "*/2 * * * *"
    assert (settings.csv_import_batch_size, settings.csv_import_max_concurrent) == (10, 5)
    assert settings.csv_import_timeout == 300_000
    assert settings.openai_model == "gpt-4o"
    # And an unset DATABASE_URL means a local SQLite file
    assert settings.is_sqlite


def test_settings_are_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given the scheduler variables in the environment
    monkeypatch.setenv("CSV_IMPORT_INTERVAL", "*/15 * * * *")
    monkeypatch.setenv("SESSION_PROCESSING_BATCH_SIZE", "200")
    monkeypatch.setenv("CSV_COMPANIES_FILTER", "region:eu")

    # When the settings are read
    settings = load_settings()

    # Then they win over the defaults
    assert settings.csv_import_interval == "*/15 * * * *"
    assert settings.session_processing_batch_size == 200
    assert settings.csv_companies_filter == CompaniesFilter(region="eu")


def test_a_companies_filter_by_id_is_parsed_once_into_ids(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a filter naming two companies, with spaces around the second id
    first, second = uuid.uuid4(), uuid.uuid4()
    monkeypatch.setenv("CSV_COMPANIES_FILTER", f"id:{first}, {second} ")

    # When the settings are read, then the filter holds the two ids, parsed
    assert load_settings().csv_companies_filter == CompaniesFilter(ids=(first, second))


@pytest.mark.parametrize(
    ("variable", "value", "reason"),
    [
        ("CSV_IMPORT_INTERVAL", "61 * * * *", "invalid cron expression"),
        ("BATCH_PROCESSING_CHECK_INTERVAL", "every two minutes", "invalid cron expression"),
        ("CSV_IMPORT_BATCH_SIZE", "-3", "greater than or equal to 1"),
        ("SESSION_PROCESSING_CONCURRENCY", "0", "greater than or equal to 1"),
        ("AI_PROCESSING_MODE", "sometimes", "'batch' or 'sync'"),
        ("BATCH_MAX_REQUESTS", "60000", "less than or equal to 50000"),
        ("SCHEDULER_TIMEZONE", "Mars/Olympus", "unknown time zone"),
        ("CSV_COMPANIES_FILTER", "europe", "expected 'region:<name>'"),
        ("CSV_COMPANIES_FILTER", "id:not-a-uuid", "'not-a-uuid' is not a company id"),
        ("CSV_COMPANIES_FILTER", "region:", "expected 'region:<name>'"),
        ("ACTOR_TIME_LIMIT_MS", "3600000", "must stay below RABBITMQ_CONSUMER_TIMEOUT_MS"),
        ("TRANSCRIPT_MAX_BYTES", "67108864", "must not exceed IMPORT_PROCESSING_MAX_CHUNK_BYTES"),
        ("AI_QUESTION_MAX_CHARS", "601", "less than or equal to 600"),
        ("OPENAI_MAX_PROMPT_TOKENS", "500", "greater than or equal to 2000"),
    ],
)
def test_a_bad_value_names_the_variable_and_the_reason(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, reason: str
) -> None:
    # Given one bad value in the environment
    monkeypatch.setenv(variable, value)

    # When the settings are read
    with pytest.raises(SettingsError) as raised:
        load_settings()

    # Then the error names the variable and why it is wrong
    assert variable in str(raised.value)
    assert reason in str(raised.value)


def test_the_cli_refuses_to_start_on_a_bad_value() -> None:
    # Given a bad cron string in the environment of the real console script
    env = {"CSV_IMPORT_INTERVAL": "* * *", "PATH": ""}

    # When any command starts
    result = subprocess.run(
        [sys.executable, "-c", "from pipeline.cli import main; main()", "companies", "list"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    # Then it stops with exit code 2 and one message naming the variable
    assert result.returncode == 2
    assert "CSV_IMPORT_INTERVAL" in result.stderr
    assert "Traceback" not in result.stderr
