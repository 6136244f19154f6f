"""`livedash schedulers trigger`, `livedash status` and `livedash imports errors` on the embedded setup."""

from __future__ import annotations

import csv
import io
import json

import pytest

from pipeline.demo.scenario import read_records
from tests.cli.conftest import Invoke, clear_process_caches
from tests.demo_source import Source


@pytest.fixture
def embedded(livedash: Invoke, monkeypatch: pytest.MonkeyPatch) -> Invoke:
    monkeypatch.setenv("BROKER", "memory")
    monkeypatch.setenv("CSV_ALLOW_PRIVATE_NETWORKS", "true")
    clear_process_caches()
    return livedash


def _add(livedash: Invoke, source: Source, index: int) -> str:
    company = source.company(index)
    result = livedash(
        "companies",
        "add",
        "--name",
        company.name,
        "--csv-url",
        source.csv_url(index),
        "--username",
        company.username,
        "--password",
        company.password,
        # The demo source serves plain http.
        "--allow-http",
    )
    assert result.exit_code == 0, result.output
    return result.stdout.strip()


def test_trigger_inline_imports_every_company_and_status_reports_it(embedded: Invoke, source: Source) -> None:
    # Given two companies served by the demo source
    first, second = _add(embedded, source, 0), _add(embedded, source, 1)

    # When the csv-import tick is triggered in this process
    triggered = embedded("schedulers", "trigger", "csv-import", "--inline")

    # Then both companies are imported
    assert triggered.exit_code == 0, triggered.output
    assert triggered.stdout.count("IMPORTED new=30") == 2
    # And the status shows each company's stored imports and last fetch
    companies = {row["id"]: row for row in json.loads(embedded("status", "--json").stdout)["companies"]}
    for company_id in (first, second):
        assert companies[company_id]["imports"] == 30
        assert companies[company_id]["lastFetch"]["outcome"] == "IMPORTED"
        assert companies[company_id]["lastFetch"]["httpStatus"] == 200


def test_row_errors_are_listed_with_their_line_and_reason(embedded: Invoke, source: Source) -> None:
    # Given a company whose CSV has a bad third line
    lines = source.csv_path(0).read_text().splitlines(keepends=True)
    lines[2] = ",no session id here\n"
    source.write_csv(0, "".join(lines))
    company_id = _add(embedded, source, 0)
    other = _add(embedded, source, 1)
    embedded("schedulers", "trigger", "csv-import", "--inline")

    # When the row errors of that company are listed
    listed = embedded("imports", "errors", "--company", company_id, "--json")

    # Then the bad line is there with its reason, and nothing of the other company
    assert listed.exit_code == 0
    [error] = json.loads(listed.stdout)
    assert error["line"] == 3
    assert error["reason"].startswith("column 0 (externalSessionId)")
    assert json.loads(embedded("imports", "errors", "--company", other, "--json").stdout) == []


def test_field_warnings_are_listed_and_counted_in_the_status(embedded: Invoke, source: Source) -> None:
    # Given a company whose CSV has a Latin-1 initial message on line 2 and a token count of "lots" on line 4
    records = read_records(source.csv_path(0))
    records[3][12] = "lots"
    records[1][15] = "caf\udce9"  # the byte 0xE9 alone: "é" in Latin-1, invalid UTF-8
    text = io.StringIO()
    csv.writer(text, lineterminator="\n").writerows(records)
    body = text.getvalue().encode("utf-8", "surrogateescape")
    source.write_csv(0, body)
    company_id = _add(embedded, source, 0)
    embedded("schedulers", "trigger", "csv-import", "--inline")

    # When the warnings are listed, and the status asked for
    listed = embedded("imports", "errors", "--company", company_id, "--kind", "warning", "--json")
    errors = embedded("imports", "errors", "--company", company_id, "--kind", "error", "--json")
    status = json.loads(embedded("status", "--json").stdout)

    # Then both fields are warnings with their line, column and value; no row was refused; all 30 are stored
    assert listed.exit_code == 0, listed.output
    warnings = sorted(json.loads(listed.stdout), key=lambda row: row["line"])
    assert [(row["kind"], row["line"], row["column"], row["raw"]) for row in warnings] == [
        ("WARNING", 2, "initialMessage", "café"),
        ("WARNING", 4, "tokens", "lots"),
    ]
    assert json.loads(errors.stdout) == []
    [company] = [row for row in status["companies"] if row["id"] == company_id]
    assert (company["imports"], company["lastFetch"]["fieldWarnings"]) == (30, 2)
    # And the table shows them too
    table = embedded("imports", "errors", "--company", company_id)
    assert "WARNING" in table.stdout and "lots" in table.stdout


def test_trigger_refuses_unknown_schedulers_and_a_broker_without_workers(embedded: Invoke) -> None:
    unknown = embedded("schedulers", "trigger", "no-such-scheduler")
    assert unknown.exit_code == 3
    assert "unknown scheduler 'no-such-scheduler'" in unknown.stderr

    workerless = embedded("schedulers", "trigger", "csv-import")
    assert workerless.exit_code == 2
    assert "--inline" in workerless.stderr
