"""The analysis contract: the schema sent to OpenAI, and what becomes of every kind of answer."""

from __future__ import annotations

import json

import pytest

from pipeline.analysis import (
    RESPONSE_FORMAT,
    InvalidAnalysis,
    SessionAnalysis,
    normalized_questions,
    parse_analysis,
)
from pipeline.db.enums import SentimentCategory, SessionCategory

SESSION_ID = "0f6c3c1e-7d1b-4c55-9f49-2f1f5f7a8b21"

#: The exact schema sent with every analysis request. A change here changes what OpenAI is asked for.
EXPECTED_RESPONSE_FORMAT = {
    "type": "json_schema",
    "json_schema": {
        "name": "session_analysis",
        "strict": True,
        "schema": {
            "type": "object",
            "description": "The analysis of one chat session.",
            "additionalProperties": False,
            "required": [
                "language",
                "sentiment",
                "escalated",
                "forwarded_hr",
                "category",
                "questions",
                "summary",
                "session_id",
            ],
            "properties": {
                "language": {
                    "type": "string",
                    "pattern": "^[a-z]{2}$",
                    "description": (
                        'The user\'s main language as an ISO 639-1 code: two lower-case letters, e.g. "en".'
                    ),
                },
                "sentiment": {
                    "type": "string",
                    "enum": ["POSITIVE", "NEUTRAL", "NEGATIVE"],
                    "description": "The overall tone of the conversation.",
                },
                "escalated": {
                    "type": "boolean",
                    "description": (
                        "Whether the user asked for, or was escalated to, a supervisor or manager."
                    ),
                },
                "forwarded_hr": {
                    "type": "boolean",
                    "description": "Whether an HR contact was mentioned or provided.",
                },
                "category": {
                    "type": "string",
                    "enum": [
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
                    ],
                    "description": "The category that fits the conversation best.",
                },
                "questions": {
                    "type": "array",
                    "items": {"type": "string"},
                    "maxItems": 5,
                    "description": "At most 5 questions the user asked, each paraphrased in English.",
                },
                "summary": {
                    "type": "string",
                    "description": "A summary of the conversation, 10 to 300 characters.",
                },
                "session_id": {
                    "type": "string",
                    "description": "The session id given with the conversation, copied exactly.",
                },
            },
        },
    },
}


def answer(**changes: object) -> dict[str, object]:
    """A valid answer for SESSION_ID, with ``changes`` applied."""
    valid: dict[str, object] = {
        "language": "nl",
        "sentiment": "NEGATIVE",
        "escalated": True,
        "forwarded_hr": False,
        "category": "LEAVE_VACATION",
        "questions": ["How many vacation days do I have left?"],
        "summary": "The employee asked about their leave balance and wanted to talk to a manager.",
        "session_id": SESSION_ID,
    }
    return {**valid, **changes}


def reason_for(content: str | None, *, refusal: str | None = None) -> str:
    with pytest.raises(InvalidAnalysis) as raised:
        parse_analysis(content, refusal=refusal, expected_session_id=SESSION_ID)
    assert str(raised.value) == raised.value.reason
    return raised.value.reason


def test_the_schema_sent_is_the_strict_subset_of_the_model() -> None:
    # Given the response format built from SessionAnalysis by the SDK
    # Then it is exactly this: every field required, no extra fields, enums inlined, and no keyword that
    # strict mode refuses (the SDK's minLength/maxLength) nor titles
    assert RESPONSE_FORMAT == EXPECTED_RESPONSE_FORMAT


def test_a_valid_answer_becomes_a_session_analysis() -> None:
    # Given a well-formed answer for the session
    content = json.dumps(answer())

    # When I parse it
    analysis = parse_analysis(content, refusal=None, expected_session_id=SESSION_ID)

    # Then I get its values, the enums as enums
    assert analysis == SessionAnalysis(
        language="nl",
        sentiment=SentimentCategory.NEGATIVE,
        escalated=True,
        forwarded_hr=False,
        category=SessionCategory.LEAVE_VACATION,
        questions=["How many vacation days do I have left?"],
        summary="The employee asked about their leave balance and wanted to talk to a manager.",
        session_id=SESSION_ID,
    )


def test_answers_at_the_limits_are_valid() -> None:
    # Given answers with the shortest and the longest summary, five questions, and none
    contents = [
        json.dumps(answer(summary="x" * 10, questions=[f"Question {n}?" for n in range(5)])),
        json.dumps(answer(summary="x" * 300, questions=[])),
    ]

    # When I parse them
    analyses = [parse_analysis(content, refusal=None, expected_session_id=SESSION_ID) for content in contents]

    # Then both are accepted
    assert [len(analysis.questions) for analysis in analyses] == [5, 0]


def test_a_refusal_is_invalid() -> None:
    # Given the model refused
    # When I parse the answer
    reason = reason_for(None, refusal="I'm sorry, but I can't help with that request.")

    # Then the reason quotes the refusal
    assert reason == "model refused: I'm sorry, but I can't help with that request."


def test_an_answer_without_content_is_invalid() -> None:
    # Given a message with neither content nor refusal
    # When I parse it
    # Then it is rejected as empty
    assert reason_for(None) == "no content"


def test_invalid_json_is_reported_with_its_position() -> None:
    # Given an answer cut off in the middle
    # When I parse it
    # Then the reason says where the JSON broke
    assert reason_for('{"language": "en",') == "invalid JSON: EOF while parsing a value at line 1 column 18"


