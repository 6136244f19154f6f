"""The OpenAI emulator's Batch API: life cycle, output and error files, early ends, listing and validation."""

# Turkish spells with the dotless i (U+0131), which RUF001 takes for a look-alike of i.
# ruff: noqa: RUF001

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any, Final

import openai
import pytest
from openai.types import Batch, FilePurpose

from pipeline.devtools.openai_emulator import Knobs, OpenAIEmulator, analyse_conversation

ENDPOINT: Final = "/v1/chat/completions"
#: Phases short enough for tests, long enough to be phases.
FAST = {
    "validating_seconds": 0.02,
    "in_progress_seconds": 0.02,
    "finalizing_seconds": 0.02,
    "cancelling_seconds": 0.02,
}
#: Long enough that a phase holds until a test lets it go.
HOLD = 3600.0

SESSIONS = {
    "request-0": "Session ID: s-0\n[01.02.2025 10:00:00] User: How many vacation days do I have left?",
    "request-1": "Session ID: s-1\n[01.02.2025 10:00:00] User: Wanneer krijg ik deze maand mijn salaris?",
    "request-2": "Session ID: s-2\n[01.02.2025 10:00:00] User: Ich habe meinen Mitarbeiterausweis verloren.",
    "request-3": "Session ID: s-3\n[01.02.2025 10:00:00] User: Şifrem yanlış diyor, giriş yapamıyorum.",
    "request-4": "Session ID: s-4\n[01.02.2025 10:00:00] User: Who is my team leader?",
}


def request_line(custom_id: str, text: str, model: str = "gpt-4o") -> dict[str, Any]:
    messages = [{"role": "system", "content": "Analyse the chat."}, {"role": "user", "content": text}]
    body = {"model": model, "messages": messages, "temperature": 0.1, "max_tokens": 1000}
    return {"custom_id": custom_id, "method": "POST", "url": ENDPOINT, "body": body}


def jsonl(lines: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(line) + "\n" for line in lines).encode()


def upload(client: openai.OpenAI, content: bytes, purpose: FilePurpose = "batch") -> str:
    return client.files.create(file=("batch_requests.jsonl", content), purpose=purpose).id


def create(client: openai.OpenAI, sessions: dict[str, str] = SESSIONS, **options: Any) -> Batch:
    lines = [request_line(custom_id, text) for custom_id, text in sessions.items()]
    return client.batches.create(
        input_file_id=upload(client, jsonl(lines)), endpoint=ENDPOINT, completion_window="24h", **options
    )


def wait_for(client: openai.OpenAI, batch_id: str, *statuses: str) -> Batch:
    """The batch once its status is one of ``statuses``; fails the test if that takes unreasonably long."""
    deadline = time.monotonic() + 20
    while (batch := client.batches.retrieve(batch_id)).status not in statuses:
        if time.monotonic() > deadline:
            pytest.fail(f"batch {batch_id} stayed {batch.status}, never reached {statuses}")
        time.sleep(0.01)
    return batch


def file_lines(client: openai.OpenAI, file_id: str | None) -> list[dict[str, Any]]:
    assert file_id is not None
    with client.files.with_streaming_response.content(file_id) as response:
        return [json.loads(line) for line in response.iter_lines() if line]


def custom_ids(lines: list[dict[str, Any]]) -> list[str]:
    return [line["custom_id"] for line in lines]


@pytest.fixture(scope="module")
def running_emulator() -> Iterator[OpenAIEmulator]:
    with OpenAIEmulator() as emulator:
        yield emulator


@pytest.fixture
def emulator(running_emulator: OpenAIEmulator) -> OpenAIEmulator:
    """The module's emulator, emptied, with fast batches."""
    running_emulator.reset()
    running_emulator.knobs = Knobs.model_validate(FAST)
    return running_emulator


@pytest.fixture
def client(emulator: OpenAIEmulator) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=emulator.url, api_key="test", max_retries=0) as client:
        yield client


