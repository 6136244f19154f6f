"""The analysis prompt: the transcript's exact shape, the request body, and that the SDK sends it as built."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import openai
import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from pipeline.analysis import (
    CATEGORY_GUIDE,
    RESPONSE_FORMAT,
    SYSTEM_PROMPT,
    PromptMessage,
    build_messages,
    estimated_tokens,
    fit_transcript,
    parse_analysis,
    request_body,
)
from pipeline.db.enums import SessionCategory
from pipeline.db.models import Message
from pipeline.devtools.openai_emulator.analyst import Turn, parse_conversation
from tests.factories import make_company, make_session_with_stages

SESSION_ID = "0f6c3c1e-7d1b-4c55-9f49-2f1f5f7a8b21"
CEST = timezone(timedelta(hours=2))
#: OPENAI_MAX_PROMPT_TOKENS of these tests: the sample transcript fits.
PROMPT_TOKENS = 16_000

TRANSCRIPT = [
    PromptMessage("user", "Hoeveel vakantiedagen heb ik nog?", datetime(2025, 2, 1, 10, 0, 0, tzinfo=UTC)),
    PromptMessage(
        "assistant",
        "Je verlofsaldo staat in de app.\nAangevraagde dagen zijn al afgetrokken.",
        datetime(2025, 2, 1, 12, 0, 3, tzinfo=CEST),
    ),
    PromptMessage("User", "Bedankt!", None),
]


def test_the_user_message_is_the_session_id_then_one_line_per_message() -> None:
    # Given a transcript with a UTC time, a time in another zone, a multi-line message and no time
    # When I build the messages
    system, user = build_messages(SESSION_ID, fit_transcript(TRANSCRIPT, max_prompt_tokens=PROMPT_TOKENS))

    # Then the system message holds the instructions
    assert system == {"role": "system", "content": SYSTEM_PROMPT}
    # And the user message is the session id, a blank line, and the messages in order, times in UTC
    assert user == {
        "role": "user",
        "content": (
            "Session ID: 0f6c3c1e-7d1b-4c55-9f49-2f1f5f7a8b21\n"
            "\n"
            "[2025-02-01 10:00:00] user: Hoeveel vakantiedagen heb ik nog?\n"
            "[2025-02-01 10:00:03] assistant: Je verlofsaldo staat in de app.\n"
            "Aangevraagde dagen zijn al afgetrokken.\n"
            "[no time] User: Bedankt!"
        ),
    }


def test_the_openai_emulator_reads_the_prompt_back() -> None:
    # Given the user message of a transcript
    content = build_messages(SESSION_ID, fit_transcript(TRANSCRIPT, max_prompt_tokens=PROMPT_TOKENS))[1][
        "content"
    ]

    # When the emulator parses it, as it does every request
    session_id, turns = parse_conversation(content)

    # Then it finds the session and every turn, continuation lines included
    assert session_id == SESSION_ID
    assert turns == [
        Turn("user", "Hoeveel vakantiedagen heb ik nog?"),
        Turn("assistant", "Je verlofsaldo staat in de app.\nAangevraagde dagen zijn al afgetrokken."),
        Turn("user", "Bedankt!"),
    ]


def test_a_message_row_becomes_a_prompt_message_in_utc(sqlite_engine: Engine) -> None:
    # Given a message stored with a time in another zone (SQLite keeps no zone at all)
    with Session(sqlite_engine) as db:
        chat = make_session_with_stages(db, make_company(db))
        db.add(
            Message(
                session_id=chat.id,
                role="user",
                content="Wann ist mein Dienst?",
                timestamp=datetime(2025, 3, 30, 9, 15, tzinfo=CEST),
                order=0,
            )
        )
        db.commit()

    # When I read it back into a prompt message
    with Session(sqlite_engine) as db:
        message = PromptMessage.from_row(db.scalars(select(Message)).one())

    # Then its time is the same instant, in UTC
    assert message == PromptMessage("user", "Wann ist mein Dienst?", datetime(2025, 3, 30, 7, 15, tzinfo=UTC))
    assert message.line() == "[2025-03-30 07:15:00] user: Wann ist mein Dienst?"


def test_a_naive_timestamp_is_refused() -> None:
    # Given a time without a zone, which would be read in the server's zone
    # When I make a prompt message of it
    # Then it is refused
    with pytest.raises(ValueError, match="naive timestamp"):
        PromptMessage("user", "Hello", datetime(2025, 2, 1, 10, 0))


def test_a_session_without_messages_has_no_prompt() -> None:
    # Given a session without messages
    # When I build its prompt
    # Then it is refused: there is nothing to analyse, and nothing to pay for
    with pytest.raises(ValueError, match="no messages"):
        build_messages(SESSION_ID, fit_transcript([], max_prompt_tokens=PROMPT_TOKENS))


@pytest.mark.parametrize("session_id", ["", "two words", "line\nbreak"])
def test_a_session_id_the_model_could_not_echo_is_refused(session_id: str) -> None:
    with pytest.raises(ValueError, match="one non-empty word"):
        build_messages(session_id, fit_transcript(TRANSCRIPT, max_prompt_tokens=PROMPT_TOKENS))


def test_the_instructions_describe_every_field_and_category() -> None:
    # Given the system prompt
    # Then it names every answer field and every category, with its line of guidance
    for key in ("language", "sentiment", "escalated", "forwarded_hr", "category", "questions", "summary"):
        assert f"- {key}: " in SYSTEM_PROMPT
    assert '- session_id: the id from the "Session ID:" line, copied exactly.' in SYSTEM_PROMPT
    assert list(CATEGORY_GUIDE) == list(SessionCategory)
    for category, guide in CATEGORY_GUIDE.items():
        assert f"  - {category}: {guide}\n" in SYSTEM_PROMPT
    # And it states the limits the answer is checked against
    assert "ISO 639-1" in SYSTEM_PROMPT
    assert "at most 5" in SYSTEM_PROMPT
    assert "10 to 300 characters" in SYSTEM_PROMPT


def test_the_request_body_is_the_same_for_both_paths() -> None:
    # When I build the body of an analysis request
    body = request_body(
        "gpt-4o-mini", SESSION_ID, fit_transcript(TRANSCRIPT, max_prompt_tokens=PROMPT_TOKENS)
    )

    # Then it has the model, the messages, the strict schema, and the sampling limits
    assert body == {
        "model": "gpt-4o-mini",
        "messages": build_messages(SESSION_ID, fit_transcript(TRANSCRIPT, max_prompt_tokens=PROMPT_TOKENS)),
        "response_format": RESPONSE_FORMAT,
        "temperature": 0.1,
        "max_tokens": 1000,
    }
    # And it is plain JSON, as a batch line needs it
    assert json.loads(json.dumps(body)) == body


def test_changing_a_request_body_leaves_the_next_one_alone() -> None:
    # Given a body that its caller changed
    body = request_body("gpt-4o", SESSION_ID, fit_transcript(TRANSCRIPT, max_prompt_tokens=PROMPT_TOKENS))
    body["response_format"]["json_schema"]["strict"] = False

    # When I build another
    # Then it still asks for the strict schema
    assert (
        request_body("gpt-4o", SESSION_ID, fit_transcript(TRANSCRIPT, max_prompt_tokens=PROMPT_TOKENS))[
            "response_format"
        ]["json_schema"]["strict"]
        is True
    )


@dataclass
class FakeOpenAI:
    """A chat completions endpoint on 127.0.0.1 that records each request and answers ``content``."""

    url: str
    content: str
    requests: list[tuple[str, dict[str, Any]]] = field(default_factory=list)


@pytest.fixture
def fake_openai() -> Iterator[FakeOpenAI]:
    answer = {
        "language": "nl",
        "sentiment": "POSITIVE",
        "escalated": False,
        "forwarded_hr": False,
        "category": "LEAVE_VACATION",
        "questions": ["How many vacation days do I have left?"],
        "summary": "The employee asked for their leave balance and was pointed to the app.",
        "session_id": SESSION_ID,
    }
    fake = FakeOpenAI(url="", content=json.dumps(answer))

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            fake.requests.append(
                (self.path, json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            )
            completion = {
                "id": "chatcmpl-test",
                "object": "chat.completion",
                "created": 1_738_404_000,
                "model": "gpt-4o-mini-2024-07-18",
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": fake.content, "refusal": None},
                        "logprobs": None,
                        "finish_reason": "stop",
                    }
                ],
                "usage": {"prompt_tokens": 700, "completion_tokens": 80, "total_tokens": 780},
            }
            payload = json.dumps(completion).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    fake.url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield fake
    server.shutdown()
    server.server_close()
    thread.join()


def test_the_sdk_sends_the_body_as_built_and_the_answer_parses(fake_openai: FakeOpenAI) -> None:
    # Given an analysis request body
    body = request_body(
        "gpt-4o-mini", SESSION_ID, fit_transcript(TRANSCRIPT, max_prompt_tokens=PROMPT_TOKENS)
    )

    # When the openai SDK sends it
    with openai.OpenAI(base_url=fake_openai.url, api_key="test", max_retries=0) as client:
        completion = client.chat.completions.create(**body)

    # Then the endpoint receives exactly that body, the schema untouched
    assert fake_openai.requests == [("/v1/chat/completions", body)]
    # And the answer it gets back validates
    message = completion.choices[0].message
    analysis = parse_analysis(message.content, refusal=message.refusal, expected_session_id=SESSION_ID)
    assert analysis.questions == ["How many vacation days do I have left?"]


def _long_transcript(count: int) -> list[PromptMessage]:
    start = datetime(2025, 2, 1, 10, 0, 0, tzinfo=UTC)
    return [
        PromptMessage(
            "user" if number % 2 == 0 else "assistant",
            f"message {number}: how many vacation days do I have left this year?",
            start + timedelta(seconds=number),
        )
        for number in range(count)
    ]


def test_a_transcript_within_the_budget_is_sent_whole() -> None:
    # When I fit the sample transcript to the default budget
    fitted = fit_transcript(TRANSCRIPT, max_prompt_tokens=PROMPT_TOKENS)

    # Then nothing is left out
    assert fitted.truncation is None
    assert fitted.text == "\n".join(message.line() for message in TRANSCRIPT)


def test_a_long_transcript_keeps_its_beginning_and_end_within_the_budget() -> None:
    # Given a transcript of 20,000 messages, about 1.4 MB
    messages = _long_transcript(20_000)

    # When I fit it to 4,000 tokens and build the request
    fitted = fit_transcript(messages, max_prompt_tokens=4_000)
    system, user = build_messages(SESSION_ID, fitted)

    # Then the request is within the budget, estimated as documented
    assert estimated_tokens(system["content"]) + estimated_tokens(user["content"]) <= 4_000
    # And it keeps the first and the last messages whole, with one line saying what was left out between
    lines = user["content"].split("\n")
    assert lines[2] == messages[0].line() and lines[-1] == messages[-1].line()
    [gap] = [line for line in lines if line.startswith("[… ")]
    kept = len(lines) - 3
    assert gap == (
        f"[… {20_000 - kept} of 20000 messages left out here: the conversation is too long for the prompt …]"
    )
    # And the truncation says the same, to be recorded on the session
    head = lines.index(gap) - 2
    assert fitted.truncation == (
        f"prompt limited to about 4000 tokens: the first {head} and the last {kept - head} of 20000 "
        "messages sent"
    )


def test_one_message_larger_than_the_budget_is_cut() -> None:
    # Given one message of 100,000 characters
    huge = [PromptMessage("user", "x" * 100_000, None)]

    # When I fit it to 2,000 tokens
    fitted = fit_transcript(huge, max_prompt_tokens=2_000)

    # Then its beginning is sent, marked as cut, within the budget
    content = build_messages(SESSION_ID, fitted)[1]["content"]
    assert estimated_tokens(SYSTEM_PROMPT) + estimated_tokens(content) <= 2_000
    assert content.split("\n")[2].startswith("[no time] user: xxx") and "…" in content
    assert fitted.truncation == (
        "prompt limited to about 2000 tokens: the first 1 and the last 0 of 1 messages sent (one message cut)"
    )
