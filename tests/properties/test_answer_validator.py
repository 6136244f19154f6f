"""Properties of the answer validator over arbitrary model output (hypothesis).

Whatever the model answers: the validator returns an analysis or raises :class:`InvalidAnalysis` with a
short reason, nothing else; and the questions it hands on are within their bounds.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.analysis import MAX_QUESTIONS, InvalidAnalysis, normalized_questions, parse_analysis

SESSION_ID = "0f6c3c1e-7d1b-4c55-9f49-2f1f5f7a8b21"
#: The longest reason an error column is given: a few listed problems, each with a clipped value.
MAX_REASON_CHARS = 1000

VALID: dict[str, Any] = {
    "language": "en",
    "sentiment": "NEUTRAL",
    "escalated": False,
    "forwarded_hr": False,
    "category": "LEAVE_VACATION",
    "questions": ["How many days off do I have left?"],
    "summary": "The user asked about their leave balance.",
    "session_id": SESSION_ID,
}

_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=50),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=2000), children, max_size=5)
    ),
    max_leaves=20,
)


@st.composite
def _near_valid(draw: st.DrawFn) -> str:
    """A valid answer with some fields replaced, removed or added: the answers that get furthest."""
    answer = dict(VALID)
    for key in draw(st.lists(st.sampled_from([*VALID, "x" * draw(st.integers(1, 3000))]), max_size=3)):
        if draw(st.booleans()):
            answer[key] = draw(_JSON)
        else:
            answer.pop(key, None)
    if draw(st.booleans()):
        answer["questions"] = draw(st.lists(st.text(max_size=3000), max_size=8))
    return json.dumps(answer)


_CONTENT = st.one_of(st.text(max_size=200), _JSON.map(json.dumps), _near_valid())


@settings(max_examples=400, deadline=None, database=None)
@given(content=st.none() | _CONTENT, refusal=st.none() | st.text(max_size=50))
def test_any_answer_is_an_analysis_or_an_invalid_analysis_with_a_short_reason(
    content: str | None, refusal: str | None
) -> None:
    # Given arbitrary model output
    # When it is validated
    try:
        analysis = parse_analysis(content, refusal=refusal or None, expected_session_id=SESSION_ID)
    except InvalidAnalysis as exc:
        # Then a refusal says why in a reason fit for an error column
        assert exc.reason and len(exc.reason) <= MAX_REASON_CHARS
        return

    # Or the analysis is for this session, and its questions as stored are within their bounds
    assert analysis.session_id == SESSION_ID
    stored = normalized_questions(analysis, max_chars=500)
    assert len(stored) <= MAX_QUESTIONS
    assert all(0 < len(question) <= 500 and question == question.strip() for question in stored)
    assert len({question.casefold() for question in stored}) == len(stored)