def test_a_batch_completes_with_one_output_line_per_request_equal_to_the_chat_answer(
    client: openai.OpenAI, emulator: OpenAIEmulator
) -> None:
    # When a batch of five requests is created with metadata
    created = create(client, metadata={"run": "run-1", "stage": "analysis"})

    # Then it starts validating, with the API's shape
    assert created.id.startswith("batch_")
    assert (created.object, created.status, created.endpoint) == ("batch", "validating", ENDPOINT)
    assert created.metadata == {"run": "run-1", "stage": "analysis"}
    assert created.expires_at == created.created_at + 24 * 60 * 60

    # When it has run
    batch = wait_for(client, created.id, "completed")

    # Then every request was answered, at times in the order of the phases
    assert batch.request_counts is not None
    assert (batch.request_counts.total, batch.request_counts.completed, batch.request_counts.failed) == (
        5,
        5,
        0,
    )
    assert (
        batch.in_progress_at is not None
        and batch.finalizing_at is not None
        and batch.completed_at is not None
    )
    assert batch.created_at <= batch.in_progress_at <= batch.finalizing_at <= batch.completed_at
    assert batch.error_file_id is None
    assert batch.output_file_id is not None
    assert client.files.retrieve(batch.output_file_id).purpose == "batch_output"

    # And each output line holds the answer a chat completion gives for the same request
    lines = file_lines(client, batch.output_file_id)
    for line in lines:
        assert line["id"].startswith("batch_req_")
        assert line["error"] is None
        assert line["response"]["status_code"] == 200
        assert line["response"]["request_id"].startswith("req_")
        text = SESSIONS[line["custom_id"]]
        chat = client.chat.completions.create(**request_line(line["custom_id"], text)["body"])
        content = line["response"]["body"]["choices"][0]["message"]["content"]
        assert (
            json.loads(content)
            == json.loads(chat.choices[0].message.content or "")
            == analyse_conversation(text)
        )

    # And the lines come in another order than the requests, as real batches' do
    assert sorted(custom_ids(lines)) == list(SESSIONS)
    assert custom_ids(lines) != list(SESSIONS)

    # And each line was billed once, to its batch, with the usage the batch reports
    billed = [entry for entry in emulator.ledger() if entry.kind == "batch"]
    assert sorted((entry.custom_id, entry.session_id) for entry in billed) == [
        (f"request-{n}", f"s-{n}") for n in range(5)
    ]
    assert {entry.batch_id for entry in billed} == {batch.id}
    assert batch.usage is not None
    assert batch.usage.input_tokens == sum(entry.prompt_tokens for entry in billed)
    assert batch.usage.output_tokens == sum(entry.completion_tokens for entry in billed)


def test_a_batch_moves_through_its_phases_as_the_knobs_let_it(
    client: openai.OpenAI, emulator: OpenAIEmulator
) -> None:
    # Given every phase held
    emulator.knobs.update({name: HOLD for name in FAST})

    # When a batch is created
    batch = create(client)

    # Then it stays validating, counting nothing yet
    assert client.batches.retrieve(batch.id).status == "validating"

    # When validation is let go, it is in progress with all requests counted and none done
    emulator.knobs.validating_seconds = 0
    in_progress = client.batches.retrieve(batch.id)
    assert in_progress.status == "in_progress"
    assert in_progress.request_counts is not None
    assert (in_progress.request_counts.total, in_progress.request_counts.completed) == (5, 0)

    # When the work is let go, it is finalizing with every request done but no output yet
    emulator.knobs.in_progress_seconds = 0
    finalizing = client.batches.retrieve(batch.id)
    assert finalizing.status == "finalizing"
    assert finalizing.request_counts is not None and finalizing.request_counts.completed == 5
    assert finalizing.output_file_id is None

    # When finalizing is let go, it is completed with its output
    emulator.knobs.finalizing_seconds = 0
    completed = client.batches.retrieve(batch.id)
    assert completed.status == "completed"
    assert completed.output_file_id is not None


@pytest.mark.parametrize(
    ("status", "error_type", "error_code"),
    [
        (500, "server_error", None),
        (429, "requests", "rate_limit_exceeded"),
        (400, "invalid_request_error", "context_length_exceeded"),
    ],
)
def test_lines_picked_by_the_error_fraction_go_to_the_error_file(
    client: openai.OpenAI, emulator: OpenAIEmulator, status: int, error_type: str, error_code: str | None
) -> None:
    # Given half the lines failing with the status asked for
    emulator.knobs.batch_error_fraction = 0.5
    emulator.knobs.batch_error_status = status  # type: ignore[assignment]

    # When a batch of four requests runs
    four = {custom_id: SESSIONS[custom_id] for custom_id in list(SESSIONS)[:4]}
    batch = wait_for(client, create(client, four).id, "completed")

    # Then every second request is in the error file, with an HTTP error response in the API's shape
    errors = file_lines(client, batch.error_file_id)
    assert sorted(custom_ids(errors)) == ["request-1", "request-3"]
    for line in errors:
        assert line["error"] is None
        assert line["response"]["status_code"] == status
        assert line["response"]["request_id"].startswith("req_")
        assert line["response"]["body"]["error"]["type"] == error_type
        assert line["response"]["body"]["error"]["code"] == error_code
        assert line["response"]["body"]["error"]["message"]

    # And the others are answered
    assert sorted(custom_ids(file_lines(client, batch.output_file_id))) == ["request-0", "request-2"]
    assert batch.request_counts is not None
    assert (batch.request_counts.completed, batch.request_counts.failed) == (2, 2)

    # And only the answered ones are billed
    assert sorted(entry.custom_id or "" for entry in emulator.ledger()) == ["request-0", "request-2"]


