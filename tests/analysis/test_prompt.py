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
    parse_analysis,
    request_body,
)
from pipeline.db.enums import SessionCategory
from pipeline.db.models import Message
from pipeline.devtools.openai_emulator.analyst import Turn, parse_conversation
from tests.factories import make_company, make_session_with_stages

SESSION_ID = "0f6c3c1e-7d1b-4c55-9f49-2f1f5f7a8b21"
CEST = timezone(timedelta(hours=2))

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
    system, user = build_messages(SESSION_ID, TRANSCRIPT)

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
    content = build_messages(SESSION_ID, TRANSCRIPT)[1]["content"]

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
        build_messages(SESSION_ID, [])


@pytest.mark.parametrize("session_id", ["", "two words", "line\nbreak"])
def test_a_session_id_the_model_could_not_echo_is_refused(session_id: str) -> None:
    with pytest.raises(ValueError, match="one non-empty word"):
        build_messages(session_id, TRANSCRIPT)


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
    body = request_body("gpt-4o-mini", SESSION_ID, TRANSCRIPT)

    # Then it has the model, the messages, the strict schema, and the sampling limits
    assert body == {
        "model": "gpt-4o-mini",
        "messages": build_messages(SESSION_ID, TRANSCRIPT),
        "response_format": RESPONSE_FORMAT,
        "temperature": 0.1,
        "max_tokens": 1000,
    }
    # And it is plain JSON, as a batch line needs it
    assert json.loads(json.dumps(body)) == body


def test_changing_a_request_body_leaves_the_next_one_alone() -> None:
    # Given a body that its caller changed
    body = request_body("gpt-4o", SESSION_ID, TRANSCRIPT)
    body["response_format"]["json_schema"]["strict"] = False

    # When I build another
    # Then it still asks for the strict schema
    assert request_body("gpt-4o", SESSION_ID, TRANSCRIPT)["response_format"]["json_schema"]["strict"] is True


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
    body = request_body("gpt-4o-mini", SESSION_ID, TRANSCRIPT)

    # When the openai SDK sends it
    with openai.OpenAI(base_url=fake_openai.url, api_key="test", max_retries=0) as client:
        completion = client.chat.completions.create(**body)

    # Then the endpoint receives exactly that body, the schema untouched
    assert fake_openai.requests == [("/v1/chat/completions", body)]
    # And the answer it gets back validates
    message = completion.choices[0].message
    analysis = parse_analysis(message.content, refusal=message.refusal, expected_session_id=SESSION_ID)
    assert analysis.questions == ["How many vacation days do I have left?"]
