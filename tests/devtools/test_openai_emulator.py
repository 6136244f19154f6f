"""The OpenAI emulator's chat completions, faults, knobs, ledger and life cycle, through the real SDK."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterator
from typing import Literal

import httpx
import openai
import pytest
from openai.lib import type_to_response_format_param
from openai.types.chat import ChatCompletion
from pydantic import BaseModel, ConfigDict, ValidationError

from pipeline.devtools.openai_emulator import FAULT_HEADER, Knobs, OpenAIEmulator, analyse_conversation

SYSTEM_PROMPT = "Analyse the chat transcript and answer with the JSON the schema describes."


class Analysis(BaseModel):
    """What the pipeline asks for: the 8 keys of SessionAnalysis, as a strict schema."""

    model_config = ConfigDict(extra="forbid")

    language: str
    sentiment: Literal["POSITIVE", "NEUTRAL", "NEGATIVE"]
    escalated: bool
    forwarded_hr: bool
    category: Literal[
        "SCHEDULE_HOURS",
        "LEAVE_VACATION",
        "SICK_LEAVE_RECOVERY",
        "SALARY_COMPENSATION",
        "CONTRACT_HOURS",
        "ONBOARDING",
        "OFFBOARDING",
        "WORKWEAR_STAFF_PASS",
        "TEAM_CONTACTS",
        "PERSONAL_QUESTIONS",
        "ACCESS_LOGIN",
        "SOCIAL_QUESTIONS",
        "UNRECOGNIZED_OTHER",
    ]
    questions: list[str]
    summary: str
    session_id: str


RESPONSE_FORMAT = type_to_response_format_param(Analysis)


def transcript(session_id: str, *turns: tuple[str, str]) -> str:
    lines = [f"Session ID: {session_id}"]
    lines += [f"[01.02.2025 10:{minute:02d}:00] {role}: {text}" for minute, (role, text) in enumerate(turns)]
    return "\n".join(lines)


VACATION = transcript(
    "session-1",
    ("User", "How many vacation days do I have left?"),
    ("Assistant", "You find your balance in the staff app under 'Leave'."),
    ("User", "Thanks, that helps!"),
)


def ask(
    client: openai.OpenAI,
    text: str = VACATION,
    *,
    max_tokens: int = 1000,
    extra_headers: dict[str, str] | None = None,
) -> ChatCompletion:
    """Ask the way the pipeline does; a test may lower ``max_tokens`` or add ``extra_headers``."""
    return client.chat.completions.create(
        model="gpt-4o",
        messages=[{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": text}],
        response_format=RESPONSE_FORMAT,
        temperature=0.1,
        max_tokens=max_tokens,
        extra_headers=extra_headers,
    )


def content_of(completion: ChatCompletion) -> str:
    content = completion.choices[0].message.content
    assert content is not None
    return content


@pytest.fixture(scope="module")
def running_emulator() -> Iterator[OpenAIEmulator]:
    with OpenAIEmulator() as emulator:
        yield emulator


@pytest.fixture
def emulator(running_emulator: OpenAIEmulator) -> OpenAIEmulator:
    """The module's emulator, emptied, with default knobs."""
    running_emulator.reset()
    running_emulator.knobs = Knobs()
    return running_emulator


@pytest.fixture
def client(emulator: OpenAIEmulator) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=emulator.url, api_key="test", max_retries=0) as client:
        yield client


def control_url(emulator: OpenAIEmulator, path: str) -> str:
    return emulator.url.removesuffix("/v1") + "/_emulator" + path


def test_a_chat_completion_answers_the_analysis_of_the_transcript(client: openai.OpenAI) -> None:
    # When the SDK asks for a completion with a strict json_schema response format
    completion = ask(client)

    # Then the answer parses against the schema and is exactly the analyst's answer
    assert Analysis.model_validate_json(content_of(completion)).model_dump() == analyse_conversation(VACATION)
    assert completion.choices[0].finish_reason == "stop"
    assert completion.choices[0].message.refusal is None

    # And it has the shape of the real API's answer
    assert completion.object == "chat.completion"
    assert completion.id.startswith("chatcmpl-")
    assert completion.created > 0
    assert completion.system_fingerprint and completion.system_fingerprint.startswith("fp_")
    assert completion.service_tier == "default"