def test_an_expired_batch_delivers_the_lines_it_answered_and_drops_the_rest(
    client: openai.OpenAI, emulator: OpenAIEmulator
) -> None:
    # Given batches that expire with half their lines answered
    emulator.knobs.batch_outcome = "expired"
    emulator.knobs.partial_fraction = 0.5

    # When a batch of four requests runs
    four = {custom_id: SESSIONS[custom_id] for custom_id in list(SESSIONS)[:4]}
    batch = wait_for(client, create(client, four).id, "expired", "completed", "failed", "cancelled")

    # Then it expired, with the first two requests answered and the others in neither file
    assert batch.status == "expired"
    assert batch.expired_at is not None and batch.completed_at is None
    assert sorted(custom_ids(file_lines(client, batch.output_file_id))) == ["request-0", "request-1"]
    assert batch.error_file_id is None
    assert batch.request_counts is not None
    assert (batch.request_counts.total, batch.request_counts.completed, batch.request_counts.failed) == (
        4,
        2,
        0,
    )

    # And the answered lines are billed, as the real API bills them
    assert sorted(entry.custom_id or "" for entry in emulator.ledger()) == ["request-0", "request-1"]


def test_the_cancelled_outcome_cancels_with_partial_output(
    client: openai.OpenAI, emulator: OpenAIEmulator
) -> None:
    # Given batches that get cancelled with a quarter of their lines answered
    emulator.knobs.batch_outcome = "cancelled"
    emulator.knobs.partial_fraction = 0.25

    # When a batch of four requests runs
    four = {custom_id: SESSIONS[custom_id] for custom_id in list(SESSIONS)[:4]}
    batch = wait_for(client, create(client, four).id, "cancelled", "completed", "failed", "expired")

    # Then it went through cancelling to cancelled, with the first request answered
    assert batch.status == "cancelled"
    assert batch.cancelling_at is not None and batch.cancelled_at is not None
    assert custom_ids(file_lines(client, batch.output_file_id)) == ["request-0"]


def test_cancelling_a_batch_in_progress_keeps_the_lines_already_done(
    client: openai.OpenAI, emulator: OpenAIEmulator
) -> None:
    # Given a batch held in progress, where half the work is done at any moment
    emulator.knobs.in_progress_seconds = HOLD
    emulator.knobs.partial_fraction = 0.5
    batch = create(client, {custom_id: SESSIONS[custom_id] for custom_id in list(SESSIONS)[:4]})
    wait_for(client, batch.id, "in_progress")

    # When it is cancelled
    cancelling = client.batches.cancel(batch.id)

    # Then it is cancelling at once, and then cancelled with the lines done so far
    assert cancelling.status == "cancelling"
    cancelled = wait_for(client, batch.id, "cancelled")
    assert sorted(custom_ids(file_lines(client, cancelled.output_file_id))) == ["request-0", "request-1"]
    assert len(emulator.ledger()) == 2


def test_cancelling_a_batch_still_validating_answers_nothing(
    client: openai.OpenAI, emulator: OpenAIEmulator
) -> None:
    # Given a batch held in validation
    emulator.knobs.validating_seconds = HOLD
    batch = create(client)

    # When it is cancelled
    client.batches.cancel(batch.id)

    # Then it ends cancelled with no output and nothing billed
    cancelled = wait_for(client, batch.id, "cancelled")
    assert (cancelled.output_file_id, cancelled.error_file_id) == (None, None)
    assert emulator.ledger() == []


def test_a_finished_batch_cannot_be_cancelled(client: openai.OpenAI) -> None:
    # Given a completed batch
    batch = wait_for(client, create(client).id, "completed")

    # When it is cancelled
    # Then the API refuses with a conflict
    with pytest.raises(openai.ConflictError):
        client.batches.cancel(batch.id)


def test_the_failed_outcome_fails_the_batch_at_validation(
    client: openai.OpenAI, emulator: OpenAIEmulator
) -> None:
    # Given batches that fail
    emulator.knobs.batch_outcome = "failed"

    # When a batch runs
    batch = wait_for(client, create(client).id, "failed", "completed")

    # Then it failed at validation, with the reason in its errors, and answered nothing
    assert batch.status == "failed"
    assert batch.failed_at is not None and batch.in_progress_at is None
    assert batch.errors is not None and batch.errors.data is not None
    assert batch.errors.data[0].code == "token_limit_exceeded"
    assert (batch.output_file_id, batch.error_file_id) == (None, None)
    assert emulator.ledger() == []


