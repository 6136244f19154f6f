"""The demo's report: what the pipeline stored, every failure with its reason, and every way the run differed
from what the data set's faults call for."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.demo.scenario import WRONG_CREDENTIALS, InjectedRow, Scenario
from pipeline.scheduling.jobs import BATCH_CHECK_JOB, BATCH_SUBMIT_JOB, CSV_IMPORT_JOB

if TYPE_CHECKING:
    from dramatiq.brokers.stub import StubBroker
    from sqlalchemy.orm import Session, sessionmaker

__all__ = [
    "BudgetEpisode",
    "CompanyOutcome",
    "CostLineRecord",
    "DemoReport",
    "FetchFailure",
    "RowErrorRecord",
    "SchedulerRunRecord",
    "SessionFailure",
    "build_report",
    "judge",
]

LOG_NAME = "demo.log"


@dataclass(frozen=True)
class CompanyOutcome:
    name: str
    scenario: str
    fetch: str | None
    http_status: int | None
    rows: int
    imported: int
    row_errors: int
    sessions: int
    analysed: int


@dataclass(frozen=True)
class FetchFailure:
    company: str
    http_status: int | None
    error: str | None
    #: Fetches of the company: 1 means the failure was taken as permanent and not retried.
    attempts: int


@dataclass(frozen=True)
class RowErrorRecord:
    company: str
    line: int
    reason: str
    #: The injected problem this row error accounts for, if it is one of them.
    injected: str | None


@dataclass(frozen=True)
class SessionFailure:
    stage: str
    company: str
    session_id: str | None
    import_id: str | None
    error: str | None


@dataclass(frozen=True)
class SchedulerRunRecord:
    job: str
    status: str
    items: int
    seconds: float | None
    tick: str | None
    error: str | None


@dataclass(frozen=True)
class BudgetEpisode:
    """One company given a small monthly AI budget (room for about half of its requests), then a raise."""

    company: str
    budget_eur: str
    #: Requests that waited with "budget reached" once the budget was used up.
    waited: int
    #: What the company had spent when the budget was raised: never more than the budget.
    spent_at_raise_eur: str
    raised_to_eur: str


@dataclass(frozen=True)
class CostLineRecord:
    """A line of ``livedash costs``: a company's billed requests of one model and mode."""

    company: str
    model: str
    mode: str
    requests: int
    sessions: int
    cost_eur: str
    cost_per_1000_sessions_eur: str


@dataclass(frozen=True)
class DemoReport:
    seconds: float
    workdir: Path
    kept: bool
    sessions_per_company: int
    companies: list[CompanyOutcome]
    good_rows: int
    injected: list[InjectedRow]
    imported: int
    sessions: int
    messages: int
    analysed: int
    sentiment: dict[str, int]
    categories: dict[str, int]
    questions: int
    cost_eur: float
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    batches_submitted: int
    batches_processed: int
    scheduler_runs: list[SchedulerRunRecord]
    fetch_failures: list[FetchFailure]
    row_errors: list[RowErrorRecord]
    session_failures: list[SessionFailure]
    #: Failures of no session in particular: dead-lettered messages, failed batches and AI requests.
    other_failures: list[str]
    pipeline: dict[str, dict[str, int]]
    log_records: int
    budget: BudgetEpisode | None = None
    cost_lines: list[CostLineRecord] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.unexpected

    @property
    def database(self) -> Path:
        return self.workdir / "livedash.sqlite3"

    @property
    def log(self) -> Path:
        return self.workdir / LOG_NAME


def build_report(
    started: float,
    workdir: Path,
    kept: bool,
    sessions_per_company: int,
    scenario: Scenario,
    broker: StubBroker,
    problems: list[str],
    log_records: int,
    sessions: sessionmaker[Session],
    budget: BudgetEpisode | None = None,
) -> DemoReport:
    """The report of a finished run, read from the demo's database and judged against ``scenario``."""
    from pipeline.db.enums import SchedulerRunStatus
    from pipeline.db.models import ChatSession
    from pipeline.demo.collect import Stored
    from pipeline.stages.pipeline_reports import pipeline_status

    with sessions() as db:
        stored = Stored(db)
        runs = stored.scheduler_runs()
        if any(run.status == SchedulerRunStatus.RUNNING.value for run in runs):
            problems.append("a scheduler run is still RUNNING after the demo")
        prompt_tokens, completion_tokens, total_tokens, cost_eur = stored.usage()
        totals = stored.totals()
        report = DemoReport(
            seconds=time.monotonic() - started,
            workdir=workdir,
            kept=kept,
            sessions_per_company=sessions_per_company,
            companies=stored.companies(scenario),
            good_rows=scenario.good_rows,
            injected=scenario.injected,
            imported=totals.imported,
            sessions=totals.sessions,
            messages=totals.messages,
            analysed=stored.analysed(),
            sentiment=stored.by_label(ChatSession.sentiment),
            categories=stored.by_label(ChatSession.category),
            questions=stored.questions(),
            cost_eur=cost_eur,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            total_tokens=total_tokens,
            batches_submitted=totals.batches_submitted,
            batches_processed=totals.batches_processed,
            scheduler_runs=runs,
            fetch_failures=stored.fetch_failures(),
            row_errors=stored.row_errors(scenario),
            session_failures=stored.session_failures(),
            other_failures=stored.other_failures(broker),
            pipeline=pipeline_status(db)["pipeline"],
            log_records=log_records,
            budget=budget,
            cost_lines=stored.cost_lines(),
        )
        imported_ids = stored.imported_ids()
    report.unexpected.extend(problems)
    report.unexpected.extend(judge(report, scenario, imported_ids))
    return report


