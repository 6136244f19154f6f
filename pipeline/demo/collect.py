"""Reading what the demo's pipeline stored into the report's data: one small query function per part.

Imported when a report is made (it loads the database models); :mod:`pipeline.demo.report` holds the data
and its judgement, :mod:`pipeline.demo.render` its renderings.
"""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, Select, func, select
from sqlalchemy.orm import Session

from pipeline.costs import cost_lines
from pipeline.db.enums import (
    AIBatchRequestStatus,
    AIRequestStatus,
    CsvFetchOutcome,
    CsvRowProblem,
    ProcessingStage,
    ProcessingStatus,
)
from pipeline.db.models import (
    AIBatchRequest,
    AIProcessingRequest,
    ChatSession,
    Company,
    CsvFetch,
    CsvRowError,
    Message,
    SchedulerRun,
    SchedulerTick,
    SessionImport,
    SessionProcessingStatus,
    SessionQuestion,
)
from pipeline.demo.report import (
    CompanyOutcome,
    CostLineRecord,
    FetchFailure,
    RowErrorRecord,
    SchedulerRunRecord,
    SessionFailure,
)
from pipeline.demo.scenario import Scenario
from pipeline.stages.pipeline_reports import failed_sessions

if TYPE_CHECKING:
    from dramatiq.brokers.stub import StubBroker

__all__ = ["Stored", "Totals"]


@dataclass(frozen=True)
class Totals:
    """Rows stored: imports, sessions, messages, and batches submitted and processed."""

    imported: int
    sessions: int
    messages: int
    batches_submitted: int
    batches_processed: int


def _analysed_ids() -> Select[uuid.UUID]:
    return select(SessionProcessingStatus.session_id).where(
        SessionProcessingStatus.stage == ProcessingStage.AI_ANALYSIS,
        SessionProcessingStatus.status == ProcessingStatus.COMPLETED,
    )


