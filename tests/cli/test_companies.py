"""``livedash companies``: operators add, list, suspend and activate tenants."""

from __future__ import annotations

import json
import uuid

from typer.testing import CliRunner

from pipeline.cli import app
from tests.cli.conftest import Invoke


def test_add_prints_the_new_id_and_list_shows_the_company(livedash: Invoke) -> None:
    # Given an empty database
    # When a company is added with credentials, a region and a time zone
    added = livedash(
        "companies",
        "add",
        "--name",
        "Jumbo",
        "--csv-url",
        "https://proto.example/jumbo/chats",
        "--username",
        "jumbo",
        "--password",
        "hunter2",
        "--region",
        "eu",
        "--timezone",
        "Europe/Amsterdam",
    )

    # Then it prints just the new id
    assert added.exit_code == 0
    company_id = added.stdout.strip()
    assert uuid.UUID(company_id)

    # And the JSON listing shows it, ACTIVE, without ever showing the password
    listed = livedash("companies", "list", "--json")
    assert listed.exit_code == 0
    [company] = json.loads(listed.stdout)
    assert company["id"] == company_id
    assert company["status"] == "ACTIVE"
    assert company["region"] == "eu"
    assert company["timezone"] == "Europe/Amsterdam"
    assert company["hasPassword"] is True
    assert "hunter2" not in listed.stdout
    assert "hunter2" not in livedash("companies", "list").stdout


def test_suspend_and_activate_change_the_status(livedash: Invoke) -> None:
    # Given a company
    company_id = livedash(
        "companies", "add", "--name", "Acme", "--csv-url", "http://acme.example/s.csv"
    ).stdout.strip()

    # When it is suspended, then activated
    suspended = livedash("companies", "suspend", company_id)
    status_after_suspend = json.loads(livedash("companies", "list", "--json").stdout)[0]["status"]
    activated = livedash("companies", "activate", company_id)
    status_after_activate = json.loads(livedash("companies", "list", "--json").stdout)[0]["status"]

    # Then each command succeeds and the status follows
    assert (suspended.exit_code, activated.exit_code) == (0, 0)
    assert (status_after_suspend, status_after_activate) == ("SUSPENDED", "ACTIVE")


def test_an_unknown_id_is_one_clear_line_and_exit_code_3(livedash: Invoke) -> None:
    for company_id in (str(uuid.uuid4()), "not-a-uuid"):
        # When an unknown company is suspended
        result = livedash("companies", "suspend", company_id)

        # Then the command says so in one line and exits with 3, not found
        assert result.exit_code == 3
        assert result.stderr.strip() == f"error: no company with id {company_id!r}"


def test_a_bad_url_is_refused_with_the_reason(livedash: Invoke) -> None:
    for url in ("ftp://example.com/sessions.csv", "not a url", "https://"):
        # When a company is added with a URL that is not http(s) with a host
        result = livedash("companies", "add", "--name", "Acme", "--csv-url", url)

        # Then it is refused in one line naming the option, with exit code 2, and nothing is stored
        assert result.exit_code == 2, url
        assert result.stderr.startswith("error: --csv-url:"), result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
    assert json.loads(livedash("companies", "list", "--json").stdout) == []


def test_an_unknown_timezone_is_refused(livedash: Invoke) -> None:
    result = livedash(
        "companies",
        "add",
        "--name",
        "Acme",
        "--csv-url",
        "https://a.example/s.csv",
        "--timezone",
        "Mars/Olympus",
    )

    assert result.exit_code == 2
    assert "--timezone" in result.stderr


def test_help_lists_the_command_groups(livedash: Invoke) -> None:
    result = livedash("--help")

    assert result.exit_code == 0
    for group in ("db", "companies", "devtools", "schedulers", "imports", "status"):
        assert group in result.stdout


def test_delete_asks_for_confirmation_and_removes_the_company(livedash: Invoke) -> None:
    # Given a company
    company_id = livedash(
        "companies", "add", "--name", "Acme", "--csv-url", "http://acme.example/s.csv"
    ).stdout.strip()
    runner = CliRunner()

    # When its deletion is not confirmed, then it is aborted and the company stays
    refused = runner.invoke(app, ["companies", "delete", company_id], input="n\n")
    assert refused.exit_code == 1
    assert "Aborted" in refused.output
    assert len(json.loads(livedash("companies", "list", "--json").stdout)) == 1

    # When it is confirmed, then the company is gone
    confirmed = runner.invoke(app, ["companies", "delete", company_id], input="y\n")
    assert confirmed.exit_code == 0, confirmed.output
    assert f"deleted {company_id}" in confirmed.output
    assert json.loads(livedash("companies", "list", "--json").stdout) == []

    # And an unknown id is not found
    assert livedash("companies", "delete", company_id, "--yes").exit_code == 3


def test_budget_sets_shows_and_clears_a_monthly_budget(livedash: Invoke) -> None:
    # Given a company
    company_id = livedash(
        "companies", "add", "--name", "Acme", "--csv-url", "http://acme.example/s.csv"
    ).stdout.strip()

    # When a budget is set, then shown, then removed
    set_ = livedash("companies", "budget", company_id, "--monthly", "25.00")
    shown = livedash("companies", "budget", company_id)
    cleared = livedash("companies", "budget", company_id, "--none")

    # Then each says the budget and this month's use
    assert set_.exit_code == 0 and "monthly budget 25.00 EUR" in set_.stdout
    assert "monthly budget 25.00 EUR; this month spent 0.00 EUR, reserved 0.00 EUR" in shown.stdout
    assert cleared.exit_code == 0 and "monthly budget unlimited" in cleared.stdout


def test_a_bad_budget_is_refused_with_the_reason(livedash: Invoke) -> None:
    company_id = livedash(
        "companies", "add", "--name", "Acme", "--csv-url", "http://acme.example/s.csv"
    ).stdout.strip()
    for amount in ("-1", "lots", "1.001"):
        result = livedash("companies", "budget", company_id, "--monthly", amount)
        assert result.exit_code == 2
        assert repr(amount) in result.stderr


def test_status_shows_each_budget_and_whether_it_is_reached(livedash: Invoke) -> None:
    # Given a company with a budget of 0.00 EUR, one with 10.00 EUR and one without a budget
    ids = [
        livedash("companies", "add", "--name", name, "--csv-url", "http://acme.example/s.csv").stdout.strip()
        for name in ("Acme", "Globex", "Initech")
    ]
    livedash("companies", "budget", ids[0], "--monthly", "0")
    livedash("companies", "budget", ids[1], "--monthly", "10.00")

    # When the status is shown
    shown = json.loads(livedash("status", "--json").stdout)["budgets"]

    # Then the limited companies are listed with their state; the unlimited one, which spent nothing, is not
    assert [(row["company"], row["monthlyEur"], row["state"]) for row in shown] == [
        ("Acme", "0.00", "budget reached"),
        ("Globex", "10.00", "ok"),
    ]
    assert "budget reached" in livedash("status").stdout
