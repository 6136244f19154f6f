"""What the emulator answers about a transcript: language, sentiment, escalation, HR, category, questions."""

# Turkish spells with the dotless i (U+0131), which RUF001 takes for a look-alike of i.
# ruff: noqa: RUF001

from __future__ import annotations

import json
from collections.abc import Iterator

import openai
import pytest

from pipeline.devtools.openai_emulator import OpenAIEmulator, analyse_conversation


def transcript(*turns: tuple[str, str], session_id: str = "s-1") -> str:
    lines = [f"Session ID: {session_id}"]
    lines += [f"[01.02.2025 10:{minute:02d}:00] {role}: {text}" for minute, (role, text) in enumerate(turns)]
    return "\n".join(lines)


@pytest.fixture(scope="module")
def client() -> Iterator[openai.OpenAI]:
    with (
        OpenAIEmulator() as emulator,
        openai.OpenAI(base_url=emulator.url, api_key="test", max_retries=0) as client,
    ):
        yield client


def analyse_over_http(client: openai.OpenAI, text: str) -> dict[str, object]:
    completion = client.chat.completions.create(
        model="gpt-4o",
        messages=[{"role": "system", "content": "Analyse this chat."}, {"role": "user", "content": text}],
        response_format={"type": "json_object"},
    )
    content = completion.choices[0].message.content
    assert content is not None
    answer: dict[str, object] = json.loads(content)
    return answer


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            transcript(
                ("User", "Hi"),
                ("Assistant", "Hello! How can I help?"),
                ("User", "I'm sick, what do I need to do?"),
                ("Assistant", "Call your store manager, and for anything else contact HR at hr@example.com."),
                ("User", "This doesn't help at all. I want to speak to a manager."),
            ),
            ("en", "NEGATIVE", True, True, "SICK_LEAVE_RECOVERY"),
            id="en",
        ),
        pytest.param(
            transcript(
                ("User", "Hoeveel vakantiedagen heb ik nog?"),
                ("Assistant", "Je verlofsaldo staat in de personeelsapp onder 'Verlof'."),
                ("User", "Dank je, dat helpt!"),
            ),
            ("nl", "POSITIVE", False, False, "LEAVE_VACATION"),
            id="nl",
        ),
        pytest.param(
            transcript(
                ("User", "Wann wird das Gehalt diesen Monat überwiesen?"),
                ("Assistant", "Bitte wenden Sie sich an die Personalabteilung."),
                ("User", "Das hilft mir nicht weiter. Ich möchte mit einem Vorgesetzten sprechen."),
            ),
            ("de", "NEGATIVE", True, True, "SALARY_COMPENSATION"),
            id="de",
        ),
        pytest.param(
            transcript(
                ("User", "Hesabım kilitlendi, ne yapmalıyım?"),
                ("Assistant", "Bu soru için lütfen İK ile iletişime geçin."),
                ("User", "Teşekkürler, çok yardımcı oldu!"),
            ),
            ("tr", "POSITIVE", False, True, "ACCESS_LOGIN"),
            id="tr",
        ),
        pytest.param(
            transcript(("User", "When is my next shift?"), ("Assistant", "Your schedule is in the app.")),
            ("en", "NEUTRAL", False, False, "SCHEDULE_HOURS"),
            id="en-neutral",
        ),
        pytest.param(
            transcript(("User", "lalala"), ("Assistant", "How can I help you?")),
            ("en", "NEUTRAL", False, False, "UNRECOGNIZED_OTHER"),
            id="nothing-recognised",
        ),
    ],
)
def test_the_answer_reads_language_sentiment_escalation_hr_and_category(
    client: openai.OpenAI, text: str, expected: tuple[str, str, bool, bool, str]
) -> None:
    # When the emulator is asked about a transcript
    answer = analyse_over_http(client, text)

    # Then it reads the conversation the way a model would, and says so in its answer
    assert (
        answer["language"],
        answer["sentiment"],
        answer["escalated"],
        answer["forwarded_hr"],
        answer["category"],
    ) == expected
    assert answer == analyse_conversation(text)