def test_the_sdk_parse_helper_reads_the_answer_into_the_model(client: openai.OpenAI) -> None:
    # When the SDK's own parse helper builds the schema and reads the answer
    completion = client.chat.completions.parse(
        model="gpt-4o", messages=[{"role": "user", "content": VACATION}], response_format=Analysis
    )

    # Then the parsed answer is the analyst's answer
    assert completion.choices[0].message.parsed == Analysis.model_validate(analyse_conversation(VACATION))


def test_gpt_4o_is_reported_as_its_dated_snapshot_and_other_models_as_asked(client: openai.OpenAI) -> None:
    # When the same question goes to gpt-4o and to a model without a known snapshot
    aliased = ask(client)
    other = client.chat.completions.create(
        model="house-model", messages=[{"role": "user", "content": VACATION}]
    )

    # Then gpt-4o answers as its snapshot, like the real API, and the other model by its own name
    assert aliased.model == "gpt-4o-2024-08-06"
    assert other.model == "house-model"


def test_usage_counts_a_token_per_four_characters_rounded_up(client: openai.OpenAI) -> None:
    # When a completion is asked for
    completion = ask(client)

    # Then the prompt counts the characters of all messages, and the completion those of the answer
    assert completion.usage is not None
    assert completion.usage.prompt_tokens == math.ceil((len(SYSTEM_PROMPT) + len(VACATION)) / 4)
    assert completion.usage.completion_tokens == math.ceil(len(content_of(completion)) / 4)
    assert (
        completion.usage.total_tokens == completion.usage.prompt_tokens + completion.usage.completion_tokens
    )
    assert completion.usage.prompt_tokens_details is not None
    assert completion.usage.prompt_tokens_details.cached_tokens == 0


def test_an_answer_longer_than_max_tokens_is_cut_off_with_finish_reason_length(client: openai.OpenAI) -> None:
    # When the client allows fewer tokens than the answer needs
    completion = ask(client, max_tokens=10)

    # Then the answer stops there, as the real API's would
    assert completion.choices[0].finish_reason == "length"
    assert len(content_of(completion)) == 40
    assert completion.usage is not None and completion.usage.completion_tokens == 10


def test_every_response_carries_a_request_id_that_the_ledger_records(
    client: openai.OpenAI, emulator: OpenAIEmulator
) -> None:
    # When a completion is asked for
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-4o", messages=[{"role": "user", "content": VACATION}]
    )
    completion = raw.parse()

    # Then its x-request-id is the one billed, with the answer's model and tokens and the session asked about
    request_id = raw.headers["x-request-id"]
    assert request_id.startswith("req_")
    assert completion.usage is not None
    assert [entry.model_dump() for entry in emulator.ledger()] == [
        {
            "kind": "chat",
            "custom_id": None,
            "request_id": request_id,
            "model": "gpt-4o-2024-08-06",
            "prompt_tokens": completion.usage.prompt_tokens,
            "completion_tokens": completion.usage.completion_tokens,
            "session_id": "session-1",
            "batch_id": None,
        }
    ]


def test_a_request_the_api_would_refuse_is_a_400_in_the_api_error_shape(client: openai.OpenAI) -> None:
    # When a request has no messages
    with pytest.raises(openai.BadRequestError) as raised:
        client.chat.completions.create(model="gpt-4o", messages=[])

    # Then the SDK raises its 400 error, with the API's error body
    assert raised.value.body == {
        "message": raised.value.message.removeprefix("Error code: 400 - "),
        "type": "invalid_request_error",
        "param": "messages",
        "code": None,
    }


def test_an_unknown_route_is_a_404_in_the_api_error_shape(emulator: OpenAIEmulator) -> None:
    # When something the emulator does not serve is asked for
    response = httpx.get(emulator.url + "/assistants", timeout=10)

    # Then the answer is the API's "Invalid URL" error
    assert response.status_code == 404
    assert response.json()["error"]["message"] == "Invalid URL (GET /v1/assistants)"


def test_the_invalid_json_fault_answers_json_cut_off_half_way(client: openai.OpenAI) -> None:
    # When the header asks for invalid JSON
    completion = ask(client, extra_headers={FAULT_HEADER: "invalid_json"})

    # Then the content is the first half of the right answer, which does not parse
    content = content_of(completion)
    assert json.dumps(analyse_conversation(VACATION), ensure_ascii=False).startswith(content)
    with pytest.raises(json.JSONDecodeError):
        json.loads(content)


def test_the_schema_violation_fault_answers_json_outside_the_schema(client: openai.OpenAI) -> None:
    # When the header asks for a schema violation
    completion = ask(client, extra_headers={FAULT_HEADER: "schema_violation"})

    # Then the content is JSON, but with a sentiment outside the enum and no summary
    answer = json.loads(content_of(completion))
    assert answer["sentiment"] == "MIXED"
    assert "summary" not in answer
    with pytest.raises(ValidationError):
        Analysis.model_validate(answer)


