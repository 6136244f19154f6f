"""The import-processing stage: from stored CSV rows to sessions with messages and stage rows.

Real PostgreSQL and a real HTTP source on 127.0.0.1 serving generated transcripts.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from prometheus_client import REGISTRY
from pydantic import SecretStr
from sqlalchemy import Engine, func, select, update
from sqlalchemy.orm import sessionmaker

from pipeline.db.enums import ProcessingStage, ProcessingStatus
from pipeline.db.models import ChatSession, Company, Message, SessionImport, SessionProcessingStatus
from pipeline.db.types import utcnow
from pipeline.settings import Settings
from pipeline.sources.http_fetch import Fetcher
from pipeline.stages.csv_import import fetch_limits, import_company_csv
from pipeline.stages.import_processing import process_imports, transcript_fetcher_limits
from pipeline.stages.import_sweep import SWEEP_GRACE, sweep_imports
from tests.demo_source import Source, add_source_company, running_source
from tests.sources.httpserver import running_server, trickle_headers


class Collector:
    """Collects chunks of ids handed to the next stage."""

    def __init__(self) -> None:
        self.chunks: list[list[uuid.UUID]] = []

    def __call__(self, chunk: list[uuid.UUID]) -> None:
        self.chunks.append(chunk)

    @property
    def ids(self) -> list[uuid.UUID]:
        return [item for chunk in self.chunks for item in chunk]


@pytest.fixture
def chats(tmp_path: Path) -> Iterator[Source]:
    """One company with 12 generated sessions and their transcripts."""
    with running_source(tmp_path / "chats", companies=1, sessions=12, transcripts=True) as running:
        yield running


@pytest.fixture
def transcripts(pg_settings: Settings) -> Iterator[Fetcher]:
    with Fetcher(transcript_fetcher_limits(pg_settings)) as fetcher:
        yield fetcher


def _import_csv(engine: Engine, settings: Settings, source: Source) -> tuple[uuid.UUID, list[uuid.UUID]]:
    company_id = add_source_company(engine, source, 0)
    imported = Collector()
    with Fetcher(fetch_limits(settings)) as fetcher:
        import_company_csv(engine, settings, company_id, fetcher=fetcher, hand_over=imported)
    return company_id, imported.ids


def _stages(engine: Engine, session_id: uuid.UUID) -> dict[ProcessingStage, SessionProcessingStatus]:
    with sessionmaker(engine)() as db:
        rows = db.scalars(
            select(SessionProcessingStatus).where(SessionProcessingStatus.session_id == session_id)
        )
        return {row.stage: row for row in rows}


def _session_of(engine: Engine, import_id: uuid.UUID) -> ChatSession:
    with sessionmaker(engine)() as db:
        return db.scalars(select(ChatSession).where(ChatSession.import_id == import_id)).one()


def _messages(engine: Engine, session_id: uuid.UUID) -> list[Message]:
    with sessionmaker(engine)() as db:
        return list(
            db.scalars(select(Message).where(Message.session_id == session_id).order_by(Message.order))
        )


def _import(engine: Engine, import_id: uuid.UUID) -> SessionImport:
    with sessionmaker(engine)() as db:
        row = db.get(SessionImport, import_id)
        assert row is not None
        return row


def _stored_import(engine: Engine, **fields: str) -> uuid.UUID:
    """Store one hand-made import of a new company, as the CSV stage would, and return its id."""
    with sessionmaker(engine).begin() as db:
        company = Company(name="Acme", csv_url="https://a.example/s.csv")
        db.add(company)
        db.flush()
        row = SessionImport(company_id=company.id, external_session_id="x", row_hash="0" * 64, **fields)
        db.add(row)
        db.flush()
        return row.id


def _external_id(engine: Engine, import_id: uuid.UUID) -> str:
    return _import(engine, import_id).external_session_id


@pytest.mark.postgres
def test_imports_become_sessions_with_messages_and_are_handed_to_analysis(
    pg_engine: Engine, pg_settings: Settings, chats: Source, transcripts: Fetcher
) -> None:
    # Given a company's 12 imported CSV rows, each with a transcript on the source
    _, import_ids = _import_csv(pg_engine, pg_settings, chats)
    analysis = Collector()

    # When the chunk is processed
    result = process_imports(pg_engine, pg_settings, import_ids, fetcher=transcripts, hand_over=analysis)

    # Then every import has one session, completed through SESSION_CREATION, with its messages in order
    assert (result.claimed, result.completed, result.failed) == (12, 12, 0)
    for import_id in import_ids:
        session = _session_of(pg_engine, import_id)
        stages = _stages(pg_engine, session.id)
        assert {stage: row.status for stage, row in stages.items()} == {
            ProcessingStage.CSV_IMPORT: ProcessingStatus.COMPLETED,
            ProcessingStage.TRANSCRIPT_FETCH: ProcessingStatus.COMPLETED,
            ProcessingStage.SESSION_CREATION: ProcessingStatus.COMPLETED,
            ProcessingStage.AI_ANALYSIS: ProcessingStatus.PENDING,
            ProcessingStage.QUESTION_EXTRACTION: ProcessingStatus.PENDING,
        }
        messages = _messages(pg_engine, session.id)
        assert [message.order for message in messages] == list(range(len(messages)))
        assert {message.role for message in messages} <= {"user", "assistant", "system"}
        # And messagesSent counts the user turns, as the CSV says the chat had
        assert session.messages_sent == sum(1 for message in messages if message.role == "user")
        assert session.messages_sent == _import(pg_engine, import_id).messages_sent
        assert _import(pg_engine, import_id).derive_status is ProcessingStatus.COMPLETED
    # And all sessions are handed to AI analysis in chunks
    assert sorted(analysis.ids) == sorted(_session_of(pg_engine, i).id for i in import_ids)


@pytest.mark.postgres
def test_times_are_read_in_the_company_zone_and_stored_as_utc(
    pg_engine: Engine, pg_settings: Settings, transcripts: Fetcher
) -> None:
    # Given an Amsterdam company's imports with several time spellings, one on the night clocks go back
    raw_times = {
        "summer": ("30.04.2025 11:38:14", datetime(2025, 4, 30, 9, 38, 14, tzinfo=UTC)),
        "short": ("1.5.2025 9:05:03", datetime(2025, 5, 1, 7, 5, 3, tzinfo=UTC)),
        "dashes": ("02-05-2025 10:00:00", datetime(2025, 5, 2, 8, 0, 0, tzinfo=UTC)),
        "iso": ("2025-05-03T10:00:00Z", datetime(2025, 5, 3, 10, 0, 0, tzinfo=UTC)),
        "winter": ("15.01.2025 12:00:00", datetime(2025, 1, 15, 11, 0, 0, tzinfo=UTC)),
        "dst-ambiguous": ("27.10.2024 02:30:00", datetime(2024, 10, 27, 0, 30, 0, tzinfo=UTC)),
    }
    ids = {}
    with sessionmaker(pg_engine).begin() as db:
        company = Company(name="Amsterdam", csv_url="https://a.example/s.csv", timezone="Europe/Amsterdam")
        db.add(company)
        db.flush()
        for name, (raw, _) in raw_times.items():
            row = SessionImport(
                company_id=company.id,
                external_session_id=name,
                start_time_raw=raw,
                end_time_raw=raw,
                row_hash="0" * 64,
            )
            db.add(row)
            db.flush()
            ids[name] = row.id

    # When they are processed
    process_imports(pg_engine, pg_settings, list(ids.values()), fetcher=transcripts, hand_over=Collector())

    # Then each session starts at the right instant in UTC
    for name, (_, expected) in raw_times.items():
        assert _session_of(pg_engine, ids[name]).start_time == expected, name


@pytest.mark.postgres
def test_an_unparseable_time_fails_the_import_with_the_raw_value(
    pg_engine: Engine, pg_settings: Settings, transcripts: Fetcher
) -> None:
    # Given an import whose start time is not a time
    import_id = _stored_import(pg_engine, start_time_raw="yesterday noon", end_time_raw="30.04.2025 11:38:14")

    # When it is processed
    result = process_imports(pg_engine, pg_settings, [import_id], fetcher=transcripts, hand_over=Collector())

    # Then it fails with the raw value in the reason, creates no session, and is not retried by itself
    stored = _import(pg_engine, import_id)
    assert result.failed == 1
    assert stored.derive_status is ProcessingStatus.FAILED
    assert "yesterday noon" in (stored.derive_error or "")
    assert stored.derive_next_attempt_at is None
    with sessionmaker(pg_engine)() as db:
        assert db.scalar(select(func.count()).select_from(ChatSession)) == 0


@pytest.mark.postgres
def test_the_same_chunk_delivered_twice_changes_nothing_the_second_time(
    pg_engine: Engine, pg_settings: Settings, chats: Source, transcripts: Fetcher
) -> None:
    # Given a processed chunk
    _, import_ids = _import_csv(pg_engine, pg_settings, chats)
    process_imports(pg_engine, pg_settings, import_ids, fetcher=transcripts, hand_over=Collector())
    with sessionmaker(pg_engine)() as db:
        messages_before = db.scalar(select(func.count()).select_from(Message))

    # When RabbitMQ delivers the same message again
    again = process_imports(pg_engine, pg_settings, import_ids, fetcher=transcripts, hand_over=Collector())

    # Then nothing is claimed, and no session or message is duplicated
    assert again.claimed == 0
    with sessionmaker(pg_engine)() as db:
        assert db.scalar(select(func.count()).select_from(ChatSession)) == 12
        assert db.scalar(select(func.count()).select_from(Message)) == messages_before


@pytest.mark.postgres
def test_two_workers_on_overlapping_chunks_process_each_import_once(
    pg_engine: Engine, pg_settings: Settings, chats: Source, transcripts: Fetcher
) -> None:
    # Given two chunks that share half their imports, and transcripts that answer slowly
    _, import_ids = _import_csv(pg_engine, pg_settings, chats)
    chats.add_fault(f"/{chats.company(0).slug}/transcripts/", "delay:0.3")
    first, second = import_ids[:8], import_ids[4:]
    results = []

    def work(chunk: list[uuid.UUID]) -> None:
        results.append(
            process_imports(pg_engine, pg_settings, chunk, fetcher=transcripts, hand_over=Collector())
        )

    # When two workers process them at the same time
    threads = [threading.Thread(target=work, args=(chunk,)) for chunk in (first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    # Then every import was claimed by exactly one of them
    assert sum(result.claimed for result in results) == 12
    with sessionmaker(pg_engine)() as db:
        assert db.scalar(select(func.count()).select_from(ChatSession)) == 12
        per_session = db.execute(
            select(Message.session_id, func.count(), func.count(func.distinct(Message.order))).group_by(
                Message.session_id
            )
        ).all()
    assert all(total == distinct for _, total, distinct in per_session)


def _write_transcript(source: Source, engine: Engine, import_id: uuid.UUID, content: bytes) -> None:
    source.transcript_path(0, _external_id(engine, import_id)).write_bytes(content)


@pytest.mark.postgres
def test_each_transcript_shape_becomes_the_right_messages(
    pg_engine: Engine, pg_settings: Settings, chats: Source, transcripts: Fetcher
) -> None:
    # Given a New York company's transcripts with a multi-line turn, text before the first role, an unknown
    # role, and cp1252 bytes
    company_id, import_ids = _import_csv(pg_engine, pg_settings, chats)
    with sessionmaker(pg_engine).begin() as db:
        db.execute(update(Company).where(Company.id == company_id).values(timezone="America/New_York"))
    multi, preamble, unknown, latin = import_ids[:4]
    _write_transcript(
        chats,
        pg_engine,
        multi,
        b"[30.04.2025 11:38:14] User: first line\nsecond line\n[30.04.2025 11:38:20] Assistant: answer\n",
    )
    _write_transcript(
        chats, pg_engine, preamble, b"exported by the chat tool\n[30.04.2025 11:38:14] User: hi\n"
    )
    _write_transcript(
        chats,
        pg_engine,
        unknown,
        b"[30.04.2025 11:38:14] Supervisor: taking over\n[30.04.2025 11:38:20] User: thanks\n",
    )
    _write_transcript(chats, pg_engine, latin, b"[30.04.2025 11:38:14] User: caf\xe9 open?\n")

    # When they are processed
    process_imports(
        pg_engine, pg_settings, [multi, preamble, unknown, latin], fetcher=transcripts, hand_over=Collector()
    )

    # Then continuation lines join their turn, and nothing of the text is lost
    def turns(import_id: uuid.UUID) -> list[tuple[str, str]]:
        return [(m.role, m.content) for m in _messages(pg_engine, _session_of(pg_engine, import_id).id)]

    assert turns(multi) == [("user", "first line\nsecond line"), ("assistant", "answer")]
    assert turns(preamble) == [("unknown", "exported by the chat tool"), ("user", "hi")]
    assert turns(unknown) == [("unknown", "Supervisor: taking over"), ("user", "thanks")]
    assert turns(latin) == [("user", "café open?")]
    # And the non-UTF-8 transcript carries a warning on its stage
    creation = _stages(pg_engine, _session_of(pg_engine, latin).id)[ProcessingStage.TRANSCRIPT_FETCH]
    assert any("UTF-8" in warning for warning in (creation.stage_metadata or {}).get("warnings", []))
    # And the first message's timestamp is the bracket time read in the company's zone
    first = _messages(pg_engine, _session_of(pg_engine, multi).id)[0]
    assert first.timestamp == datetime(2025, 4, 30, 15, 38, 14, tzinfo=UTC)


@pytest.mark.postgres
@pytest.mark.parametrize(
    ("case", "reason"),
    [("empty", "Empty transcript content"), ("missing", "404"), ("oversized", "exceeds")],
)
def test_a_transcript_that_cannot_be_had_fails_its_session_for_good_and_skips_analysis(
    pg_engine: Engine, pg_settings: Settings, chats: Source, case: str, reason: str
) -> None:
    # Given a session whose transcript is empty, absent (404), or larger than the cap
    settings = pg_settings.model_copy(update={"transcript_max_bytes": 64})
    _, import_ids = _import_csv(pg_engine, settings, chats)
    import_id = import_ids[0]
    path = chats.transcript_path(0, _external_id(pg_engine, import_id))
    if case == "empty":
        path.write_bytes(b"  \n\n")
    elif case == "missing":
        path.unlink()
    else:
        path.write_bytes(b"[30.04.2025 11:38:14] User: " + b"x" * 200)

    # When it is processed
    with Fetcher(transcript_fetcher_limits(settings)) as fetcher:
        process_imports(pg_engine, settings, [import_id], fetcher=fetcher, hand_over=Collector())

    # Then TRANSCRIPT_FETCH is FAILED with the reason, and the later stages are SKIPPED, never left waiting
    stages = _stages(pg_engine, _session_of(pg_engine, import_id).id)
    assert stages[ProcessingStage.TRANSCRIPT_FETCH].status is ProcessingStatus.FAILED
    assert reason in (stages[ProcessingStage.TRANSCRIPT_FETCH].error_message or "")
    for stage in (
        ProcessingStage.SESSION_CREATION,
        ProcessingStage.AI_ANALYSIS,
        ProcessingStage.QUESTION_EXTRACTION,
    ):
        assert stages[stage].status is ProcessingStatus.SKIPPED
    # And it is not retried by itself
    assert _import(pg_engine, import_id).derive_next_attempt_at is None


@pytest.mark.postgres
def test_a_transcript_url_that_is_not_http_or_points_inside_is_refused(
    pg_engine: Engine, pg_settings: Settings, chats: Source
) -> None:
    # Given a deployment that refuses private networks, one transcript on an ftp URL and one on loopback
    settings = pg_settings.model_copy(update={"csv_allow_private_networks": False})
    _, import_ids = _import_csv(pg_engine, pg_settings, chats)
    ftp, loopback = import_ids[:2]
    with sessionmaker(pg_engine).begin() as db:
        db.execute(
            update(SessionImport)
            .where(SessionImport.id == ftp)
            .values(full_transcript_url="ftp://files.example/t.txt")
        )

    # When both are processed
    with Fetcher(transcript_fetcher_limits(settings)) as fetcher:
        process_imports(pg_engine, settings, [ftp, loopback], fetcher=fetcher, hand_over=Collector())

    # Then neither is fetched: both are FAILED for good with the reason, and wait for nothing
    for import_id, reason in ((ftp, "ftp"), (loopback, "loopback")):
        stages = _stages(pg_engine, _session_of(pg_engine, import_id).id)
        fetch = stages[ProcessingStage.TRANSCRIPT_FETCH]
        assert fetch.status is ProcessingStatus.FAILED
        assert reason in (fetch.error_message or ""), fetch.error_message
        assert stages[ProcessingStage.AI_ANALYSIS].status is ProcessingStatus.SKIPPED
    assert not any("/transcripts/" in path for path in chats.server.stats.snapshot())


@pytest.mark.postgres
def test_a_slow_server_is_retried_after_a_backoff_and_then_succeeds(
    pg_engine: Engine, pg_settings: Settings, chats: Source
) -> None:
    # Given a transcript server slower than the fetch timeout
    settings = pg_settings.model_copy(update={"transcript_fetch_timeout": 300})
    _, import_ids = _import_csv(pg_engine, settings, chats)
    import_id = import_ids[0]
    chats.add_fault(f"/{chats.company(0).slug}/transcripts/", "delay:2", times=1)

    # When it is processed
    with Fetcher(transcript_fetcher_limits(settings)) as fetcher:
        first = process_imports(pg_engine, settings, [import_id], fetcher=fetcher, hand_over=Collector())

        # Then the fetch failed for now, and the import waits for a retry after a backoff
        stored = _import(pg_engine, import_id)
        assert first.retrying == 1
        assert stored.derive_status is ProcessingStatus.FAILED
        assert stored.derive_next_attempt_at is not None and stored.derive_next_attempt_at > utcnow()
        stages = _stages(pg_engine, _session_of(pg_engine, import_id).id)
        assert stages[ProcessingStage.TRANSCRIPT_FETCH].status is ProcessingStatus.FAILED
        assert stages[ProcessingStage.TRANSCRIPT_FETCH].retry_count == 1
        assert stages[ProcessingStage.AI_ANALYSIS].status is ProcessingStatus.PENDING

        # When the sweep runs after the backoff, and the server has recovered
        sent = Collector()
        sweep_imports(pg_engine, settings, sent, now=stored.derive_next_attempt_at + SWEEP_GRACE)
        process_imports(pg_engine, settings, sent.ids, fetcher=fetcher, hand_over=Collector())

    # Then the sweep sent it again and it completed, with its messages
    assert import_id in sent.ids
    assert _import(pg_engine, import_id).derive_status is ProcessingStatus.COMPLETED
    assert _messages(pg_engine, _session_of(pg_engine, import_id).id)


@pytest.mark.postgres
def test_a_transcript_server_trickling_its_headers_fails_that_session_alone(
    pg_engine: Engine, pg_settings: Settings, chats: Source
) -> None:
    # Given a 1-second fetch deadline, and one session of a chunk whose transcript server sends its
    # headers a byte at a time (each byte well within the read timeout)
    settings = pg_settings.model_copy(update={"transcript_fetch_timeout": 1000})
    _, import_ids = _import_csv(pg_engine, settings, chats)
    trickled, *others = import_ids
    with running_server() as slow:
        url = slow.route("/t.txt", trickle_headers(slow))
        with sessionmaker(pg_engine).begin() as db:
            db.execute(
                update(SessionImport).where(SessionImport.id == trickled).values(full_transcript_url=url)
            )

        # When the chunk is processed
        with Fetcher(transcript_fetcher_limits(settings)) as fetcher:
            result = process_imports(pg_engine, settings, import_ids, fetcher=fetcher, hand_over=Collector())

    # Then that session's fetch failed with the deadline as its reason, and waits for a retry
    stages = _stages(pg_engine, _session_of(pg_engine, trickled).id)
    assert stages[ProcessingStage.TRANSCRIPT_FETCH].status is ProcessingStatus.FAILED
    assert stages[ProcessingStage.TRANSCRIPT_FETCH].error_message == "total timeout after 1.0s"
    assert result.retrying == 1
    # And every other session of the chunk was stored with its messages
    assert result.completed == len(others)
    for import_id in others:
        assert _messages(pg_engine, _session_of(pg_engine, import_id).id)


@pytest.fixture
def refused_content(pg_engine: Engine) -> Iterator[str]:
    """A message text the database refuses: a check constraint on ``message``, for this test only."""
    text_ = "this message is refused by the database"
    with pg_engine.begin() as connection:
        connection.exec_driver_sql(
            f"ALTER TABLE message ADD CONSTRAINT test_refused_content CHECK (content <> '{text_}') NOT VALID"
        )
    yield text_
    with pg_engine.begin() as connection:
        connection.exec_driver_sql("ALTER TABLE message DROP CONSTRAINT test_refused_content")


@pytest.mark.postgres
def test_an_import_the_database_refuses_fails_alone_and_the_rest_of_its_chunk_lands(
    pg_engine: Engine, pg_settings: Settings, chats: Source, transcripts: Fetcher, refused_content: str
) -> None:
    # Given a chunk of 12 imports, one of whose transcripts holds a message the database refuses: the
    # set-based write of the chunk fails whole
    _, import_ids = _import_csv(pg_engine, pg_settings, chats)
    refused = import_ids[5]
    _write_transcript(chats, pg_engine, refused, f"User: hi\nAssistant: {refused_content}\n".encode())
    analysis = Collector()

    # When the chunk is processed
    result = process_imports(pg_engine, pg_settings, import_ids, fetcher=transcripts, hand_over=analysis)

    # Then the 11 others are sessions with their messages, handed to analysis
    assert (result.completed, result.failed, result.retrying) == (11, 1, 0)
    others = [import_id for import_id in import_ids if import_id != refused]
    for import_id in others:
        assert _import(pg_engine, import_id).derive_status is ProcessingStatus.COMPLETED
        assert _messages(pg_engine, _session_of(pg_engine, import_id).id)
    assert sorted(analysis.ids) == sorted(_session_of(pg_engine, i).id for i in others)
    # And the refused import is FAILED with the database's reason, taken out of the way (no retry by itself)
    stored = _import(pg_engine, refused)
    assert stored.derive_status is ProcessingStatus.FAILED
    assert stored.derive_error is not None
    assert stored.derive_error.startswith("the database refused the session: ")
    assert "test_refused_content" in stored.derive_error
    assert stored.derive_next_attempt_at is None and stored.derive_lease_expires_at is None
    with sessionmaker(pg_engine)() as db:
        assert db.scalar(select(func.count()).where(ChatSession.import_id == refused)) == 0


@pytest.mark.postgres
def test_transient_failures_stop_at_the_attempt_cap(
    pg_engine: Engine, pg_settings: Settings, chats: Source
) -> None:
    # Given at most 2 attempts, and a transcript server that always fails with a 503
    settings = pg_settings.model_copy(update={"import_processing_max_attempts": 2})
    _, import_ids = _import_csv(pg_engine, settings, chats)
    import_id = import_ids[0]
    chats.add_fault(f"/{chats.company(0).slug}/transcripts/", "status:503")

    # When it is processed, swept after its backoff, and processed again
    with Fetcher(transcript_fetcher_limits(settings)) as fetcher:
        process_imports(pg_engine, settings, [import_id], fetcher=fetcher, hand_over=Collector())
        retry_at = _import(pg_engine, import_id).derive_next_attempt_at
        assert retry_at is not None
        sweep_imports(pg_engine, settings, Collector(), now=retry_at + SWEEP_GRACE)
        process_imports(pg_engine, settings, [import_id], fetcher=fetcher, hand_over=Collector())

    # Then after the second attempt it is FAILED for good, and the session no longer waits for analysis
    stored = _import(pg_engine, import_id)
    assert stored.derive_status is ProcessingStatus.FAILED
    assert stored.derive_next_attempt_at is None
    stages = _stages(pg_engine, _session_of(pg_engine, import_id).id)
    assert stages[ProcessingStage.AI_ANALYSIS].status is ProcessingStatus.SKIPPED
    assert "gave up after 2 attempts" in (stages[ProcessingStage.AI_ANALYSIS].error_message or "")


@pytest.mark.postgres
def test_a_session_without_transcript_or_messages_is_skipped_for_analysis(
    pg_engine: Engine, pg_settings: Settings, chats: Source, transcripts: Fetcher
) -> None:
    # Given one row without a transcript URL, and one whose transcript holds no message at all
    lines = chats.csv_path(0).read_text().splitlines(keepends=True)
    fields = lines[0].split(",")
    fields[10] = ""
    lines[0] = ",".join(fields)
    chats.write_csv(0, "".join(lines))
    _, import_ids = _import_csv(pg_engine, pg_settings, chats)
    no_url = next(i for i in import_ids if _import(pg_engine, i).full_transcript_url is None)
    no_messages = next(i for i in import_ids if i != no_url)
    _write_transcript(chats, pg_engine, no_messages, b"[30.04.2025 11:38:14] User:   \n")
    handed = Collector()

    # When both are processed
    process_imports(pg_engine, pg_settings, [no_url, no_messages], fetcher=transcripts, hand_over=handed)

    # Then neither waits for AI analysis, each with its reason, and neither is handed to it
    without_url = _stages(pg_engine, _session_of(pg_engine, no_url).id)
    assert without_url[ProcessingStage.TRANSCRIPT_FETCH].status is ProcessingStatus.SKIPPED
    assert without_url[ProcessingStage.TRANSCRIPT_FETCH].error_message == "No transcript URL provided"
    assert without_url[ProcessingStage.AI_ANALYSIS].status is ProcessingStatus.SKIPPED
    empty = _stages(pg_engine, _session_of(pg_engine, no_messages).id)
    assert empty[ProcessingStage.AI_ANALYSIS].status is ProcessingStatus.SKIPPED
    assert empty[ProcessingStage.AI_ANALYSIS].error_message == "no messages in the transcript"
    assert handed.ids == []


@pytest.mark.postgres
def test_a_changed_csv_row_is_derived_again_from_a_fresh_transcript(
    pg_engine: Engine, pg_settings: Settings, chats: Source, transcripts: Fetcher
) -> None:
    # Given a processed company
    company_id, import_ids = _import_csv(pg_engine, pg_settings, chats)
    process_imports(pg_engine, pg_settings, import_ids, fetcher=transcripts, hand_over=Collector())
    first = import_ids[0]
    session_before = _session_of(pg_engine, first)

    # When the chat goes on: its transcript grows and its CSV row changes, and the CSV is imported again
    external_id = _external_id(pg_engine, first)
    path = chats.transcript_path(0, external_id)
    path.write_bytes(path.read_bytes().rstrip(b"\n") + b"\n[30.12.2025 10:00:00] User: one more question?\n")
    lines = chats.csv_path(0).read_text().splitlines(keepends=True)
    index = next(n for n, line in enumerate(lines) if line.startswith(external_id))
    lines[index] = lines[index].replace(external_id, external_id, 1).rstrip("\n") + " (continued)\n"
    chats.write_csv(0, "".join(lines))
    handed = Collector()
    with Fetcher(fetch_limits(pg_settings)) as fetcher:
        import_company_csv(pg_engine, pg_settings, company_id, fetcher=fetcher, hand_over=handed)
    process_imports(pg_engine, pg_settings, handed.ids, fetcher=transcripts, hand_over=Collector())

    # Then the same session now holds the longer conversation, and will be analysed again
    session_after = _session_of(pg_engine, first)
    assert handed.ids == [first]
    assert session_after.id == session_before.id
    messages = _messages(pg_engine, session_after.id)
    assert messages[-1].content == "one more question?"
    assert [m.order for m in messages] == list(range(len(messages)))
    assert session_after.initial_msg is not None and session_after.initial_msg.endswith("(continued)")
    assert (
        _stages(pg_engine, session_after.id)[ProcessingStage.AI_ANALYSIS].status is ProcessingStatus.PENDING
    )


@pytest.mark.postgres
def test_the_sweep_finds_imports_whose_message_was_lost(
    pg_engine: Engine, pg_settings: Settings, chats: Source, transcripts: Fetcher
) -> None:
    # Given imported rows whose hand-over message never arrived, and one whose worker died mid-way
    _, import_ids = _import_csv(pg_engine, pg_settings, chats)
    with sessionmaker(pg_engine).begin() as db:
        dead = db.get(SessionImport, import_ids[0])
        assert dead is not None
        dead.derive_status = ProcessingStatus.IN_PROGRESS
        dead.derive_lease_expires_at = utcnow() - timedelta(seconds=1)

    # When the sweep runs right away, and again a few minutes later
    right_away = Collector()
    sweep_imports(pg_engine, pg_settings, right_away)
    later = Collector()
    result = sweep_imports(pg_engine, pg_settings, later, now=utcnow() + SWEEP_GRACE + timedelta(minutes=2))

    # Then at first it sends only the import whose worker died, leaving messages still on their way alone;
    # later it sends every waiting import
    assert right_away.ids == [import_ids[0]]
    assert sorted(later.ids) == sorted(import_ids)
    assert result.lag_seconds > SWEEP_GRACE.total_seconds()
    assert all(len(chunk) <= pg_settings.import_processing_batch_size for chunk in later.chunks)
    # And processing what it sent completes them all
    process_imports(pg_engine, pg_settings, later.ids, fetcher=transcripts, hand_over=Collector())
    with sessionmaker(pg_engine)() as db:
        assert db.scalar(select(func.count()).select_from(ChatSession)) == 12


@pytest.mark.postgres
def test_raw_csv_values_are_normalised_on_the_session_and_kept_on_the_import(
    pg_engine: Engine, pg_settings: Settings, transcripts: Fetcher
) -> None:
    # Given an import with a country name, a language name and a malformed IP address
    import_id = _stored_import(
        pg_engine,
        start_time_raw="30.04.2025 11:38:14",
        end_time_raw="30.04.2025 11:40:00",
        country_code="Netherlands",
        language="nederlands",
        ip_address="999.1.1.1",
    )

    # When it is processed
    process_imports(pg_engine, pg_settings, [import_id], fetcher=transcripts, hand_over=Collector())

    # Then the session has ISO codes, the bad IP is dropped with a warning, and the raw values stay
    session = _session_of(pg_engine, import_id)
    assert (session.country, session.language, session.ip_address) == ("NL", "nl", None)
    csv_stage = _stages(pg_engine, session.id)[ProcessingStage.CSV_IMPORT]
    assert csv_stage.status is ProcessingStatus.COMPLETED
    assert any("999.1.1.1" in warning for warning in (csv_stage.stage_metadata or {})["warnings"])
    stored = _import(pg_engine, import_id)
    assert (stored.country_code, stored.language, stored.ip_address) == (
        "Netherlands",
        "nederlands",
        "999.1.1.1",
    )


@pytest.mark.postgres
def test_the_stage_counts_its_outcomes_and_the_sweep_reports_its_lag(
    pg_engine: Engine, pg_settings: Settings, chats: Source, transcripts: Fetcher
) -> None:
    # Given imported rows, one of whose transcripts is missing
    _, import_ids = _import_csv(pg_engine, pg_settings, chats)
    chats.transcript_path(0, _external_id(pg_engine, import_ids[0])).unlink()
    completed = (
        REGISTRY.get_sample_value(
            "livedash_stage_items_total", {"stage": "import-processing", "outcome": "completed"}
        )
        or 0
    )
    failed = (
        REGISTRY.get_sample_value(
            "livedash_stage_items_total", {"stage": "import-processing", "outcome": "failed"}
        )
        or 0
    )

    # When the sweep looks five minutes later, and the chunk is then processed
    sweep_imports(pg_engine, pg_settings, Collector(), now=utcnow() + timedelta(minutes=5))
    lag = REGISTRY.get_sample_value("livedash_stage_lag_seconds", {"stage": "import-processing"})
    process_imports(pg_engine, pg_settings, import_ids, fetcher=transcripts, hand_over=Collector())

    # Then the lag was the age of the oldest waiting import, and each outcome is counted
    assert lag is not None and lag >= 5 * 60
    assert (
        REGISTRY.get_sample_value(
            "livedash_stage_items_total", {"stage": "import-processing", "outcome": "completed"}
        )
        == completed + 11
    )
    assert (
        REGISTRY.get_sample_value(
            "livedash_stage_items_total", {"stage": "import-processing", "outcome": "failed"}
        )
        == failed + 1
    )
    assert (REGISTRY.get_sample_value("livedash_transcript_fetch_bytes_count") or 0) >= 11


@pytest.mark.postgres
def test_a_password_that_cannot_be_read_fails_the_fetch_with_that_reason(
    pg_engine: Engine, pg_settings: Settings, chats: Source, transcripts: Fetcher
) -> None:
    # Given imports of a company whose stored password was encrypted under another SECRET_KEY
    _, import_ids = _import_csv(pg_engine, pg_settings, chats)
    other_key = pg_settings.model_copy(update={"secret_key": SecretStr("a-different-key")})

    # When they are processed
    process_imports(pg_engine, other_key, import_ids[:2], fetcher=transcripts, hand_over=Collector())

    # Then no request is sent with wrong credentials: the fetch fails for good, saying why
    fetch = _stages(pg_engine, _session_of(pg_engine, import_ids[0]).id)[ProcessingStage.TRANSCRIPT_FETCH]
    assert fetch.status is ProcessingStatus.FAILED
    assert "cannot be decrypted" in (fetch.error_message or "")
    assert not any("/transcripts/" in path for path in chats.server.stats.snapshot())
