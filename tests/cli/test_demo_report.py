"""`livedash demo`'s verdict: the broken rows it writes, how it judges a run, and its exit code."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from pipeline import demo as demo_module
from pipeline.cli import app
from pipeline.demo.render import print_report, report_as_json
from pipeline.demo.report import (
    BudgetEpisode,
    CompanyOutcome,
    CostLineRecord,
    DemoReport,
    FetchFailure,
    RowErrorRecord,
    SchedulerRunRecord,
    judge,
)
from pipeline.demo.scenario import (
    BROKEN_ROWS,
    CLEAN,
    WRONG_CREDENTIALS,
    InjectedRow,
    Scenario,
    inject_broken_rows,
)
from pipeline.devtools.generate import generate_dataset
from pipeline.sources.csv_format import RowError, SessionRow, parse_session_rows

_INJECTED = [
    InjectedRow(2, "empty session id", "column 0 (externalSessionId)"),
    InjectedRow(6, "messages sent is not a number", "column 6 (messagesSent)"),
]
_TICK = "triggered by livedash demo"


def _scenario() -> Scenario:
    return Scenario(
        roles={"Broken": BROKEN_ROWS, "Clean": CLEAN, "Locked": WRONG_CREDENTIALS},
        injected=_INJECTED,
        good_ids={"Broken": frozenset({"b1", "b2"}), "Clean": frozenset({"c1"}), "Locked": frozenset({"l1"})},
    )


_IMPORTED = {("Broken", "b1"), ("Broken", "b2"), ("Clean", "c1")}


def _as_expected(tmp_path: Path) -> DemoReport:
    """The report of a run that did everything the demo's data set asks for."""
    return DemoReport(
        seconds=1.0,
        workdir=tmp_path,
        kept=True,
        sessions_per_company=2,
        companies=[
            CompanyOutcome("Broken", BROKEN_ROWS, "IMPORTED", 200, 4, 2, 2, 2, 2),
            CompanyOutcome("Clean", CLEAN, "IMPORTED", 200, 1, 1, 0, 1, 1),
            CompanyOutcome("Locked", WRONG_CREDENTIALS, "FAILED", 401, 0, 0, 0, 0, 0),
        ],
        good_rows=3,
        injected=_INJECTED,
        imported=3,
        sessions=3,
        messages=12,
        analysed=3,
        sentiment={"POSITIVE": 2, "NEUTRAL": 1},
        categories={"ONBOARDING": 3},
        questions=4,
        cost_eur=0.01,
        prompt_tokens=900,
        completion_tokens=100,
        total_tokens=1000,
        batches_submitted=1,
        batches_processed=1,
        scheduler_runs=[
            SchedulerRunRecord("csv-import", "SUCCEEDED", 3, 0.01, _TICK, None),
            SchedulerRunRecord("batch-processing", "SUCCEEDED", 1, 0.01, _TICK, None),
            SchedulerRunRecord("batch-processing-check", "SUCCEEDED", 1, 0.01, _TICK, None),
        ],
        fetch_failures=[FetchFailure("Locked", 401, "HTTP 401 Unauthorized", 1)],
        row_errors=[
            RowErrorRecord("Broken", 2, "column 0 (externalSessionId): is empty", "empty session id"),
            RowErrorRecord(
                "Broken",
                6,
                "column 6 (messagesSent): 'twelve' is not an integer",
                "messages sent is not a number",
            ),
        ],
        session_failures=[],
        other_failures=[],
        pipeline={},
        log_records=2,
        budget=BudgetEpisode("Clean", "0.01", 1, "0.004", "25.00"),
        cost_lines=[
            CostLineRecord("Broken", "gpt-4o", "batch", 2, 2, "0.006", "3.0"),
            CostLineRecord("Clean", "gpt-4o", "batch", 1, 1, "0.004", "4.0"),
        ],
    )


def test_the_broken_rows_are_where_the_parser_finds_them(tmp_path: Path) -> None:
    # Given a generated company CSV of 40 sessions, some of whose records span several lines
    manifest = generate_dataset(tmp_path, companies=1, sessions=40, transcripts=False)
    path = tmp_path / manifest.companies[0].csv_path

    # When the demo writes its broken rows into it
    injected = inject_broken_rows(path)

    # Then the real parser refuses exactly those rows, at the lines the demo noted, for the column it broke
    parsed = list(parse_session_rows([path.read_bytes()]))
    errors = [row for row in parsed if isinstance(row, RowError)]
    assert [(error.line_number, error.reason.split(":")[0]) for error in errors] == [
        (row.line, row.column) for row in injected
    ]
    assert len(injected) == 3
    # And the 40 good rows are still there, unchanged
    assert sum(isinstance(row, SessionRow) for row in parsed) == 40


def test_a_run_that_did_what_the_data_set_asks_for_is_as_expected(tmp_path: Path) -> None:
    # Given the report of a run that did everything right
    report = _as_expected(tmp_path)

    # When it is judged
    unexpected = judge(report, _scenario(), _IMPORTED)

    # Then nothing is unexpected
    assert unexpected == []


def test_broken_rows_that_left_no_row_error_are_unexpected(tmp_path: Path) -> None:
    # Given a run in which the broken rows were dropped silently
    report = dataclasses.replace(_as_expected(tmp_path), row_errors=[])

    # When it is judged
    unexpected = judge(report, _scenario(), _IMPORTED)

    # Then each missing row error is named with its line
    assert unexpected == [
        "the broken row at line 2 of Broken (empty session id) was not recorded",
        "the broken row at line 6 of Broken (messages sent is not a number) was not recorded",
    ]