def test_the_refusal_fault_answers_a_refusal_and_no_content(client: openai.OpenAI) -> None:
    # When the header asks for a refusal
    completion = ask(client, extra_headers={FAULT_HEADER: "refusal"})

    # Then the message has a refusal instead of content
    message = completion.choices[0].message
    assert message.content is None
    assert message.refusal


def test_the_wrong_session_id_fault_answers_for_another_session(client: openai.OpenAI) -> None:
    # When the header asks for a wrong session id
    completion = ask(client, extra_headers={FAULT_HEADER: "wrong_session_id"})

    # Then the answer is right in everything but the session id
    answer = json.loads(content_of(completion))
    expected = analyse_conversation(VACATION)
    assert answer["session_id"] != expected["session_id"]
    assert {**answer, "session_id": expected["session_id"]} == expected


def test_an_unknown_fault_header_is_a_400(client: openai.OpenAI) -> None:
    # When the header names no fault the emulator knows
    # Then the request is refused
    with pytest.raises(openai.BadRequestError):
        ask(client, extra_headers={FAULT_HEADER: "meltdown"})


def test_the_answer_fault_knob_breaks_every_answer(client: openai.OpenAI, emulator: OpenAIEmulator) -> None:
    # Given every answer set to be a refusal
    emulator.knobs.answer_fault = "refusal"

    # When two completions are asked for
    answers = [ask(client).choices[0].message for _ in range(2)]

    # Then both are refusals
    assert [(message.content, bool(message.refusal)) for message in answers] == [(None, True), (None, True)]


def test_a_session_fault_breaks_only_that_sessions_answer(
    client: openai.OpenAI, emulator: OpenAIEmulator
) -> None:
    # Given invalid JSON for one session only
    other = VACATION.replace("session-1", "session-2")
    emulator.knobs.session_faults = {"session-2": "invalid_json"}

    # When both sessions are asked about
    # Then the first answer is right and the second is broken
    assert json.loads(content_of(ask(client, VACATION))) == analyse_conversation(VACATION)
    with pytest.raises(json.JSONDecodeError):
        json.loads(content_of(ask(client, other)))


def test_rate_429_answers_that_share_of_requests_with_retry_after(
    client: openai.OpenAI, emulator: OpenAIEmulator
) -> None:
    # Given half of all requests rate limited, with a wait of 2.5 seconds
    emulator.knobs.rate_429 = 0.5
    emulator.knobs.retry_after = 2.5

    # When six completions are asked for
    outcomes: list[object] = []
    for _ in range(6):
        try:
            outcomes.append(ask(client).choices[0].finish_reason)
        except openai.RateLimitError as exc:
            outcomes.append(exc)

    # Then every second one is a 429, which asks for the wait in seconds and in milliseconds
    assert [isinstance(outcome, openai.RateLimitError) for outcome in outcomes] == [False, True] * 3
    limited = outcomes[1]
    assert isinstance(limited, openai.RateLimitError)
    assert limited.response.headers["retry-after"] == "3"
    assert limited.response.headers["retry-after-ms"] == "2500"
    assert limited.code == "rate_limit_exceeded"

    # And only the answered ones are billed
    assert len(emulator.ledger()) == 3


def test_rate_500_answers_that_share_of_requests_with_a_server_error(
    client: openai.OpenAI, emulator: OpenAIEmulator
) -> None:
    # Given a quarter of all requests failing
    emulator.knobs.rate_500 = 0.25

    # When eight completions are asked for
    failed = []
    for number in range(1, 9):
        try:
            ask(client)
        except openai.InternalServerError:
            failed.append(number)

    # Then exactly the 4th and the 8th failed
    assert failed == [4, 8]


def test_the_fault_header_forces_http_errors_whatever_the_rates(client: openai.OpenAI) -> None:
    # When the header asks for a 429 and then a 500
    # Then the SDK raises the matching errors
    with pytest.raises(openai.RateLimitError):
        ask(client, extra_headers={FAULT_HEADER: "rate_limit"})
    with pytest.raises(openai.InternalServerError):
        ask(client, extra_headers={FAULT_HEADER: "server_error"})