def test_batches_are_listed_newest_first_in_pages_and_found_by_metadata(client: openai.OpenAI) -> None:
    # Given five batches, each with its own run id
    created = [create(client, metadata={"run": f"run-{n}"}).id for n in range(5)]

    # When the first page of two is listed
    page = client.batches.list(limit=2)

    # Then it holds the two newest, and says there is more
    assert [batch.id for batch in page.data] == created[:2:-1]
    assert page.has_more is True

    # When the SDK pages through all of them
    everything = list(client.batches.list(limit=2))

    # Then it sees all five, newest first, and finds a batch by its metadata
    assert [batch.id for batch in everything] == created[::-1]
    found = [batch.id for batch in everything if batch.metadata and batch.metadata.get("run") == "run-1"]
    assert found == [created[1]]


def test_polling_a_finished_batch_again_bills_nothing_more(
    client: openai.OpenAI, emulator: OpenAIEmulator
) -> None:
    # Given a completed batch
    batch = wait_for(client, create(client).id, "completed")

    # When it is polled and listed again and again
    for _ in range(3):
        client.batches.retrieve(batch.id)
        list(client.batches.list())

    # Then each of its sessions was billed exactly once
    assert sorted(entry.session_id or "" for entry in emulator.ledger()) == [f"s-{n}" for n in range(5)]


@pytest.mark.parametrize(
    ("content", "code"),
    [
        (b"", "empty_file"),
        (b"\xff\xfe not utf-8\n", "invalid_file_format"),
        (jsonl([request_line("a", "x")]) + b"{not json\n", "invalid_json_line"),
        (jsonl([request_line("a", "x"), request_line("b", "y", model="gpt-4o-mini")]), "mismatched_model"),
        (jsonl([request_line("a", "x"), request_line("a", "y")]), "duplicate_custom_id"),
        (jsonl([{**request_line("a", "x"), "method": "GET"}]), "invalid_request"),
        (jsonl([{**request_line("a", "x"), "url": "/v1/embeddings"}]), "invalid_url"),
        (
            jsonl([{key: value for key, value in request_line("a", "x").items() if key != "body"}]),
            "invalid_request",
        ),
        (jsonl([{**request_line("a", "x"), "body": {"model": "gpt-4o"}}]), "invalid_request"),
    ],
    ids=[
        "empty",
        "not-utf8",
        "not-json",
        "two-models",
        "duplicate-custom-id",
        "not-post",
        "other-url",
        "no-body",
        "no-messages",
    ],
)
def test_a_bad_input_file_is_refused_at_creation(client: openai.OpenAI, content: bytes, code: str) -> None:
    # Given an input file the API would not take
    file_id = upload(client, content)

    # When a batch is created from it
    with pytest.raises(openai.BadRequestError) as raised:
        client.batches.create(input_file_id=file_id, endpoint=ENDPOINT, completion_window="24h")

    # Then it is refused with the reason, naming the file
    assert raised.value.code == code
    assert raised.value.param == "input_file_id"


def test_an_input_file_of_more_than_50000_requests_is_refused(client: openai.OpenAI) -> None:
    # Given an input file one request over the limit
    line = json.dumps(request_line("x", "hi")) + "\n"
    content = "".join(line.replace('"x"', f'"{n}"', 1) for n in range(50_001)).encode()

    # When a batch is created from it
    # Then it is refused
    with pytest.raises(openai.BadRequestError) as raised:
        client.batches.create(
            input_file_id=upload(client, content), endpoint=ENDPOINT, completion_window="24h"
        )
    assert raised.value.code == "too_many_requests_in_file"


def test_a_missing_or_non_batch_input_file_is_refused(client: openai.OpenAI) -> None:
    # Given a file uploaded for another purpose
    other = upload(client, jsonl([request_line("a", "x")]), purpose="user_data")

    # When batches are created from it and from a file that does not exist
    # Then both are refused
    for file_id, code in ((other, "invalid_file_purpose"), ("file-missing", "invalid_file")):
        with pytest.raises(openai.BadRequestError) as raised:
            client.batches.create(input_file_id=file_id, endpoint=ENDPOINT, completion_window="24h")
        assert raised.value.code == code


def test_metadata_is_limited_to_sixteen_pairs(client: openai.OpenAI) -> None:
    # When a batch is created with seventeen metadata pairs
    # Then it is refused
    with pytest.raises(openai.BadRequestError) as raised:
        create(client, metadata={f"key-{n}": "value" for n in range(17)})
    assert raised.value.param == "metadata"


def test_an_unknown_batch_is_not_found(client: openai.OpenAI) -> None:
    # When a batch that does not exist is asked for
    # Then the SDK raises its 404 error
    with pytest.raises(openai.NotFoundError):
        client.batches.retrieve("batch_missing")
