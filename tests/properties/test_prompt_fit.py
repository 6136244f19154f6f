"""Properties of fitting a transcript to the prompt's token budget (hypothesis).

Whatever the messages and the budget: the request stays within the budget as estimated, the beginning and
the end of the conversation are what is kept, and a transcript that fits is sent whole.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.analysis import PromptMessage, build_messages, estimated_tokens, fit_transcript

SESSION_ID = "0f6c3c1e-7d1b-4c55-9f49-2f1f5f7a8b21"

_MESSAGES = st.lists(
    st.builds(
        PromptMessage,
        role=st.sampled_from(["user", "assistant", "unknown"]),
        content=st.one_of(
            st.text(min_size=1, max_size=50),
            st.text(min_size=1, max_size=3).map(lambda text: text * 3_000),
        ),
        timestamp=st.none(),
    ),
    min_size=1,
    max_size=60,
)


@settings(max_examples=200, deadline=None, database=None)
@given(messages=_MESSAGES, budget=st.integers(min_value=2_000, max_value=8_000))
def test_a_fitted_request_stays_within_its_budget_and_keeps_both_ends(
    messages: list[PromptMessage], budget: int
) -> None:
    # Given any messages and a budget
    # When the transcript is fitted and the request built
    fitted = fit_transcript(messages, max_prompt_tokens=budget)
    system, user = build_messages(SESSION_ID, fitted)

    # Then the request is within the budget, as estimated
    assert estimated_tokens(system["content"]) + estimated_tokens(user["content"]) <= budget
    lines = [message.line() for message in messages]
    if fitted.truncation is None:
        # And a transcript that fits is sent whole
        assert fitted.text == "\n".join(lines)
    else:
        # Or it starts with the first message (or its beginning) and ends with the last (or its end)
        assert fitted.text.startswith(lines[0][:20])
        if len(lines) > 1:
            assert fitted.text.endswith(lines[-1][-20:])
        assert "left out here" in fitted.text
        assert fitted.truncation.startswith(f"prompt limited to about {budget} tokens")