def test_json_that_is_not_an_object_is_invalid() -> None:
    assert reason_for('["en", "POSITIVE"]') == "answer is not a JSON object"


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        pytest.param(
            {"sentiment": "HAPPY"}, "sentiment: 'HAPPY' is not one of POSITIVE, NEUTRAL, NEGATIVE", id="enum"
        ),
        pytest.param(
            {"category": "leave_vacation"},
            "category: 'leave_vacation' is not one of SCHEDULE_HOURS, LEAVE_VACATION, SICK_LEAVE_RECOVERY,"
            " SALARY_COMPENSATION, CONTRACT_HOURS, ONBOARDING, OFFBOARDING, WORKWEAR_STAFF_PASS,"
            " TEAM_CONTACTS, PERSONAL_QUESTIONS, ACCESS_LOGIN, SOCIAL_QUESTIONS, UNRECOGNIZED_OTHER",
            id="category-case",
        ),
        pytest.param({"summary": None}, "summary: input should be a valid string, got None", id="null"),
        pytest.param({"confidence": 0.9}, "confidence: unexpected field", id="extra-field"),
        pytest.param({"language": "eng"}, "language: 'eng' does not match ^[a-z]{2}$", id="language-eng"),
        pytest.param({"language": "EN"}, "language: 'EN' does not match ^[a-z]{2}$", id="language-case"),
        pytest.param(
            {"language": "en\n"}, "language: 'en\\n' does not match ^[a-z]{2}$", id="language-newline"
        ),
        pytest.param(
            {"summary": "Too short"}, "summary: 9 characters, at least 10 required", id="summary-short"
        ),
        pytest.param(
            {"summary": "x" * 301}, "summary: 301 characters, at most 300 allowed", id="summary-long"
        ),
        pytest.param(
            {"questions": [f"Question {n}?" for n in range(6)]},
            "questions: 6 items, at most 5 allowed",
            id="six-questions",
        ),
        pytest.param(
            {"questions": ["Where is my payslip?", "   "]},
            "questions[1]: must not be blank, got '   '",
            id="blank-question",
        ),
        pytest.param(
            {"escalated": "true"}, "escalated: input should be a valid boolean, got 'true'", id="bool-as-text"
        ),
        pytest.param(
            {"forwarded_hr": 0}, "forwarded_hr: input should be a valid boolean, got 0", id="bool-as-int"
        ),
        pytest.param(
            {"questions": "Where is my payslip?"},
            "questions: input should be a valid array, got 'Where is my payslip?'",
            id="questions-as-text",
        ),
    ],
)
def test_a_schema_violation_names_the_field_and_the_problem(
    changes: dict[str, object], expected: str
) -> None:
    # Given an answer that breaks the schema in one place
    content = json.dumps(answer(**changes))

    # When I parse it
    # Then the reason names the field and what is wrong with it
    assert reason_for(content) == expected


def test_a_missing_field_is_named() -> None:
    # Given an answer without a summary
    content = json.dumps({key: value for key, value in answer().items() if key != "summary"})

    # When I parse it
    # Then the summary is reported missing
    assert reason_for(content) == "summary: missing"


def test_every_problem_is_listed_up_to_five() -> None:
    # Given an answer with two problems (the emulator's "schema_violation" fault)
    two = {key: value for key, value in answer(sentiment="MIXED").items() if key != "summary"}
    # And an answer with nothing right
    none_right = {"verdict": "fine"}

    # When I parse them
    # Then the reason lists the problems in field order, and counts those past the fifth
    assert reason_for(json.dumps(two)) == (
        "sentiment: 'MIXED' is not one of POSITIVE, NEUTRAL, NEGATIVE; summary: missing"
    )
    assert reason_for(json.dumps(none_right)) == (
        "language: missing; sentiment: missing; escalated: missing; forwarded_hr: missing;"
        " category: missing; and 4 more problems"
    )


def test_an_answer_for_another_session_is_invalid() -> None:
    # Given a well-formed answer that claims to be about another session
    content = json.dumps(answer(session_id="9b2e8c55-3f0d-4a7e-8d8b-5a1c2e3f4a5b"))

    # When I parse it
    # Then it is rejected, naming both sessions
    assert reason_for(content) == (
        f"answer is for session 9b2e8c55-3f0d-4a7e-8d8b-5a1c2e3f4a5b, expected {SESSION_ID}"
    )


def test_a_long_wrong_value_is_shortened_in_the_reason() -> None:
    # Given an answer whose session id is a whole paragraph
    content = json.dumps(answer(session_id="The session id is not something I can see here, sorry."))

    # When I parse it
    # Then the reason shows only its start
    assert reason_for(content) == (
        f"answer is for session The session id is not something I can..., expected {SESSION_ID}"
    )


def test_questions_are_normalised_for_storage() -> None:
    # Given an answer whose questions repeat each other up to case and spaces
    analysis = SessionAnalysis.model_validate_json(
        json.dumps(
            answer(
                questions=[
                    "  How do I reset my password? ",
                    "Where is my payslip?",
                    "how do i reset my PASSWORD?",
                    "Where is my payslip?\n",
                    "Can I swap a shift?",
                ]
            )
        )
    )

    # When I normalise them
    questions = normalized_questions(analysis, max_chars=500)

    # Then each is stripped, kept once in its first spelling, in the order asked
    assert questions == ["How do I reset my password?", "Where is my payslip?", "Can I swap a shift?"]
