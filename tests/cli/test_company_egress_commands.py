"""``livedash companies add/update``: credentials without user info in URLs, passwords off the command line,
and each company's egress settings (transcript origins, plain http, private networks)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from pipeline.cli import app
from pipeline.db.engine import get_session_factory
from pipeline.db.models import Company
from pipeline.db.secrets import PasswordBox
from tests.cli.conftest import Invoke

ADD = ("companies", "add", "--name", "Acme", "--csv-url", "https://acme.example/s.csv", "--username", "acme")


def run(*args: str, **kwargs: Any) -> Result:
    return CliRunner().invoke(app, list(args), catch_exceptions=False, **kwargs)


def stored_password() -> str:
    with get_session_factory()() as db:
        [company] = db.query(Company).all()
        assert company.csv_password_encrypted is not None
        return PasswordBox("cli-test-secret").decrypt(company.csv_password_encrypted)


def listed(livedash: Invoke) -> dict[str, Any]:
    [company] = json.loads(livedash("companies", "list", "--json").stdout)
    return dict(company)


@pytest.mark.parametrize(
    "url",
    [
        "https://acme:hunter2@acme.example/s.csv",
        "https://acme@acme.example/s.csv",
        "http://:hunter2@a.example/",
    ],
)
def test_a_url_with_user_info_is_refused_and_points_to_the_options(livedash: Invoke, url: str) -> None:
    # When a company is added with credentials in its URL
    result = livedash("companies", "add", "--name", "Acme", "--csv-url", url)

    # Then it is refused with a pointer to --username and the password options, without echoing the password
    assert result.exit_code == 2
    assert "user info" in result.stderr
    assert "--username" in result.stderr and "--password" in result.stderr
    assert "hunter2" not in result.output
    # And nothing is stored
    assert json.loads(livedash("companies", "list", "--json").stdout) == []


def test_the_password_can_come_from_standard_input(livedash: Invoke) -> None:
    result = run(*ADD, "--password-stdin", input="hunter2\n")

    assert result.exit_code == 0, result.output
    assert stored_password() == "hunter2"


def test_the_password_can_come_from_a_hidden_prompt(livedash: Invoke) -> None:
    result = run(*ADD, "--password-prompt", input="hunter2\nhunter2\n")

    assert result.exit_code == 0, result.output
    assert stored_password() == "hunter2"
    assert "hunter2" not in result.output


def test_the_password_can_come_from_an_environment_variable(livedash: Invoke) -> None:
    result = run(*ADD, env={"LIVEDASH_CSV_PASSWORD": "hunter2"})

    assert result.exit_code == 0, result.output
    assert stored_password() == "hunter2"


def test_two_password_sources_are_refused(livedash: Invoke) -> None:
    result = run(*ADD, "--password", "hunter2", "--password-stdin", input="other\n")

    assert result.exit_code == 2
    assert "exclude each other" in result.stderr


def test_the_password_option_warns_that_other_users_see_it(livedash: Invoke) -> None:
    result = run("companies", "add", "--help", env={"COLUMNS": "300"})

    assert "visible to other local users" in result.stdout


def test_credentials_over_plain_http_need_allow_http(livedash: Invoke) -> None:
    # Given an http CSV URL with credentials
    args = ("companies", "add", "--name", "Acme", "--csv-url", "http://acme.example/s.csv", "--username", "a")

    # When it is added without, then with --allow-http
    refused = livedash(*args, "--password", "hunter2")
    allowed = livedash(*args, "--password", "hunter2", "--allow-http")

    # Then only the second is stored
    assert refused.exit_code == 2
    assert "plain http" in refused.stderr and "--allow-http" in refused.stderr
    assert allowed.exit_code == 0
    assert listed(livedash)["allowHttp"] is True


def test_update_sets_and_clears_the_egress_settings(livedash: Invoke) -> None:
    # Given a company with default egress settings
    company_id = livedash(*ADD, "--password", "hunter2").stdout.strip()
    assert listed(livedash)["transcriptOrigins"] == []
    assert listed(livedash)["allowPrivateNetworks"] is None

    # When transcript origins and a private-network rule are set
    updated = livedash(
        "companies",
        "update",
        company_id,
        "--transcript-origin",
        "https://CDN.acme.example/",
        "--transcript-origin",
        "https://files.acme.example:8443",
        "--private-networks",
        "allow",
    )

    # Then they are stored, normalised
    assert updated.exit_code == 0, updated.output
    company = listed(livedash)
    assert company["transcriptOrigins"] == ["https://cdn.acme.example", "https://files.acme.example:8443"]
    assert company["allowPrivateNetworks"] is True

    # When the origins are cleared and the rule goes back to the default
    livedash("companies", "update", company_id, "--no-transcript-origins", "--private-networks", "default")

    # Then the company sends its credentials to its CSV origin only, under the global rule
    company = listed(livedash)
    assert company["transcriptOrigins"] == []
    assert company["allowPrivateNetworks"] is None


def test_update_refuses_a_bad_origin_and_a_url_with_user_info(livedash: Invoke) -> None:
    company_id = livedash(*ADD).stdout.strip()

    bad_origin = livedash(
        "companies", "update", company_id, "--transcript-origin", "https://cdn.example/chats"
    )
    user_info = livedash("companies", "update", company_id, "--csv-url", "https://a:hunter2@acme.example/")

    assert (bad_origin.exit_code, user_info.exit_code) == (2, 2)
    assert bad_origin.stderr.startswith("error: --transcript-origin:")
    assert "hunter2" not in user_info.output
    assert listed(livedash)["csvUrl"] == "https://acme.example/s.csv"


def test_update_changes_the_password_from_standard_input(livedash: Invoke) -> None:
    company_id = livedash(*ADD, "--password", "old").stdout.strip()

    result = run("companies", "update", company_id, "--password-stdin", input="new\n")

    assert result.exit_code == 0, result.output
    assert stored_password() == "new"


def test_a_stored_url_with_user_info_is_listed_without_it(livedash: Invoke) -> None:
    # Given a company stored before URLs with user info were refused
    with get_session_factory().begin() as db:
        db.add(Company(name="Old", csv_url="https://acme:hunter2@acme.example/s.csv"))

    # When the companies are listed
    result = livedash("companies", "list", "--json")

    # Then the password is not shown
    assert "hunter2" not in result.stdout
    assert listed(livedash)["csvUrl"] == "https://acme.example/s.csv"