def test_a_broken_row_imported_or_a_good_row_lost_is_unexpected(tmp_path: Path) -> None:
    # Given a run that imported a broken row and lost a good one
    imported = (_IMPORTED - {("Clean", "c1")}) | {("Broken", "broken-row-messages-sent")}

    # When it is judged
    unexpected = judge(_as_expected(tmp_path), _scenario(), imported)

    # Then both are named
    assert unexpected == [
        "1 good CSV rows were not imported, e.g. ('Clean', 'c1')",
        "1 rows were imported that should not have been, e.g. ('Broken', 'broken-row-messages-sent')",
    ]


def test_a_retried_401_and_any_other_failure_are_unexpected(tmp_path: Path) -> None:
    # Given a run in which the wrong password was retried and another company's fetch failed too
    report = dataclasses.replace(
        _as_expected(tmp_path),
        fetch_failures=[
            FetchFailure("Locked", 401, "HTTP 401 Unauthorized", 3),
            FetchFailure("Clean", 503, "HTTP 503 Service Unavailable", 1),
        ],
    )

    # When it is judged
    unexpected = judge(report, _scenario(), _IMPORTED)

    # Then both are named
    assert unexpected == [
        "Locked (wrong password) was retried as if transient: 3 fetches",
        "the fetch of Clean failed: HTTP 503 Service Unavailable",
    ]


def test_a_budget_that_held_nothing_back_or_was_passed_is_unexpected(tmp_path: Path) -> None:
    # Given runs in which nothing waited at the small budget, the budget was passed, or no budget was given
    waited_for_nothing = dataclasses.replace(
        _as_expected(tmp_path), budget=BudgetEpisode("Clean", "0.01", 0, "0.004", "25.00")
    )
    overspent = dataclasses.replace(
        _as_expected(tmp_path), budget=BudgetEpisode("Clean", "0.01", 1, "0.012", "25.00")
    )
    no_budget = dataclasses.replace(_as_expected(tmp_path), budget=None, cost_lines=[])

    # When they are judged
    # Then each is named
    assert judge(waited_for_nothing, _scenario(), _IMPORTED) == [
        "nothing of Clean waited at its budget of 0.01 EUR"
    ]
    assert judge(overspent, _scenario(), _IMPORTED) == ["Clean spent 0.012 EUR of a 0.01 EUR budget"]
    assert judge(no_budget, _scenario(), _IMPORTED) == ["Clean was given no budget"]


def test_the_command_exits_1_and_says_what_was_unexpected(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a demo whose run ends with something unexpected
    report = dataclasses.replace(_as_expected(tmp_path), unexpected=["2 of 3 sessions were analysed"])
    monkeypatch.setattr("pipeline.demo.run_demo", lambda **_: report)

    # When the command runs, as text and as JSON
    text = CliRunner().invoke(app, ["demo"])
    as_json = CliRunner().invoke(app, ["demo", "--json"])

    # Then both exit with 1 and name what was unexpected; the JSON output stays JSON alone
    assert text.exit_code == 1
    assert "unexpected: 2 of 3 sessions were analysed" in text.stdout
    assert as_json.exit_code == 1
    assert json.loads(as_json.stdout)["unexpected"] == ["2 of 3 sessions were analysed"]
    assert "unexpected: 2 of 3 sessions were analysed" in as_json.stderr


def test_the_demo_needs_a_company_to_break_and_one_to_lock_out() -> None:
    # Given one company only
    # When the demo is asked to run
    # Then it refuses before doing anything
    with pytest.raises(ValueError, match="at least 2 companies"):
        demo_module.run_demo(companies=1)


def test_the_report_renders_from_its_data_alone(tmp_path: Path) -> None:
    # Given the report of a run that did everything right: plain data, no database behind it
    report = _as_expected(tmp_path)

    # When it is rendered as text and as JSON
    console = Console(record=True, width=100)
    print_report(console, report)
    text = console.export_text()
    document = report_as_json(report)

    # Then the text has its tables, its failures and its verdict
    assert "sessions:   3 imported of 3 good rows, 3 created with 12 messages, 3 analysed" in text
    assert "fetch    Locked: HTTP 401 Unauthorized (not retried)" in text
    assert "CSV row  Broken line 6: column 6 (messagesSent): 'twelve' is not an integer" in text
    assert "as expected" in text
    # And the budget episode and the cost lines
    assert 'budget:     Clean got 0.01 EUR a month: 1 requests waited with "budget reached"' in text
    assert "Broken  gpt-4o batch        2        2   0.0060               3.0000" in text
    # And the JSON carries the same figures
    assert document["ok"] is True
    assert document["sessions"] == {
        "goodRows": 3,
        "imported": 3,
        "created": 3,
        "messages": 12,
        "analysed": 3,
    }
    assert document["failures"]["fetches"] == [
        {"company": "Locked", "httpStatus": 401, "error": "HTTP 401 Unauthorized", "attempts": 1}
    ]
    assert document["budget"]["waited"] == 1
    assert [line["costEur"] for line in document["costLines"]] == ["0.006", "0.004"]
    assert json.loads(json.dumps(document)) == document