def test_a_user_naming_their_manager_has_not_asked_for_escalation() -> None:
    # Given a user who mentions their manager without asking to speak to one
    text = transcript(("User", "My schedule says off on Friday, but my manager says I work. Which is right?"))

    # When it is analysed
    # Then nothing was escalated
    assert analyse_conversation(text)["escalated"] is False


def test_hr_counts_as_mentioned_in_capitals_only() -> None:
    # Given a Dutch user writing "ik" (I) and a title "hr." in lower case
    text = transcript(("User", "ik wil weten wie hr. Jansen is"), ("Assistant", "Dat weet ik niet."))

    # When it is analysed
    # Then HR was not mentioned
    assert analyse_conversation(text)["forwarded_hr"] is False


def test_a_greeting_alone_takes_the_language_from_the_assistant() -> None:
    # Given a user who only said hello, in a word Dutch and German share
    text = transcript(("User", "Hallo"), ("Assistant", "Hallo! Waarmee kan ik je helpen?"))

    # When it is analysed
    # Then the assistant's Dutch decides
    assert analyse_conversation(text)["language"] == "nl"


def test_the_category_is_what_the_user_asked_about_first() -> None:
    # Given a question about vacation, then a follow-up about part-time contracts
    text = transcript(
        ("User", "How many vacation days do I have left?"),
        ("Assistant", "Twelve."),
        ("User", "Is that the same for part-time contracts with fewer hours?"),
    )

    # When it is analysed
    # Then the first topic wins
    assert analyse_conversation(text)["category"] == "LEAVE_VACATION"


def test_questions_are_the_users_distinct_sentences_ending_in_a_question_mark_at_most_five() -> None:
    # Given a user asking seven questions, one twice, over continuation lines, and an assistant asking one
    text = transcript(
        ("User", "Hello,\nWhen is my next shift? And where do I find it?"),
        ("Assistant", "In the app. Anything else?"),
        ("User", "When is my next shift?"),
        ("User", "Can I swap it? Who approves that? Is there a form? What if my team leader is away?"),
    )

    # When it is analysed
    # Then the first five distinct user questions are kept, in order and verbatim
    assert analyse_conversation(text)["questions"] == [
        "When is my next shift?",
        "And where do I find it?",
        "Can I swap it?",
        "Who approves that?",
        "Is there a form?",
    ]


def test_the_session_id_is_echoed_and_instructions_before_the_transcript_are_ignored() -> None:
    # Given instructions, the session id, and a transcript
    text = (
        "Answer in JSON. Mention HR if you like.\nSession ID: 1234-abcd\n"
        + transcript(("User", "When is my next shift?"), session_id="ignored").split("\n", 1)[1]
    )

    # When it is analysed
    answer = analyse_conversation(text)

    # Then the session id is echoed, and the instructions' "HR" does not count
    assert answer["session_id"] == "1234-abcd"
    assert answer["forwarded_hr"] is False


def test_a_conversation_without_a_session_id_answers_an_empty_one() -> None:
    # When a transcript without a session id line is analysed
    # Then the answer's session id is empty
    assert analyse_conversation("[01.02.2025 10:00:00] User: Hi")["session_id"] == ""


def test_the_summary_is_deterministic_and_within_the_spec_length() -> None:
    # Given a conversation
    text = transcript(
        ("User", "Ik ben ziek, wat moet ik doen?"),
        ("Assistant", "Meld je ziek in de app en neem contact op met HR."),
    )

    # When it is analysed twice
    first, second = analyse_conversation(text), analyse_conversation(text)

    # Then both summaries are the same, 10 to 300 characters, naming the category and language
    assert first == second
    summary = first["summary"]
    assert isinstance(summary, str) and 10 <= len(summary) <= 300
    assert summary == "User asked about Sick Leave & Recovery in Dutch; 1 user turn; HR was mentioned."
