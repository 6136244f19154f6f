"""The CSV import stage against messy and hostile sources: every usable row kept, every bad field reported,
a body that is no CSV refused whole, a line the database refuses isolated, and one endless line bounded.

Real PostgreSQL, real HTTP on 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any, cast

import psycopg
import pytest
from psycopg import pq
from sqlalchemy import Engine, select, text
from sqlalchemy.orm import sessionmaker
from sqlalchemy.pool import QueuePool

from pipeline.companies import add_company
from pipeline.db.enums import CsvFetchOutcome, CsvRowProblem
from pipeline.db.models import CsvFetch, CsvRowError, SessionImport
from pipeline.settings import Settings
from pipeline.sources.http_fetch import Fetcher
from pipeline.stages import csv_store
from pipeline.stages.csv_import import CsvImportFailed, fetch_limits, import_company_csv
from pipeline.stages.csv_reports import company_import_status, recent_row_errors
from tests.sources.httpserver import LocalServer, respond, running_server

pytestmark = pytest.mark.postgres

START, END = "30.04.2025 11:38:14", "30.04.2025 11:39:00"


def _line(session_id: str, **columns: str) -> str:
    fields = [session_id, START, END] + [""] * 13
    for index, value in columns.items():
        fields[int(index.removeprefix("c"))] = value
    return ",".join(fields) + "\r\n"


@pytest.fixture
def server() -> Iterator[LocalServer]:
    with running_server() as running:
        yield running


def _company(engine: Engine, url: str) -> uuid.UUID:
    with sessionmaker(engine).begin() as db:
        return add_company(db, name=f"c-{uuid.uuid4().hex[:8]}", csv_url=url).id


def _serve(server: LocalServer, body: bytes, content_type: str | None = "text/csv") -> str:
    headers = {"Content-Type": content_type} if content_type else {}
    return server.route("/sessions.csv", lambda handler: respond(handler, 200, body, headers))


def _import(engine: Engine, settings: Settings, company_id: uuid.UUID) -> CsvFetchOutcome | None:
    with Fetcher(fetch_limits(settings)) as fetcher:
        return import_company_csv(
            engine, settings, company_id, fetcher=fetcher, hand_over=lambda ids: None
        ).outcome


def _stored(engine: Engine, company_id: uuid.UUID) -> dict[str, SessionImport]:
    with sessionmaker(engine)() as db:
        rows = db.scalars(select(SessionImport).where(SessionImport.company_id == company_id))
        return {row.external_session_id: row for row in rows}


def _problems(engine: Engine, company_id: uuid.UUID) -> list[CsvRowError]:
    with sessionmaker(engine)() as db:
        return list(
            db.scalars(
                select(CsvRowError)
                .where(CsvRowError.company_id == company_id)
                .order_by(CsvRowError.line_number, CsvRowError.column_name)
            )
        )


#: Each bad number form, in the column it was found in: (line's session id, column index, value).
BAD_NUMBERS = [
    ("text-count", 6, "twelve"),
    ("negative-count", 6, "-3"),
    ("overflow-tokens", 12, "99999999999"),
    ("exponent-tokens", 12, "1e3"),
    ("thousands-tokens", 12, '"6,537"'),
    ("decimal-comma-eur", 13, '"0,0010"'),
    ("both-separators-seconds", 11, '"1.234,5"'),
    ("currency-eur", 13, "€0.0010"),
    ("nan-seconds", 11, "NaN"),
    ("infinity-eur", 13, "Infinity"),
    ("negative-seconds", 11, "-2.5"),
]


def test_latin1_text_and_each_bad_number_keep_their_session_with_a_warning(
    pg_engine: Engine, pg_settings: Settings, server: LocalServer
) -> None:
    # Given an export with a Latin-1 initial message and, one per row, each unreadable number form
    body = _line("good-1", c6="3", c15="hello").encode()
    body += _line("latin-1", c6="2", c15='"Goedendag, één vraag"').encode("latin-1")
    for session_id, column, value in BAD_NUMBERS:
        body += _line(session_id, **{f"c{column}": value}).encode()
    body += _line("good-2", c12="6537").encode()
    company_id = _company(pg_engine, _serve(server, body))

    # When it is imported
    outcome = _import(pg_engine, pg_settings, company_id)

    # Then every row is a session: the Latin-1 text read as Windows-1252, each bad number null
    stored = _stored(pg_engine, company_id)
    assert outcome is CsvFetchOutcome.IMPORTED
    assert set(stored) == {"good-1", "latin-1", "good-2"} | {session_id for session_id, _, _ in BAD_NUMBERS}
    assert stored["latin-1"].initial_message == "Goedendag, één vraag"
    assert stored["latin-1"].messages_sent == 2
    assert stored["good-2"].tokens == 6537
    fields = {6: "messages_sent", 11: "avg_response_time_seconds", 12: "tokens", 13: "tokens_eur"}
    for session_id, column, _ in BAD_NUMBERS:
        assert getattr(stored[session_id], fields[column]) is None, session_id
    # And each bad field is a warning with its line, column, value and reason; no row error
    problems = _problems(pg_engine, company_id)
    assert {problem.kind for problem in problems} == {CsvRowProblem.WARNING}
    assert [(problem.line_number, problem.column_name) for problem in problems] == [
        (2, "initialMessage"),
        *[
            (
                line,
                ("messagesSent", "avgResponseTimeSeconds", "tokens", "tokensEur")[[6, 11, 12, 13].index(c)],
            )
            for line, (_, c, _) in enumerate(BAD_NUMBERS, start=3)
        ],
    ]
    assert [problem.raw_excerpt for problem in problems[1:]] == [
        value.strip('"') for _, _, value in BAD_NUMBERS
    ]
    # And operators see them: `imports errors` lists them, `status --json` counts them on the last fetch
    with sessionmaker(pg_engine)() as db:
        listed = recent_row_errors(db, company_id=company_id, kind=CsvRowProblem.WARNING, limit=100)
        status = {company["id"]: company for company in company_import_status(db)}
    assert len(listed) == len(problems)
    assert {(row["kind"], row["column"]) for row in listed} >= {("WARNING", "initialMessage")}
    last_fetch = status[str(company_id)]["last_fetch"]
    assert (last_fetch["rows_invalid"], last_fetch["field_warnings"]) == (0, len(problems))


LOGIN_PAGE = b"""<!DOCTYPE html>
<html><head><title>Sign in</title></head>
<body><form action="/login" method="post">
<input name="user">, <input name="password" type="password">
</form></body></html>
"""


@pytest.mark.parametrize(
    ("body", "content_type", "reason"),
    [
        (LOGIN_PAGE, "text/html; charset=utf-8", "not a CSV: Content-Type text/html (HTML)"),
        (LOGIN_PAGE, "text/plain", "not a CSV: the body starts like HTML"),
        (
            b'{"error": "unauthorized", "id": 1}',
            "application/json",
            "not a CSV: Content-Type application/json",
        ),
        (b'{"error": "unauthorized"}\n', None, "not a CSV: the body starts like JSON"),
        (b'<?xml version="1.0"?><fault>denied</fault>', "text/csv", "not a CSV: the body starts like XML"),
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", "application/octet-stream", "not a CSV: the body starts like PDF"),
    ],
    ids=["html-page", "html-as-text", "json", "json-untyped", "xml", "pdf"],
)
def test_a_body_that_is_not_a_csv_fails_the_fetch_and_stores_nothing(
    pg_engine: Engine,
    pg_settings: Settings,
    server: LocalServer,
    body: bytes,
    content_type: str | None,
    reason: str,
) -> None:
    # Given a source answering 200 with another format
    company_id = _company(pg_engine, _serve(server, body, content_type))

    # When its CSV is imported
    with pytest.raises(CsvImportFailed) as failure:
        _import(pg_engine, pg_settings, company_id)

    # Then the fetch failed with that reason, and neither a session nor a row error was stored
    assert failure.value.reason.startswith(reason)
    with sessionmaker(pg_engine)() as db:
        [fetch] = db.scalars(select(CsvFetch).where(CsvFetch.company_id == company_id)).all()
    assert (fetch.outcome, fetch.http_status) == (CsvFetchOutcome.FAILED, 200)
    assert fetch.error is not None and fetch.error.startswith(reason)
    assert _stored(pg_engine, company_id) == {}
    assert _problems(pg_engine, company_id) == []


@pytest.fixture
def refusing_database(pg_engine: Engine) -> Iterator[Engine]:
    """The database with one rule more than the parser knows: category 'poison' is refused (SQLSTATE 23514).

    It stands for any rule of the schema the parser does not mirror (a later migration's constraint, an
    index entry too large): the parser accepts the line, the database refuses it.
    """
    with pg_engine.begin() as connection:
        connection.execute(
            text(
                "ALTER TABLE session_import ADD CONSTRAINT test_no_poison "
                "CHECK (category IS DISTINCT FROM 'poison')"
            )
        )
    try:
        yield pg_engine
    finally:
        with pg_engine.begin() as connection:
            connection.execute(text("ALTER TABLE session_import DROP CONSTRAINT test_no_poison"))


def test_a_line_the_database_refuses_is_recorded_and_the_others_land(
    refusing_database: Engine, pg_settings: Settings, server: LocalServer
) -> None:
    # Given 40 lines, three of which the database refuses: the first, one in the middle and the last
    refused = {1, 23, 40}
    lines = [
        _line(f"s-{number}", c14="poison" if number in refused else "Greeting") for number in range(1, 41)
    ]
    company_id = _company(refusing_database, _serve(server, "".join(lines).encode()))

    # When it is imported
    outcome = _import(refusing_database, pg_settings, company_id)

    # Then the 37 others are stored, and each refused one is a row error with the database's reason
    assert outcome is CsvFetchOutcome.IMPORTED
    assert set(_stored(refusing_database, company_id)) == {f"s-{n}" for n in range(1, 41) if n not in refused}
    errors = _problems(refusing_database, company_id)
    assert [(error.kind, error.line_number, error.raw_excerpt) for error in errors] == [
        (CsvRowProblem.ERROR, number, f"session id 's-{number}'") for number in sorted(refused)
    ]
    for error in errors:
        assert error.reason.startswith("refused by the database: ")
        assert "test_no_poison" in error.reason
        assert "Failing row" not in error.reason  # the DETAIL, which repeats the whole row, is left out
    with sessionmaker(refusing_database)() as db:
        [fetch] = db.scalars(select(CsvFetch).where(CsvFetch.company_id == company_id)).all()
    assert (fetch.rows_total, fetch.rows_new, fetch.rows_invalid) == (40, 37, 3)


#: The worker's peak resident memory with a 150 MB line must stay far below the pod's 1.5 GiB.
MAX_WORKER_RSS = 300 * 1024 * 1024
LONG_LINE_BYTES = 150 * 1024 * 1024


def _stream_long_line(handler: BaseHTTPRequestHandler) -> None:
    """A CSV whose second line is 150 MB of commas and text, generated as it is sent: never held."""
    handler.send_response(200)
    handler.send_header("Content-Type", "text/csv")
    handler.send_header("Transfer-Encoding", "chunked")
    handler.end_headers()

    def send(data: bytes) -> None:
        handler.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")

    send(_line("before").encode())
    send(b"long,30.04.2025 11:38:14,30.04.2025 11:39:00")
    piece = b",xxxxxxxxxxxxxxx" * 4096  # 64 KiB
    for _ in range(LONG_LINE_BYTES // len(piece)):
        send(piece)
    send(b"\r\n" + _line("after").encode())
    handler.wfile.write(b"0\r\n\r\n")


def test_one_endless_line_is_refused_in_bounded_memory_and_the_rows_around_it_are_stored(
    pg_engine: Engine, pg_settings: Settings, server: LocalServer, tmp_path: Path
) -> None:
    # Given a CSV with a 150 MB line between two good ones, served as it is generated
    company_id = _company(pg_engine, server.route("/sessions.csv", _stream_long_line))

    # When a separate worker process imports it (so that its peak memory is its own)
    worker = subprocess.run(
        [sys.executable, str(Path(__file__).with_name("csv_import_worker.py")), str(company_id)],
        env={
            **os.environ,
            "DATABASE_URL": pg_settings.database_url,
            "SECRET_KEY": "test-secret",
            "CSV_ALLOW_PRIVATE_NETWORKS": "true",
        },
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )

    # Then it imported the two good rows, refused the long one for its size, and peaked far below the limit
    assert worker.returncode == 0, worker.stderr
    report = json.loads(worker.stdout)
    assert report["bytes_read"] > LONG_LINE_BYTES
    assert report["peak_rss"] < MAX_WORKER_RSS, f"peak RSS {report['peak_rss'] / 2**20:.0f} MiB"
    assert report["outcome"] == "IMPORTED"
    assert set(_stored(pg_engine, company_id)) == {"before", "after"}
    [error] = _problems(pg_engine, company_id)
    assert error.line_number == 2
    assert (
        error.reason
        == f"record longer than {pg_settings.csv_max_record_bytes} bytes (CSV_MAX_RECORD_BYTES); skipped"
    )


#: Lines merged at a time in the chunk tests: their files span several chunks.
SMALL_CHUNKS = 4


@pytest.fixture
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(csv_store, "MERGE_CHUNK_LINES", SMALL_CHUNKS)


def _fetch(engine: Engine, company_id: uuid.UUID) -> CsvFetch:
    with sessionmaker(engine)() as db:
        return db.scalars(
            select(CsvFetch).where(CsvFetch.company_id == company_id).order_by(CsvFetch.started_at.desc())
        ).first() or pytest.fail("no fetch recorded")


@pytest.mark.usefixtures("small_chunks")
def test_a_session_id_repeated_in_later_chunks_keeps_its_first_occurrence(
    pg_engine: Engine, pg_settings: Settings, server: LocalServer
) -> None:
    # Given 12 lines merged 4 at a time, where s-2 (line 2) comes again with other content on line 7 and
    # verbatim on line 11, each in a chunk of its own
    lines = [_line(f"s-{number}", c14="Greeting") for number in range(1, 7)]
    lines += [_line("s-2", c14="Other"), _line("s-7", c14="Greeting")]
    lines += [_line(f"s-{number}", c14="Greeting") for number in (8, 9)]
    lines += [_line("s-2", c14="Greeting"), _line("s-10", c14="Greeting")]
    company_id = _company(pg_engine, _serve(server, "".join(lines).encode()))

    # When it is imported
    outcome = _import(pg_engine, pg_settings, company_id)

    # Then each session is stored once, s-2 as line 2 has it; line 7 is a row error naming line 2 and line
    # 11 a duplicate
    assert outcome is CsvFetchOutcome.IMPORTED
    stored = _stored(pg_engine, company_id)
    assert set(stored) == {f"s-{number}" for number in range(1, 11)}
    assert stored["s-2"].category == "Greeting"
    errors = _problems(pg_engine, company_id)
    repeat = (
        "session id 's-2' already appeared on line 2 with different content; the first occurrence was kept"
    )
    assert [(error.line_number, error.reason) for error in errors] == [(7, repeat)]
    fetch = _fetch(pg_engine, company_id)
    assert (fetch.rows_total, fetch.rows_new, fetch.rows_duplicate, fetch.rows_invalid) == (12, 10, 1, 1)


@pytest.mark.usefixtures("small_chunks")
def test_a_refused_line_is_still_the_first_occurrence_for_a_later_chunk(
    refusing_database: Engine, pg_settings: Settings, server: LocalServer
) -> None:
    # Given 9 lines merged 4 at a time: s-2 on line 2 is refused by the database, and comes again on line 7
    lines = [_line("s-1"), _line("s-2", c14="poison")] + [_line(f"s-{n}") for n in range(3, 7)]
    lines += [_line("s-2", c14="Greeting"), _line("s-7"), _line("s-8", c14="poison")]
    company_id = _company(refusing_database, _serve(server, "".join(lines).encode()))

    # When it is imported
    outcome = _import(refusing_database, pg_settings, company_id)

    # Then line 2 is refused with the database's reason and line 7 is its repeat, as when the whole file was
    # merged at once; the refused line of the last chunk is isolated too, and the rest land
    assert outcome is CsvFetchOutcome.IMPORTED
    assert set(_stored(refusing_database, company_id)) == {"s-1", "s-3", "s-4", "s-5", "s-6", "s-7"}
    errors = _problems(refusing_database, company_id)
    assert [error.line_number for error in errors] == [2, 7, 9]
    assert errors[0].reason.startswith("refused by the database: ")
    assert errors[1].reason.startswith("session id 's-2' already appeared on line 2 with different content")
    assert errors[2].reason.startswith("refused by the database: ")
    fetch = _fetch(refusing_database, company_id)
    assert (fetch.rows_total, fetch.rows_new, fetch.rows_duplicate, fetch.rows_invalid) == (9, 6, 0, 3)


@pytest.mark.usefixtures("small_chunks")
def test_a_reimport_updates_the_changed_rows_of_every_chunk(
    pg_engine: Engine, pg_settings: Settings, server: LocalServer
) -> None:
    # Given a company whose 10 lines were imported, merged 4 at a time
    original = {f"s-{number}": _line(f"s-{number}", c14="Greeting") for number in range(1, 11)}
    url = _serve(server, "".join(original.values()).encode())
    company_id = _company(pg_engine, url)
    _import(pg_engine, pg_settings, company_id)
    first_fetch = _fetch(pg_engine, company_id).id

    # When the file comes again with s-3 (first chunk) and s-9 (last chunk) changed
    changed = {**original, "s-3": _line("s-3", c14="Billing"), "s-9": _line("s-9", c14="Billing")}
    _serve(server, "".join(changed.values()).encode())
    outcome = _import(pg_engine, pg_settings, company_id)

    # Then exactly those two are updated and stamped with the new fetch; the others are left as they were
    assert outcome is CsvFetchOutcome.IMPORTED
    fetch = _fetch(pg_engine, company_id)
    assert (fetch.rows_total, fetch.rows_new, fetch.rows_changed, fetch.rows_duplicate) == (10, 0, 2, 8)
    stored = _stored(pg_engine, company_id)
    assert {key for key, row in stored.items() if row.category == "Billing"} == {"s-3", "s-9"}
    assert {key for key, row in stored.items() if row.last_fetch_id == fetch.id} == {"s-3", "s-9"}
    assert {row.last_fetch_id for key, row in stored.items() if key not in {"s-3", "s-9"}} == {first_fetch}


def _pipeline_status(driver_connection: Any) -> int:
    assert isinstance(driver_connection, psycopg.Connection)
    return driver_connection.pgconn.pipeline_status


def test_a_body_cut_off_while_a_chunk_is_merged_stores_nothing_and_the_next_import_works(
    pg_engine: Engine, pg_settings: Settings, server: LocalServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a server that promises 3,000 lines but sends 2,000 and hangs up (more than its first reads take),
    # merged 250 at a time: eight chunks are merged, one is in flight when the body breaks off
    monkeypatch.setattr(csv_store, "MERGE_CHUNK_LINES", 250)
    lines = "".join(_line(f"s-{number}") for number in range(1, 3001)).encode()
    cut = lines[: len("".join(_line(f"s-{number}") for number in range(1, 2001)))]

    def truncated(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "text/csv")
        handler.send_header("Content-Length", str(len(lines)))
        handler.end_headers()
        handler.wfile.write(cut)
        handler.close_connection = True

    url = server.route("/sessions.csv", truncated)
    company_id = _company(pg_engine, url)

    # When it is imported
    with pytest.raises(CsvImportFailed):
        _import(pg_engine, pg_settings, company_id)

    # Then nothing of the partial file was stored, and no pooled connection was left in pipeline mode
    assert _stored(pg_engine, company_id) == {}
    assert _fetch(pg_engine, company_id).outcome is CsvFetchOutcome.FAILED
    pooled = [pg_engine.raw_connection() for _ in range(cast(QueuePool, pg_engine.pool).checkedin())]
    try:
        statuses = [_pipeline_status(connection.driver_connection) for connection in pooled]
    finally:
        for connection in pooled:
            connection.close()
    assert statuses == [pq.PipelineStatus.OFF] * len(pooled)

    # When the server sends the whole file next time
    _serve(server, lines)
    outcome = _import(pg_engine, pg_settings, company_id)

    # Then all 3,000 are stored
    assert outcome is CsvFetchOutcome.IMPORTED
    assert len(_stored(pg_engine, company_id)) == 3000


@pytest.fixture
def refusals_reported_as_aborted(monkeypatch: pytest.MonkeyPatch) -> None:
    """A pipeline that reports a refusal only as ``PipelineAborted``, as libpq sometimes does when the
    refused statement's own error was consumed before the pipeline's end."""
    real_pipeline = psycopg.Connection.pipeline

    @contextmanager
    def pipeline(self: psycopg.Connection[Any]) -> Iterator[psycopg.Pipeline]:
        try:
            with real_pipeline(self) as opened:
                yield opened
        except psycopg.errors.CheckViolation as exc:
            raise psycopg.errors.PipelineAborted("pipeline aborted") from exc

    monkeypatch.setattr(psycopg.Connection, "pipeline", pipeline)


@pytest.fixture
def errors_read_while_sending(monkeypatch: pytest.MonkeyPatch) -> None:
    """A pipeline whose results have arrived by the time the savepoint is released: the refused statement's
    error comes with that send, not with the end of the pipeline (as when the server is quick)."""
    real_pipeline, real_execute = psycopg.Connection.pipeline, psycopg.Connection.execute
    opened: dict[int, psycopg.Pipeline] = {}

    @contextmanager
    def pipeline(self: psycopg.Connection[Any]) -> Iterator[psycopg.Pipeline]:
        with real_pipeline(self) as current:
            opened[id(self)] = current
            try:
                yield current
            finally:
                opened.pop(id(self), None)

    def execute(self: psycopg.Connection[Any], query: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(query, str) and query.startswith("RELEASE SAVEPOINT") and id(self) in opened:
            opened[id(self)].sync()
        return real_execute(self, query, *args, **kwargs)

    monkeypatch.setattr(psycopg.Connection, "pipeline", pipeline)
    monkeypatch.setattr(psycopg.Connection, "execute", execute)


@pytest.mark.usefixtures("small_chunks")
@pytest.mark.parametrize("report", ["refusals_reported_as_aborted", "errors_read_while_sending"])
def test_a_refusal_reported_either_way_by_the_pipeline_is_still_isolated(
    report: str,
    refusing_database: Engine,
    pg_settings: Settings,
    server: LocalServer,
    request: pytest.FixtureRequest,
) -> None:
    # Given 9 lines merged 4 at a time, lines 3 and 6 refused by the database, and a pipeline that reports the
    # refusal only as aborted, or while the chunk's statements are still being sent
    request.getfixturevalue(report)
    lines = [_line(f"s-{n}", c14="poison" if n in {3, 6} else "Greeting") for n in range(1, 10)]
    company_id = _company(refusing_database, _serve(server, "".join(lines).encode()))

    # When it is imported
    outcome = _import(refusing_database, pg_settings, company_id)

    # Then the chunks are merged again without the pipeline: the two lines are refused with the database's
    # reason, and the other seven land
    assert outcome is CsvFetchOutcome.IMPORTED
    assert set(_stored(refusing_database, company_id)) == {f"s-{n}" for n in (1, 2, 4, 5, 7, 8, 9)}
    errors = _problems(refusing_database, company_id)
    assert [error.line_number for error in errors] == [3, 6]
    assert all(error.reason.startswith("refused by the database: ") for error in errors)