class Stored:
    """What one database holds after a demo run, read part by part."""

    def __init__(self, db: Session) -> None:
        self.db = db
        self.names: dict[uuid.UUID, str] = dict(db.execute(select(Company.id, Company.name)).all())
        self.fetches = db.scalars(select(CsvFetch).order_by(CsvFetch.started_at)).all()

    def count(self, model: Any, *where: ColumnElement[bool]) -> int:
        return self.db.scalar(select(func.count()).select_from(model).where(*where)) or 0

    def _per_company(self, column: Any, *where: ColumnElement[bool]) -> dict[uuid.UUID, int]:
        statement = select(column, func.count()).where(*where).group_by(column)
        return dict(self.db.execute(statement).all())

    def companies(self, scenario: Scenario) -> list[CompanyOutcome]:
        """Each company of the scenario with its last fetch and its counts, in the scenario's order."""
        ids = {name: company_id for company_id, name in self.names.items()}
        imported = self._per_company(SessionImport.company_id)
        row_errors = self._per_company(CsvRowError.company_id, CsvRowError.kind == CsvRowProblem.ERROR)
        sessions = self._per_company(ChatSession.company_id)
        analysed = self._per_company(ChatSession.company_id, ChatSession.id.in_(_analysed_ids()))
        last_fetch = {fetch.company_id: fetch for fetch in self.fetches}
        outcomes = []
        for name, role in scenario.roles.items():
            company_id = ids[name]
            fetch = last_fetch.get(company_id)
            outcomes.append(
                CompanyOutcome(
                    name=name,
                    scenario=role,
                    fetch=fetch.outcome.value if fetch else None,
                    http_status=fetch.http_status if fetch else None,
                    rows=fetch.rows_total if fetch else 0,
                    imported=imported.get(company_id, 0),
                    row_errors=row_errors.get(company_id, 0),
                    sessions=sessions.get(company_id, 0),
                    analysed=analysed.get(company_id, 0),
                )
            )
        return outcomes

    def fetch_failures(self) -> list[FetchFailure]:
        attempts = Counter(fetch.company_id for fetch in self.fetches)
        return [
            FetchFailure(
                company=self.names[fetch.company_id],
                http_status=fetch.http_status,
                error=fetch.error,
                attempts=attempts[fetch.company_id],
            )
            for fetch in self.fetches
            if fetch.outcome is CsvFetchOutcome.FAILED
        ]

    def row_errors(self, scenario: Scenario) -> list[RowErrorRecord]:
        """Every CSV row error, with the injected problem it accounts for when it is one."""
        injected_at = {(scenario.broken, row.line): row.problem for row in scenario.injected}
        errors = self.db.scalars(
            select(CsvRowError)
            .where(CsvRowError.kind == CsvRowProblem.ERROR)
            .order_by(CsvRowError.company_id, CsvRowError.line_number)
        )
        return [
            RowErrorRecord(
                company=self.names[error.company_id],
                line=error.line_number,
                reason=error.reason,
                injected=injected_at.get((self.names[error.company_id], error.line_number)),
            )
            for error in errors
        ]

    def session_failures(self) -> list[SessionFailure]:
        return [
            SessionFailure(
                stage=row["stage"],
                company=row["company"],
                session_id=row["session_id"],
                import_id=row["import_id"],
                error=row["error"],
            )
            for row in failed_sessions(self.db, limit=1000)
        ]

    def other_failures(self, broker: StubBroker) -> list[str]:
        """Failures of no session in particular: dead letters, failed or cancelled batches and requests."""
        failures = _dead_letters(broker)
        closed = (AIBatchRequestStatus.FAILED, AIBatchRequestStatus.CANCELLED)
        for batch in self.db.scalars(select(AIBatchRequest).where(AIBatchRequest.status.in_(closed))):
            failures.append(f"batch {batch.id} {batch.status.value}: {batch.error_message}")
        failed_requests = self.count(
            AIProcessingRequest, AIProcessingRequest.processing_status == AIRequestStatus.PROCESSING_FAILED
        )
        if failed_requests:
            failures.append(f"{failed_requests} AI requests failed")
        return failures

    def analysed(self) -> int:
        return self.count(ChatSession, ChatSession.id.in_(_analysed_ids()))

    def by_label(self, column: Any) -> dict[str, int]:
        """Analysed sessions per value of ``column``, most frequent first."""
        rows = self.db.execute(
            select(column, func.count()).where(ChatSession.id.in_(_analysed_ids())).group_by(column)
        ).all()
        counts = {(label.value if label is not None else "none"): number for label, number in rows}
        return dict(sorted(counts.items(), key=lambda item: (-item[1], item[0])))

    def questions(self) -> int:
        return self.db.scalar(select(func.count(func.distinct(SessionQuestion.question_id)))) or 0

    def usage(self) -> tuple[int, int, int, float]:
        """Prompt, completion and total tokens, and the cost in EUR, of the successful AI requests."""
        prompt, completion, total, cost = self.db.execute(
            select(
                func.coalesce(func.sum(AIProcessingRequest.prompt_tokens), 0),
                func.coalesce(func.sum(AIProcessingRequest.completion_tokens), 0),
                func.coalesce(func.sum(AIProcessingRequest.total_tokens), 0),
                func.coalesce(func.sum(AIProcessingRequest.total_cost_eur), 0.0),
            ).where(AIProcessingRequest.success.is_(True))
        ).one()
        return int(prompt), int(completion), int(total), float(cost)

    def cost_lines(self) -> list[CostLineRecord]:
        """What ``livedash costs`` prints: per company, model and mode."""
        return [
            CostLineRecord(
                line.company_name,
                line.model,
                line.mode,
                line.requests,
                line.sessions,
                str(line.cost_eur),
                str(line.cost_per_1000_sessions),
            )
            for line in cost_lines(self.db)
        ]

    def scheduler_runs(self) -> list[SchedulerRunRecord]:
        runs = self.db.execute(
            select(SchedulerRun, SchedulerTick.detail)
            .outerjoin(SchedulerTick, SchedulerTick.id == SchedulerRun.tick_id)
            .order_by(SchedulerRun.started_at)
        ).all()
        return [
            SchedulerRunRecord(
                job=run.job,
                status=run.status.value,
                items=run.items_processed,
                seconds=(
                    round((run.finished_at - run.started_at).total_seconds(), 3) if run.finished_at else None
                ),
                tick=detail,
                error=run.error,
            )
            for run, detail in runs
        ]

    def imported_ids(self) -> set[tuple[str, str]]:
        """(company name, external session id) of every stored CSV row."""
        rows = self.db.execute(select(SessionImport.company_id, SessionImport.external_session_id)).all()
        return {(self.names[company_id], external_id) for company_id, external_id in rows}

    def totals(self) -> Totals:
        return Totals(
            imported=self.count(SessionImport),
            sessions=self.count(ChatSession),
            messages=self.count(Message),
            batches_submitted=self.count(AIBatchRequest),
            batches_processed=self.count(
                AIBatchRequest, AIBatchRequest.status == AIBatchRequestStatus.PROCESSED
            ),
        )


def _dead_letters(broker: StubBroker) -> list[str]:
    """Every dead-lettered message, with its error: none is expected (a 401 is recorded, not raised)."""
    failures: list[str] = []
    for message in broker.dead_letters:
        exception = getattr(message, "_exception", None)
        error = f"{type(exception).__name__}: {exception}" if exception is not None else "unknown error"
        failures.append(
            f"{message.queue_name} message {message.actor_name}{tuple(message.args)!r} failed: {error}"
        )
    return failures
