"""`livedash demo`: the whole pipeline in one process, with no RabbitMQ, PostgreSQL or OpenAI.

Both tests run the real command in a subprocess whose RabbitMQ, PostgreSQL and OpenAI addresses are dead
ports: the demo can only succeed on what it embeds. What the pipeline must have done is worked out here from
the data set the demo leaves behind (``--keep``), not taken from the demo's own bookkeeping.
"""

from __future__ import annotations

import csv
import json
import os
import re
import sqlite3
import subprocess
import sys
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

#: The generator gives every session a UUID; a row with any other session id is one the demo broke.
_GENERATED_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _run_demo(*args: str) -> subprocess.CompletedProcess[str]:
    # Every service the pipeline could reach for, if it did not use its embedded stand-ins, would not answer.
    env = {key: value for key, value in os.environ.items() if key != "BROKER"}
    env.update(
        DATABASE_URL="postgresql://postgres@127.0.0.1:1/livedash",
        RABBITMQ_URL="amqp://guest:guest@127.0.0.1:1/%2F",
        OPENAI_BASE_URL="http://127.0.0.1:1/v1",
        COLUMNS="200",
    )
    return subprocess.run(
        [sys.executable, "-c", "from pipeline.cli import main; main()", "demo", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@dataclass(frozen=True)
class _DataSet:
    """What the kept data set says the pipeline must end with."""

    good_rows: dict[str, int]  # company name -> rows with a generated session id
    broken_lines: dict[str, list[int]]  # company name -> first lines of the other rows


def _read_data_set(data: Path) -> _DataSet:
    manifest = json.loads((data / "manifest.json").read_text(encoding="utf-8"))
    good_rows: dict[str, int] = {}
    broken_lines: dict[str, list[int]] = {}
    for company in manifest["companies"]:
        good, broken = 0, []
        with (data / company["csv_path"]).open(encoding="utf-8", newline="") as handle:
            reader = csv.reader(handle)
            start = 1
            for record in reader:
                if _GENERATED_ID.fullmatch(record[0]):
                    good += 1
                else:
                    broken.append(start)
                start = reader.line_num + 1
        good_rows[company["name"]] = good
        broken_lines[company["name"]] = broken
    return _DataSet(good_rows, broken_lines)


def test_the_demo_runs_the_whole_pipeline_without_any_service(tmp_path: Path) -> None:
    # Given an environment whose database, RabbitMQ and OpenAI, if they were used, would not answer

    # When the demo runs with three companies of eight sessions, keeping its folder
    result = _run_demo("--companies", "3", "--sessions", "8", "--keep", str(tmp_path))

    # Then it succeeds and says so, having shown each stage's progress to its end
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "as expected: every good row imported and analysed" in out
    assert "unexpected" not in out
    for stage, done, unit in (
        ("CSV import", "3/3", "companies fetched"),
        ("import processing", "16/16", "imports derived"),
        ("AI analysis", "16/16", "sessions analysed"),
        ("batches", r"(\d+)/\1", "batches processed"),
    ):
        progress = rf"^{stage} .* {done}\s+{unit}"
        assert re.search(progress, out, re.MULTILINE), f"no finished {stage} progress in:\n{out}"
    # And every good row of the two companies it could fetch went through every stage
    assert "sessions:   16 imported of 16 good rows, 16 created with" in out
    assert "16 analysed" in out
    # And the clean company waited at a small budget and went on after a raise; the cost lines are shown
    assert re.search(r'^budget: .* requests waited with "budget reached"', out, re.MULTILINE), out
    assert re.search(r"^\S.* gpt-4o +batch +\d+ +\d+ +\d+\.\d{4} ", out, re.MULTILINE), out
    # And it reports the failures it was built to provoke: the broken rows by line, the 401 of the locked out
    data = _read_data_set(tmp_path / "data")
    broken_company = next(name for name, lines in data.broken_lines.items() if lines)
    for line in data.broken_lines[broken_company]:
        assert re.search(rf"^CSV row  {broken_company} line {line}: column \d+ ", out, re.MULTILINE), out
    assert re.search(r"^fetch    .*: HTTP 401 Unauthorized \(not retried\)$", out, re.MULTILINE)
    assert "sessions none failed a stage" in out
    # And the scheduler runs it recorded, and its database is left where asked
    assert re.search(r"^csv-import +1 +1 +0 +3 +1$", out, re.MULTILINE), out
    assert (tmp_path / "livedash.sqlite3").exists()


def test_the_demo_reports_as_json_what_the_pipeline_did(tmp_path: Path) -> None:
    # Given an environment whose database, RabbitMQ and OpenAI, if they were used, would not answer

    # When the demo runs with --json, three companies of eight sessions, keeping its folder
    result = _run_demo("--json", "--companies", "3", "--sessions", "8", "--keep", str(tmp_path))

    # Then it succeeds, and all it prints is one JSON document
    assert result.returncode == 0, result.stdout + result.stderr
    report: dict[str, Any] = json.loads(result.stdout)
    assert report["ok"] is True
    assert report["unexpected"] == []

    # And one company has broken rows and one a wrong password, as the kept data set and database show
    data = _read_data_set(tmp_path / "data")
    scenarios = {company["name"]: company["scenario"] for company in report["companies"]}
    assert sorted(scenarios.values()) == ["broken rows", "clean", "wrong password"]
    broken = next(name for name, scenario in scenarios.items() if scenario == "broken rows")
    locked_out = next(name for name, scenario in scenarios.items() if scenario == "wrong password")
    assert len(data.broken_lines[broken]) == 3
    assert all(not lines for name, lines in data.broken_lines.items() if name != broken)

    # And every good row of the companies it could fetch was imported, made a session and was analysed
    good_rows = sum(count for name, count in data.good_rows.items() if name != locked_out)
    assert good_rows == 16
    sessions = report["sessions"]
    assert {key: sessions[key] for key in ("goodRows", "imported", "created", "analysed")} == dict.fromkeys(
        ("goodRows", "imported", "created", "analysed"), 16
    )
    assert sessions["messages"] > 16
    by_company = {company["name"]: company for company in report["companies"]}
    good_of_broken = data.good_rows[broken]
    assert (
        by_company[broken]["fetch"],
        by_company[broken]["rows"],
        by_company[broken]["imported"],
        by_company[broken]["rowErrors"],
        by_company[broken]["analysed"],
    ) == ("IMPORTED", good_of_broken + 3, good_of_broken, 3, good_of_broken)

    # And each broken row is a CSV row error at its line, blaming the field the demo broke
    blamed = {"empty session id": 0, "no start time": 1, "session id over 255 characters": 0}
    row_errors = report["failures"]["csvRows"]
    assert [(error["company"], error["line"]) for error in row_errors] == [
        (broken, line) for line in data.broken_lines[broken]
    ]
    for error in row_errors:
        assert error["reason"].startswith(f"column {blamed[error['injected']]} "), error
    with sqlite3.connect(tmp_path / "livedash.sqlite3") as db:
        stored = db.execute("SELECT line_number, reason FROM csv_row_error ORDER BY line_number").fetchall()
        fetches = db.execute(
            "SELECT outcome, http_status, error FROM csv_fetch"
            " JOIN company ON company.id = csv_fetch.company_id WHERE company.name = ?",
            (locked_out,),
        ).fetchall()
    assert stored == [(error["line"], error["reason"]) for error in row_errors]

    # And the locked-out company failed once with 401, not retried, and stopped nobody else
    assert fetches == [("FAILED", 401, "HTTP 401 Unauthorized")]
    assert report["failures"]["fetches"] == [
        {
            "company": locked_out,
            "httpStatus": 401,
            "error": "HTTP 401 Unauthorized",
            "attempts": 1,
        }
    ]
    assert by_company[locked_out]["imported"] == 0
    assert all(company["fetch"] == "IMPORTED" for name, company in by_company.items() if name != locked_out)
    assert report["failures"]["sessions"] == []
    assert report["failures"]["other"] == []

    # And the analyses add up: every analysed session has a sentiment and a category, and they cost money
    assert sum(report["sentiment"].values()) == 16
    assert sum(report["categories"].values()) == 16
    assert "none" not in report["sentiment"]
    assert "none" not in report["categories"]
    assert report["questions"] > 0
    assert report["cost"]["eur"] > 0
    assert (
        report["cost"]["totalTokens"] == report["cost"]["promptTokens"] + report["cost"]["completionTokens"]
    )
    assert report["cost"]["totalTokens"] > 0
    assert report["batches"]["submitted"] >= 1
    assert report["batches"]["processed"] == report["batches"]["submitted"]

    # And the clean company waited at its small budget without passing it, and its budget is now raised
    clean = next(name for name, scenario in scenarios.items() if scenario == "clean")
    budget = report["budget"]
    assert budget["company"] == clean and budget["waited"] >= 1
    assert Decimal(budget["spentAtRaiseEur"]) <= Decimal(budget["budgetEur"])
    with sqlite3.connect(tmp_path / "livedash.sqlite3") as db:
        [(raised,)] = db.execute(
            "SELECT monthly_eur FROM company_ai_budget JOIN company ON company.id = company_id"
            " WHERE company.name = ?",
            (clean,),
        ).fetchall()
        billed = db.execute(
            "SELECT company.name, sum(total_cost_eur) FROM ai_processing_request"
            " JOIN session ON session.id = session_id JOIN company ON company.id = session.company_id"
            " WHERE total_tokens > 0 GROUP BY company.name ORDER BY company.name"
        ).fetchall()
    assert Decimal(str(raised)) == Decimal(budget["raisedToEur"])
    # And its cost lines are the ledger's sums, per company
    lines = report["costLines"]
    assert [(line["company"], line["mode"]) for line in lines] == [(name, "batch") for name, _ in billed]
    assert [float(line["costEur"]) for line in lines] == pytest.approx([cost for _, cost in billed])

    # And every tick went through the scheduling layer: each run recorded, with the tick that triggered it
    runs = report["schedulerRuns"]
    assert {run["job"] for run in runs} == {"csv-import", "batch-processing", "batch-processing-check"}
    assert all(run["status"] == "SUCCEEDED" and run["tick"] == "triggered by livedash demo" for run in runs)
    assert next(run for run in runs if run["job"] == "csv-import")["items"] == 3


def test_the_demo_runs_twice_in_one_process_and_changes_nothing_process_wide(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given this process's settings cache and environment, pointing at services that would not answer
    from pipeline.demo.run import run_demo
    from pipeline.settings import get_settings

    monkeypatch.setenv("DATABASE_URL", "postgresql://postgres@127.0.0.1:1/livedash")
    monkeypatch.setenv("BROKER", "rabbitmq")
    get_settings.cache_clear()
    environment = dict(os.environ)
    settings = get_settings()

    # When the demo runs twice in this process, each time in a folder of its own
    reports = [
        run_demo(companies=2, sessions=3, workdir=tmp_path / name, latency=0.0)
        for name in ("first", "second")
    ]

    # Then both runs succeed, each with its own database holding its own run of every stage
    assert [report.unexpected for report in reports] == [[], []]
    assert reports[0].imported == reports[1].imported > 0
    assert reports[0].analysed == reports[1].analysed > 0
    assert reports[0].database != reports[1].database
    # And the process is as it was: same environment, same cached settings
    assert dict(os.environ) == environment
    assert get_settings() is settings
    get_settings.cache_clear()