def test_latency_delays_every_chat_completion(client: openai.OpenAI, emulator: OpenAIEmulator) -> None:
    # Given a latency of 0.3 seconds
    emulator.knobs.latency = 0.3

    # When a completion is asked for
    started = time.monotonic()
    ask(client)

    # Then it took at least that long
    assert time.monotonic() - started >= 0.3


def test_knobs_are_changed_over_http_all_or_none(emulator: OpenAIEmulator) -> None:
    # When knobs are changed over HTTP
    changed = httpx.post(control_url(emulator, "/knobs"), json={"latency": 0.25, "rate_429": 0.1}, timeout=10)

    # Then the emulator uses them, and the answer shows all knobs
    assert changed.status_code == 200
    assert (emulator.knobs.latency, emulator.knobs.rate_429) == (0.25, 0.1)
    assert changed.json() == emulator.knobs.model_dump(mode="json")

    # When a change has one invalid value
    refused = httpx.post(control_url(emulator, "/knobs"), json={"latency": 0, "rate_500": 2}, timeout=10)

    # Then it is refused as a whole
    assert refused.status_code == 400
    assert refused.json()["error"]["param"] == "rate_500"
    assert emulator.knobs.latency == 0.25

    # And a knob that does not exist is refused too
    assert httpx.post(control_url(emulator, "/knobs"), json={"speed": 1}, timeout=10).status_code == 400


def test_knobs_changed_in_python_show_over_http_and_delete_restores_the_defaults(
    emulator: OpenAIEmulator,
) -> None:
    # Given a knob changed in Python
    emulator.knobs.batch_outcome = "expired"

    # Then HTTP shows it
    assert httpx.get(control_url(emulator, "/knobs"), timeout=10).json()["batch_outcome"] == "expired"

    # When the knobs are deleted over HTTP
    restored = httpx.delete(control_url(emulator, "/knobs"), timeout=10)

    # Then they are back to their defaults
    assert restored.json() == Knobs().model_dump(mode="json")
    assert emulator.knobs == Knobs()


def test_the_ledger_over_http_is_the_ledger_in_python(
    client: openai.OpenAI, emulator: OpenAIEmulator
) -> None:
    # Given two billed answers and one refused request
    ask(client)
    ask(client, extra_headers={FAULT_HEADER: "wrong_session_id"})
    with pytest.raises(openai.RateLimitError):
        ask(client, extra_headers={FAULT_HEADER: "rate_limit"})

    # When the ledger is read over HTTP
    ledger = httpx.get(control_url(emulator, "/ledger"), timeout=10).json()

    # Then it lists the two billed answers, both for the session asked about
    assert ledger["data"] == [entry.model_dump() for entry in emulator.ledger()]
    assert [entry["session_id"] for entry in ledger["data"]] == ["session-1", "session-1"]


def test_reset_forgets_the_ledger_files_and_request_count(
    client: openai.OpenAI, emulator: OpenAIEmulator
) -> None:
    # Given a billed answer, a file, and every second request rate limited
    emulator.knobs.rate_429 = 0.5
    ask(client)
    uploaded = client.files.create(file=("notes.txt", b"hello"), purpose="user_data")

    # When the emulator is reset over HTTP
    assert httpx.post(control_url(emulator, "/reset"), timeout=10).status_code == 204

    # Then the ledger and the file are gone, the count starts afresh, and the knobs are kept
    assert emulator.ledger() == []
    with pytest.raises(openai.NotFoundError):
        client.files.retrieve(uploaded.id)
    ask(client)
    with pytest.raises(openai.RateLimitError):
        ask(client)


def test_the_emulator_serves_between_start_and_stop() -> None:
    # Given an emulator that is not started
    emulator = OpenAIEmulator()

    # Then it has no URL yet
    with pytest.raises(RuntimeError):
        _ = emulator.url

    # When it runs
    with emulator:
        url = emulator.url

        # Then its base URL ends in /v1 and it answers there
        assert url.startswith("http://127.0.0.1:") and url.endswith("/v1")
        with openai.OpenAI(base_url=url, api_key="test", max_retries=0) as client:
            assert ask(client).choices[0].message.content

    # And once stopped it no longer listens
    with pytest.raises(httpx.ConnectError):
        httpx.get(url.removesuffix("/v1") + "/_emulator/knobs", timeout=10)


def test_knobs_given_at_construction_are_the_emulators_knobs() -> None:
    # Given knobs made before the emulator
    knobs = Knobs(latency=0.1)

    # When an emulator is made with them
    emulator = OpenAIEmulator(knobs=knobs)

    # Then they are its knobs, the same object
    assert emulator.knobs is knobs