def _import_mismatches(scenario: Scenario, imported_ids: set[tuple[str, str]]) -> list[str]:
    wrong = []
    expected_ids = {
        (name, session_id)
        for name, session_ids in scenario.good_ids.items()
        if scenario.roles[name] != WRONG_CREDENTIALS
        for session_id in session_ids
    }
    if missing := expected_ids - imported_ids:
        wrong.append(f"{len(missing)} good CSV rows were not imported, e.g. {min(missing)}")
    if extra := imported_ids - expected_ids:
        wrong.append(f"{len(extra)} rows were imported that should not have been, e.g. {min(extra)}")
    return wrong


def _row_error_mismatches(report: DemoReport, scenario: Scenario) -> list[str]:
    """Every injected row refused for its column, and no other row refused."""
    wrong = []
    found = {(error.company, error.line): error for error in report.row_errors}
    for row in scenario.injected:
        error = found.pop((scenario.broken, row.line), None)
        if error is None:
            wrong.append(
                f"the broken row at line {row.line} of {scenario.broken} ({row.problem}) was not recorded"
            )
        elif not error.reason.startswith(row.column):
            wrong.append(
                f"line {row.line} of {scenario.broken} ({row.problem}) was refused for {error.reason!r}, "
                f"not for its {row.column}"
            )
    wrong.extend(
        f"unexpected CSV row error at line {line} of {name}: {error.reason}"
        for (name, line), error in sorted(found.items())
    )
    return wrong


def _company_mismatches(report: DemoReport) -> list[str]:
    """Every company's last fetch IMPORTED but the locked-out one's."""
    return [
        f"the fetch of {company.name} ended {company.fetch}, not IMPORTED"
        for company in report.companies
        if company.scenario != WRONG_CREDENTIALS and company.fetch != "IMPORTED"
    ]


def _fetch_mismatches(report: DemoReport, scenario: Scenario) -> list[str]:
    """The locked-out company's fetch fails once with a 401 and is not retried; no other fetch fails."""
    wrong = []
    locked_out = [failure for failure in report.fetch_failures if failure.company == scenario.locked_out]
    who = f"{scenario.locked_out} (wrong password)"
    if not locked_out:
        wrong.append(f"{who} has no failed fetch")
    for failure in locked_out:
        if failure.http_status != 401:
            wrong.append(f"{who} failed with {failure.error!r}, not HTTP 401")
        if failure.attempts != 1:
            wrong.append(f"{who} was retried as if transient: {failure.attempts} fetches")
    wrong.extend(
        f"the fetch of {failure.company} failed: {failure.error}"
        for failure in report.fetch_failures
        if failure.company != scenario.locked_out
    )
    return wrong


def _analysis_mismatches(report: DemoReport) -> list[str]:
    """Every good row a session, analysed and priced, through batches that all ended PROCESSED."""
    wrong = []
    if report.sessions != report.good_rows:
        wrong.append(f"{report.sessions} sessions were created from {report.good_rows} good rows")
    if report.analysed != report.good_rows:
        wrong.append(f"{report.analysed} of {report.good_rows} sessions were analysed")
    if report.analysed and report.cost_eur <= 0:
        wrong.append("the analyses cost nothing: no price was applied")
    if report.batches_processed != report.batches_submitted or not report.batches_submitted:
        wrong.append(f"{report.batches_processed} of {report.batches_submitted} batches were processed")
    wrong.extend(
        f"{failure.company}: session {failure.session_id or failure.import_id} failed {failure.stage}: "
        f"{failure.error}"
        for failure in report.session_failures
    )
    wrong.extend(report.other_failures)
    return wrong


def _run_mismatches(report: DemoReport) -> list[str]:
    """A run of each scheduler the demo ticks, none failed, each with its tick."""
    jobs = {run.job for run in report.scheduler_runs}
    wrong = [
        f"no run of the {job} scheduler was recorded"
        for job in (CSV_IMPORT_JOB.id, BATCH_SUBMIT_JOB.id, BATCH_CHECK_JOB.id)
        if job not in jobs
    ]
    for run in report.scheduler_runs:
        if run.status == "FAILED":
            wrong.append(f"a run of the {run.job} scheduler failed: {run.error}")
        if run.tick is None:
            wrong.append(f"a run of the {run.job} scheduler has no recorded tick")
    return wrong


def _budget_mismatches(report: DemoReport, scenario: Scenario) -> list[str]:
    """The budgeted company waited at its budget without passing it, and went on after the raise."""
    episode = report.budget
    if episode is None:
        return [f"{scenario.budgeted} was given no budget"]
    wrong = []
    if not episode.waited:
        wrong.append(f"nothing of {episode.company} waited at its budget of {episode.budget_eur} EUR")
    if float(episode.spent_at_raise_eur) > float(episode.budget_eur):
        wrong.append(
            f"{episode.company} spent {episode.spent_at_raise_eur} EUR of a {episode.budget_eur} EUR budget"
        )
    if not report.cost_lines:
        wrong.append("the ledger shows no cost")
    return wrong


def judge(report: DemoReport, scenario: Scenario, imported_ids: set[tuple[str, str]]) -> list[str]:
    """Every way the run differs from what the data set must produce."""
    return [
        *_budget_mismatches(report, scenario),
        *_import_mismatches(scenario, imported_ids),
        *_company_mismatches(report),
        *_row_error_mismatches(report, scenario),
        *_fetch_mismatches(report, scenario),
        *_analysis_mismatches(report),
        *_run_mismatches(report),
    ]
